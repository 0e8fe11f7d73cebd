import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLeaf, createRootCa, makeSpiffeId } from '@nullport/protocol'
import { spawnController, type TestController } from '@nullport/testkit'
import {
  createAndEnrollIdentity,
  createAndEnrollRouter,
  type Enrolled,
  mtls,
  openSse,
} from './enroll-helpers.js'

describe('client API (mTLS identity certificates)', () => {
  let c: TestController
  let laptop: Enrolled
  let server: Enrolled
  let routerId: string
  let edgeA: Enrolled
  const client = (
    who: Enrolled,
    method: string,
    path: string,
    o: { body?: unknown; headers?: Record<string, string> } = {},
  ) => mtls(`${c.url}/edge/client/v1${path}`, method, { ca: c.caPem, cert: who.cert, key: who.key, ...o })

  before(async () => {
    c = await spawnController({ runner: 'library' })
    const must = async (path: string, body: unknown) => {
      const r = await c.api('POST', path, body)
      if (r.status !== 201) throw new Error(`${path}: ${r.status} ${r.text}`)
      return r.body.data
    }
    const cfg = await must('configs', {
      name: 'web-intercept',
      configTypeId: 'intercept.v1',
      data: { protocols: ['tcp'], addresses: ['web.ziti'], portRanges: [{ low: 80, high: 80 }] },
    })
    await must('services', { name: 'web', roleAttributes: ['web-services'], configs: [cfg.id] })
    await must('services', { name: 'db', roleAttributes: ['db-services'] })
    await must('service-policies', {
      name: 'laptops-dial-web',
      type: 'Dial',
      identityRoles: ['#laptops'],
      serviceRoles: ['#web-services'],
    })
    await must('edge-router-policies', {
      name: 'all-routers',
      identityRoles: ['#all'],
      edgeRouterRoles: ['#all'],
    })
    await must('service-edge-router-policies', {
      name: 'all-services',
      serviceRoles: ['#all'],
      edgeRouterRoles: ['#all'],
    })
    edgeA = await createAndEnrollRouter(c, 'edge-a', { advertise: '127.0.0.1:4022' })
    routerId = edgeA.id
    laptop = await createAndEnrollIdentity(c, 'laptop', ['laptops'])
    server = await createAndEnrollIdentity(c, 'server', ['servers'])
  })
  after(async () => {
    await c?.stop()
  })

  it('authenticates with the certificate and lists the services its policies allow', async () => {
    const a = await client(laptop, 'POST', '/authenticate?method=cert')
    assert.equal(a.status, 200, a.text)
    assert.equal(a.body.data.identity.id, laptop.id)
    assert.equal(a.body.data.identity.name, 'laptop')
    assert.ok(Date.parse(a.body.data.expiresAt) > Date.now())
    const token = a.body.data.token as string

    const me = await client(laptop, 'GET', '/current-identity', {
      headers: { authorization: `Bearer ${token}` },
    })
    assert.equal(me.status, 200, me.text)
    assert.equal(me.body.data.id, laptop.id)
    assert.deepEqual(me.body.data.roleAttributes, ['laptops'])

    const s = await client(laptop, 'GET', '/services', { headers: { 'zt-session': token } })
    assert.equal(s.status, 200, s.text)
    assert.deepEqual(
      s.body.data.map((x: { name: string }) => x.name),
      ['web'],
    )
    const web = s.body.data[0]
    assert.deepEqual(web.permissions, ['Dial'])
    assert.deepEqual(web.config['intercept.v1'].addresses, ['web.ziti'])
    assert.deepEqual(web.edgeRouterIds, [routerId])
    assert.equal(s.body.meta.pagination.totalCount, 1)

    const none = await client(server, 'GET', '/services')
    assert.equal(none.status, 200)
    assert.deepEqual(none.body.data, [])

    const routers = await client(laptop, 'GET', '/edge-routers')
    assert.equal(routers.status, 200, routers.text)
    assert.deepEqual(routers.body.data, [
      { id: routerId, name: 'edge-a', advertise: '127.0.0.1:4022', isOnline: false },
    ])
  })

  it("refuses no certificate, a foreign CA's certificate, a router certificate and another identity's session token", async () => {
    const noCert = await mtls(`${c.url}/edge/client/v1/services`, 'GET', { ca: c.caPem })
    assert.equal(noCert.status, 401)
    assert.equal(noCert.body.error.code, 'ERR_CERT_REQUIRED')

    // Same SPIFFE id and name, but issued by another CA.
    const foreignCa = await createRootCa({ commonName: 'Evil Root' })
    const forged = await createLeaf({
      issuerCertPem: foreignCa.certPem,
      issuerKeyPem: foreignCa.keyPem,
      commonName: 'laptop',
      usage: 'client',
      uris: [makeSpiffeId('nullport', 'identity', laptop.id)],
      lifetimeSeconds: 3600,
    })
    const f = await mtls(`${c.url}/edge/client/v1/services`, 'GET', {
      ca: c.caPem,
      cert: forged.certPem,
      key: forged.keyPem,
    })
    assert.equal(f.status, 401)
    assert.equal(f.body.error.code, 'ERR_CERT_INVALID')
    const fa = await mtls(`${c.url}/edge/client/v1/authenticate?method=cert`, 'POST', {
      ca: c.caPem,
      cert: forged.certPem,
      key: forged.keyPem,
    })
    assert.equal(fa.body.error.code, 'ERR_CERT_INVALID')

    const router = await createAndEnrollRouter(c, 'edge-b')
    const r = await client(router, 'GET', '/services')
    assert.equal(r.status, 403)
    assert.equal(r.body.error.code, 'ERR_CERT_WRONG_KIND')

    const other = await client(server, 'POST', '/authenticate?method=cert')
    const mixed = await client(laptop, 'GET', '/services', {
      headers: { authorization: `Bearer ${other.body.data.token}` },
    })
    assert.equal(mixed.status, 401)
    assert.equal(mixed.body.error.code, 'ERR_UNAUTHORIZED')
    const bogus = await client(laptop, 'GET', '/services', { headers: { authorization: 'Bearer nope' } })
    assert.equal(bogus.status, 401)
  })

  it('pushes routers-changed when a router comes online; the router list shows it online', async () => {
    const sse = await openSse(`${c.url}/edge/client/v1/events`, {
      ca: c.caPem,
      cert: laptop.cert,
      key: laptop.key,
    })
    try {
      const on = await mtls(`${c.url}/fabric/v1/online`, 'POST', {
        ca: c.caPem,
        cert: edgeA.cert,
        key: edgeA.key,
        body: { advertise: '127.0.0.1:4022', version: 'test' },
      })
      assert.equal(on.status, 200, on.text)
      const ev = await sse.next('routers-changed')
      assert.equal(ev.data.type, 'routers-changed')
      const routers = await client(laptop, 'GET', '/edge-routers')
      assert.equal(routers.body.data[0].isOnline, true)
    } finally {
      sse.close()
    }
  })

  it('pushes services-changed on a policy change and revoked on re-enroll; the old certificate is then refused', async () => {
    const sse = await openSse(`${c.url}/edge/client/v1/events`, {
      ca: c.caPem,
      cert: laptop.cert,
      key: laptop.key,
    })
    assert.equal(sse.status, 200)
    try {
      const p = await c.api('POST', 'service-policies', {
        name: 'laptops-bind-db',
        type: 'Bind',
        identityRoles: ['@laptop'],
        serviceRoles: ['@db'],
      })
      assert.equal(p.status, 201, p.text)
      const ev = await sse.next('services-changed')
      assert.equal(ev.data.type, 'services-changed')
      assert.ok(ev.data.version > 0)
      const s = await client(laptop, 'GET', '/services')
      const db = s.body.data.find((x: { name: string }) => x.name === 'db')
      assert.deepEqual(db.permissions, ['Bind'])

      // A config change also reaches the session.
      const u = await c.api('PATCH', 'configs/web-intercept', {
        data: { protocols: ['tcp'], addresses: ['web2.ziti'], portRanges: [{ low: 80, high: 80 }] },
      })
      assert.equal(u.status, 200, u.text)
      await sse.next('services-changed')

      const re = await c.api('POST', `identities/${laptop.id}/re-enroll`, {})
      assert.equal(re.status, 200, re.text)
      const rv = await sse.next('revoked')
      assert.equal(rv.data.type, 'revoked')
      await sse.end()
    } finally {
      sse.close()
    }
    const after = await client(laptop, 'GET', '/services')
    assert.equal(after.status, 401)
    assert.equal(after.body.error.code, 'ERR_CERT_REVOKED')
    const auth = await client(laptop, 'POST', '/authenticate?method=cert')
    assert.equal(auth.body.error.code, 'ERR_CERT_REVOKED')
  })

  it('disabling an identity ends its event stream with revoked and refuses its requests', async () => {
    const sse = await openSse(`${c.url}/edge/client/v1/events`, {
      ca: c.caPem,
      cert: server.cert,
      key: server.key,
    })
    try {
      const d = await c.api('PATCH', 'identities/server', { disabled: true })
      assert.equal(d.status, 200, d.text)
      const rv = await sse.next('revoked')
      assert.match(rv.data.reason, /disabled/)
      await sse.end()
    } finally {
      sse.close()
    }
    const r = await client(server, 'GET', '/services')
    assert.equal(r.status, 403)
    assert.equal(r.body.error.code, 'ERR_IDENTITY_DISABLED')
  })
})
