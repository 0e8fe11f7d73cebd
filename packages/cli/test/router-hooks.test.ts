/**
 * The in-process router of the test harness with `testHooks.onForward`: a test can rewrite or
 * drop forwarded frames (the SDK's tamper tests rely on this).
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Frame, FrameType } from '@nullport/protocol'
import { enroll } from '@nullport/sdk'
import { type RunningTestController, spawnController } from './helpers/controller.js'
import { RawClient, startTestRouter, type TestRouter } from './helpers/router.js'

let ctl: RunningTestController
let router: TestRouter
const seen: Array<{ type: number; from: string; to: string }> = []
const clients: RawClient[] = []

// biome-ignore lint/suspicious/noExplicitAny: JSON of any shape
async function api(method: string, path: string, body?: unknown): Promise<any> {
  const r = await ctl.api(method, path, body)
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.text}`)
  return r.body.data
}

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
  const mk = async (name: string, attrs: string[]) => {
    const d = await api('POST', 'identities', { name, type: 'Device', roleAttributes: attrs })
    return (await enroll({ jwt: d.enrollment.jwt })).file
  }
  const dialer = await mk('dialer', ['dialers'])
  const host = await mk('host', ['hosts'])
  await api('POST', 'services', { name: 'hooked' })
  await api('POST', 'service-policies', {
    name: 'd',
    type: 'Dial',
    semantic: 'AnyOf',
    identityRoles: ['#dialers'],
    serviceRoles: ['@hooked'],
  })
  await api('POST', 'service-policies', {
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
