/**
 * Limits and liveness: handshake timeout, circuits per connection, connections per router, and
 * SDK connections that stop answering PINGs are dropped (their terminators deleted).
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { FrameType } from '@nullport/protocol'
import { type Cred, FakeController, RawClient } from '@nullport/testkit'
import { type RouterHandle, startRouter } from '../src/index.js'

let fake: FakeController
let router: RouterHandle
let dialer: Cred
let host: Cred
const clients: RawClient[] = []

async function client(c: Cred, hello = true): Promise<RawClient> {
  const cl = await RawClient.connect(router.address, c, fake.caBundle, hello)
  clients.push(cl)
  return cl
}

before(async () => {
  fake = new FakeController()
  await fake.init()
  await fake.start()
  const rc = await fake.issue('router', 'r1', 'r1')
  dialer = await fake.issue('identity', 'd', 'dialer')
  host = await fake.issue('identity', 'h', 'host')
  fake.addRouter(rc)
  fake.addIdentity(dialer, ['x'])
  fake.addIdentity(host, ['x'])
  fake.addService('s', 'svc')
  fake.addServicePolicy('p1', 'Dial', ['#x'], ['#all'])
  fake.addServicePolicy('p2', 'Bind', ['#x'], ['#all'])
  fake.allowAllRouters()
  router = await startRouter({
    identity: fake.identityFile(rc),
    listen: '127.0.0.1:0',
    logLevel: 'silent',
    handshakeTimeoutMs: 400,
    maxCircuitsPerConnection: 2,
    maxConnections: 6,
    sdkPingIntervalMs: 60,
  })
  await router.ready
})

after(async () => {
  for (const c of clients) c.close()
  await router?.stop()
  await fake?.stop()
})

test('no HELLO within the handshake timeout: GOAWAY ERR_HANDSHAKE_TIMEOUT', async () => {
  const c = await client(dialer, false)
  assert.equal((await c.closedWith(3000))?.code, 'ERR_HANDSHAKE_TIMEOUT')
})

test('circuits per connection are bounded: ERR_TOO_MANY_CIRCUITS', async () => {
  const h = await client(host)
  h.conn.on('frame', (f) => {
    if (f.type === FrameType.PING)
      h.conn.send({ type: FrameType.PONG, circuitId: 0, flags: 0, payload: f.payload })
  })
  h.bind(1, 'svc')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  const d = await client(dialer)
  d.conn.on('frame', (f) => {
    if (f.type === FrameType.PING)
      d.conn.send({ type: FrameType.PONG, circuitId: 0, flags: 0, payload: f.payload })
  })
  const ids = [d.dial('svc'), d.dial('svc')]
  for (let i = 0; i < 2; i++) {
    const dial = await h.next((f) => f.type === FrameType.DIAL)
    h.conn.send({
      type: FrameType.DIAL_SUCCESS,
      circuitId: dial.circuitId,
      flags: 0,
      payload: {
        hostIdentity: { id: 'h', name: 'h' },
        circuitTag: (dial.payload as { circuitTag: string }).circuitTag,
      },
    })
  }
  for (const id of ids) assert.equal((await d.next((f) => f.circuitId === id)).type, FrameType.DIAL_SUCCESS)
  const third = d.dial('svc')
  const f = await d.next((x) => x.circuitId === third)
  assert.equal(f.type, FrameType.DIAL_FAILED)
  assert.equal((f.payload as { code: string }).code, 'ERR_TOO_MANY_CIRCUITS')
  h.close()
  d.close()
})

test('an SDK connection that stops answering PINGs is dropped and its terminator deleted', async () => {
  const h = await client(host) // RawClient never answers PING
  h.bind(1, 'svc')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  await new Promise((r) => setTimeout(r, 100))
  assert.ok(
    h.frames.some((f) => f.type === FrameType.PING),
    'the router pings SDK connections',
  )
  await h.closedWith(5000)
  const deadline = Date.now() + 3000
  while (fake.snapshot.terminators.length > 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50))
  assert.equal(fake.snapshot.terminators.length, 0)
})

test('connections per router are bounded', async () => {
  await new Promise((r) => setTimeout(r, 200))
  const open: RawClient[] = []
  let refused = false
  for (let i = 0; i < 10 && !refused; i++) {
    try {
      const c = await RawClient.connect(router.address, dialer, fake.caBundle)
      clients.push(c)
      c.conn.on('frame', (f) => {
        if (f.type === FrameType.PING)
          c.conn.send({ type: FrameType.PONG, circuitId: 0, flags: 0, payload: f.payload })
      })
      open.push(c)
    } catch {
      refused = true
    }
  }
  assert.ok(refused, 'a connection beyond maxConnections is refused')
  assert.ok(open.length <= 6)
  for (const c of open) c.close()
})
