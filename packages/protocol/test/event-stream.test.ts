import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { after, before, test } from 'node:test'
import { isProtocolError, openEventStream, type SseEvent } from '../src/index.js'
import { startServer, type TlsFixture, tlsFixture } from './tls-fixtures.js'

let f: TlsFixture
let srv: Awaited<ReturnType<typeof startServer>>
const open = new Set<ServerResponse>()
let lastHeaders: Record<string, unknown> = {}

before(async () => {
  f = await tlsFixture()
  srv = await startServer(f, (req, res) => {
    lastHeaders = req.headers
    if (req.url === '/refuse') {
      res.statusCode = 401
      res.end(JSON.stringify({ error: { code: 'ERR_UNAUTHORIZED', message: 'who?' } }))
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    open.add(res)
    res.on('close', () => open.delete(res))
    if (req.url === '/events') {
      res.write(': hello\n\nevent: snapshot\ndata: {"a":1}\n\n')
      res.write('data: {"type":"x"}\r\n\r\n')
      if (req.headers['x-end'] === '1') res.end()
    } else if (req.url === '/huge') {
      res.write(`data: ${'x'.repeat(5000)}\n\n`)
    }
    // '/silent': headers only
  })
})
after(async () => {
  for (const r of open) r.destroy()
  await srv.close()
})

const tls = () => ({ ca: f.ca, cert: f.client.cert, key: f.client.key })

function collect(path: string, extra: Partial<Parameters<typeof openEventStream>[0]> = {}) {
  const events: SseEvent[] = []
  let opened = 0
  const ended = new Promise<Error>((resolve) => {
    const s = openEventStream({
      url: `${srv.url}${path}`,
      tls: tls(),
      idleTimeoutMs: 5000,
      onOpen: () => opened++,
      onEvent: (ev) => events.push(ev),
      onEnd: resolve,
      ...extra,
    })
    void s
  })
  return { events, ended, opened: () => opened }
}

test('events in order until the controller ends the stream', async () => {
  const c = collect('/events', { headers: { 'x-end': '1', authorization: 'Bearer s' } })
  const err = await c.ended
  assert.ok(isProtocolError(err, 'ERR_HTTPS_STREAM_ENDED'), String(err))
  assert.equal(c.opened(), 1)
  assert.deepEqual(c.events, [
    { event: 'snapshot', data: '{"a":1}' },
    { event: 'message', data: '{"type":"x"}' },
  ])
  assert.equal(lastHeaders.accept, 'text/event-stream')
  assert.equal(lastHeaders.authorization, 'Bearer s')
})

test('a refusal reports status, text and JSON; onOpen is not called', async () => {
  const c = collect('/refuse')
  const err = await c.ended
  assert.ok(isProtocolError(err, 'ERR_HTTPS_STATUS'))
  assert.equal(err.details.status, 401)
  assert.deepEqual(err.details.json, { error: { code: 'ERR_UNAUTHORIZED', message: 'who?' } })
  assert.equal(c.opened(), 0)
})

test('silence past idleTimeoutMs, SSE limits, a throwing handler end the stream', async () => {
  const silent = await collect('/silent', { idleTimeoutMs: 200 }).ended
  assert.ok(isProtocolError(silent, 'ERR_HTTPS_TIMEOUT'))
  const huge = await collect('/huge', { maxEventBytes: 1000 }).ended
  assert.ok(isProtocolError(huge, 'ERR_SSE_EVENT_TOO_LARGE'))
  const boom = new Error('handler failed')
  const thrown = await collect('/events', {
    onEvent: () => {
      throw boom
    },
  }).ended
  assert.equal(thrown, boom)
})

test('TLS failure and bad URLs go to onEnd; close() ends without onEnd', async () => {
  const bad = await collect('/events', { tls: { ...tls(), ca: f.otherCa } }).ended
  assert.ok(isProtocolError(bad, 'ERR_HTTPS_UNREACHABLE'))
  assert.equal(bad.details.tls, true)
  const url = await new Promise<Error>((resolve) =>
    openEventStream({
      url: 'http://127.0.0.1/',
      tls: tls(),
      idleTimeoutMs: 1000,
      onEvent: () => {},
      onEnd: resolve,
    }),
  )
  assert.ok(isProtocolError(url, 'ERR_HTTPS_URL'))

  let ends = 0
  const got: SseEvent[] = []
  await new Promise<void>((resolve) => {
    const s = openEventStream({
      url: `${srv.url}/events`,
      tls: tls(),
      idleTimeoutMs: 5000,
      onEvent: (ev) => {
        got.push(ev)
        if (got.length === 1) {
          s.close()
          assert.equal(s.ended, true)
          resolve()
        }
      },
      onEnd: () => ends++,
    })
  })
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(ends, 0)
  assert.equal(got.length, 1)
})
