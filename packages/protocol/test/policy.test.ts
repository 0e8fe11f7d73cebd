import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type AuthzResult,
  isProtocolError,
  PolicyImpact,
  PolicyIndex,
  parseRole,
  rolesMatch,
} from '../src/index.js'
import { erp, ident, rtr, serp, snapshot, sorted, sp, svc, term } from './policy-fixtures.js'

function denyCode(r: AuthzResult): string {
  return r.ok ? 'ok' : r.code
}

test('parseRole accepts #all, #attr and @id', () => {
  assert.deepEqual(parseRole('#all'), { kind: 'all' })
  assert.deepEqual(parseRole('#family.tools.clients'), { kind: 'attr', value: 'family.tools.clients' })
  assert.deepEqual(parseRole('@id_4Yf'), { kind: 'id', value: 'id_4Yf' })
  assert.deepEqual(parseRole('#allow'), { kind: 'attr', value: 'allow' })
})

test('parseRole rejects malformed roles with ERR_POLICY_ROLE', () => {
  for (const bad of ['', 'laptop', '#', '@', ' #a', '#a ', '#a b', '@x\ty', 'all', '!x', '#\n']) {
    assert.throws(
      () => parseRole(bad),
      (err: unknown) => isProtocolError(err, 'ERR_POLICY_ROLE') && /'#servers'/.test((err as Error).message),
      `role ${JSON.stringify(bad)} should be refused`,
    )
  }
})

const roleModel = (): PolicyIndex => {
  const idx = new PolicyIndex()
  idx.load(
    snapshot({
      identities: [ident('a', ['x', 'y']), ident('b', ['x']), ident('c', ['y', 'z']), ident('d', [])],
      services: [svc('s1', ['x']), svc('s2', ['x', 'y'])],
      routers: [rtr('r1', ['x']), rtr('r2', ['y'])],
    }),
  )
  return idx
}

test('role forms and semantics select the right entities (match* functions)', () => {
  const idx = roleModel()
  const m = (roles: string[], semantic: 'AnyOf' | 'AllOf') => sorted(idx.matchIdentities(roles, semantic))
  assert.deepEqual(m(['#all'], 'AnyOf'), ['a', 'b', 'c', 'd'])
  assert.deepEqual(m(['#all'], 'AllOf'), ['a', 'b', 'c', 'd'], '#all in AllOf is satisfied by everyone')
  assert.deepEqual(m(['#x'], 'AnyOf'), ['a', 'b'])
  assert.deepEqual(m(['#x', '#y'], 'AnyOf'), ['a', 'b', 'c'])
  assert.deepEqual(m(['#x', '#y'], 'AllOf'), ['a'])
  assert.deepEqual(m(['#x', '#nobody'], 'AllOf'), [])
  assert.deepEqual(m(['#x', '#nobody'], 'AnyOf'), ['a', 'b'])
  assert.deepEqual(m(['@d'], 'AnyOf'), ['d'])
  assert.deepEqual(m(['@d', '@c'], 'AllOf'), ['c', 'd'], 'ids are OR-ed whatever the semantic (as OpenZiti)')
  assert.deepEqual(m(['@d', '#x'], 'AllOf'), ['a', 'b', 'd'])
  assert.deepEqual(m(['@ghost'], 'AnyOf'), [], 'a dangling @id selects nothing')
  assert.deepEqual(m(['@ghost', '#z'], 'AnyOf'), ['c'])
  assert.deepEqual(m([], 'AnyOf'), [], 'an empty role list matches nothing')
  assert.deepEqual(m([], 'AllOf'), [])
  assert.deepEqual(m(['#all', '#z'], 'AllOf'), ['a', 'b', 'c', 'd'])
  assert.deepEqual(sorted(idx.matchServices(['#x', '#y'], 'AllOf')), ['s2'])
  assert.deepEqual(sorted(idx.matchServices(['#y'], 'AnyOf')), ['s2'])
  assert.deepEqual(sorted(idx.matchRouters(['#all'], 'AllOf')), ['r1', 'r2'])
  assert.deepEqual(sorted(idx.matchRouters(['@r2', '#x'], 'AnyOf')), ['r1', 'r2'])
  assert.throws(
    () => idx.matchIdentities(['x'], 'AnyOf'),
    (e: unknown) => isProtocolError(e, 'ERR_POLICY_ROLE'),
  )
  assert.equal(rolesMatch(['#x', '#y'], 'AllOf', { id: 'q', roleAttributes: ['y', 'x'] }), true)
  assert.equal(rolesMatch(['#x', '#y'], 'AllOf', { id: 'q', roleAttributes: ['y'] }), false)
  assert.equal(rolesMatch([], 'AnyOf', { id: 'q', roleAttributes: ['y'] }), false)
})

test('stored malformed roles never match and make AllOf fail closed', () => {
  const idx = roleModel()
  idx.apply({
    op: 'upsert',
    version: 2,
    entity: 'servicePolicy',
    data: sp('p', 'Dial', ['#x', 'bad role'], ['#all'], 'AllOf'),
  })
  idx.apply({
    op: 'upsert',
    version: 2,
    entity: 'servicePolicy',
    data: sp('q', 'Bind', ['#z', 'oops'], ['#all'], 'AnyOf'),
  })
  assert.deepEqual(sorted(idx.servicesFor('a', 'Dial')), [])
  assert.deepEqual(sorted(idx.servicesFor('c', 'Bind')), ['s1', 's2'])
  assert.deepEqual(sorted(idx.servicesFor('b', 'Bind')), [])
})

const fullModel = () =>
  snapshot({
    version: 10,
    identities: [
      ident('laptop', ['family.tools.clients']),
      ident('host', ['family.tools.servers']),
      ident('both', ['family.tools.clients', 'family.tools.servers']),
      ident('off', ['family.tools.clients'], true),
      ident('stranger', ['other']),
    ],
    services: [svc('family.tools', ['tools']), svc('wiki', ['tools', 'docs']), svc('secret', ['hidden'])],
    routers: [
      rtr('r1', ['public']),
      rtr('r2', ['public']),
      rtr('r3', ['private']),
      rtr('rdown', ['public'], true),
    ],
    servicePolicies: [
      sp('tools.dial', 'Dial', ['#family.tools.clients'], ['#tools']),
      sp('tools.bind', 'Bind', ['#family.tools.servers'], ['@family.tools']),
    ],
    edgeRouterPolicies: [
      erp('clients.public', ['#family.tools.clients'], ['#public']),
      erp('host.r3', ['@host'], ['@r3']),
    ],
    serviceEdgeRouterPolicies: [serp('tools.routers', ['#tools'], ['@r1', '@r3', '@rdown'])],
    terminators: [term('t1', 'family.tools', 'r3', 'host')],
  })

test('Dial and Bind are separate grants', () => {
  const idx = new PolicyIndex()
  idx.load(fullModel())
  assert.equal(idx.version, 10)
  assert.deepEqual(sorted(idx.servicesFor('laptop', 'Dial')), ['family.tools', 'wiki'])
  assert.deepEqual(sorted(idx.servicesFor('laptop', 'Bind')), [])
  assert.deepEqual(sorted(idx.servicesFor('host', 'Bind')), ['family.tools'])
  assert.deepEqual(sorted(idx.servicesFor('host', 'Dial')), [])
  assert.deepEqual(sorted(idx.servicesFor('both', 'Dial')), ['family.tools', 'wiki'])
  assert.deepEqual(sorted(idx.servicesFor('both', 'Bind')), ['family.tools'])
  assert.deepEqual(sorted(idx.servicesFor('stranger', 'Dial')), [])
  assert.deepEqual(sorted(idx.servicesFor('nobody', 'Dial')), [])
  assert.deepEqual(idx.grantingPolicies('laptop', 'wiki', 'Dial'), ['tools.dial'])
  assert.deepEqual(idx.grantingPolicies('laptop', 'wiki', 'Bind'), [])
  assert.deepEqual(idx.grantingPolicies('laptop', 'ghost', 'Dial'), [])
  assert.deepEqual(
    sorted(idx.identitiesFor('family.tools', 'Dial')),
    ['both', 'laptop'],
    'disabled identity excluded',
  )
  assert.deepEqual(sorted(idx.identitiesFor('family.tools', 'Bind')), ['both', 'host'])
  assert.equal(denyCode(idx.authorize('laptop', 'family.tools', 'Dial', 'r1')), 'ok')
  assert.equal(denyCode(idx.authorize('laptop', 'family.tools', 'Bind', 'r1')), 'ERR_NO_BIND_PERMISSION')
  assert.equal(denyCode(idx.authorize('host', 'family.tools', 'Bind', 'r3')), 'ok')
  assert.equal(denyCode(idx.authorize('host', 'family.tools', 'Dial', 'r3')), 'ERR_NO_DIAL_PERMISSION')
  assert.equal(denyCode(idx.authorize('host', 'wiki', 'Bind', 'r3')), 'ERR_NO_BIND_PERMISSION')
})

test('edge router policies and service edge router policies gate routers; disabled routers are excluded', () => {
  const idx = new PolicyIndex()
  idx.load(fullModel())
  assert.deepEqual(sorted(idx.routersForIdentity('laptop')), ['r1', 'r2'])
  assert.deepEqual(sorted(idx.routersForIdentity('laptop', { includeDisabled: true })), ['r1', 'r2', 'rdown'])
  assert.deepEqual(sorted(idx.routersForIdentity('host')), ['r3'])
  assert.deepEqual(sorted(idx.routersForIdentity('stranger')), [])
  assert.deepEqual(sorted(idx.routersForIdentity('off')), [], 'a disabled identity may use no router')
  assert.deepEqual(sorted(idx.routersForService('family.tools')), ['r1', 'r3'])
  assert.deepEqual(sorted(idx.routersForService('secret')), [])
  assert.deepEqual(sorted(idx.routersForService('ghost')), [])
  assert.deepEqual(sorted(idx.routersFor('laptop', 'family.tools')), ['r1'])
  assert.deepEqual(sorted(idx.routersFor('host', 'family.tools')), ['r3'])
  // ERP gate: laptop may not use r3 (private), although the service may.
  assert.equal(denyCode(idx.authorize('laptop', 'family.tools', 'Dial', 'r3')), 'ERR_NO_EDGE_ROUTER_POLICY')
  // SERP gate: laptop may use r2, the service may not.
  assert.equal(
    denyCode(idx.authorize('laptop', 'family.tools', 'Dial', 'r2')),
    'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
  )
  assert.equal(denyCode(idx.authorize('laptop', 'family.tools', 'Dial', 'rdown')), 'ERR_ROUTER_DISABLED')
})

test('authorize returns each deny code, first failure first, with a message naming the fix', () => {
  const idx = new PolicyIndex()
  idx.load(fullModel())
  const cases: Array<[string, string, 'Dial' | 'Bind', string, string, RegExp]> = [
    ['ghost', 'family.tools', 'Dial', 'r1', 'ERR_IDENTITY_NOT_FOUND', /nullport edge list identities/],
    [
      'off',
      'ghost',
      'Dial',
      'ghost',
      'ERR_IDENTITY_DISABLED',
      /nullport edge update identity off --disabled=false/,
    ],
    ['laptop', 'ghost', 'Dial', 'r1', 'ERR_SERVICE_NOT_FOUND', /nullport edge list services/],
    [
      'stranger',
      'family.tools',
      'Dial',
      'ghost',
      'ERR_NO_DIAL_PERMISSION',
      /identity stranger has no Dial policy for service family.tools: run `nullport edge policy-advisor identities stranger family.tools`, or create one with `nullport edge create service-policy family.tools.dial Dial --service-roles '@family.tools' --identity-roles '@stranger'`/,
    ],
    [
      'laptop',
      'family.tools',
      'Bind',
      'r1',
      'ERR_NO_BIND_PERMISSION',
      /create service-policy family.tools.bind Bind/,
    ],
    ['laptop', 'family.tools', 'Dial', 'ghost', 'ERR_ROUTER_NOT_FOUND', /nullport edge list edge-routers/],
    [
      'laptop',
      'family.tools',
      'Dial',
      'rdown',
      'ERR_ROUTER_DISABLED',
      /update edge-router rdown --disabled=false/,
    ],
    [
      'laptop',
      'family.tools',
      'Dial',
      'r3',
      'ERR_NO_EDGE_ROUTER_POLICY',
      /nullport edge create edge-router-policy laptop.routers --identity-roles '@laptop' --edge-router-roles '@r3'/,
    ],
    [
      'laptop',
      'family.tools',
      'Dial',
      'r2',
      'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
      /nullport edge create service-edge-router-policy family.tools.routers --service-roles '@family.tools' --edge-router-roles '@r2'/,
    ],
  ]
  for (const [i, s, type, r, code, message] of cases) {
    const res = idx.authorize(i, s, type, r)
    assert.equal(denyCode(res), code, `${i} ${type} ${s} at ${r}`)
    assert.ok(!res.ok && message.test(res.message), `${code} message: ${res.ok ? '' : res.message}`)
  }
})

test('a disabled identity may dial nothing, and re-enabling restores access', () => {
  const idx = new PolicyIndex()
  idx.load(fullModel())
  assert.deepEqual(sorted(idx.servicesFor('off', 'Dial')), [])
  assert.equal(denyCode(idx.authorize('off', 'family.tools', 'Dial', 'r1')), 'ERR_IDENTITY_DISABLED')
  assert.deepEqual(
    idx.grantingPolicies('off', 'family.tools', 'Dial'),
    ['tools.dial'],
    'policies still listed',
  )
  idx.apply({
    op: 'upsert',
    version: 11,
    entity: 'identity',
    data: ident('off', ['family.tools.clients'], false),
  })
  assert.deepEqual(sorted(idx.servicesFor('off', 'Dial')), ['family.tools', 'wiki'])
  assert.equal(denyCode(idx.authorize('off', 'family.tools', 'Dial', 'r1')), 'ok')
})

test('apply(): identity attribute change grants; policy removal revokes; service and policy upserts', () => {
  const idx = new PolicyIndex()
  idx.load(fullModel())
  assert.equal(denyCode(idx.authorize('stranger', 'family.tools', 'Dial', 'r1')), 'ERR_NO_DIAL_PERMISSION')
  idx.apply({
    op: 'upsert',
    version: 11,
    entity: 'identity',
    data: ident('stranger', ['other', 'family.tools.clients']),
  })
  assert.equal(
    denyCode(idx.authorize('stranger', 'family.tools', 'Dial', 'r1')),
    'ok',
    'attribute added: access granted',
  )
  idx.apply({ op: 'upsert', version: 12, entity: 'identity', data: ident('stranger', ['other']) })
  assert.equal(denyCode(idx.authorize('stranger', 'family.tools', 'Dial', 'r1')), 'ERR_NO_DIAL_PERMISSION')

  idx.apply({ op: 'delete', version: 13, entity: 'servicePolicy', id: 'tools.dial' })
  assert.equal(
    denyCode(idx.authorize('laptop', 'family.tools', 'Dial', 'r1')),
    'ERR_NO_DIAL_PERMISSION',
    'revoked',
  )
  assert.deepEqual(sorted(idx.servicesFor('laptop', 'Dial')), [])

  // A policy upsert that changes its roles replaces the old indexing entirely.
  idx.apply({
    op: 'upsert',
    version: 14,
    entity: 'servicePolicy',
    data: sp('x', 'Dial', ['@stranger'], ['#docs']),
  })
  assert.deepEqual(sorted(idx.servicesFor('stranger', 'Dial')), ['wiki'])
  idx.apply({
    op: 'upsert',
    version: 15,
    entity: 'servicePolicy',
    data: sp('x', 'Dial', ['@laptop'], ['#docs']),
  })
  assert.deepEqual(sorted(idx.servicesFor('stranger', 'Dial')), [])
  assert.deepEqual(sorted(idx.servicesFor('laptop', 'Dial')), ['wiki'])
  // Changing the type moves it between the Dial and Bind indexes.
  idx.apply({
    op: 'upsert',
    version: 16,
    entity: 'servicePolicy',
    data: sp('x', 'Bind', ['@laptop'], ['#docs']),
  })
  assert.deepEqual(sorted(idx.servicesFor('laptop', 'Dial')), [])
  assert.deepEqual(sorted(idx.servicesFor('laptop', 'Bind')), ['wiki'])

  // Service attributes: secret gains #docs and becomes bindable by laptop.
  idx.apply({ op: 'upsert', version: 17, entity: 'service', data: svc('secret', ['hidden', 'docs']) })
  assert.deepEqual(sorted(idx.servicesFor('laptop', 'Bind')), ['secret', 'wiki'])
  idx.apply({ op: 'delete', version: 18, entity: 'service', id: 'wiki' })
  assert.deepEqual(sorted(idx.servicesFor('laptop', 'Bind')), ['secret'])
  assert.equal(idx.service('wiki'), undefined)
  assert.equal(denyCode(idx.authorize('laptop', 'wiki', 'Bind', 'r1')), 'ERR_SERVICE_NOT_FOUND')
  // Identity delete
  idx.apply({ op: 'delete', version: 19, entity: 'identity', id: 'laptop' })
  assert.equal(denyCode(idx.authorize('laptop', 'secret', 'Bind', 'r1')), 'ERR_IDENTITY_NOT_FOUND')
  assert.deepEqual(sorted(idx.servicesFor('laptop', 'Bind')), [])
  assert.equal(idx.version, 19)
})

test('apply(): routers, edge router policies and service edge router policies', () => {
  const idx = new PolicyIndex()
  idx.load(fullModel())
  // Disable a router: it leaves every answer.
  idx.apply({ op: 'upsert', version: 11, entity: 'router', data: rtr('r1', ['public'], true) })
  assert.deepEqual(sorted(idx.routersForIdentity('laptop')), ['r2'])
  assert.equal(denyCode(idx.authorize('laptop', 'family.tools', 'Dial', 'r1')), 'ERR_ROUTER_DISABLED')
  idx.apply({ op: 'upsert', version: 12, entity: 'router', data: rtr('r1', ['public'], false) })
  assert.equal(denyCode(idx.authorize('laptop', 'family.tools', 'Dial', 'r1')), 'ok')
  // Router attribute change: r2 becomes private, laptop loses it.
  idx.apply({ op: 'upsert', version: 13, entity: 'router', data: rtr('r2', ['private']) })
  assert.deepEqual(sorted(idx.routersForIdentity('laptop')), ['r1'])
  // A new router with #public joins laptop's routers.
  idx.apply({ op: 'upsert', version: 14, entity: 'router', data: rtr('r9', ['public']) })
  assert.deepEqual(sorted(idx.routersForIdentity('laptop')), ['r1', 'r9'])
  // Router delete: dangling @r3 in policies does not crash; r3 disappears.
  idx.apply({ op: 'delete', version: 15, entity: 'router', id: 'r3' })
  assert.deepEqual(sorted(idx.routersForService('family.tools')), ['r1'])
  assert.deepEqual(sorted(idx.routersForIdentity('host')), [])
  assert.equal(denyCode(idx.authorize('host', 'family.tools', 'Bind', 'r3')), 'ERR_ROUTER_NOT_FOUND')
  // ERP delete revokes router access.
  idx.apply({ op: 'delete', version: 16, entity: 'edgeRouterPolicy', id: 'clients.public' })
  assert.equal(denyCode(idx.authorize('laptop', 'family.tools', 'Dial', 'r1')), 'ERR_NO_EDGE_ROUTER_POLICY')
  idx.apply({
    op: 'upsert',
    version: 17,
    entity: 'edgeRouterPolicy',
    data: erp('everyone', ['#all'], ['#all']),
  })
  assert.equal(denyCode(idx.authorize('laptop', 'family.tools', 'Dial', 'r1')), 'ok')
  // SERP upsert narrowing, then delete.
  idx.apply({
    op: 'upsert',
    version: 18,
    entity: 'serviceEdgeRouterPolicy',
    data: serp('tools.routers', ['#docs'], ['#all']),
  })
  assert.deepEqual(sorted(idx.routersForService('family.tools')), [])
  assert.deepEqual(sorted(idx.routersForService('wiki')), ['r1', 'r2', 'r9'])
  assert.equal(
    denyCode(idx.authorize('laptop', 'family.tools', 'Dial', 'r1')),
    'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
  )
  assert.equal(denyCode(idx.authorize('laptop', 'wiki', 'Dial', 'r9')), 'ok')
  idx.apply({ op: 'delete', version: 19, entity: 'serviceEdgeRouterPolicy', id: 'tools.routers' })
  assert.deepEqual(sorted(idx.routersForService('wiki')), [])
})

test('terminators are kept per service and survive dangling references', () => {
  const idx = new PolicyIndex()
  idx.load(fullModel())
  assert.deepEqual(
    idx.terminatorsFor('family.tools').map((t) => t.id),
    ['t1'],
  )
  idx.apply({
    op: 'upsert',
    version: 11,
    entity: 'terminator',
    data: term('t2', 'family.tools', 'r1', 'both', 5),
  })
  idx.apply({ op: 'upsert', version: 11, entity: 'terminator', data: term('t3', 'wiki', 'r1', 'both') })
  assert.deepEqual(sorted(idx.terminatorsFor('family.tools').map((t) => t.id)), ['t1', 't2'])
  // Moving a terminator to another service (an upsert replaces the whole entity).
  idx.apply({ op: 'upsert', version: 12, entity: 'terminator', data: term('t2', 'wiki', 'r1', 'both', 5) })
  assert.deepEqual(sorted(idx.terminatorsFor('family.tools').map((t) => t.id)), ['t1'])
  assert.deepEqual(sorted(idx.terminatorsFor('wiki').map((t) => t.id)), ['t2', 't3'])
  assert.equal(idx.terminator('t2')?.cost, 5)
  idx.apply({ op: 'delete', version: 13, entity: 'terminator', id: 't1' })
  assert.deepEqual(idx.terminatorsFor('family.tools'), [])
  // Service delete does not cascade; its terminators stay until the controller deletes them.
  idx.apply({ op: 'delete', version: 14, entity: 'service', id: 'wiki' })
  assert.equal(idx.terminatorsFor('wiki').length, 2)
  assert.deepEqual(idx.terminatorsFor('ghost'), [])
  // Deleting what does not exist is a no-op.
  for (const entity of [
    'identity',
    'service',
    'router',
    'servicePolicy',
    'edgeRouterPolicy',
    'serviceEdgeRouterPolicy',
    'terminator',
  ] as const) {
    assert.equal(idx.apply({ op: 'delete', version: 15, entity, id: 'ghost' }), true)
  }
  // Returned terminators are copies.
  const [t] = idx.terminatorsFor('wiki')
  if (t !== undefined) t.cost = 999
  assert.notEqual(idx.terminatorsFor('wiki').find((x) => x.id === t?.id)?.cost, 999)
})

test('versions: older changes are ignored, equal versions (one transaction) are applied, version = max', () => {
  const idx = new PolicyIndex()
  idx.load(fullModel())
  assert.equal(idx.version, 10)
  const older = idx.apply({
    op: 'upsert',
    version: 9,
    entity: 'identity',
    data: ident('stranger', ['family.tools.clients']),
  })
  assert.equal(older, false)
  assert.deepEqual(sorted(idx.servicesFor('stranger', 'Dial')), [], 'stale change ignored')
  // Two changes of one transaction share version 11.
  assert.equal(idx.apply({ op: 'upsert', version: 11, entity: 'service', data: svc('new', ['tools']) }), true)
  assert.equal(
    idx.apply({
      op: 'upsert',
      version: 11,
      entity: 'identity',
      data: ident('stranger', ['family.tools.clients']),
    }),
    true,
  )
  assert.equal(idx.version, 11)
  assert.deepEqual(sorted(idx.servicesFor('stranger', 'Dial')), ['family.tools', 'new', 'wiki'])
  // Replaying the same transaction is harmless.
  assert.equal(idx.apply({ op: 'upsert', version: 11, entity: 'service', data: svc('new', ['tools']) }), true)
  assert.deepEqual(sorted(idx.servicesFor('stranger', 'Dial')), ['family.tools', 'new', 'wiki'])
  assert.equal(
    idx.applyAll([
      { op: 'delete', version: 12, entity: 'service', id: 'new' },
      { op: 'delete', version: 10, entity: 'service', id: 'wiki' },
    ]),
    1,
  )
  assert.equal(idx.version, 12)
  assert.ok(idx.service('wiki'))
  // load() resets to the snapshot's version, even a lower one.
  idx.load(snapshot({ version: 3 }))
  assert.equal(idx.version, 3)
  assert.equal(idx.stats().identities, 0)
  // Malformed changes fail with a stable code.
  assert.throws(
    () => idx.apply({ op: 'upsert', version: 4, entity: 'postureCheck', data: {} } as never),
    (e: unknown) => isProtocolError(e, 'ERR_POLICY_CHANGE'),
  )
  assert.throws(
    () => idx.apply({ op: 'merge', version: 4, entity: 'identity', id: 'x' } as never),
    (e: unknown) => isProtocolError(e, 'ERR_POLICY_CHANGE'),
  )
  assert.throws(
    () => idx.apply({ op: 'upsert', version: 4, entity: 'identity', data: { name: 'x' } } as never),
    (e: unknown) => isProtocolError(e, 'ERR_POLICY_CHANGE'),
  )
  assert.throws(
    () => idx.apply({ op: 'delete', version: 4, entity: 'service' } as never),
    (e: unknown) => isProtocolError(e, 'ERR_POLICY_CHANGE'),
  )
  assert.equal(idx.version, 3)
})

test('snapshot() round-trips, and the index keeps its own copies of the data it is given', () => {
  const model = fullModel()
  const idx = new PolicyIndex()
  idx.load(model)
  // Mutating the caller's objects afterwards changes nothing inside.
  model.identities[0]!.roleAttributes.push('other')
  model.servicePolicies[0]!.identityRoles.push('#other')
  assert.deepEqual(sorted(idx.servicesFor('stranger', 'Dial')), [])
  const again = new PolicyIndex()
  again.load(idx.snapshot())
  assert.deepEqual(again.snapshot(), idx.snapshot())
  assert.deepEqual(again.stats(), idx.stats())
  for (const i of ['laptop', 'host', 'both', 'off', 'stranger']) {
    assert.deepEqual(sorted(again.servicesFor(i, 'Dial')), sorted(idx.servicesFor(i, 'Dial')))
    assert.deepEqual(sorted(again.routersForIdentity(i)), sorted(idx.routersForIdentity(i)))
  }
  // Returned sets belong to the caller.
  idx.servicesFor('laptop', 'Dial').add('secret')
  assert.deepEqual(sorted(idx.servicesFor('laptop', 'Dial')), ['family.tools', 'wiki'])
  assert.equal(idx.identityByName('laptop')?.id, 'laptop')
  assert.equal(idx.serviceByName('wiki')?.id, 'wiki')
  assert.equal(idx.routerByName('r1')?.id, 'r1')
})

test('names are looked up after renames, and stale names are forgotten', () => {
  const idx = new PolicyIndex()
  idx.load(snapshot({ services: [svc('s1', [], 'old-name')] }))
  assert.equal(idx.serviceByName('old-name')?.id, 's1')
  idx.apply({ op: 'upsert', version: 2, entity: 'service', data: svc('s1', [], 'new-name') })
  assert.equal(idx.serviceByName('old-name'), undefined)
  assert.equal(idx.serviceByName('new-name')?.id, 's1')
})

test('posture-check seam: carried, not evaluated by default; a configured check can withhold a grant', () => {
  const model = fullModel()
  model.servicePolicies[0] = { ...model.servicePolicies[0]!, postureCheckRoles: ['#mfa'] }
  const plain = new PolicyIndex()
  plain.load(model)
  assert.equal(denyCode(plain.authorize('laptop', 'family.tools', 'Dial', 'r1')), 'ok')
  assert.deepEqual(plain.servicePolicy('tools.dial')?.postureCheckRoles, ['#mfa'])
  const seen: string[] = []
  const strict = new PolicyIndex({
    postureCheck: ({ policy, identity }) => {
      seen.push(`${policy.id}:${identity.id}`)
      return false
    },
  })
  strict.load(model)
  assert.equal(denyCode(strict.authorize('laptop', 'family.tools', 'Dial', 'r1')), 'ERR_NO_DIAL_PERMISSION')
  assert.deepEqual(strict.grantingPolicies('laptop', 'family.tools', 'Dial'), [])
  assert.deepEqual(seen.slice(0, 1), ['tools.dial:laptop'])
  assert.equal(
    denyCode(strict.authorize('host', 'family.tools', 'Bind', 'r3')),
    'ok',
    'no posture roles: not consulted',
  )
})

test('apply(change, impact) names the identities whose service lists may change', () => {
  const idx = new PolicyIndex()
  idx.load(fullModel())
  let impact = new PolicyImpact()
  // A policy granting #family.tools.servers more services reaches host and both only.
  idx.apply(
    {
      op: 'upsert',
      version: 11,
      entity: 'servicePolicy',
      data: sp('tools.bind', 'Bind', ['#family.tools.servers'], ['#tools']),
    },
    impact,
  )
  assert.equal(impact.all, false)
  assert.deepEqual(sorted(impact.identities), ['both', 'host'])
  // Changing who it selects reaches both the old and the new identities.
  impact = new PolicyImpact()
  idx.apply(
    {
      op: 'upsert',
      version: 12,
      entity: 'servicePolicy',
      data: sp('tools.bind', 'Bind', ['@stranger'], ['#tools']),
    },
    impact,
  )
  assert.deepEqual(sorted(impact.identities), ['both', 'host', 'stranger'])
  // A service change reaches who may dial or bind it.
  impact = new PolicyImpact()
  idx.apply(
    { op: 'upsert', version: 13, entity: 'service', data: svc('secret', ['hidden'], 'renamed') },
    impact,
  )
  assert.deepEqual(sorted(impact.identities), [])
  idx.applyAll(
    [{ op: 'upsert', version: 14, entity: 'service', data: svc('wiki', ['tools', 'docs'], 'wiki2') }],
    impact,
  )
  assert.deepEqual(sorted(impact.identities), ['laptop', 'off', 'stranger', 'both'].sort())
  // A router change reaches the identities whose edge router policies select it.
  impact = new PolicyImpact()
  idx.apply({ op: 'upsert', version: 15, entity: 'router', data: rtr('r3', ['private'], true) }, impact)
  assert.deepEqual(sorted(impact.identities), ['host'])
  // Terminators change no service list; #all reaches everyone; stale changes reach no one.
  impact = new PolicyImpact()
  idx.apply(
    { op: 'upsert', version: 16, entity: 'terminator', data: term('t9', 'wiki', 'r1', 'host') },
    impact,
  )
  idx.apply({ op: 'delete', version: 1, entity: 'identity', id: 'laptop' }, impact)
  assert.equal(impact.has('laptop'), false)
  assert.equal(impact.identities.size, 0)
  idx.apply(
    { op: 'upsert', version: 17, entity: 'edgeRouterPolicy', data: erp('e', ['#all'], ['@r1']) },
    impact,
  )
  assert.equal(impact.all, true)
  assert.equal(impact.has('anyone'), true)
})
