import assert from 'node:assert/strict'
import { createHash, X509Certificate } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { PolicySnapshot } from '@nullport/protocol'
import { spawnController, type TestController } from '@nullport/testkit'
import {
  createAndEnrollIdentity,
  createAndEnrollRouter,
  type Enrolled,
  mtls,
  openSse,
  type SseReader,
} from './enroll-helpers.js'

const fp = (pem: string) => createHash('sha256').update(new X509Certificate(pem).raw).digest('hex')

describe('fabric API (mTLS router certificates)', () => {
  let c: TestController
  let r1: Enrolled
  let r2: Enrolled
  let host: Enrolled
  let s1: SseReader | undefined
  let s2: SseReader | undefined
  const fabric = (who: Enrolled, method: string, path: string, body?: unknown) =>
    mtls(`${c.url}/fabric/v1${path}`, method, {
      ca: c.caPem,
      cert: who.cert,
      key: who.key,
      ...(body !== undefined ? { body } : {}),
    })
  const stream = (who: Enrolled) =>
    openSse(`${c.url}/fabric/v1/stream`, { ca: c.caPem, cert: who.cert, key: who.key })

  before(async () => {
    c = await spawnController({ runner: 'library' })
    r1 = await createAndEnrollRouter(c, 'r1', { advertise: '127.0.0.1:5001', roleAttributes: ['edge'] })
    r2 = await createAndEnrollRouter(c, 'r2', {
      advertise: 'localhost:5002',
      roleAttributes: ['edge'],
      cost: 3,
    })
    host = await createAndEnrollIdentity(c, 'db-host', ['hosts'])
    for (const [path, body] of [
      ['services', { name: 'db', roleAttributes: ['dbs'] }],
      ['edge-router-policies', { name: 'hosts-edge', identityRoles: ['#hosts'], edgeRouterRoles: ['#edge'] }],
      [
        'service-edge-router-policies',
        { name: 'dbs-edge', serviceRoles: ['#dbs'], edgeRouterRoles: ['#edge'] },
      ],
    ] as const) {
      const r = await c.api('POST', path, body)
      if (r.status !== 201) throw new Error(`${path}: ${r.status} ${r.text}`)
    }
  })
  after(async () => {
    s1?.close()
    s2?.close()
    await c?.stop()
  })

  it('router enrollment issues a router certificate: SPIFFE router URI, advertised host SAN, serverAuth + clientAuth', () => {
    const leaf = new X509Certificate(r1.cert)
    assert.match(leaf.subjectAltName ?? '', new RegExp(`URI:spiffe://nullport/router/${r1.id}`))
    assert.ok(leaf.checkIP('127.0.0.1'))
    assert.ok(leaf.keyUsage?.includes('1.3.6.1.5.5.7.3.1'), 'serverAuth')
    assert.ok(leaf.keyUsage?.includes('1.3.6.1.5.5.7.3.2'), 'clientAuth')
    assert.ok(new X509Certificate(r2.cert).checkHost('localhost'))
    assert.match(new X509Certificate(r1.cert).subject, /CN=r1/)
  })

  it('refuses identity certificates and requests without a certificate', async () => {
    const a = await fabric(host, 'POST', '/online', { advertise: '127.0.0.1:1', version: 'x' })
    assert.equal(a.status, 403)
    assert.equal(a.body.error.code, 'ERR_CERT_WRONG_KIND')
    const b = await mtls(`${c.url}/fabric/v1/stream`, 'GET', { ca: c.caPem })
    assert.equal(b.status, 401)
    assert.equal(b.body.error.code, 'ERR_CERT_REQUIRED')
  })

  it('online + stream: a snapshot with certificate fingerprints, then changes after management writes', async () => {
    const on = await fabric(r1, 'POST', '/online', { advertise: '127.0.0.1:5001', version: '0.1.0' })
    assert.equal(on.status, 200, on.text)
    s1 = await stream(r1)
    assert.equal(s1.status, 200)
    const snap = (await s1.next('snapshot')).data.snapshot as PolicySnapshot
    assert.ok(snap.version > 0)
    const me = snap.routers.find((r) => r.id === r1.id)!
    assert.deepEqual(me.certFingerprints, [fp(r1.cert)])
    assert.equal(me.advertise, '127.0.0.1:5001')
    const h = snap.identities.find((i) => i.id === host.id)!
    assert.deepEqual(h.certFingerprints, [fp(host.cert)])
    assert.ok(snap.services.some((s) => s.name === 'db'))
    assert.deepEqual(snap.terminators, [])

    const r = await c.api('GET', 'edge-routers/r1')
    assert.equal(r.body.data.isOnline, true)

    const created = await c.api('POST', 'services', { name: 'cache', roleAttributes: ['dbs'] })
    assert.equal(created.status, 201)
    const ch = await s1.next('change', 20_000, (e) =>
      e.data.changes.some(
        (x: { entity: string; op: string; data?: { name: string } }) =>
          x.entity === 'service' && x.data?.name === 'cache',
      ),
    )
    assert.ok(ch.data.changes[0].version > snap.version)
  })

  it('terminators: Bind is checked at the router, the change is pushed, only the owner may delete', async () => {
    const denied = await fabric(r1, 'POST', '/terminators', {
      serviceId: 'db',
      identityId: host.id,
      cost: 5,
      precedence: 'default',
    })
    assert.equal(denied.status, 403, denied.text)
    assert.equal(denied.body.error.code, 'ERR_BIND_NOT_AUTHORIZED')
    assert.equal(denied.body.error.reason, 'ERR_NO_BIND_PERMISSION')

    const p = await c.api('POST', 'service-policies', {
      name: 'hosts-bind-db',
      type: 'Bind',
      identityRoles: ['#hosts'],
      serviceRoles: ['#dbs'],
    })
    assert.equal(p.status, 201)
    const t = await fabric(r1, 'POST', '/terminators', {
      serviceId: 'db',
      identityId: host.id,
      cost: 5,
      precedence: 'default',
    })
    assert.equal(t.status, 201, t.text)
    const term = t.body.data
    assert.equal(term.routerId, r1.id)
    assert.equal(term.identityId, host.id)
    assert.equal(term.cost, 5)
    await s1!.next('change', 20_000, (e) =>
      e.data.changes.some(
        (x: { entity: string; data?: { id: string } }) => x.entity === 'terminator' && x.data?.id === term.id,
      ),
    )
    const list = await c.api('GET', 'terminators')
    assert.equal(list.body.data.length, 1)
    assert.equal(list.body.data[0].id, term.id)

    const foreign = await fabric(r2, 'DELETE', `/terminators/${term.id}`)
    assert.equal(foreign.status, 403)
    const del = await fabric(r1, 'DELETE', `/terminators/${term.id}`)
    assert.equal(del.status, 200, del.text)
    await s1!.next('change', 20_000, (e) =>
      e.data.changes.some(
        (x: { entity: string; op: string; id?: string }) => x.op === 'delete' && x.id === term.id,
      ),
    )
    assert.equal((await fabric(r1, 'DELETE', `/terminators/${term.id}`)).status, 404)
  })

  it('links: measured latency becomes next-hop routes pushed to each router', async () => {
    await fabric(r2, 'POST', '/online', { advertise: 'localhost:5002', version: '0.1.0' })
    s2 = await stream(r2)
    await s2.next('snapshot')
    const l = await fabric(r1, 'POST', '/links', { peers: [{ routerId: r2.id, latencyMs: 7 }] })
    assert.equal(l.status, 200, l.text)
    const a = await s1!.next('routes', 20_000, (e) => e.data.routes.nextHop[r2.id] !== undefined)
    assert.equal(a.data.routes.nextHop[r2.id], r2.id)
    assert.equal(a.data.routes.cost[r2.id], 7 + 3, 'latency + the static cost of the destination')
    const b = await s2.next('routes', 20_000, (e) => e.data.routes.nextHop[r1.id] !== undefined)
    assert.equal(b.data.routes.nextHop[r1.id], r1.id)
    const bad = await fabric(r1, 'POST', '/links', { peers: [{ routerId: r2.id, latencyMs: -1 }] })
    assert.equal(bad.status, 400)
  })

  it('circuits are recorded for the management API and removed by their router', async () => {
    const now = new Date().toISOString()
    const add = await fabric(r1, 'POST', '/circuits', {
      circuits: [
        {
          tag: 'c-1',
          serviceId: 'svc',
          identityId: host.id,
          routerId: r1.id,
          terminatorRouterId: r2.id,
          createdAt: now,
        },
      ],
    })
    assert.equal(add.status, 200, add.text)
    const list = await c.api('GET', 'circuits')
    assert.equal(list.status, 200, list.text)
    assert.equal(list.body.data.length, 1)
    assert.equal(list.body.data[0].tag, 'c-1')
    assert.equal((await fabric(r2, 'DELETE', '/circuits/c-1')).status, 404)
    assert.equal((await fabric(r1, 'DELETE', '/circuits/c-1')).status, 200)
    assert.equal((await c.api('GET', 'circuits')).body.data.length, 0)
  })

  it("a router's stream closing marks it offline and removes its terminators after the grace period", async () => {
    const t = await fabric(r2, 'POST', '/terminators', { serviceId: 'db', identityId: host.id })
    assert.equal(t.status, 201, t.text)
    s2!.close()
    const deadline = Date.now() + 40_000
    let offline = false
    let gone = false
    while (Date.now() < deadline && !(offline && gone)) {
      offline = (await c.api('GET', 'edge-routers/r2')).body.data.isOnline === false
      gone = (await c.api('GET', 'terminators')).body.data.every(
        (x: { id: string }) => x.id !== t.body.data.id,
      )
      if (!(offline && gone)) await new Promise((r) => setTimeout(r, 250))
    }
    assert.ok(offline, 'r2 offline')
    assert.ok(gone, "r2's terminator removed")
    // r1 hears about the deletion.
    await s1!.next('change', 20_000, (e) =>
      e.data.changes.some((x: { op: string; id?: string }) => x.op === 'delete' && x.id === t.body.data.id),
    )
  })

  it('re-enrolling a router closes its stream and refuses its old certificate', async () => {
    const re = await c.api('POST', 'edge-routers/r1/re-enroll', {})
    assert.equal(re.status, 200, re.text)
    await s1!.end()
    const r = await fabric(r1, 'POST', '/online', { advertise: '127.0.0.1:5001' })
    assert.equal(r.status, 401)
    assert.equal(r.body.error.code, 'ERR_CERT_REVOKED')
  })
})
