import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import type { DataChange, PolicySnapshot } from '@nullport/protocol'
import { ClientEventHub } from '../src/edge/client-hub.js'
import { RouterHub } from '../src/edge/router-hub.js'
import { type SseCloseReason, SseStream } from '../src/edge/sse.js'

/** A real HTTP server whose handler hands out the raw responses, and a client that can pause. */
async function harness(): Promise<{
  server: Server
  nextResponse(): Promise<ServerResponse>
  connect(): Promise<IncomingMessage>
  close(): Promise<void>
}> {
  const pending: ServerResponse[] = []
  const waiters: Array<(r: ServerResponse) => void> = []
  const server = createServer((_req, res) => {
    const w = waiters.shift()
    if (w) w(res)
    else pending.push(res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  const clients: IncomingMessage[] = []
  return {
    server,
    nextResponse: () => new Promise((r) => (pending.length > 0 ? r(pending.shift()!) : waiters.push(r))),
    connect: () =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
          clients.push(res)
          resolve(res)
        })
        req.on('error', reject)
        req.end()
      }),
    close: async () => {
      for (const c of clients) c.destroy()
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    },
  }
}

const snapshot = (version: number): PolicySnapshot => ({
  version,
  identities: [],
  services: [],
  routers: [],
  servicePolicies: [],
  edgeRouterPolicies: [],
  serviceEdgeRouterPolicies: [],
  terminators: [],
})

function readEvents(res: IncomingMessage): Array<{ event: string; data: unknown }> {
  const events: Array<{ event: string; data: unknown }> = []
  let buf = ''
  res.setEncoding('utf8')
  res.on('data', (d: string) => {
    buf += d
    let i = buf.indexOf('\n\n')
    while (i >= 0) {
      const block = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const ev = /^event: (.*)$/m.exec(block)
      const data = /^data: (.*)$/m.exec(block)
      if (ev && data) events.push({ event: ev[1]!, data: JSON.parse(data[1]!) })
      i = buf.indexOf('\n\n')
    }
  })
  return events
}

test('a router stream that does not read is dropped once its buffer passes the bound; others keep receiving in order', async () => {
  const h = await harness()
  try {
    const hub = new RouterHub()
    const slowClient = h.connect()
    const slow = new SseStream(await h.nextResponse(), { maxBuffered: 256 * 1024, pingIntervalMs: 0 })
    const slowRes = await slowClient
    slowRes.pause()
    const fastClient = h.connect()
    const fast = new SseStream(await h.nextResponse(), { maxBuffered: 64 * 1024 * 1024, pingIntervalMs: 0 })
    const fastEvents = readEvents(await fastClient)

    let gone: SseCloseReason | null = null
    hub.attach('slow', 'fp-slow', slow, snapshot(1), undefined, (reason) => {
      gone = reason
    })
    hub.attach('fast', 'fp-fast', fast, snapshot(1), undefined, () => {})
    const filler = 'x'.repeat(4096)
    let version = 1
    let sent = 0
    // Bounded: at most 64 MiB of changes; the slow stream must be dropped long before that.
    while (hub.isConnected('slow') && sent < 16_384) {
      version++
      const change: DataChange = {
        op: 'upsert',
        version,
        entity: 'service',
        data: {
          id: `s${version}`,
          name: filler,
          roleAttributes: [],
          encryptionRequired: true,
          terminatorStrategy: 'smartrouting',
        },
      }
      hub.broadcast([change])
      sent++
      // let the event loop flush what the sockets take
      if (sent % 64 === 0) await new Promise((r) => setImmediate(r))
    }
    assert.equal(hub.isConnected('slow'), false, 'the slow stream was dropped')
    assert.equal(gone, 'overflow')
    assert.ok(slow.closed)
    assert.equal(hub.isConnected('fast'), true)
    // The fast stream got the snapshot and every change, in order.
    const until = Date.now() + 20_000
    while (fastEvents.length < sent + 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    assert.equal(fastEvents[0]!.event, 'snapshot')
    const versions = fastEvents.slice(1).map((e) => (e.data as { changes: DataChange[] }).changes[0]!.version)
    assert.equal(versions.length, sent)
    assert.deepEqual(
      versions,
      versions.slice().sort((a, b) => a - b),
    )
    // Changes already in a stream's snapshot are not sent again.
    hub.broadcast([{ op: 'delete', version: 1, entity: 'service', id: 'old' }])
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(fastEvents.length, sent + 1)
    hub.closeAll()
  } finally {
    await h.close()
  }
})

test('client events coalesce while a session is congested: one services-changed with the latest version after drain', async () => {
  const h = await harness()
  try {
    const hub = new ClientEventHub()
    const clientP = h.connect()
    const stream = new SseStream(await h.nextResponse(), { maxBuffered: 64 * 1024 * 1024, pingIntervalMs: 0 })
    const res = await clientP
    res.pause()
    hub.add('alice', 'fp-a', stream)
    // Congest the socket: more than the kernel and the stream high-water mark take.
    const big = 'y'.repeat(1024 * 1024)
    for (let i = 0; i < 32 && !stream.congested; i++) {
      stream.send('filler', big)
      await new Promise((r) => setImmediate(r))
    }
    assert.ok(stream.congested, 'the stream is congested')
    for (let v = 10; v <= 20; v++) hub.servicesChanged(v)
    const events = readEvents(res)
    res.resume()
    const until = Date.now() + 20_000
    while (!events.some((e) => e.event === 'services-changed') && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20))
    await new Promise((r) => setTimeout(r, 100))
    const changed = events.filter((e) => e.event === 'services-changed')
    assert.equal(changed.length, 1)
    assert.deepEqual(changed[0]!.data, { type: 'services-changed', version: 20 })

    // A change to another identity does not reach alice; a change that removes her cert revokes her.
    hub.onChanges(
      [
        {
          op: 'upsert',
          version: 21,
          entity: 'identity',
          data: { id: 'bob', name: 'bob', roleAttributes: [], disabled: false, certFingerprints: [] },
        },
      ],
      () => ({ id: 'bob', name: 'bob', roleAttributes: [], disabled: false, certFingerprints: [] }),
    )
    hub.onChanges(
      [
        {
          op: 'upsert',
          version: 22,
          entity: 'identity',
          data: { id: 'alice', name: 'alice', roleAttributes: [], disabled: false, certFingerprints: [] },
        },
      ],
      () => ({ id: 'alice', name: 'alice', roleAttributes: [], disabled: false, certFingerprints: [] }),
    )
    const until2 = Date.now() + 20_000
    while (!events.some((e) => e.event === 'revoked') && Date.now() < until2)
      await new Promise((r) => setTimeout(r, 20))
    assert.equal(events.filter((e) => e.event === 'services-changed').length, 1)
    assert.ok(events.some((e) => e.event === 'revoked'))
    assert.ok(stream.closed)
    assert.equal(hub.size, 0)
  } finally {
    await h.close()
  }
})

test('a large snapshot does not count against the bound: a change right after it does not drop the stream', async () => {
  const h = await harness()
  try {
    const hub = new RouterHub()
    const clientP = h.connect()
    const stream = new SseStream(await h.nextResponse(), { maxBuffered: 64 * 1024, pingIntervalMs: 0 })
    const res = await clientP
    res.pause()
    const big = snapshot(5)
    for (let i = 0; i < 2000; i++) {
      big.identities.push({
        id: `id${i}`,
        name: 'n'.repeat(4000),
        roleAttributes: [],
        disabled: false,
        certFingerprints: [],
      })
    }
    let gone = false
    hub.attach('r', 'fp', stream, big, undefined, () => {
      gone = true
    })
    assert.ok(stream.buffered > 64 * 1024, 'the snapshot is still buffered')
    hub.broadcast([{ op: 'delete', version: 6, entity: 'service', id: 's' }])
    assert.equal(gone, false)
    assert.equal(hub.isConnected('r'), true)
    const events = readEvents(res)
    res.resume()
    const until = Date.now() + 20_000
    while (events.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(
      events.map((e) => e.event),
      ['snapshot', 'change'],
    )
    assert.equal((events[0]!.data as { snapshot: PolicySnapshot }).snapshot.identities.length, 2000)
    hub.closeAll()
  } finally {
    await h.close()
  }
})

test("a router's new stream replaces its old one; only the current stream's end counts as the router going away", async () => {
  const h = await harness()
  try {
    const hub = new RouterHub()
    const gone: string[] = []
    const c1 = h.connect()
    const first = new SseStream(await h.nextResponse(), { pingIntervalMs: 0 })
    const r1 = await c1
    const e1 = readEvents(r1)
    hub.attach('r', 'fp', first, snapshot(3), { version: 1, nextHop: { x: 'x' }, cost: { x: 1 } }, () =>
      gone.push('first'),
    )
    const c2 = h.connect()
    const second = new SseStream(await h.nextResponse(), { pingIntervalMs: 0 })
    const e2 = readEvents(await c2)
    hub.attach('r', 'fp', second, snapshot(4), undefined, () => gone.push('second'))
    assert.ok(first.closed)
    assert.deepEqual(gone, [], 'replacing a stream is not the router going away')
    hub.broadcast([
      { op: 'delete', version: 4, entity: 'service', id: 'a' },
      { op: 'delete', version: 5, entity: 'service', id: 'b' },
    ])
    const until = Date.now() + 10_000
    while (e2.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(
      e1.map((e) => e.event),
      ['snapshot', 'routes'],
    )
    assert.deepEqual(
      e2.map((e) => e.event),
      ['snapshot', 'change'],
    )
    // Only the change above the new stream's snapshot version is sent.
    assert.deepEqual(
      (e2[1]!.data as { changes: DataChange[] }).changes.map((c) => c.version),
      [5],
    )
    assert.equal(hub.disconnectWhere((id, fp) => id === 'r' && fp === 'fp').length, 1)
    assert.deepEqual(gone, ['second'])
    assert.equal(hub.isConnected('r'), false)
  } finally {
    await h.close()
  }
})
