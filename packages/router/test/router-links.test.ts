/**
 * Two routers against the fake controller: they link (the smaller id dials), measure latency,
 * and a dial entering one router reaches a host bound at the other. Also: circuits and local
 * authorization survive a controller outage; a dial nobody answers times out.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { FrameType } from '@nullport/protocol'
import { type Cred, FakeController, RawClient, waitFor } from '@nullport/testkit'
import { type RouterHandle, startRouter } from '../src/index.js'

let fake: FakeController
let ra: RouterHandle
let rb: RouterHandle
let dialer: Cred
let host: Cred
const clients: RawClient[] = []

before(async () => {
  fake = new FakeController()
  await fake.init()
  await fake.start()
  const ca = await fake.issue('router', 'r-a', 'router-a')
  const cb = await fake.issue('router', 'r-b', 'router-b')
  dialer = await fake.issue('identity', 'id-d', 'dialer')
  host = await fake.issue('identity', 'id-h', 'host')
  fake.addRouter(ca)
  fake.addRouter(cb)
  fake.addIdentity(dialer, ['dialers'])
  fake.addIdentity(host, ['hosts'])
  fake.addService('svc-x', 'x')
  fake.addServicePolicy('dial-x', 'Dial', ['#dialers'], ['@svc-x'])
  fake.addServicePolicy('bind-x', 'Bind', ['#hosts'], ['@svc-x'])
  fake.allowAllRouters()
  const common = {
    listen: '127.0.0.1:0',
    logLevel: 'silent',
    linkPingIntervalMs: 200,
    reconnectBaseMs: 50,
    reconnectMaxMs: 200,
  }
  ra = await startRouter({ identity: fake.identityFile(ca), ...common, dialTimeoutMs: 700 })
  rb = await startRouter({ identity: fake.identityFile(cb), ...common })
  await Promise.all([ra.ready, rb.ready])
})

after(async () => {
  for (const c of clients) c.close()
  await ra?.stop()
  await rb?.stop()
  await fake?.stop()
})

test('routers link (the smaller id dials) and report latency', async () => {
  await waitFor(() => ra.stats().links.includes('r-b') && rb.stats().links.includes('r-a'), {
    timeoutMs: 10_000,
    what: 'link up',
  })
  await waitFor(() => (fake.links.get('r-a') ?? []).some((p) => p.routerId === 'r-b'), {
    timeoutMs: 10_000,
    what: 'link report',
  })
  const rep = fake.links.get('r-a')!.find((p) => p.routerId === 'r-b')!
  assert.ok(rep.latencyMs >= 0 && rep.latencyMs < 1000)
})

test('a dial entering router A reaches the host bound at router B, and data crosses the link', async () => {
  await waitFor(() => ra.stats().links.includes('r-b'), { timeoutMs: 10_000, what: 'link up' })
  const h = await RawClient.connect(rb.address, host, fake.caBundle)
  clients.push(h)
  h.bind(1, 'x')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  // router A learns the terminator and the route
  await waitFor(
    () => fake.snapshot.terminators.length === 1 && fake.routesFor('r-a').nextHop['r-b'] === 'r-b',
    { timeoutMs: 5000, what: 'terminator' },
  )
  await new Promise((r) => setTimeout(r, 200))
  const d = await RawClient.connect(ra.address, dialer, fake.caBundle)
  clients.push(d)
  const cid = d.dial('x')
  const dial = await h.next((f) => f.type === FrameType.DIAL)
  const p = dial.payload as { dialer: { id: string }; circuitTag: string; terminatorId: string }
  assert.equal(p.dialer.id, 'id-d')
  h.conn.send({
    type: FrameType.DIAL_SUCCESS,
    circuitId: dial.circuitId,
    flags: 0,
    payload: { hostIdentity: { id: 'x', name: 'x' }, circuitTag: p.circuitTag },
  })
  const s = await d.next((f) => f.circuitId === cid)
  assert.equal(s.type, FrameType.DIAL_SUCCESS)
  assert.deepEqual((s.payload as { hostIdentity: unknown }).hostIdentity, { id: 'id-h', name: 'host' })
  const big = Buffer.alloc(200_000, 3)
  for (let off = 0; off < big.length; off += 60_000) d.conn.sendData(cid, 0, big.subarray(off, off + 60_000))
  let got = 0
  while (got < big.length) {
    const f = await h.next((x) => x.type === FrameType.DATA && x.circuitId === dial.circuitId)
    got += (f.payload as Uint8Array).byteLength
  }
  assert.equal(got, big.length)
  // the circuit survives a controller outage, and new dials are still authorized locally
  await fake.stop()
  await new Promise((r) => setTimeout(r, 300))
  h.conn.sendData(dial.circuitId, 0, Buffer.from('while the controller is down'))
  const back = await d.next((f) => f.type === FrameType.DATA && f.circuitId === cid)
  assert.equal(Buffer.from(back.payload as Uint8Array).toString(), 'while the controller is down')
  const cid2 = d.dial('x')
  const dial2 = await h.next((f) => f.type === FrameType.DIAL)
  assert.equal((dial2.payload as { dialer: { id: string } }).dialer.id, 'id-d')
  // nobody answers dial2: router A times it out
  const to = await d.next((f) => f.circuitId === cid2, 5000)
  assert.equal(to.type, FrameType.DIAL_FAILED)
  assert.equal((to.payload as { code: string }).code, 'ERR_DIAL_TIMEOUT')
  const hc = await h.next((f) => f.type === FrameType.CLOSE && f.circuitId === dial2.circuitId, 5000)
  assert.equal((hc.payload as { code: string }).code, 'ERR_DIAL_TIMEOUT')
  // meanwhile the controller dropped router B's terminators (its stream was down)
  fake.snapshot.terminators = []
  // the controller comes back: the routers resync, B re-creates its terminator, and they keep serving
  await fake.start(fake.port)
  await waitFor(() => ra.stats().controllerConnected && rb.stats().controllerConnected, {
    timeoutMs: 10_000,
    what: 'resync',
  })
  await waitFor(() => fake.snapshot.terminators.some((t) => t.routerId === 'r-b'), {
    timeoutMs: 10_000,
    what: 'terminator re-created',
  })
  await new Promise((r) => setTimeout(r, 200))
  const cid3 = d.dial('x')
  const dial3 = await h.next((f) => f.type === FrameType.DIAL)
  h.conn.send({
    type: FrameType.DIAL_SUCCESS,
    circuitId: dial3.circuitId,
    flags: 0,
    payload: {
      hostIdentity: { id: 'x', name: 'x' },
      circuitTag: (dial3.payload as { circuitTag: string }).circuitTag,
    },
  })
  assert.equal((await d.next((f) => f.circuitId === cid3)).type, FrameType.DIAL_SUCCESS)
  d.conn.send({ type: FrameType.CLOSE, circuitId: cid, flags: 0, payload: {} })
  await h.next((f) => f.type === FrameType.CLOSE && f.circuitId === dial.circuitId)
})
