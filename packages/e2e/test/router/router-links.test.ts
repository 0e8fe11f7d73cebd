/**
 * Two router processes against the real controller: they link to each other and a dial that
 * enters router A reaches a host bound at router B; data crosses the link both ways.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Frame, FrameType } from '@nullport/protocol'
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
let ra: TestRouter
let rb: TestRouter
const clients: RawClient[] = []

before(async () => {
  ctl = await spawnController()
  ra = await startTestRouter(ctl, { name: 'edge-a', allPolicies: true })
  rb = await startTestRouter(ctl, { name: 'edge-b' })
})

after(async () => {
  for (const c of clients) c.close()
  await ra?.stop()
  await rb?.stop()
  await ctl?.stop()
})

test('two routers link and a dial crosses them', async () => {
  const dialer = await enrollIdentity(ctl, 'dialer', ['dialers'])
  const host = await enrollIdentity(ctl, 'host', ['hosts'])
  await ctl.data('POST', 'services', { name: 'far' })
  await dialBindPolicies(ctl, 'far')
  await new Promise((r) => setTimeout(r, 300))
  const h = await RawClient.connect(rb.address, host, ctl.caPem)
  clients.push(h)
  h.bind(1, 'far')
  const b = await h.next((f) => f.type === FrameType.BIND_SUCCESS || f.type === FrameType.BIND_FAILED)
  assert.equal(b.type, FrameType.BIND_SUCCESS, JSON.stringify(b.payload))
  const d = await RawClient.connect(ra.address, dialer, ctl.caPem)
  clients.push(d)
  // The link comes up, its latency is reported and routes are pushed: retry until the dial crosses.
  const deadline = Date.now() + 20_000
  let cid = 0
  let dial: Frame | null = null
  let last = ''
  while (Date.now() < deadline) {
    cid = d.dial('far')
    const f = await d
      .next((x) => x.circuitId === cid || (x.type === FrameType.DIAL_FAILED && x.circuitId === cid), 200)
      .catch(() => null)
    if (f?.type === FrameType.DIAL_FAILED) {
      last = JSON.stringify(f.payload)
      await new Promise((r) => setTimeout(r, 250))
      continue
    }
    dial = await h.next((x) => x.type === FrameType.DIAL, 5000)
    break
  }
  assert.ok(dial, `the dial never crossed the link: ${last}`)
  const p = dial.payload as { dialer: { id: string }; hostIdentityId: string }
  assert.equal(p.dialer.id, dialer.id)
  assert.equal(p.hostIdentityId, host.id)
  h.accept(dial)
  const s = await d.next((f) => f.circuitId === cid)
  assert.equal(s.type, FrameType.DIAL_SUCCESS)
  assert.deepEqual((s.payload as { hostIdentity: unknown }).hostIdentity, { id: host.id, name: 'host' })
  const payload = Buffer.alloc(300_000, 9)
  for (let off = 0; off < payload.length; off += 64 * 1024)
    d.conn.sendData(cid, 0, payload.subarray(off, off + 64 * 1024))
  let got = 0
  while (got < payload.length) {
    const f = await h.next((x) => x.type === FrameType.DATA && x.circuitId === dial.circuitId)
    got += (f.payload as Uint8Array).byteLength
  }
  assert.equal(got, payload.length)
  h.conn.sendData(dial.circuitId, 0, Buffer.from('back'))
  const back = await d.next((f) => f.type === FrameType.DATA && f.circuitId === cid)
  assert.equal(Buffer.from(back.payload as Uint8Array).toString(), 'back')
  // closing at the host tears down every hop
  h.conn.send({ type: FrameType.CLOSE, circuitId: dial.circuitId, flags: 0, payload: {} })
  await d.next((f) => f.type === FrameType.CLOSE && f.circuitId === cid)
})
