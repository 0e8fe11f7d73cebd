/**
 * Router process, raw frames: end-to-end flow control (a circuit whose receiver never grants
 * credit stops at one window while another circuit on the same connection keeps flowing), and
 * malformed frames close only the connection that sent them.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Frame, FrameType, type IdentityFile, INITIAL_WINDOW } from '@nullport/protocol'
import {
  dialBindPolicies,
  enrollIdentity,
  RawClient,
  spawnController,
  startTestRouter,
  type TestController,
  type TestRouter,
} from '@nullport/testkit'

let ctl: TestController
let router: TestRouter
let dialer: IdentityFile
let host: IdentityFile
const clients: RawClient[] = []

async function connect(id: { cert: string; key: string }): Promise<RawClient> {
  const c = await RawClient.connect(router.address, id, ctl.caPem)
  clients.push(c)
  return c
}

async function open(d: RawClient, h: RawClient): Promise<{ cid: number; hid: number }> {
  const cid = d.dial('bulk')
  const dial: Frame = await h.next((f) => f.type === FrameType.DIAL)
  h.accept(dial)
  const s = await d.next((f) => f.circuitId === cid)
  assert.equal(s.type, FrameType.DIAL_SUCCESS, JSON.stringify(s.payload))
  return { cid, hid: dial.circuitId }
}

before(async () => {
  ctl = await spawnController()
  router = await startTestRouter(ctl, { name: 'edge-flow', allPolicies: true })
  dialer = await enrollIdentity(ctl, 'dialer', ['dialers'])
  host = await enrollIdentity(ctl, 'host', ['hosts'])
  await ctl.data('POST', 'services', { name: 'bulk' })
  await dialBindPolicies(ctl, 'bulk')
  await new Promise((r) => setTimeout(r, 300))
})

after(async () => {
  for (const c of clients) c.close()
  await router?.stop()
  await ctl?.stop()
})

test('a circuit without credit stops at one window; another circuit on the same connection keeps flowing', async () => {
  const h = await connect(host)
  h.bind(1, 'bulk')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  const d = await connect(dialer)
  const a = await open(d, h)
  const b = await open(d, h)
  const chunk = Buffer.alloc(64 * 1024, 1)
  for (let sent = 0; sent < INITIAL_WINDOW; sent += chunk.length) d.conn.sendData(a.cid, 0, chunk)
  // B flows (with credit) while A's window is in flight and unacknowledged
  for (let i = 0; i < 5; i++) {
    d.conn.sendData(b.cid, 0, Buffer.from(`b${i}`))
    const f = await h.next((x) => x.type === FrameType.DATA && x.circuitId === b.hid, 10_000)
    assert.equal(Buffer.from(f.payload as Uint8Array).toString(), `b${i}`)
    h.conn.send({ type: FrameType.WINDOW_UPDATE, circuitId: b.hid, flags: 0, payload: { credit: 2 } })
  }
  let got = 0
  while (got < INITIAL_WINDOW) {
    const f = await h.next((x) => x.type === FrameType.DATA && x.circuitId === a.hid, 10_000)
    got += (f.payload as Uint8Array).byteLength
  }
  assert.equal(got, INITIAL_WINDOW, 'exactly one window arrives')
  // A sender going past its window without credit: the router closes that circuit only
  d.conn.sendData(a.cid, 0, Buffer.from('one too many'))
  const closeA = await d.next((f) => f.type === FrameType.CLOSE && f.circuitId === a.cid)
  assert.equal((closeA.payload as { code: string }).code, 'ERR_FLOW_CONTROL')
  const closeH = await h.next((f) => f.type === FrameType.CLOSE && f.circuitId === a.hid)
  assert.equal((closeH.payload as { code: string }).code, 'ERR_FLOW_CONTROL')
  assert.equal(
    h.frames.filter((f) => f.type === FrameType.DATA && f.circuitId === a.hid).length,
    0,
    'nothing beyond the window',
  )
  d.conn.sendData(b.cid, 0, Buffer.from('still flowing'))
  const f = await h.next((x) => x.type === FrameType.DATA && x.circuitId === b.hid)
  assert.equal(Buffer.from(f.payload as Uint8Array).toString(), 'still flowing')
  // credit returned by the receiver lets the sender continue on a fresh circuit
  const c = await open(d, h)
  for (let sent = 0; sent < INITIAL_WINDOW; sent += chunk.length) d.conn.sendData(c.cid, 0, chunk)
  let gotC = 0
  while (gotC < INITIAL_WINDOW) {
    const x = await h.next((y) => y.type === FrameType.DATA && y.circuitId === c.hid, 10_000)
    gotC += (x.payload as Uint8Array).byteLength
  }
  h.conn.send({ type: FrameType.WINDOW_UPDATE, circuitId: c.hid, flags: 0, payload: { credit: 65536 } })
  await d.next((x) => x.type === FrameType.WINDOW_UPDATE && x.circuitId === c.cid)
  d.conn.sendData(c.cid, 0, chunk)
  const more = await h.next((x) => x.type === FrameType.DATA && x.circuitId === c.hid)
  assert.equal((more.payload as Uint8Array).byteLength, chunk.length)
  h.close()
  d.close()
  await new Promise((r) => setTimeout(r, 200))
})

test('malformed frames close only the connection that sent them', async () => {
  const h = await connect(host)
  h.bind(2, 'bulk')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  const d = await connect(dialer)
  const live = await open(d, h)
  const garbage: Buffer[] = [
    Buffer.from([9, 0x30, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), // unknown version
    Buffer.from([1, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), // unknown type
    Buffer.from([1, 0x30, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]), // oversized length
    Buffer.concat([Buffer.from([1, 0x10, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5]), Buffer.from('{bad}')]), // bad JSON
  ]
  for (const g of garbage) {
    const bad = await connect(dialer)
    bad.socket.write(g)
    const goaway = await bad.closedWith()
    assert.match(goaway?.code ?? '', /^ERR_FRAME_/)
  }
  d.conn.sendData(live.cid, 0, Buffer.from('unaffected'))
  const f = await h.next((x) => x.type === FrameType.DATA && x.circuitId === live.hid)
  assert.equal(Buffer.from(f.payload as Uint8Array).toString(), 'unaffected')
  const fresh = await connect(dialer)
  const cid = fresh.dial('bulk')
  const dial = await h.next((x) => x.type === FrameType.DIAL)
  h.accept(dial)
  assert.equal((await fresh.next((x) => x.circuitId === cid)).type, FrameType.DIAL_SUCCESS)
})

test('a receiver that grants credit but never reads its socket: the router closes that circuit once it holds more than its bound', async () => {
  // the earlier tests' hosts must not take this dial
  for (const c of clients.splice(0)) c.close()
  await new Promise((r) => setTimeout(r, 300))
  const h = await connect(host)
  h.bind(3, 'bulk')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  const d = await connect(dialer)
  const a = await open(d, h)
  // the host grants 64 MiB and then stops reading: the router may forward, but the bytes stay
  // queued in its socket toward the host (beyond what the kernel buffers take)
  h.conn.send({
    type: FrameType.WINDOW_UPDATE,
    circuitId: a.hid,
    flags: 0,
    payload: { credit: 64 * 1024 * 1024 },
  })
  await d.next((x) => x.type === FrameType.WINDOW_UPDATE && x.circuitId === a.cid)
  h.conn.pause()
  const chunk = Buffer.alloc(64 * 1024, 3)
  let sent = 0
  let closed: Frame | null = null
  const closing = d
    .next((f) => f.type === FrameType.CLOSE && f.circuitId === a.cid, 30_000)
    .then((f) => {
      closed = f
    })
  while (closed === null && sent < INITIAL_WINDOW + 48 * 1024 * 1024) {
    if (!d.conn.sendData(a.cid, 0, chunk)) await new Promise((r) => d.socket.once('drain', r))
    sent += chunk.length
  }
  await closing
  const code = (closed as unknown as { payload: { code: string } } | null)?.payload.code
  assert.equal(code, 'ERR_FLOW_CONTROL', 'the circuit is closed for flow control')
  assert.ok(sent < INITIAL_WINDOW + 48 * 1024 * 1024, 'closed before the sender ran out of credit')
  h.close()
  d.close()
})
