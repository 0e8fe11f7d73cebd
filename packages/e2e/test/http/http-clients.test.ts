/**
 * The HTTP clients fail closed, and the bad inputs fail at the call with a code: hosts that match
 * no service (ERR_NOT_INTERCEPTED, nothing sent to the network), a dial with no host (never a
 * plain connection, even when a real server listens at the intercepted address), bindings the
 * identity may not bind, missing or malformed identity files. Also: ctx.serve(), and WebSockets
 * over the overlay in both directions (ws client with ctx.httpAgent(), ws server under zitify).
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type Context, serve, zitify } from '@nullport/sdk'
import { startWebNetwork, type WebNetwork, waitForService } from '@nullport/testkit'
import express from 'express'
import { WebSocket, WebSocketServer } from 'ws'

let fx: WebNetwork
let client: Context
let host: Context
/** A real TCP server: the fail-closed tests check that it never sees a connection. */
let decoy: net.Server
let decoyPort: number
let decoyConnections = 0

before(async () => {
  decoy = net.createServer((s) => {
    decoyConnections++
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nplain')
  })
  decoy.listen(0, '127.0.0.1')
  await once(decoy, 'listening')
  decoyPort = (decoy.address() as net.AddressInfo).port
  fx = await startWebNetwork([
    { name: 'chat', intercept: { addresses: ['chat.ziti'], portRanges: [{ low: 80, high: 80 }] } },
    // intercepts the decoy's real address, but nobody hosts it
    {
      name: 'dark',
      intercept: { addresses: ['127.0.0.1'], portRanges: [{ low: decoyPort, high: decoyPort }] },
    },
    { name: 'served', intercept: { addresses: ['served.ziti'], portRanges: [{ low: 80, high: 80 }] } },
    { name: 'no.bind', bind: false },
  ])
  client = await fx.context(fx.clientFile)
  host = await fx.context(fx.hostFile)
  await waitForService(client, 'served')
  await waitForService(host, 'served', 'Bind')
})

after(async () => {
  await fx?.close()
  decoy?.close()
})

function agentGet(url: string, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let b = ''
        res.on('data', (d: Buffer) => {
          b += d
        })
        res.on('end', () => resolve(b))
      })
      .on('error', reject)
  })
}

test('a host that matches no service is refused with ERR_NOT_INTERCEPTED by every client, nothing reaches the network', {
  timeout: 60_000,
}, async () => {
  const before = decoyConnections
  const plainUrl = `http://127.0.0.1:${decoyPort + 1 > 65535 ? 1 : decoyPort + 1}/`
  for (const url of ['http://nowhere.example/', plainUrl, 'http://chat.ziti:8080/']) {
    await assert.rejects(client.fetch(url), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_NOT_INTERCEPTED')
      assert.match(err.message, /not an overlay address/)
      return true
    })
    await assert.rejects(
      fetch(url, { dispatcher: client.dispatcher() } as unknown as RequestInit),
      (err: Error & { cause?: { code?: string } }) => err.cause?.code === 'ERR_NOT_INTERCEPTED',
    )
    await assert.rejects(agentGet(url, client.httpAgent()), { code: 'ERR_NOT_INTERCEPTED' })
  }
  // the port-range miss names the service that would match on another port
  await assert.rejects(
    client.fetch('http://chat.ziti:8080/'),
    /service chat intercepts chat\.ziti but not port 8080/,
  )
  assert.equal(decoyConnections, before)
})

test('ERR_NOT_INTERCEPTED names the fix: the missing Dial policy (policy-advisor) or the intercept config', {
  timeout: 60_000,
}, async () => {
  const before = decoyConnections
  // matches nothing at all: where intercept addresses come from
  await assert.rejects(client.fetch('http://nowhere.example/'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_NOT_INTERCEPTED')
    assert.match(err.message, /nullport edge list services/)
    assert.match(err.message, /intercept\.v1/)
    return true
  })
  // the hosting identity may Bind chat but not Dial it: the service intercepts the name
  await assert.rejects(host.fetch('http://chat.ziti/'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_NOT_INTERCEPTED')
    assert.match(
      err.message,
      /service chat intercepts chat\.ziti but identity web-host\S* has no Dial policy/,
    )
    assert.match(err.message, /nullport edge policy-advisor identities web-host\S* chat/)
    return true
  })
  const stranger = await fx.context(fx.strangerFile)
  // the stranger sees no service at all
  await assert.rejects(stranger.fetch('http://chat.ziti/'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_NOT_INTERCEPTED')
    assert.match(err.message, /service list is empty/)
    assert.match(err.message, /nullport edge policy-advisor identities web-stranger/)
    return true
  })
  // a service name it may not dial: the router says so (the same check as ctx.dial)
  await assert.rejects(stranger.fetch('http://chat/'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_NOT_INTERCEPTED')
    assert.match(err.message, /service chat exists but identity web-stranger has no Dial policy/)
    assert.match(err.message, /nullport edge policy-advisor identities web-stranger chat/)
    return true
  })
  assert.equal(decoyConnections, before)
})

test('a failed overlay dial is an error, never a plain connection to the real address', {
  timeout: 60_000,
}, async () => {
  const before = decoyConnections
  const url = `http://127.0.0.1:${decoyPort}/`
  await assert.rejects(client.fetch(url), { code: 'ERR_NO_TERMINATORS' })
  await assert.rejects(agentGet(url, client.httpAgent()), { code: 'ERR_NO_TERMINATORS' })
  await assert.rejects(
    fetch(url, { dispatcher: client.dispatcher() } as unknown as RequestInit),
    (err: Error & { cause?: { code?: string } }) => err.cause?.code === 'ERR_NO_TERMINATORS',
  )
  // the stranger may not dial it at all
  const stranger = await fx.context(fx.strangerFile)
  await assert.rejects(stranger.fetch(url), { code: 'ERR_NOT_INTERCEPTED' })
  assert.equal(decoyConnections, before, 'the real server at the intercepted address saw nothing')
})

test('ctx.serve(): an http.Server on a service with no listening socket, and close()', {
  timeout: 60_000,
}, async () => {
  const server = http.createServer((req, res) =>
    res.end(`served ${(req.socket as unknown as { remoteIdentity: { name: string } }).remoteIdentity.name}`),
  )
  const handle = await host.serve(server, 'served')
  assert.equal(server.listening, true)
  assert.deepEqual(server.address(), { address: 'served', family: 'overlay', port: 0 })
  assert.equal(handle.overlay.address().terminators.length, 1)
  assert.equal(await (await client.fetch('http://served.ziti/')).text(), 'served web-client')
  // the free function does the same; a second serve of the same service is refused
  await assert.rejects(serve(host, http.createServer(), 'served'), { code: 'ERR_INVALID_OPTION' })
  await client.dispatcher().close()
  await handle.close()
  assert.equal(server.listening, false)
  await assert.rejects(client.fetch('http://served.ziti/'), (err: Error & { code?: string }) => {
    // unbound: no terminator left, or the router still had it and the host refused
    assert.match(String(err.code), /^(ERR_NO_TERMINATORS|ERR_SERVICE_NOT_LISTENING)$/)
    return true
  })
})

test('binding a service the identity may not bind: serve() rejects, zitify listen() reports the error', {
  timeout: 60_000,
}, async () => {
  await assert.rejects(serve(host, http.createServer(), 'no.bind'), { code: 'ERR_NO_BIND_PERMISSION' })
  const undo = zitify({ '127.0.0.1:18290': { identity: fx.hostPath, service: 'no.bind' } })
  try {
    const app = express()
    const err = await new Promise<Error & { code?: string }>((resolve) => {
      // Express 5 passes listen errors to the callback
      app.listen(18290, '127.0.0.1', (e?: Error) => resolve(e as Error))
    })
    assert.equal(err.code, 'ERR_NO_BIND_PERMISSION')
    assert.match(err.message, /policy-advisor/)
    // a stranger identity for a service it may not even see
    const undo2 = zitify({ '127.0.0.1:18291': { identity: fx.strangerPath, service: 'chat' } })
    const s = http.createServer()
    s.listen(18291, '127.0.0.1')
    const [e2] = (await once(s, 'error')) as [Error & { code?: string }]
    assert.match(String(e2.code), /ERR_NO_BIND_PERMISSION|ERR_SERVICE_NOT_FOUND|ERR_NO_EDGE_ROUTERS/)
    assert.equal(s.listening, false)
    undo2()
  } finally {
    undo()
  }
})

test('zitify() rejects a missing or malformed identity file and malformed bindings at the call', {
  timeout: 60_000,
}, () => {
  const bad = join(fx.dir, 'bad.json')
  writeFileSync(bad, '{"version": 1, "kind": "identity"')
  const half = join(fx.dir, 'half.json')
  writeFileSync(half, JSON.stringify({ version: 1, kind: 'identity', name: 'x' }))
  assert.throws(
    () => zitify({ '127.0.0.1:1': { identity: join(fx.dir, 'missing.json'), service: 'chat' } }),
    {
      code: 'ERR_IDENTITY_FILE_MISSING',
    },
  )
  assert.throws(() => zitify({ '127.0.0.1:1': { identity: bad, service: 'chat' } }), {
    code: 'ERR_IDENTITY_FILE_MALFORMED',
  })
  assert.throws(() => zitify({ '127.0.0.1:1': { identity: half, service: 'chat' } }), {
    code: 'ERR_IDENTITY_FILE_MALFORMED',
  })
  for (const key of ['127.0.0.1', '127.0.0.1:0', 'host:99999', '::1:80', 'x:y']) {
    assert.throws(() => zitify({ [key]: { identity: fx.hostPath, service: 'chat' } }), {
      code: 'ERR_INVALID_BINDINGS',
    })
  }
  assert.throws(() => zitify({ '127.0.0.1:80': { identity: fx.hostPath, service: '' } }), {
    code: 'ERR_INVALID_BINDINGS',
  })
  assert.throws(() => zitify({}), { code: 'ERR_INVALID_BINDINGS' })
})

test('WebSocket over the overlay: ws server under zitify, ws client with ctx.httpAgent()', {
  timeout: 60_000,
}, async () => {
  const undo = zitify({ '127.0.0.1:18292': { identity: fx.hostPath, service: 'chat' } })
  const server = http.createServer()
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => {
    const who = (req.socket as unknown as { remoteIdentity: { name: string } }).remoteIdentity.name
    ws.send(`welcome ${who}`)
    ws.on('message', (m, isBinary) => ws.send(isBinary ? m : `echo:${m}`, { binary: isBinary }))
  })
  server.listen(18292, '127.0.0.1')
  await once(server, 'listening')
  try {
    const ws = new WebSocket('ws://chat.ziti/', { agent: client.httpAgent() })
    const messages: string[] = []
    let wake: (() => void) | null = null
    ws.on('message', (d: Buffer, isBinary: boolean) => {
      messages.push(isBinary ? d.toString('hex') : d.toString())
      wake?.()
    })
    const got = async (n: number): Promise<void> => {
      while (messages.length < n) {
        await new Promise<void>((resolve) => {
          wake = resolve
        })
      }
    }
    await once(ws, 'open')
    await got(1)
    assert.equal(messages[0], 'welcome web-client')
    ws.send('hello')
    await got(2)
    assert.equal(messages[1], 'echo:hello')
    const big = Buffer.alloc(3 * 1024 * 1024, 7)
    ws.send(big)
    await got(3)
    assert.equal(messages[2]!.length, big.length * 2)
    ws.close()
    await once(ws, 'close')
    // a ws URL that matches nothing fails closed
    const bad = new WebSocket('ws://nowhere.example/', { agent: client.httpAgent() })
    const [err] = (await once(bad, 'error')) as [Error & { code?: string }]
    assert.equal(err.code, 'ERR_NOT_INTERCEPTED')
  } finally {
    undo()
    wss.close()
    await new Promise<void>((r) => server.close(() => r()))
  }
})

test('closing the hosting context under a served server: error ERR_CONTEXT_CLOSED, then close', {
  timeout: 60_000,
}, async () => {
  const own = await fx.context(fx.hostFile)
  const server = http.createServer((_req, res) => res.end('x'))
  await own.serve(server, 'served')
  assert.equal(server.listening, true)
  const errored = once(server, 'error')
  const closed = new Promise((resolve) => server.once('close', resolve))
  await own.close()
  const [err] = (await errored) as [Error & { code?: string }]
  assert.equal(err.code, 'ERR_CONTEXT_CLOSED')
  await closed
  assert.equal(server.listening, false)
})
