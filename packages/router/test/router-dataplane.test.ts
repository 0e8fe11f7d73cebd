/**
 * The router's data plane against an in-process fake controller (real TLS, real PKI, real
 * frames): bind, dial, forwarding, refusals, handshake checks, revocation, flow control.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Frame, FrameType, INITIAL_WINDOW } from '@nullport/protocol'
import { type Cred, FakeController, RawClient } from '@nullport/testkit'
import { type RouterHandle, startRouter } from '../src/index.js'

let fake: FakeController
let router: RouterHandle
let rCred: Cred
let dialer: Cred
let host: Cred
let stranger: Cred
const clients: RawClient[] = []

async function client(c: Cred, hello = true): Promise<RawClient> {
  const cl = await RawClient.connect(router.address, c, fake.caBundle, hello)
  clients.push(cl)
  return cl
}

/** A bound host and a connected dialer with an open circuit; returns ids on both sides. */
async function openCircuit(service = 'svc1', hostClient?: RawClient, bindId = 1) {
  const h = hostClient ?? (await client(host))
  if (!hostClient) {
    h.bind(bindId, service)
    const ok = await h.next((f) => f.type === FrameType.BIND_SUCCESS || f.type === FrameType.BIND_FAILED)
    assert.equal(ok.type, FrameType.BIND_SUCCESS, JSON.stringify(ok.payload))
  }
  const d = await client(dialer)
  const cid = d.dial(service)
  const dial = await h.next((f) => f.type === FrameType.DIAL)
  assert.equal(dial.type, FrameType.DIAL)
  h.conn.send({
    type: FrameType.DIAL_SUCCESS,
    circuitId: dial.circuitId,
    flags: 0,
    payload: {
      hostIdentity: { id: 'ignored', name: 'ignored' },
      circuitTag: (dial.payload as { circuitTag: string }).circuitTag,
    },
  })
  const succ = await d.next((f) => f.type === FrameType.DIAL_SUCCESS && f.circuitId === cid)
  return { h, d, cid, hid: dial.circuitId, dial, succ }
}

before(async () => {
  fake = new FakeController()
  await fake.init()
  await fake.start()
  rCred = await fake.issue('router', 'r1', 'router-1')
  dialer = await fake.issue('identity', 'id-dialer', 'dialer')
  host = await fake.issue('identity', 'id-host', 'host')
  stranger = await fake.issue('identity', 'id-stranger', 'stranger')
  fake.addRouter(rCred)
  fake.addIdentity(dialer, ['dialers'])
  fake.addIdentity(host, ['hosts'])
  fake.addIdentity(stranger, [])
  fake.addService('svc-1', 'svc1')
  fake.addService('svc-2', 'svc2')
  fake.addServicePolicy('dial-1', 'Dial', ['#dialers'], ['@svc-1'])
  fake.addServicePolicy('bind-1', 'Bind', ['#hosts'], ['@svc-1'])
  fake.addServicePolicy('dial-2', 'Dial', ['#dialers'], ['@svc-2'])
  fake.addServicePolicy('bind-2', 'Bind', ['#hosts'], ['@svc-2'])
  fake.allowAllRouters()
  router = await startRouter({
    identity: fake.identityFile(rCred),
    listen: '127.0.0.1:0',
    logLevel: 'silent',
  })
  await router.ready
})

after(async () => {
  for (const c of clients) c.close()
  await router?.stop()
  await fake?.stop()
})

test('the router reports its real advertise address', () => {
  assert.match(router.address, /^127\.0\.0\.1:\d+$/)
  assert.notEqual(router.address, '127.0.0.1:0')
  assert.equal(fake.online.get('r1'), router.address)
})

test('bind + dial: the host gets DIAL with dialer, terminator and tag; DATA flows both ways; CLOSE tears down', async () => {
  const { h, d, cid, hid, dial, succ } = await openCircuit()
  const p = dial.payload as unknown as Record<string, unknown>
  assert.deepEqual(p.dialer, { id: 'id-dialer', name: 'dialer' })
  assert.equal(p.hostIdentityId, 'id-host')
  assert.match(String(p.circuitTag), /^[0-9a-f]{32}$/)
  assert.ok(p.terminatorId)
  assert.equal(hid % 2, 0, 'the router allocates even ids toward the host')
  const sp = succ.payload as { hostIdentity: { id: string; name: string }; circuitTag: string }
  assert.deepEqual(
    sp.hostIdentity,
    { id: 'id-host', name: 'host' },
    'the router names the host from its certificate',
  )
  assert.equal(sp.circuitTag, p.circuitTag)
  d.conn.sendData(cid, 0, Buffer.from('hello host'))
  const got = await h.next((f) => f.type === FrameType.DATA && f.circuitId === hid)
  assert.equal(Buffer.from(got.payload as Uint8Array).toString(), 'hello host')
  h.conn.sendData(hid, 1, Buffer.from('hello dialer'))
  const back = await d.next((f) => f.type === FrameType.DATA && f.circuitId === cid)
  assert.equal(back.flags, 1, 'flags forwarded unchanged')
  assert.equal(Buffer.from(back.payload as Uint8Array).toString(), 'hello dialer')
  h.conn.send({ type: FrameType.WINDOW_UPDATE, circuitId: hid, flags: 0, payload: { credit: 10 } })
  const wu = await d.next((f) => f.type === FrameType.WINDOW_UPDATE && f.circuitId === cid)
  assert.deepEqual(wu.payload, { credit: 10 })
  d.conn.sendData(cid, 0, new Uint8Array(0), FrameType.HALF_CLOSE)
  await h.next((f) => f.type === FrameType.HALF_CLOSE && f.circuitId === hid)
  d.conn.send({ type: FrameType.CLOSE, circuitId: cid, flags: 0, payload: {} })
  const cl = await h.next((f) => f.type === FrameType.CLOSE && f.circuitId === hid)
  assert.deepEqual(cl.payload, {})
  h.close()
  d.close()
})

test('a dial without a Dial policy fails with ERR_NO_DIAL_PERMISSION and the host sees nothing', async () => {
  const h = await client(host)
  h.bind(7, 'svc1')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  const s = await client(stranger)
  const cid = s.dial('svc1')
  const f = await s.next((x) => x.circuitId === cid)
  assert.equal(f.type, FrameType.DIAL_FAILED)
  const p = f.payload as { code: string; message: string }
  assert.equal(p.code, 'ERR_NO_DIAL_PERMISSION')
  assert.match(p.message, /service-policy/)
  const unknown = s.dial('no-such-service')
  const f2 = await s.next((x) => x.circuitId === unknown)
  assert.equal((f2.payload as { code: string }).code, 'ERR_SERVICE_NOT_FOUND')
  // a Bind without permission
  s.bind(1, 'svc1')
  const bf = await s.next((x) => x.type === FrameType.BIND_FAILED)
  assert.equal((bf.payload as { code: string }).code, 'ERR_NO_BIND_PERMISSION')
  await new Promise((r) => setTimeout(r, 200))
  assert.equal(
    h.frames.filter((x) => x.type === FrameType.DIAL).length,
    0,
    'the host never learned of the refused dial',
  )
  h.close()
  s.close()
})

test('no terminator: ERR_NO_TERMINATORS naming the fix', async () => {
  const d = await client(dialer)
  const cid = d.dial('svc2')
  const f = await d.next((x) => x.circuitId === cid)
  assert.equal(f.type, FrameType.DIAL_FAILED)
  assert.equal((f.payload as { code: string }).code, 'ERR_NO_TERMINATORS')
  d.close()
})

test('foreign-CA and expired certificates fail in the TLS handshake', async () => {
  const foreign = await fake.foreign('identity', 'id-dialer')
  await assert.rejects(async () => {
    const c = await RawClient.connect(router.address, foreign, fake.caBundle)
    c.close()
  })
  const expired = await fake.issue('identity', 'id-dialer', 'dialer', { lifetimeSeconds: 1 })
  await new Promise((r) => setTimeout(r, 2100))
  await assert.rejects(async () => {
    const c = await RawClient.connect(router.address, expired, fake.caBundle)
    c.close()
  })
})

test('a certificate not among the identity fingerprints (re-enrolled) gets GOAWAY ERR_CERT_REVOKED', async () => {
  const old = await fake.issue('identity', 'id-dialer', 'dialer')
  const c = await client(old, false)
  const g = await c.closedWith()
  assert.equal(g?.code, 'ERR_CERT_REVOKED')
})

test('an identity whose policy data lists no certificate is refused (fail closed, not "unknown = allowed")', async () => {
  const cred = await fake.issue('identity', 'id-nofp', 'nofp')
  fake.upsert({
    entity: 'identity',
    data: { id: cred.id, name: cred.name, roleAttributes: [], disabled: false },
  })
  try {
    const c = await client(cred, false)
    const g = await c.closedWith()
    assert.equal(g?.code, 'ERR_CERT_REVOKED')
  } finally {
    fake.remove('identity', cred.id)
  }
})

test('a wrong HELLO role and frames before HELLO are refused', async () => {
  const c = await client(dialer, false)
  c.conn.send({
    type: FrameType.HELLO,
    circuitId: 0,
    flags: 0,
    payload: { version: 1, role: 'router', agent: 'x' },
  })
  assert.equal((await c.closedWith())?.code, 'ERR_HELLO')
  const c2 = await client(dialer, false)
  c2.conn.send({ type: FrameType.DIAL, circuitId: 1, flags: 0, payload: { service: 'svc1' } })
  assert.equal((await c2.closedWith())?.code, 'ERR_PROTOCOL')
})

test('malformed frames close only that connection', async () => {
  const { h, d, cid, hid } = await openCircuit('svc1')
  const bad = await client(dialer)
  bad.socket.write(Buffer.from([1, 0x30, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]))
  await bad.closedWith()
  d.conn.sendData(cid, 0, Buffer.from('still here'))
  const got = await h.next((f) => f.type === FrameType.DATA && f.circuitId === hid)
  assert.equal(Buffer.from(got.payload as Uint8Array).toString(), 'still here')
  h.close()
  d.close()
})

test('flow control: a circuit without credit stops at one window; another circuit on the same connection keeps flowing', async () => {
  const h = await client(host)
  h.bind(3, 'svc1')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  const a = await openCircuit('svc1', h)
  const b = await openCircuitOn(a.d, h)
  const chunk = Buffer.alloc(64 * 1024, 7)
  // fill circuit A's window exactly: the router forwards it all
  for (let sent = 0; sent < INITIAL_WINDOW; sent += chunk.length) a.d.conn.sendData(a.cid, 0, chunk)
  // circuit B flows meanwhile, and keeps flowing with credit
  for (let i = 0; i < 3; i++) {
    a.d.conn.sendData(b.cid, 0, Buffer.from(`b${i}`))
    const f = await h.next((x) => x.type === FrameType.DATA && x.circuitId === b.hid, 10_000)
    assert.equal(Buffer.from(f.payload as Uint8Array).toString(), `b${i}`)
  }
  let received = 0
  const deadline = Date.now() + 10_000
  while (received < INITIAL_WINDOW && Date.now() < deadline) {
    const f = await h.next((x) => x.type === FrameType.DATA && x.circuitId === a.hid, 10_000)
    received += (f.payload as Uint8Array).byteLength
  }
  assert.equal(received, INITIAL_WINDOW, 'one whole window arrives')
  // one byte more without credit: the router closes A (both ends), B is unaffected
  a.d.conn.sendData(a.cid, 0, Buffer.from('x'))
  const ca = await a.d.next((x) => x.type === FrameType.CLOSE && x.circuitId === a.cid)
  assert.equal((ca.payload as { code: string }).code, 'ERR_FLOW_CONTROL')
  const ch = await h.next((x) => x.type === FrameType.CLOSE && x.circuitId === a.hid)
  assert.equal((ch.payload as { code: string }).code, 'ERR_FLOW_CONTROL')
  a.d.conn.sendData(b.cid, 0, Buffer.from('after'))
  const f = await h.next((x) => x.type === FrameType.DATA && x.circuitId === b.hid)
  assert.equal(Buffer.from(f.payload as Uint8Array).toString(), 'after')
  h.close()
  a.d.close()
})

async function openCircuitOn(d: RawClient, h: RawClient, service = 'svc1') {
  const cid = d.dial(service)
  const dial = await h.next((f) => f.type === FrameType.DIAL)
  h.conn.send({
    type: FrameType.DIAL_SUCCESS,
    circuitId: dial.circuitId,
    flags: 0,
    payload: {
      hostIdentity: { id: 'x', name: 'x' },
      circuitTag: (dial.payload as { circuitTag: string }).circuitTag,
    },
  })
  await d.next((f: Frame) => f.type === FrameType.DIAL_SUCCESS && f.circuitId === cid)
  return { cid, hid: dial.circuitId }
}

test('a DIAL on a router-parity or used circuit id gets ERR_CIRCUIT_ID; a repeated offender is disconnected', async () => {
  const d = await client(dialer)
  d.conn.send({ type: FrameType.DIAL, circuitId: 2, flags: 0, payload: { service: 'svc1' } })
  const f = await d.next((x) => x.circuitId === 2)
  assert.equal(f.type, FrameType.DIAL_FAILED)
  assert.equal((f.payload as { code: string }).code, 'ERR_CIRCUIT_ID')
  for (let i = 0; i < 9; i++)
    d.conn.send({ type: FrameType.DIAL, circuitId: 4 + 2 * i, flags: 0, payload: { service: 'svc1' } })
  assert.equal((await d.closedWith())?.code, 'ERR_PROTOCOL')
})

test('credit that raises a window above 2^32-1 closes the circuit with ERR_FLOW_CONTROL', async () => {
  const { h, d, cid, hid } = await openCircuit('svc1')
  h.conn.send({ type: FrameType.WINDOW_UPDATE, circuitId: hid, flags: 0, payload: { credit: 0xffff_ffff } })
  const c = await d.next((f) => f.type === FrameType.CLOSE && f.circuitId === cid)
  assert.equal((c.payload as { code: string }).code, 'ERR_FLOW_CONTROL')
  h.close()
  d.close()
})

test("the host's DIAL_FAILED reaches the dialer with its code", async () => {
  const h = await client(host)
  h.bind(9, 'svc2')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  const d = await client(dialer)
  const cid = d.dial('svc2')
  const dial = await h.next((f) => f.type === FrameType.DIAL)
  h.conn.send({
    type: FrameType.DIAL_FAILED,
    circuitId: dial.circuitId,
    flags: 0,
    payload: { code: 'ERR_HOST_REFUSED', message: 'no' },
  })
  const f = await d.next((x) => x.circuitId === cid)
  assert.equal(f.type, FrameType.DIAL_FAILED)
  assert.equal((f.payload as { code: string }).code, 'ERR_HOST_REFUSED')
  h.close()
  d.close()
})

test('revocation: removing the Dial policy closes the live circuit at both ends within 1 s', async () => {
  const { h, d, cid, hid } = await openCircuit('svc2')
  const t0 = Date.now()
  fake.remove('servicePolicy', 'dial-2')
  const cd = await d.next((f) => f.type === FrameType.CLOSE && f.circuitId === cid, 1000)
  const chh = await h.next((f) => f.type === FrameType.CLOSE && f.circuitId === hid, 1000)
  assert.ok(Date.now() - t0 < 1000)
  assert.equal((cd.payload as { code: string }).code, 'ERR_REVOKED')
  assert.equal((chh.payload as { code: string }).code, 'ERR_REVOKED')
  fake.addServicePolicy('dial-2', 'Dial', ['#dialers'], ['@svc-2'])
  h.close()
  d.close()
})

test('revocation: removing the Bind policy unbinds the host and closes its circuits', async () => {
  const { h, d, cid } = await openCircuit('svc2', undefined, 11)
  fake.remove('servicePolicy', 'bind-2')
  const ub = await h.next((f) => f.type === FrameType.UNBIND, 1000)
  assert.deepEqual(
    { ...(ub.payload as object), message: undefined },
    { bindId: 11, code: 'ERR_REVOKED', message: undefined },
  )
  const cd = await d.next((f) => f.type === FrameType.CLOSE && f.circuitId === cid, 1000)
  assert.equal((cd.payload as { code: string }).code, 'ERR_REVOKED')
  await new Promise((r) => setTimeout(r, 300))
  assert.equal(
    fake.snapshot.terminators.filter((t) => t.serviceId === 'svc-2').length,
    0,
    'the terminator was deleted at the controller',
  )
  fake.addServicePolicy('bind-2', 'Bind', ['#hosts'], ['@svc-2'])
  h.close()
  d.close()
})

test('disabling an identity closes its connection with a code', async () => {
  const other = await fake.issue('identity', 'id-tmp', 'tmp')
  fake.addIdentity(other, ['dialers'])
  await new Promise((r) => setTimeout(r, 100))
  const c = await client(other)
  fake.addIdentity(other, ['dialers'], true)
  assert.equal((await c.closedWith(1000))?.code, 'ERR_IDENTITY_DISABLED')
})

test('a connection loss deletes its terminators; binding again does not duplicate them', async () => {
  const h1 = await client(host)
  h1.bind(1, 'svc2')
  const s1 = await h1.next((f) => f.type === FrameType.BIND_SUCCESS)
  const h2 = await client(host)
  h2.bind(1, 'svc2')
  const s2 = await h2.next((f) => f.type === FrameType.BIND_SUCCESS)
  assert.equal(
    (s1.payload as { terminatorId: string }).terminatorId,
    (s2.payload as { terminatorId: string }).terminatorId,
    'a second connection of the same identity shares the terminator',
  )
  h1.close()
  await new Promise((r) => setTimeout(r, 200))
  assert.equal(fake.snapshot.terminators.filter((t) => t.serviceId === 'svc-2').length, 1)
  h2.close()
  const deadline = Date.now() + 3000
  while (fake.snapshot.terminators.some((t) => t.serviceId === 'svc-2') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.equal(fake.snapshot.terminators.filter((t) => t.serviceId === 'svc-2').length, 0)
})
