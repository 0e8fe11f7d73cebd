/**
 * The in-process router of the test harness with `testHooks.onForward`: a test can rewrite or
 * drop forwarded frames (the SDK's tamper tests rely on this).
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Frame, FrameType } from '@nullport/protocol'
import {
  enrollIdentity,
  RawClient,
  spawnController,
  startTestRouter,
  type TestController,
  type TestRouter,
} from '@nullport/testkit'

let ctl: TestController
let router: TestRouter
const seen: Array<{ type: number; from: string; to: string }> = []
const clients: RawClient[] = []

before(async () => {
  ctl = await spawnController()
  router = await startTestRouter(ctl, {
    name: 'edge-hooked',
    allPolicies: true,
    testHooks: {
      onForward(frame: Frame, from, to) {
        seen.push({ type: frame.type, from: from.kind, to: to.kind })
        if (frame.type === FrameType.DATA) {
          const p = Buffer.from(frame.payload)
          if (p.toString() === 'drop me') return null
          p[0] = p[0]! ^ 0x20
          return { ...frame, payload: p }
        }
        return frame
      },
    },
  })
})

after(async () => {
  for (const c of clients) c.close()
  await router?.stop()
  await ctl?.stop()
})

test('onForward sees forwarded frames and can modify or drop them', async () => {
  assert.equal(router.process, null, 'hooks run the router in-process')
  const dialer = await enrollIdentity(ctl, 'dialer', ['dialers'])
  const host = await enrollIdentity(ctl, 'host', ['hosts'])
  await ctl.data('POST', 'services', { name: 'hooked' })
  await ctl.data('POST', 'service-policies', {
    name: 'd',
    type: 'Dial',
    semantic: 'AnyOf',
    identityRoles: ['#dialers'],
    serviceRoles: ['@hooked'],
  })
  await ctl.data('POST', 'service-policies', {
    name: 'b',
    type: 'Bind',
    semantic: 'AnyOf',
    identityRoles: ['#hosts'],
    serviceRoles: ['@hooked'],
  })
  await new Promise((r) => setTimeout(r, 300))
  const h = await RawClient.connect(router.address, host, ctl.caPem)
  clients.push(h)
  h.bind(1, 'hooked')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  const d = await RawClient.connect(router.address, dialer, ctl.caPem)
  clients.push(d)
  const cid = d.dial('hooked')
  const dial = await h.next((f) => f.type === FrameType.DIAL)
  h.accept(dial)
  await d.next((f) => f.type === FrameType.DIAL_SUCCESS && f.circuitId === cid)
  d.conn.sendData(cid, 0, Buffer.from('drop me'))
  d.conn.sendData(cid, 0, Buffer.from('abc'))
  const f = await h.next((x) => x.type === FrameType.DATA && x.circuitId === dial.circuitId)
  assert.equal(
    Buffer.from(f.payload as Uint8Array).toString(),
    'Abc',
    'first byte flipped, "drop me" dropped',
  )
  assert.ok(seen.some((s) => s.type === FrameType.DIAL && s.from === 'sdk' && s.to === 'sdk'))
  assert.ok(seen.some((s) => s.type === FrameType.DIAL_SUCCESS))
})
