/**
 * zitify() with each framework (Express, Fastify, Koa, http, https, http2 plain and secure):
 * the server listens on the overlay with no TCP socket, is called through ctx.fetch, the undici
 * dispatcher (global fetch) and the http agent, sees the verified caller, and close() unbinds.
 * Real controller and router processes.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import http from 'node:http'
import http2 from 'node:http2'
import https from 'node:https'
import net from 'node:net'
import { after, before, test } from 'node:test'
import tls from 'node:tls'
import { createLeaf, createRootCa } from '@nullport/protocol'
import { type Context, dialTarget, PendingOverlaySocket, zitify } from '@nullport/sdk'
import { listeningPorts, startWebNetwork, type WebNetwork, waitForService } from '@nullport/testkit'
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'

let fx: WebNetwork
let client: Context
let caPem: string
let cert: { certPem: string; keyPem: string }

const PORTS = {
  express: 18181,
  fastify: 18182,
  koa: 18183,
  http: 18184,
  https: 18185,
  h2c: 18186,
  h2s: 18187,
}

before(async () => {
  fx = await startWebNetwork([
    {
      name: 'family.tools',
      intercept: { addresses: ['family.tools.ziti'], portRanges: [{ low: 80, high: 80 }] },
    },
    {
      name: 'api.fastify',
      intercept: { addresses: ['fastify.api.ziti'], portRanges: [{ low: 80, high: 80 }] },
    },
    { name: 'koa.svc', intercept: { addresses: ['*.koa.ziti'], portRanges: [{ low: 8000, high: 8100 }] } },
    { name: 'plain.http' },
    {
      name: 'secure.https',
      intercept: { addresses: ['secure.ziti'], portRanges: [{ low: 443, high: 443 }] },
    },
    { name: 'h2c.svc', intercept: { addresses: ['h2c.ziti'], portRanges: [{ low: 80, high: 80 }] } },
    { name: 'h2s.svc', intercept: { addresses: ['h2s.ziti'], portRanges: [{ low: 443, high: 443 }] } },
  ])
  client = await fx.context(fx.clientFile)
  await waitForService(client, 'h2s.svc')
  const ca = await createRootCa({ commonName: 'web test ca' })
  caPem = ca.certPem
  cert = await createLeaf({
    issuerCertPem: ca.certPem,
    issuerKeyPem: ca.keyPem,
    commonName: 'secure.ziti',
    usage: 'server',
    dns: ['secure.ziti', 'h2s.ziti'],
    lifetimeSeconds: 3600,
  })
})

after(async () => {
  await fx?.close()
})

/** zitify one binding, run `start` (which calls listen), wait for 'listening', check no TCP port. */
async function hosted(
  port: number,
  service: string,
  start: () => net.Server | Promise<net.Server>,
): Promise<{ server: net.Server; undo: () => void }> {
  const undo = zitify({ [`127.0.0.1:${port}`]: { identity: fx.hostPath, service } })
  const server = await start()
  if (!server.listening) await once(server, 'listening')
  assert.equal(server.listening, true)
  const addr = server.address() as net.AddressInfo
  assert.deepEqual({ address: addr.address, port: addr.port }, { address: '127.0.0.1', port })
  // no TCP socket: the handle is the overlay stand-in, ss shows nothing, a TCP connect is refused
  assert.notEqual((server as unknown as { _handle: object })._handle.constructor.name, 'TCP')
  assert.ok(
    !(await listeningPorts()).some((a) => a.endsWith(`:${port}`)),
    `port ${port} must not be listening`,
  )
  const refused = await new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.on('connect', () => {
      s.destroy()
      resolve('connected')
    })
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
  })
  assert.equal(refused, 'ECONNREFUSED')
  return { server, undo }
}

async function closeServer(server: net.Server): Promise<void> {
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())))
  assert.equal(server.listening, false)
}

function httpGet(url: string, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? https : http).get(url, { agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        body += d
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

test('Express: app.listen under zitify, called by ctx.fetch, dispatcher and httpAgent; req.socket.remoteIdentity', {
  timeout: 60_000,
}, async () => {
  const app = express()
  app.use(express.json())
  app.get('/whoami', (req, res) => {
    const who = (req.socket as unknown as { remoteIdentity?: { id: string; name: string } }).remoteIdentity
    res.json({ name: who?.name, id: who?.id })
  })
  app.post('/echo', (req, res) => res.json({ got: req.body }))
  const { server, undo } = await hosted(PORTS.express, 'family.tools', () =>
    app.listen(PORTS.express, '127.0.0.1'),
  )
  try {
    const viaFetch = await client.fetch('http://family.tools.ziti/whoami')
    assert.equal(viaFetch.status, 200)
    assert.deepEqual(await viaFetch.json(), { name: 'web-client', id: fx.clientFile.id })

    const viaDispatcher = await fetch('http://family.tools.ziti/echo', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'drill' }),
      dispatcher: client.dispatcher(),
    } as unknown as RequestInit)
    assert.deepEqual(await viaDispatcher.json(), { got: { tool: 'drill' } })

    const agent = client.httpAgent()
    const a = await httpGet('http://family.tools.ziti/whoami', agent)
    const b = await httpGet('http://family.tools.ziti/whoami', agent)
    assert.equal(a.status, 200)
    assert.equal(JSON.parse(b.body).name, 'web-client')
    // keep-alive: both requests used one pooled circuit
    const free = Object.values(agent.freeSockets).flat()
    assert.equal(free.length, 1)
    // a Request object (Node's global class) works as input
    const viaRequest = await client.fetch(
      new Request('http://family.tools.ziti/echo', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ n: 1 }),
      }),
    )
    assert.deepEqual(await viaRequest.json(), { got: { n: 1 } })
    // a service name works as a host too
    const byName = await client.fetch('http://family.tools/whoami')
    assert.equal(byName.status, 200)
  } finally {
    undo()
    client.httpAgent().destroy()
    await client.dispatcher().close()
    await closeServer(server)
  }
})

test('Fastify: listen({port, host}) under zitify', { timeout: 60_000 }, async () => {
  const app = Fastify()
  app.get('/tools', async (req) => ({
    tools: ['saw'],
    caller: (req.raw.socket as unknown as { remoteIdentity?: { name: string } }).remoteIdentity?.name,
  }))
  const { server, undo } = await hosted(PORTS.fastify, 'api.fastify', async () => {
    await app.listen({ port: PORTS.fastify, host: '127.0.0.1' })
    return app.server
  })
  try {
    const r = await client.fetch('http://fastify.api.ziti/tools')
    assert.deepEqual(await r.json(), { tools: ['saw'], caller: 'web-client' })
    const h = await httpGet('http://fastify.api.ziti/tools', client.httpAgent({ keepAlive: false }))
    assert.equal(JSON.parse(h.body).caller, 'web-client')
  } finally {
    undo()
    await app.close()
    assert.equal(server.listening, false)
  }
})

test('Koa: app.listen under zitify, reached through a *.domain wildcard and a port range', {
  timeout: 60_000,
}, async () => {
  const app = new Koa()
  app.use((ctx) => {
    ctx.body = {
      path: ctx.path,
      host: ctx.host,
      caller: (ctx.req.socket as unknown as { remoteIdentity?: { name: string } }).remoteIdentity?.name,
    }
  })
  const { server, undo } = await hosted(PORTS.koa, 'koa.svc', () => app.listen(PORTS.koa, '127.0.0.1'))
  try {
    const r = await client.fetch('http://shop.koa.ziti:8080/basket')
    assert.deepEqual(await r.json(), { path: '/basket', host: 'shop.koa.ziti:8080', caller: 'web-client' })
    await assert.rejects(client.fetch('http://shop.koa.ziti:9000/'), { code: 'ERR_NOT_INTERCEPTED' })
    await assert.rejects(client.fetch('http://koa.ziti:8080/'), { code: 'ERR_NOT_INTERCEPTED' })
  } finally {
    undo()
    await closeServer(server)
  }
})

test('http.createServer under zitify; close() waits for an open connection and unbinds', {
  timeout: 60_000,
}, async () => {
  let release!: () => void
  const held = new Promise<void>((r) => {
    release = r
  })
  const server = http.createServer((req, res) => {
    if (req.url === '/slow') {
      res.writeHead(200)
      res.write('start;')
      held.then(() => res.end('done'))
      return
    }
    res.end(`hello ${(req.socket as unknown as { remoteIdentity: { name: string } }).remoteIdentity.name}`)
  })
  const { undo } = await hosted(PORTS.http, 'plain.http', () => server.listen(PORTS.http, '127.0.0.1'))
  undo()
  const r = await client.fetch('http://plain.http/')
  assert.equal(await r.text(), 'hello web-client')
  const slow = await client.fetch('http://plain.http/slow', { dispatcher: client.dispatcher({}) })
  const reader = slow.body!.getReader()
  assert.equal(Buffer.from((await reader.read()).value!).toString(), 'start;')
  let closed = false
  const closing = new Promise<void>((resolve) =>
    server.close(() => {
      closed = true
      resolve()
    }),
  )
  await new Promise((r) => setTimeout(r, 300))
  assert.equal(closed, false, 'close() waits for the open request')
  assert.equal(server.listening, false)
  // unbound: a new dial finds no terminator
  await assert.rejects(client.fetch('http://plain.http/'), (err: Error & { code?: string }) => {
    assert.match(String(err.code), /^(ERR_NO_TERMINATORS|ERR_SERVICE_NOT_LISTENING)$/)
    return true
  })
  release()
  let rest = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    rest += Buffer.from(value).toString()
  }
  assert.equal(rest, 'done')
  await closing
  assert.equal(closed, true)
})

test('https.createServer under zitify: TLS inside the circuit, remoteIdentity on the TLS socket', {
  timeout: 60_000,
}, async () => {
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    res.end(
      JSON.stringify({
        tls: (req.socket as tls.TLSSocket).encrypted === true,
        caller: (req.socket as unknown as { remoteIdentity?: { name: string } }).remoteIdentity?.name,
      }),
    )
  })
  const { undo } = await hosted(PORTS.https, 'secure.https', () => server.listen(PORTS.https, '127.0.0.1'))
  try {
    const d = client.dispatcher({ tls: { ca: caPem } })
    const r = await client.fetch('https://secure.ziti/', { dispatcher: d })
    assert.deepEqual(await r.json(), { tls: true, caller: 'web-client' })
    await d.close()
    const h = await httpGet('https://secure.ziti/', client.httpsAgent({ ca: caPem }))
    assert.deepEqual(JSON.parse(h.body), { tls: true, caller: 'web-client' })
    // the certificate is checked: an unknown CA fails
    await assert.rejects(
      client.fetch('https://secure.ziti/'),
      (err: Error & { cause?: { code?: string } }) => {
        assert.match(String(err.cause?.code), /CERT|SELF_SIGNED|ISSUER|VERIFY/)
        return true
      },
    )
  } finally {
    undo()
    client.httpsAgent({ ca: caPem }).destroy()
    server.closeAllConnections()
    await closeServer(server)
  }
})

function h2Request(session: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path })
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => {
      body += d
    })
    req.on('end', () => resolve(body))
    req.on('error', reject)
    req.end()
  })
}

test('http2.createServer (h2c) and http2.createSecureServer under zitify', { timeout: 60_000 }, async () => {
  const handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    res.end(
      JSON.stringify({
        version: req.httpVersion,
        caller: (req.socket as unknown as { remoteIdentity?: { name: string } }).remoteIdentity?.name,
      }),
    )
  }
  const h2c = http2.createServer(handler)
  const h2s = http2.createSecureServer({ cert: cert.certPem, key: cert.keyPem, allowHTTP1: true }, handler)
  const a = await hosted(PORTS.h2c, 'h2c.svc', () => h2c.listen(PORTS.h2c, '127.0.0.1'))
  const b = await hosted(PORTS.h2s, 'h2s.svc', () => h2s.listen(PORTS.h2s, '127.0.0.1'))
  const sessions: http2.ClientHttp2Session[] = []
  try {
    const plain = http2.connect('http://h2c.ziti', {
      createConnection: () =>
        new PendingOverlaySocket((signal) => dialTarget(client, 'h2c.ziti', 80, { signal })),
    })
    sessions.push(plain)
    assert.deepEqual(JSON.parse(await h2Request(plain, '/')), { version: '2.0', caller: 'web-client' })
    const secure = http2.connect('https://h2s.ziti', {
      createConnection: () =>
        tls.connect({
          socket: new PendingOverlaySocket((signal) => dialTarget(client, 'h2s.ziti', 443, { signal })),
          servername: 'h2s.ziti',
          ca: caPem,
          ALPNProtocols: ['h2'],
        }),
    })
    sessions.push(secure)
    assert.deepEqual(JSON.parse(await h2Request(secure, '/')), { version: '2.0', caller: 'web-client' })
    // HTTP/2 through the undici dispatcher (ALPN h2)
    const h2d = client.dispatcher({ tls: { ca: caPem }, allowH2: true })
    const viaUndici = await client.fetch('https://h2s.ziti/', { dispatcher: h2d })
    assert.deepEqual(await viaUndici.json(), { version: '2.0', caller: 'web-client' })
    await h2d.close()
    // allowHTTP1: an HTTP/1.1 client through the https agent
    const h1 = await httpGet('https://h2s.ziti/', client.httpsAgent({ ca: caPem, keepAlive: false }))
    assert.deepEqual(JSON.parse(h1.body), { version: '1.1', caller: 'web-client' })
  } finally {
    for (const s of sessions) s.close()
    a.undo()
    b.undo()
    await closeServer(h2c)
    await closeServer(h2s)
  }
})

test('listen() calls that match no binding are untouched, and undo() restores listen()', {
  timeout: 60_000,
}, async () => {
  const undo = zitify({ '127.0.0.1:18199': { identity: fx.hostPath, service: 'plain.http' } })
  const other = http.createServer((_req, res) => res.end('tcp'))
  other.listen(0, '127.0.0.1')
  await once(other, 'listening')
  const port = (other.address() as net.AddressInfo).port
  assert.ok((await listeningPorts()).some((a) => a.endsWith(`:${port}`)))
  const r = await fetch(`http://127.0.0.1:${port}/`)
  assert.equal(await r.text(), 'tcp')
  await closeServer(other)
  undo()
  const after = http.createServer()
  after.listen(18199, '127.0.0.1')
  await once(after, 'listening')
  assert.ok(
    (await listeningPorts()).some((a) => a.endsWith(':18199')),
    'a real port again after undo',
  )
  await closeServer(after)
})

test('listen(port) without a host matches a ":port" binding (every interface: none is opened)', {
  timeout: 60_000,
}, async () => {
  const undo = zitify({ ':18198': { identity: fx.hostPath, service: 'plain.http' } })
  try {
    const server = http.createServer((_req, res) => res.end('any host'))
    server.listen(18198)
    await once(server, 'listening')
    assert.deepEqual(server.address(), { address: '0.0.0.0', family: 'IPv4', port: 18198 })
    assert.ok(!(await listeningPorts()).some((a) => a.endsWith(':18198')))
    assert.equal(await (await client.fetch('http://plain.http/')).text(), 'any host')
    await client.dispatcher().close()
    await closeServer(server)
  } finally {
    undo()
  }
})
