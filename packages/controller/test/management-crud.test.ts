import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { spawnController, type TestController } from '@nullport/testkit'

describe('management API: CRUD over a real controller', () => {
  let c: TestController
  before(async () => {
    c = await spawnController({ runner: 'library' })
  })
  after(async () => {
    await c?.stop()
  })

  it('identities: create (case-insensitive type) returns an enrollment JWT; get by id and by name; patch; delete', async () => {
    const r = await c.api('POST', 'identities', {
      name: 'python.django',
      type: 'device',
      roleAttributes: ['python.django.servers'],
    })
    assert.equal(r.status, 201, r.text)
    const id = r.body.data.id
    assert.equal(r.body.data.type, 'Device')
    assert.deepEqual(r.body.data.roleAttributes, ['python.django.servers'])
    assert.equal(r.body.data.isAdmin, false)
    assert.match(r.body.data.enrollment.jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/)
    assert.ok(Date.parse(r.body.data.enrollment.expiresAt) > Date.now())
    const claims = JSON.parse(Buffer.from(r.body.data.enrollment.jwt.split('.')[1], 'base64url').toString())
    assert.equal(claims.sub, id)
    assert.equal(claims.em, 'ott')
    assert.equal(claims.name, 'python.django')

    for (const ref of [id, 'python.django']) {
      const g = await c.api('GET', `identities/${encodeURIComponent(ref)}`)
      assert.equal(g.status, 200)
      assert.equal(g.body.data.id, id)
      assert.equal(g.body.data.enrollment.method, 'ott')
    }
    const u = await c.api('PATCH', 'identities/python.django', {
      roleAttributes: ['a', 'b', 'c'],
      type: 'USER',
    })
    assert.equal(u.status, 200, u.text)
    assert.deepEqual(u.body.data.roleAttributes, ['a', 'b', 'c'])
    assert.equal(u.body.data.type, 'User')
    const d = await c.api('DELETE', `identities/${id}`)
    assert.equal(d.status, 200)
    assert.equal((await c.api('GET', `identities/${id}`)).status, 404)
  })

  it('services with configs by name; config types; configs; delete cascades config links but keeps configs', async () => {
    const cfg = await c.api('POST', 'configs', {
      name: 'web.intercept',
      configTypeId: 'intercept.v1',
      data: { protocols: ['tcp'], addresses: ['web.ziti'], portRanges: [{ low: 80, high: 80 }] },
    })
    assert.equal(cfg.status, 201, cfg.text)
    assert.equal(cfg.body.data.configTypeName, 'intercept.v1')
    const host = await c.api('POST', 'configs', {
      name: 'web.host',
      configTypeId: 'host.v1',
      data: {
        protocol: 'tcp',
        address: '127.0.0.1',
        port: 8080,
        listenOptions: { cost: 5, precedence: 'required' },
      },
    })
    assert.equal(host.status, 201, host.text)
    const s = await c.api('POST', 'services', {
      name: 'web',
      roleAttributes: ['web'],
      configs: ['web.intercept', host.body.data.id],
    })
    assert.equal(s.status, 201, s.text)
    assert.equal(s.body.data.encryptionRequired, true)
    assert.equal(s.body.data.terminatorStrategy, 'smartrouting')
    assert.deepEqual(new Set(s.body.data.configs), new Set([cfg.body.data.id, host.body.data.id]))
    assert.deepEqual(s.body.data.configsDisplay.map((x: { name: string }) => x.name).sort(), [
      'web.host',
      'web.intercept',
    ])

    const ct = await c.api('POST', 'config-types', {
      name: 'my.v1',
      schema: {
        type: 'object',
        required: ['n'],
        additionalProperties: false,
        properties: { n: { type: 'integer', minimum: 1 } },
      },
    })
    assert.equal(ct.status, 201, ct.text)
    const mine = await c.api('POST', 'configs', { name: 'mine', configTypeId: 'my.v1', data: { n: 3 } })
    assert.equal(mine.status, 201, mine.text)
    const p = await c.api('PATCH', 'configs/mine', { data: { n: 4 } })
    assert.equal(p.status, 200)
    assert.deepEqual(p.body.data.data, { n: 4 })

    const del = await c.api('DELETE', 'services/web')
    assert.equal(del.status, 200)
    assert.equal((await c.api('GET', 'configs/web.intercept')).status, 200)
    // now unused: deletable
    assert.equal((await c.api('DELETE', 'configs/web.intercept')).status, 200)
    assert.equal((await c.api('DELETE', 'configs/mine')).status, 200)
    assert.equal((await c.api('DELETE', 'config-types/my.v1')).status, 200)
    const builtins = await c.api('GET', 'config-types')
    assert.deepEqual(
      builtins.body.data.map((t: { name: string }) => t.name),
      ['host.v1', 'intercept.v1'],
    )
    assert.equal((await c.api('DELETE', 'config-types/intercept.v1')).body.error.code, 'ERR_BUILTIN_READONLY')
  })

  it('the seed: identities, config, service, Dial/Bind policies, routers and router policies; advisor and names resolved', async () => {
    const ok = async (method: string, path: string, body?: unknown, status = 201) => {
      const r = await c.api(method, path, body)
      assert.equal(r.status, status, `${method} ${path}: ${r.text}`)
      return r.body
    }
    await ok('POST', 'identities', {
      name: 'django.host',
      type: 'Device',
      roleAttributes: ['family.tools.servers'],
    })
    const geoff = await ok('POST', 'identities', { name: 'geoff.berl', type: 'User' })
    await ok('POST', 'configs', {
      name: 'python.django.interceptv1',
      configTypeId: 'intercept.v1',
      data: { protocols: ['tcp'], addresses: ['family.tools.ziti'], portRanges: [{ low: 80, high: 80 }] },
    })
    const svc = await ok('POST', 'services', { name: 'family.tools', configs: ['python.django.interceptv1'] })
    const bind = await ok('POST', 'service-policies', {
      name: 'python.django.bind',
      type: 'Bind',
      serviceRoles: ['@family.tools'],
      identityRoles: ['#family.tools.servers'],
    })
    assert.deepEqual(bind.data.serviceRoles, [`@${svc.data.id}`])
    assert.deepEqual(bind.data.serviceRolesDisplay, [{ role: `@${svc.data.id}`, name: '@family.tools' }])
    assert.equal(bind.data.semantic, 'AnyOf')
    assert.equal(bind.meta.warnings, undefined)
    const dial = await ok('POST', 'service-policies', {
      name: 'python.django.dial',
      type: 'dial',
      serviceRoles: ['@family.tools'],
      identityRoles: ['#family.tools.clients'],
    })
    assert.equal(dial.data.type, 'Dial')
    assert.deepEqual(dial.meta.warnings, ['identityRoles: #family.tools.clients matches no identity yet'])
    await ok(
      'PATCH',
      'identities/geoff.berl',
      { roleAttributes: ['berlhome.assistant.clients', 'berlhome.mc.clients', 'family.tools.clients'] },
      200,
    )
    const er = await ok('POST', 'edge-routers', { name: 'er1', roleAttributes: ['public'] })
    assert.match(er.data.enrollment.jwt, /\./)
    const claims = JSON.parse(Buffer.from(er.data.enrollment.jwt.split('.')[1], 'base64url').toString())
    assert.equal(claims.em, 'erott')
    const erp = await ok('POST', 'edge-router-policies', {
      name: 'all-ids',
      identityRoles: ['#all'],
      edgeRouterRoles: ['#public'],
    })
    assert.deepEqual(erp.data.edgeRouterRolesDisplay, [{ role: '#public', name: '#public' }])
    const serp = await ok('POST', 'service-edge-router-policies', {
      name: 'all-svcs',
      serviceRoles: ['#all'],
      edgeRouterRoles: ['@er1'],
    })
    assert.deepEqual(serp.data.edgeRouterRolesDisplay, [{ role: `@${er.data.id}`, name: '@er1' }])

    const adv = await c.api(
      'GET',
      '/edge/management/v1/policy-advisor/identities/geoff.berl/services/family.tools',
    )
    assert.equal(adv.status, 200, adv.text)
    assert.equal(adv.body.data.canDial, true)
    assert.equal(adv.body.data.canBind, false)
    assert.deepEqual(adv.body.data.dialPolicies, ['python.django.dial'])
    assert.deepEqual(
      adv.body.data.commonRouters.map((r: { name: string }) => r.name),
      ['er1'],
    )
    const adv2 = await c.api(
      'GET',
      '/edge/management/v1/policy-advisor/identities/django.host/services/family.tools',
    )
    assert.equal(adv2.body.data.canBind, true)
    assert.equal(adv2.body.data.canDial, false)

    const list = await c.api('GET', 'identities/geoff.berl/services')
    assert.equal(list.status, 200, list.text)
    assert.deepEqual(
      list.body.data.map((x: { name: string; permissions: string[] }) => [x.name, x.permissions]),
      [['family.tools', ['Dial']]],
    )
    assert.deepEqual(list.body.data[0].config['intercept.v1'].addresses, ['family.tools.ziti'])
    assert.deepEqual(list.body.data[0].edgeRouterIds, [er.data.id])
    // remove the attribute: the advisor follows at once (index updated from the change feed)
    await ok('PATCH', `identities/${geoff.data.id}`, { roleAttributes: [] }, 200)
    const adv3 = await c.api(
      'GET',
      '/edge/management/v1/policy-advisor/identities/geoff.berl/services/family.tools',
    )
    assert.equal(adv3.body.data.canDial, false)

    // router update/re-enroll/delete
    const re = await ok('POST', 'edge-routers/er1/re-enroll', undefined, 200)
    assert.notEqual(re.data.enrollment.jwt, er.data.enrollment.jwt)
    await ok('PATCH', 'edge-routers/er1', { cost: 10, disabled: true }, 200)
    const g = await ok('GET', 'edge-routers/er1', undefined, 200)
    assert.equal(g.data.cost, 10)
    assert.equal(g.data.disabled, true)
    assert.equal(g.data.isOnline, false)
    // deleting a policy / router
    await ok('DELETE', 'service-edge-router-policies/all-svcs', undefined, 200)
    await ok('DELETE', 'edge-router-policies/all-ids', undefined, 200)
    await ok('DELETE', 'edge-routers/er1', undefined, 200)
    const pol = await ok('GET', 'service-policies/python.django.dial', undefined, 200)
    assert.equal(pol.data.type, 'Dial')
    await ok(
      'PATCH',
      'service-policies/python.django.dial',
      { semantic: 'AllOf', postureCheckRoles: ['#mfa'] },
      200,
    )
    const pol2 = await ok('GET', 'service-policies/python.django.dial', undefined, 200)
    assert.equal(pol2.data.semantic, 'AllOf')
    assert.deepEqual(pol2.data.postureCheckRoles, ['#mfa'])
  })

  it('lists: limit/offset, filter, roleFilter (AllOf/AnyOf, @name), totalCount', async () => {
    for (let i = 0; i < 12; i++) {
      const attrs = [i % 2 === 0 ? 'even' : 'odd', ...(i % 3 === 0 ? ['three'] : [])]
      const r = await c.api('POST', 'identities', {
        name: `list-${String(i).padStart(2, '0')}`,
        roleAttributes: attrs,
      })
      assert.equal(r.status, 201)
    }
    const p1 = await c.api(
      'GET',
      'identities?filter=' + encodeURIComponent('name contains "list-"') + '&limit=5&offset=0',
    )
    assert.equal(p1.status, 200, p1.text)
    assert.equal(p1.body.data.length, 5)
    assert.deepEqual(p1.body.meta.pagination, { limit: 5, offset: 0, totalCount: 12 })
    assert.equal(p1.body.data[0].name, 'list-00')
    const p3 = await c.api(
      'GET',
      'identities?filter=' + encodeURIComponent('name contains "LIST-"') + '&limit=5&offset=10',
    )
    assert.deepEqual(
      p3.body.data.map((x: { name: string }) => x.name),
      ['list-10', 'list-11'],
    )
    const eq = await c.api('GET', 'identities?filter=' + encodeURIComponent('name = "list-03"'))
    assert.equal(eq.body.data.length, 1)
    const even = await c.api('GET', 'identities?roleFilter=%23even')
    assert.equal(even.body.meta.pagination.totalCount, 6)
    const both = await c.api('GET', 'identities?roleFilter=%23even&roleFilter=%23three')
    assert.deepEqual(
      both.body.data.map((x: { name: string }) => x.name),
      ['list-00', 'list-06'],
    )
    const any = await c.api('GET', 'identities?roleFilter=%23odd&roleFilter=%23three&roleSemantic=AnyOf')
    assert.equal(any.body.meta.pagination.totalCount, 8)
    const at = await c.api('GET', 'identities?roleFilter=%40list-05')
    assert.deepEqual(
      at.body.data.map((x: { name: string }) => x.name),
      ['list-05'],
    )
    const bad = await c.api('GET', 'identities?filter=' + encodeURIComponent('nope ~ 3'))
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, 'ERR_INVALID_FILTER')
    const big = await c.api('GET', 'identities?limit=5000')
    assert.equal(big.status, 400)
    assert.equal(big.body.error.code, 'ERR_VALIDATION')
    assert.equal(big.body.error.path, '$query.limit')
  })

  it('every change writes an audit row (who, what, when, entity)', async () => {
    const r = await c.api('POST', 'services', { name: 'audited' })
    const id = r.body.data.id
    await c.api('PATCH', `services/${id}`, { roleAttributes: ['x'] })
    await c.api('DELETE', `services/${id}`)
    const a = await c.api('GET', `audit-log?entityId=${id}`)
    assert.equal(a.status, 200, a.text)
    assert.deepEqual(
      a.body.data.map((x: { action: string }) => x.action),
      ['delete', 'update', 'create'],
    )
    for (const row of a.body.data) {
      assert.equal(row.actor.name, 'admin')
      assert.equal(row.entityType, 'service')
      assert.equal(row.entityName, 'audited')
      assert.ok(Date.parse(row.at) > Date.now() - 60_000)
    }
  })

  it('PATCH and DELETE work for every entity type, by id or by name', async () => {
    const mk = async (type: string, body: Record<string, unknown>) => {
      const r = await c.api('POST', type, body)
      assert.equal(r.status, 201, `${type}: ${r.text}`)
      return r.body.data
    }
    const ct = await mk('config-types', {
      name: 'p.v1',
      schema: { type: 'object', properties: { n: { type: 'integer' } } },
    })
    await mk('configs', { name: 'p-cfg', configTypeId: 'p.v1', data: { n: 1 } })
    // a schema change that would invalidate an existing config is refused
    const bad = await c.api('PATCH', 'config-types/p.v1', { schema: { type: 'object', required: ['m'] } })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, 'ERR_CONFIG_INVALID')
    const ren = await c.api('PATCH', `config-types/${ct.id}`, { name: 'p.v2' })
    assert.equal(ren.status, 200)
    assert.equal((await c.api('GET', 'configs/p-cfg')).body.data.configTypeName, 'p.v2')
    assert.equal((await c.api('DELETE', 'config-types/p.v2')).body.error.code, 'ERR_CONFIG_TYPE_IN_USE')
    const r = await mk('edge-routers', { name: 'p-router', roleAttributes: ['edge'] })
    await mk('services', { name: 'p-svc', roleAttributes: ['x'] })
    await mk('edge-router-policies', { name: 'p-erp', identityRoles: ['#all'], edgeRouterRoles: ['#edge'] })
    await mk('service-edge-router-policies', {
      name: 'p-serp',
      serviceRoles: ['#x'],
      edgeRouterRoles: ['#edge'],
    })
    const patches: Array<[string, string, Record<string, unknown>, (d: Record<string, unknown>) => void]> = [
      ['configs', 'p-cfg', { name: 'p-cfg2', data: { n: 2 } }, (d) => assert.deepEqual(d.data, { n: 2 })],
      [
        'edge-routers',
        r.id,
        { roleAttributes: ['edge', 'eu'] },
        (d) => assert.deepEqual(d.roleAttributes, ['edge', 'eu']),
      ],
      [
        'services',
        'p-svc',
        { encryptionRequired: false, terminatorStrategy: 'random' },
        (d) => assert.equal(d.terminatorStrategy, 'random'),
      ],
      [
        'edge-router-policies',
        'p-erp',
        { semantic: 'allof', edgeRouterRoles: ['#edge', '#eu'] },
        (d) => assert.equal(d.semantic, 'AllOf'),
      ],
      [
        'service-edge-router-policies',
        'p-serp',
        { edgeRouterRoles: ['@p-router'] },
        (d) => assert.deepEqual(d.edgeRouterRoles, [`@${r.id}`]),
      ],
    ]
    for (const [type, ref, body, check] of patches) {
      const p = await c.api('PATCH', `${type}/${encodeURIComponent(ref)}`, body)
      assert.equal(p.status, 200, `${type}: ${p.text}`)
      check(p.body.data)
      const g = await c.api('GET', `${type}/${p.body.data.id}`)
      check(g.body.data)
    }
    for (const [type, ref] of [
      ['service-edge-router-policies', 'p-serp'],
      ['edge-router-policies', 'p-erp'],
      ['services', 'p-svc'],
      ['edge-routers', 'p-router'],
      ['configs', 'p-cfg2'],
      ['config-types', 'p.v2'],
    ]) {
      assert.equal((await c.api('DELETE', `${type}/${ref}`)).status, 200, `${type} ${ref}`)
      assert.equal((await c.api('GET', `${type}/${ref}`)).status, 404)
    }
  })

  it('terminators list is read-only and empty without routers', async () => {
    const t = await c.api('GET', 'terminators')
    assert.equal(t.status, 200)
    assert.deepEqual(t.body.data, [])
    assert.equal((await c.api('POST', 'terminators', {})).status, 404)
  })
})
