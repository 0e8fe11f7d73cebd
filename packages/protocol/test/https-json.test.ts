import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { createServer as createNetServer } from 'node:net'
import { after, before, test } from 'node:test'
import type { TLSSocket } from 'node:tls'
import {
  controllerError,
  HttpsJsonClient,
  httpsJson,
  httpsRequest,
  isProtocolError,
  type ProtocolError,
} from '../src/index.js'
import { startServer, type TlsFixture, tlsFixture } from './tls-fixtures.js'

let f: TlsFixture
let srv: Awaited<ReturnType<typeof startServer>>
const seen: Array<{
  method: string
  url: string
  headers: Record<string, unknown>
  body: string
  peer: string
}> = []

before(async () => {
  f = await tlsFixture()
  srv = await startServer(f, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const peer = String((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '')
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        peer,
      })
      if (req.url === '/echo') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ data: { got: JSON.parse(Buffer.concat(chunks).toString() || 'null') } }))
      } else if (req.url === '/error') {
        res.statusCode = 409
        res.end(JSON.stringify({ error: { code: 'ERR_NAME_IN_USE', message: 'taken', field: 'name' } }))
      } else if (req.url === '/empty') {
        res.statusCode = 204
        res.end()
      } else if (req.url === '/text') {
        res.end('not json')
      } else if (req.url === '/big') {
        res.end(Buffer.alloc(100_000, 0x61))
      } else if (req.url === '/hang') {
        // never answers
      } else if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '1000' })
        res.write('partial')
        setImmediate(() => req.socket.destroy())
      } else res.end('{}')
    })
  })
})
after(() => srv.close())

const tls = () => ({ ca: f.ca, cert: f.client.cert, key: f.client.key })

test('JSON round trip over mTLS: body, headers, status, envelope', async () => {
  const r = await httpsJson({ method: 'POST', url: `${srv.url}/echo`, tls: tls(), body: { a: [1, 'x'] } })
  assert.equal(r.status, 200)
  assert.deepEqual(r.json, { data: { got: { a: [1, 'x'] } } })
  assert.equal(r.contentType, 'application/json')
  const s = seen.at(-1)!
  assert.equal(s.peer, 'client')
  assert.equal(s.headers['content-type'], 'application/json')
  assert.equal(s.headers.accept, 'application/json')
  assert.equal(s.headers['content-length'], String(Buffer.byteLength('{"a":[1,"x"]}')))

  const e = await httpsJson({ method: 'GET', url: `${srv.url}/error`, tls: tls() })
  assert.equal(e.status, 409)
  assert.deepEqual(controllerError(e), {
    code: 'ERR_NAME_IN_USE',
    message: 'taken',
    fields: { field: 'name' },
  })
  assert.deepEqual(controllerError({ json: undefined }), { code: undefined, message: undefined, fields: {} })
  assert.deepEqual((await httpsJson({ method: 'DELETE', url: `${srv.url}/empty`, tls: tls() })).json, {})
  const t = await httpsJson({ method: 'GET', url: `${srv.url}/text`, tls: tls() })
  assert.equal(t.json, undefined)
  assert.equal(t.text, 'not json')
})

const rejectsWith = async (
  p: Promise<unknown>,
  code: string,
  check: (e: ProtocolError) => void = () => {},
) => {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isProtocolError(e), String(e))
    assert.equal(e.code, code, e.message)
    check(e)
    return true
  })
}

test('bounded body, timeout, cut answers', async () => {
  await rejectsWith(
    httpsRequest({ method: 'GET', url: `${srv.url}/big`, tls: tls(), maxBytes: 10_000 }),
    'ERR_HTTPS_BODY_TOO_LARGE',
    (e) => {
      assert.equal(e.details.limit, 10_000)
      assert.match(e.message, /larger than 10000 bytes/)
    },
  )
  assert.equal(
    (await httpsRequest({ method: 'GET', url: `${srv.url}/big`, tls: tls(), maxBytes: 100_000 })).text.length,
    100_000,
  )
  await rejectsWith(
    httpsRequest({ method: 'GET', url: `${srv.url}/hang`, tls: tls(), timeoutMs: 200 }),
    'ERR_HTTPS_TIMEOUT',
    (e) => {
      assert.equal(e.details.timeoutMs, 200)
      assert.equal(e.details.path, '/hang')
    },
  )
  await rejectsWith(
    httpsRequest({ method: 'GET', url: `${srv.url}/cut`, tls: tls() }),
    'ERR_HTTPS_INCOMPLETE',
  )
})

test('unreachable, TLS verification failures, non-https URLs', async () => {
  const closed = createNetServer()
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((r) => closed.close(() => r()))
  await rejectsWith(
    httpsRequest({ method: 'GET', url: `https://127.0.0.1:${port}/`, tls: tls() }),
    'ERR_HTTPS_UNREACHABLE',
    (e) => {
      assert.equal(e.details.tls, false)
      assert.equal((e.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED')
    },
  )
  await rejectsWith(
    httpsRequest({ method: 'GET', url: `${srv.url}/`, tls: { ...tls(), ca: f.otherCa } }),
    'ERR_HTTPS_UNREACHABLE',
    (e) => assert.equal(e.details.tls, true),
  )
  // insecure skips server verification (the server still wants a client certificate)
  assert.equal(
    (await httpsRequest({ method: 'GET', url: `${srv.url}/`, tls: { ...tls(), insecure: true } })).status,
    200,
  )
  // without a client certificate the mTLS server refuses the handshake
  await assert.rejects(
    httpsRequest({ method: 'GET', url: `${srv.url}/`, tls: { ca: f.ca } }),
    (e: unknown) =>
      isProtocolError(e) && (e.code === 'ERR_HTTPS_UNREACHABLE' || e.code === 'ERR_HTTPS_INCOMPLETE'),
  )
  await rejectsWith(httpsRequest({ method: 'GET', url: 'http://127.0.0.1:1/' }), 'ERR_HTTPS_URL')
  await rejectsWith(httpsRequest({ method: 'GET', url: 'not a url' }), 'ERR_HTTPS_URL')
})

test('HttpsJsonClient: keep-alive pool, paths against the base URL, credential switch', async () => {
  assert.throws(
    () => new HttpsJsonClient({ baseUrl: 'http://x', tls: tls() }),
    (e: unknown) => isProtocolError(e, 'ERR_HTTPS_URL'),
  )
  const c = new HttpsJsonClient({ baseUrl: srv.url, tls: tls(), timeoutMs: 5000, retireAfterMs: 50 })
  try {
    const a = await c.request('POST', '/echo', { body: { n: 1 } })
    assert.deepEqual(a.json, { data: { got: { n: 1 } } })
    const b = await c.request('GET', '/error', { headers: { authorization: 'Bearer t' } })
    assert.equal(b.status, 409)
    assert.equal(seen.at(-1)!.headers.authorization, 'Bearer t')
    await rejectsWith(c.request('GET', '/big', { maxBytes: 10 }), 'ERR_HTTPS_BODY_TOO_LARGE')
    c.setTls({ ca: f.otherCa })
    assert.equal(c.tls.cert, f.client.cert)
    await rejectsWith(c.request('GET', '/'), 'ERR_HTTPS_UNREACHABLE', (e) =>
      assert.equal(e.details.tls, true),
    )
    c.setTls({ ca: f.ca })
    assert.equal((await c.request('GET', '/')).status, 200)
  } finally {
    c.close()
  }
})
