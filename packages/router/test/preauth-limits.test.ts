/**
 * Pre-authentication limits of the router's listener: a connection that stalls before or inside
 * the TLS handshake is destroyed at `handshakeTimeoutMs` from TCP accept (Node only reports a
 * handshake timeout), one source address holds at most `maxPreAuthPerAddress` unauthenticated
 * connections, a legitimate SDK connects while they are held, nothing is left behind (`ss`), and
 * the metrics say so. Attackers connect from 127.0.0.2-5, the SDK from 127.0.0.1.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import {
  type Cred,
  FakeController,
  type HeldSocket,
  holdTcp,
  openSocketsTowards,
  RawClient,
  scrapeMetric,
  waitFor,
} from '@nullport/testkit'
import { type RouterHandle, startRouter } from '../src/index.js'

let fake: FakeController
let router: RouterHandle
let dialer: Cred
let port: number
let metricsAddress: string

const tcp = (localAddress: string) => holdTcp(port, localAddress)
const metric = (name: string, labels = '') => scrapeMetric(metricsAddress, name, labels)

before(async () => {
  fake = new FakeController()
  await fake.init()
  await fake.start()
  const rc = await fake.issue('router', 'r1', 'r1')
  dialer = await fake.issue('identity', 'd', 'dialer')
  fake.addRouter(rc)
  fake.addIdentity(dialer, ['x'])
  fake.allowAllRouters()
  router = await startRouter({
    identity: fake.identityFile(rc),
    listen: '127.0.0.1:0',
    metricsListen: '127.0.0.1:0',
    logLevel: 'silent',
    handshakeTimeoutMs: 1500,
    maxPreAuthPerAddress: 10,
    maxConnections: 40,
  })
  await router.ready
  port = Number(router.address.split(':').pop())
  metricsAddress = router.metricsAddress!
})

after(async () => {
  await router?.stop()
  await fake?.stop()
})

test('one address: at most maxPreAuthPerAddress idle sockets, each destroyed at the deadline', async () => {
  const held: HeldSocket[] = []
  for (let i = 0; i < 100; i++) held.push(await tcp('127.0.0.2'))
  let closed = 0
  for (const h of held) void h.closed.then(() => closed++)
  await waitFor(() => closed >= 90, { timeoutMs: 20_000, intervalMs: 50, what: '90 refused at accept' })
  // a legitimate SDK (another address) connects and says HELLO while 10 are held
  const c = await RawClient.connect(router.address, dialer, fake.caBundle, true)
  c.close()
  await Promise.all(held.map((h) => h.closed))
  await waitFor(() => openSocketsTowards(port, '127.0.0.2').length === 0, {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: 'no socket towards 127.0.0.2',
  })
  // every one of the 100 was dropped by the cap or the deadline (how many by which depends on
  // how fast this machine opened them: a slow opener sees early ones time out and free places)
  const capped = await metric('nullport_router_preauth_dropped_total', 'reason="per-address"')
  const late = await metric('nullport_router_preauth_dropped_total', 'reason="deadline"')
  assert.equal(capped + late, 100, `per-address ${capped} + deadline ${late}`)
  assert.ok(capped >= 1 && late >= 10, `per-address ${capped}, deadline ${late}`)
  assert.equal(await metric('nullport_router_limit', 'name="maxPreAuthPerAddress"'), 10)
})

test('stalled TLS handshakes filling maxConnections are destroyed at the deadline; the router serves again', async () => {
  const held: HeldSocket[] = []
  for (const a of ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']) {
    for (let i = 0; i < 10; i++) {
      const h = await tcp(a)
      h.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
      held.push(h)
    }
  }
  await Promise.all(held.map((h) => h.closed))
  const c = await RawClient.connect(router.address, dialer, fake.caBundle, true)
  c.close()
  for (const a of ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']) {
    await waitFor(() => openSocketsTowards(port, a).length === 0, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: `no socket towards ${a}`,
    })
  }
  assert.equal(await metric('nullport_router_preauth_connections'), 0)
})
