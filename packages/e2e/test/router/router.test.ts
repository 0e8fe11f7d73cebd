/**
 * The edge router as a real process against the real controller: enrollment and online status,
 * raw-frame BIND/DIAL, refusals, handshake checks (foreign CA, expired, revoked), revocation of
 * live circuits and terminators on policy removal.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { createLeaf, createRootCa, FrameType, type IdentityFile } from '@nullport/protocol'
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
let stranger: IdentityFile
const clients: RawClient[] = []

async function connect(id: { cert: string; key: string }, hello = true): Promise<RawClient> {
  const c = await RawClient.connect(router.address, id, ctl.caPem, hello)
  clients.push(c)
  return c
}

before(async () => {
  ctl = await spawnController()
  router = await startTestRouter(ctl, { name: 'edge-1', allPolicies: true })
  dialer = await enrollIdentity(ctl, 'dialer', ['dialers'])
  host = await enrollIdentity(ctl, 'host', ['hosts'])
  stranger = await enrollIdentity(ctl, 'stranger', [])
  for (const name of ['echo', 'other']) await ctl.data('POST', 'services', { name })
  for (const svc of ['echo', 'other']) {
    await dialBindPolicies(ctl, svc)
  }
  // let the pushes reach the router
  await new Promise((r) => setTimeout(r, 300))
})

after(async () => {
  for (const c of clients) c.close()
  await router?.stop()
  await ctl?.stop()
})

test('the router enrolls, comes online and reports its real address', async () => {
  assert.match(router.address, /^127\.0\.0\.1:\d+$/)
  const r = (await ctl.data('GET', `edge-routers/${router.id}`)) as { isOnline: boolean; advertise: string }
  assert.equal(r.isOnline, true)
  assert.equal(r.advertise, router.address)
  const st = await import('node:fs/promises').then((fs) => fs.stat(join(router.dir, 'router.identity.json')))
  assert.equal(st.mode & 0o777, 0o600)
  const cfg = JSON.parse(await readFile(join(router.dir, 'router.json'), 'utf8'))
  assert.deepEqual(Object.keys(cfg).sort(), ['advertise', 'identityFile', 'listen'])
})

test('BIND then DIAL: the allowed dial reaches the host connection and data flows', async () => {
  const h = await connect(host)
  h.bind(1, 'echo')
  const b = await h.next((f) => f.type === FrameType.BIND_SUCCESS || f.type === FrameType.BIND_FAILED)
  assert.equal(b.type, FrameType.BIND_SUCCESS, JSON.stringify(b.payload))
  const terms = (await ctl.data('GET', 'terminators')) as Array<{ id: string; routerId: string }>
  assert.ok(terms.some((t) => t.routerId === router.id))
  await new Promise((r) => setTimeout(r, 200))
  const d = await connect(dialer)
  const cid = d.dial('echo')
  const dial = await h.next((f) => f.type === FrameType.DIAL)
  const p = dial.payload as { dialer: { id: string; name: string }; hostIdentityId: string; service: string }
  assert.deepEqual(p.dialer, { id: dialer.id, name: 'dialer' })
  assert.equal(p.hostIdentityId, host.id)
  assert.equal(p.service, 'echo')
  h.accept(dial)
  const s = await d.next((f) => f.circuitId === cid)
  assert.equal(s.type, FrameType.DIAL_SUCCESS)
  assert.deepEqual((s.payload as { hostIdentity: unknown }).hostIdentity, { id: host.id, name: 'host' })
  d.conn.sendData(cid, 0, Buffer.from('ping'))
  const data = await h.next((f) => f.type === FrameType.DATA && f.circuitId === dial.circuitId)
  assert.equal(Buffer.from(data.payload as Uint8Array).toString(), 'ping')
  d.conn.send({ type: FrameType.CLOSE, circuitId: cid, flags: 0, payload: {} })
  await h.next((f) => f.type === FrameType.CLOSE && f.circuitId === dial.circuitId)
  h.close()
  d.close()
})

test('a dial without a Dial policy gets DIAL_FAILED ERR_NO_DIAL_PERMISSION and the host sees nothing', async () => {
  const h = await connect(host)
  h.bind(1, 'echo')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  const s = await connect(stranger)
  const cid = s.dial('echo')
  const f = await s.next((x) => x.circuitId === cid)
  assert.equal(f.type, FrameType.DIAL_FAILED)
  const p = f.payload as { code: string; message: string }
  assert.equal(p.code, 'ERR_NO_DIAL_PERMISSION')
  assert.match(p.message, /Dial/)
  await new Promise((r) => setTimeout(r, 300))
  assert.equal(h.frames.filter((x) => x.type === FrameType.DIAL).length, 0)
  h.close()
  s.close()
})

test('foreign-CA and expired certificates are refused in the TLS handshake', async () => {
  const foreignRoot = await createRootCa({ commonName: 'evil root' })
  const foreign = await createLeaf({
    issuerCertPem: foreignRoot.certPem,
    issuerKeyPem: foreignRoot.keyPem,
    commonName: 'dialer',
    usage: 'client',
    uris: [`spiffe://nullport/identity/${dialer.id}`],
    lifetimeSeconds: 3600,
  })
  const refused = async (cred: { cert: string; key: string }) => {
    let c: RawClient | undefined
    try {
      c = await RawClient.connect(router.address, cred, ctl.caPem, false)
      clients.push(c)
    } catch {
      return // the handshake itself failed
    }
    const g = await c.closedWith()
    assert.equal(g, null, 'refused by TLS, before any frame')
  }
  await refused({ cert: foreign.certPem, key: foreign.keyPem })
  const inter = await readFile(join(ctl.dataDir, 'pki', 'intermediate.crt'), 'utf8')
  const interKey = await readFile(join(ctl.dataDir, 'pki', 'intermediate.key'), 'utf8')
  const expired = await createLeaf({
    issuerCertPem: inter,
    issuerKeyPem: interKey,
    commonName: 'dialer',
    usage: 'client',
    uris: [`spiffe://nullport/identity/${dialer.id}`],
    lifetimeSeconds: 1,
  })
  await new Promise((r) => setTimeout(r, 2100))
  await refused({ cert: `${expired.certPem.trim()}\n${inter.trim()}\n`, key: expired.keyPem })
})

test('re-enrollment revokes the old certificate: live connections and new ones get ERR_CERT_REVOKED', async () => {
  const victim = await enrollIdentity(ctl, 'victim', ['dialers'])
  await new Promise((r) => setTimeout(r, 200))
  const live = await connect(victim)
  const re = (await ctl.data('POST', `identities/${victim.id}/re-enroll`)) as {
    enrollment?: { jwt?: string }
    jwt?: string
  }
  assert.ok(re.enrollment?.jwt ?? re.jwt)
  const g = await live.closedWith(2000)
  assert.equal(g?.code, 'ERR_CERT_REVOKED')
  const again = await connect(victim, false)
  assert.equal((await again.closedWith())?.code, 'ERR_CERT_REVOKED')
})

test('removing the policies closes the live circuit and the terminator within 1 s', async () => {
  const h = await connect(host)
  h.bind(5, 'other')
  await h.next((f) => f.type === FrameType.BIND_SUCCESS)
  await new Promise((r) => setTimeout(r, 200))
  const d = await connect(dialer)
  const cid = d.dial('other')
  const dial = await h.next((f) => f.type === FrameType.DIAL)
  h.accept(dial)
  await d.next((f) => f.type === FrameType.DIAL_SUCCESS && f.circuitId === cid)
  // Dial removed: the circuit closes at both ends
  let t0 = Date.now()
  await ctl.data('DELETE', 'service-policies/dial-other')
  const cd = await d.next((f) => f.type === FrameType.CLOSE && f.circuitId === cid, 2000)
  const ch = await h.next((f) => f.type === FrameType.CLOSE && f.circuitId === dial.circuitId, 2000)
  assert.ok(Date.now() - t0 < 1000, `closed after ${Date.now() - t0} ms`)
  assert.equal((cd.payload as { code: string }).code, 'ERR_REVOKED')
  assert.equal((ch.payload as { code: string }).code, 'ERR_REVOKED')
  // Bind removed: the host is unbound and the terminator deleted
  t0 = Date.now()
  await ctl.data('DELETE', 'service-policies/bind-other')
  const ub = await h.next((f) => f.type === FrameType.UNBIND, 2000)
  assert.ok(Date.now() - t0 < 1000)
  assert.equal((ub.payload as { bindId: number; code: string }).bindId, 5)
  assert.equal((ub.payload as { code: string }).code, 'ERR_REVOKED')
  const deadline = Date.now() + 3000
  let left: unknown[] = []
  do {
    left = ((await ctl.data('GET', 'terminators')) as Array<{ service: { name: string } }>).filter(
      (t) => t.service?.name === 'other',
    )
    if (left.length === 0) break
    await new Promise((r) => setTimeout(r, 100))
  } while (Date.now() < deadline)
  assert.equal(left.length, 0, 'terminator deleted')
  h.close()
  d.close()
})
