/**
 * Controller outage with real processes: while the controller is down an established circuit
 * keeps flowing and new dials are authorized from the router's last policy data; when the
 * controller is back (same data, same port) the router reconnects, resyncs and serves binds again.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { FrameType } from '@nullport/protocol'
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
const clients: RawClient[] = []

before(async () => {
  ctl = await spawnController()
  router = await startTestRouter(ctl, { name: 'edge-o', allPolicies: true })
})

after(async () => {
  for (const c of clients) c.close()
  await router?.stop()
  await ctl?.stop()
})

test('circuits and local authorization survive a controller outage; the router resyncs after it', async () => {
  const dialer = await enrollIdentity(ctl, 'dialer', ['dialers'])
  const host = await enrollIdentity(ctl, 'host', ['hosts'])
  for (const name of ['svc-a', 'svc-b']) {
    await ctl.data('POST', 'services', { name })
    await dialBindPolicies(ctl, name)
  }
  await new Promise((r) => setTimeout(r, 300))
  const h = await RawClient.connect(router.address, host, ctl.caPem)
  clients.push(h)
  h.bind(1, 'svc-a')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  const d = await RawClient.connect(router.address, dialer, ctl.caPem)
  clients.push(d)
  const cid = d.dial('svc-a')
  const dial = await h.next((f) => f.type === FrameType.DIAL)
  h.accept(dial)
  await d.next((f) => f.type === FrameType.DIAL_SUCCESS && f.circuitId === cid)

  // controller down
  const { dataDir, adminUser, adminPassword } = ctl
  const port = new URL(ctl.url).port
  await ctl.stop({ keepData: true })
  await new Promise((r) => setTimeout(r, 500))
  d.conn.sendData(cid, 0, Buffer.from('during the outage'))
  const got = await h.next((f) => f.type === FrameType.DATA && f.circuitId === dial.circuitId)
  assert.equal(Buffer.from(got.payload as Uint8Array).toString(), 'during the outage')
  const cid2 = d.dial('svc-a')
  const dial2 = await h.next((f) => f.type === FrameType.DIAL)
  h.accept(dial2)
  assert.equal((await d.next((f) => f.circuitId === cid2)).type, FrameType.DIAL_SUCCESS, 'authorized locally')
  const denied = d.dial('no-such-service')
  assert.equal(
    ((await d.next((f) => f.circuitId === denied)).payload as { code: string }).code,
    'ERR_SERVICE_NOT_FOUND',
  )
  // binds need the controller
  h.bind(2, 'svc-b')
  const bf = await h.next(
    (f) => f.type === FrameType.BIND_FAILED || f.type === FrameType.BIND_SUCCESS,
    15_000,
  )
  assert.equal(bf.type, FrameType.BIND_FAILED)
  assert.equal((bf.payload as { code: string }).code, 'ERR_CONTROLLER_UNAVAILABLE')

  // controller back on the same port
  ctl = await spawnController({ dataDir, adminUser, adminPassword, listen: `127.0.0.1:${port}` })
  const deadline = Date.now() + 20_000
  let bound = false
  while (!bound && Date.now() < deadline) {
    h.bind(3, 'svc-b')
    const f = await h.next(
      (x) => x.type === FrameType.BIND_FAILED || x.type === FrameType.BIND_SUCCESS,
      15_000,
    )
    bound = f.type === FrameType.BIND_SUCCESS
    if (!bound) await new Promise((r) => setTimeout(r, 300))
  }
  assert.ok(bound, 'binds work again once the router reconnected')
  // the stream reconnects (jittered backoff, at most 10 s): online again
  let online = false
  const until = Date.now() + 15_000
  while (!online && Date.now() < until) {
    online = (await ctl.data('GET', `edge-routers/${router.id}`)).isOnline === true
    if (!online) await new Promise((r) => setTimeout(r, 200))
  }
  assert.ok(online, 'the router is online again')
  // the circuit from before the outage still flows
  h.conn.sendData(dial.circuitId, 0, Buffer.from('after'))
  const back = await d.next((f) => f.type === FrameType.DATA && f.circuitId === cid)
  assert.equal(Buffer.from(back.payload as Uint8Array).toString(), 'after')
})
