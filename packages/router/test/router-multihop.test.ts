/**
 * Three routers, a forced two-hop route (A -> B -> C): the transit router B forwards the DIAL it
 * cannot serve toward the terminator's router, checks the dialer itself (defense in depth), and
 * a policy revocation closes the circuit at every hop.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { FrameType } from '@nullport/protocol'
import { type Cred, FakeController, RawClient, waitFor } from '@nullport/testkit'
import { type RouterHandle, startRouter } from '../src/index.js'

let fake: FakeController
const routers: RouterHandle[] = []
const clients: RawClient[] = []

let dialer: Cred
let host: Cred

before(async () => {
  fake = new FakeController()
  await fake.init()
  await fake.start()
  const creds = [
    await fake.issue('router', 'r-a', 'a'),
    await fake.issue('router', 'r-b', 'b'),
    await fake.issue('router', 'r-c', 'c'),
  ]
  dialer = await fake.issue('identity', 'id-d', 'dialer')
  host = await fake.issue('identity', 'id-h', 'host')
  for (const c of creds) fake.addRouter(c)
  fake.addIdentity(dialer, ['dialers'])
  fake.addIdentity(host, ['hosts'])
  fake.addService('svc-m', 'm')
  fake.addServicePolicy('dial-m', 'Dial', ['#dialers'], ['@svc-m'])
  fake.addServicePolicy('bind-m', 'Bind', ['#hosts'], ['@svc-m'])
  fake.allowAllRouters()
  fake.routeOverrides.set('r-a', { 'r-c': 'r-b' })
  for (const c of creds) {
    routers.push(
      await startRouter({
        identity: fake.identityFile(c),
        listen: '127.0.0.1:0',
        logLevel: 'silent',
        linkPingIntervalMs: 200,
      }),
    )
  }
  await Promise.all(routers.map((r) => r.ready))
})

after(async () => {
  for (const c of clients) c.close()
  for (const r of routers) await r.stop()
  await fake?.stop()
})

test('a dial crosses A -> B -> C; revocation closes every hop', async () => {
  const [ra, rb, rc] = routers as [RouterHandle, RouterHandle, RouterHandle]
  await waitFor(() => ra.stats().links.length === 2 && rb.stats().links.length === 2, {
    timeoutMs: 10_000,
    what: 'full mesh',
  })
  const h = await RawClient.connect(rc.address, host, fake.caBundle)
  clients.push(h)
  h.bind(1, 'm')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  fake.pushRoutes()
  await new Promise((r) => setTimeout(r, 300))
  const d = await RawClient.connect(ra.address, dialer, fake.caBundle)
  clients.push(d)
  const cid = d.dial('m')
  const dial = await h.next((f) => f.type === FrameType.DIAL)
  assert.equal(rb.stats().circuits, 1, 'the circuit passes through B')
  h.conn.send({
    type: FrameType.DIAL_SUCCESS,
    circuitId: dial.circuitId,
    flags: 0,
    payload: {
      hostIdentity: { id: 'x', name: 'x' },
      circuitTag: (dial.payload as { circuitTag: string }).circuitTag,
    },
  })
  const ok = await d.next((f) => f.circuitId === cid)
  assert.equal(ok.type, FrameType.DIAL_SUCCESS)
  assert.deepEqual((ok.payload as { hostIdentity: unknown }).hostIdentity, { id: 'id-h', name: 'host' })
  d.conn.sendData(cid, 0, Buffer.from('two hops'))
  const got = await h.next((f) => f.type === FrameType.DATA && f.circuitId === dial.circuitId)
  assert.equal(Buffer.from(got.payload as Uint8Array).toString(), 'two hops')
  fake.remove('servicePolicy', 'dial-m')
  const c1 = await d.next((f) => f.type === FrameType.CLOSE && f.circuitId === cid, 1000)
  const c2 = await h.next((f) => f.type === FrameType.CLOSE && f.circuitId === dial.circuitId, 1000)
  assert.equal((c1.payload as { code: string }).code, 'ERR_REVOKED')
  assert.equal((c2.payload as { code: string }).code, 'ERR_REVOKED')
  await waitFor(() => routers.every((r) => r.stats().circuits === 0), {
    timeoutMs: 2000,
    what: 'every hop closed',
  })
})

test('inconsistent routes (A -> B -> A) fail the dial with ERR_NO_ROUTE instead of looping', async () => {
  const [ra, rb] = routers as [RouterHandle, RouterHandle, RouterHandle]
  fake.addServicePolicy('dial-m', 'Dial', ['#dialers'], ['@svc-m'])
  fake.routeOverrides.set('r-a', { 'r-c': 'r-b' })
  fake.routeOverrides.set('r-b', { 'r-c': 'r-a' })
  fake.pushRoutes()
  await new Promise((r) => setTimeout(r, 300))
  const d = await RawClient.connect(ra.address, dialer, fake.caBundle)
  clients.push(d)
  const cid = d.dial('m')
  const f = await d.next((x) => x.circuitId === cid)
  assert.equal(f.type, FrameType.DIAL_FAILED)
  assert.equal((f.payload as { code: string }).code, 'ERR_NO_ROUTE')
  await waitFor(() => ra.stats().circuits === 0 && rb.stats().circuits === 0, {
    timeoutMs: 2000,
    what: 'no circuit left',
  })
})
