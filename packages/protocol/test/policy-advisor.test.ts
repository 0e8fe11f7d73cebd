import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type AdvisorReport, PolicyIndex, type PolicySnapshot } from '../src/index.js'
import { erp, ident, rtr, serp, snapshot, sp, svc, term } from './policy-fixtures.js'

function has(report: AdvisorReport, re: RegExp): boolean {
  return report.findings.some((f) => re.test(f))
}

function assertFinding(report: AdvisorReport, re: RegExp): void {
  assert.ok(has(report, re), `expected a finding matching ${re}, got:\n${report.findings.join('\n')}`)
}

/**
 * The OpenZiti seed (a Django site on family.tools): the Bind and Dial policies name the service
 * `@python.django` (the identity's name, not the service) and the Bind policy wants
 * `#family.tools.servers`, which no identity has (the host has python.django.servers).
 */
function seed(): PolicySnapshot {
  return snapshot({
    version: 7,
    identities: [
      ident('id_py', ['python.django.servers'], false, 'python.django'),
      ident(
        'id_geoff',
        ['berlhome.assistant.clients', 'berlhome.mc.clients', 'family.tools.clients'],
        false,
        'geoff.berl',
      ),
    ],
    services: [svc('svc_ft', [], 'family.tools'), svc('svc_mc', ['games'], 'minecraft')],
    routers: [rtr('r_pub', ['public'], false, 'edge-public')],
    servicePolicies: [
      sp('sp_bind', 'Bind', ['#family.tools.servers'], ['@python.django'], 'AllOf', 'python.django.bind'),
      sp('sp_dial', 'Dial', ['#family.tools.clients'], ['@python.django'], 'AllOf', 'python.django.dial'),
      // Unrelated, valid policies that select geoff: never reported for family.tools.
      sp('sp_mc', 'Dial', ['#berlhome.mc.clients'], ['#games'], 'AnyOf', 'minecraft.dial'),
    ],
    edgeRouterPolicies: [erp('erp_all', ['#all'], ['#public'])],
    serviceEdgeRouterPolicies: [serp('serp_all', ['#all'], ['#public'])],
  })
}

test("advisor: the seed's Bind policy selects no identity and no service, and says how to fix both", () => {
  const idx = new PolicyIndex()
  idx.load(seed())
  const r = idx.explain('id_py', 'svc_ft')
  assert.deepEqual(r.identity, { id: 'id_py', name: 'python.django' })
  assert.deepEqual(r.service, { id: 'svc_ft', name: 'family.tools' })
  assert.deepEqual(r.bindPolicies, [])
  assert.equal(r.canBind, false)
  assertFinding(
    r,
    /^Bind policy python\.django\.bind selects no identity: no identity has attribute family\.tools\.servers; identity python\.django has #python\.django\.servers: .*`nullport edge update identity python\.django -a python\.django\.servers,family\.tools\.servers`/,
  )
  assertFinding(
    r,
    /^Bind policy python\.django\.bind selects no service: @python\.django names no service \(python\.django is an identity, not a service\): .*`nullport edge update service-policy python\.django\.bind --service-roles '@family\.tools'`/,
  )
  assertFinding(
    r,
    /^identity python\.django has no Bind policy for service family\.tools: create one with `nullport edge create service-policy family\.tools\.bind Bind --service-roles '@family\.tools' --identity-roles '@python\.django'`/,
  )
  assert.ok(!has(r, /minecraft/), 'unrelated policies are not reported')
})

test("advisor: the seed's Dial policy selects the client but no service", () => {
  const idx = new PolicyIndex()
  idx.load(seed())
  // Names are accepted as well as ids.
  const r = idx.explain('geoff.berl', 'family.tools')
  assert.equal(r.identity?.id, 'id_geoff')
  assert.equal(r.canDial, false)
  assertFinding(
    r,
    /^Dial policy python\.django\.dial selects identity geoff\.berl but no service: @python\.django names no service .*--service-roles '@family\.tools'/,
  )
  assert.ok(!has(r, /minecraft\.dial/), `unrelated policy reported:\n${r.findings.join('\n')}`)
})

test('advisor: applying the suggested fixes to the seed grants access, and the report turns clean', () => {
  const idx = new PolicyIndex()
  idx.load(seed())
  // What the suggested commands do once the controller resolves names to ids:
  idx.apply({
    op: 'upsert',
    version: 8,
    entity: 'servicePolicy',
    data: sp('sp_bind', 'Bind', ['#family.tools.servers'], ['@svc_ft'], 'AllOf', 'python.django.bind'),
  })
  idx.apply({
    op: 'upsert',
    version: 8,
    entity: 'servicePolicy',
    data: sp('sp_dial', 'Dial', ['#family.tools.clients'], ['@svc_ft'], 'AllOf', 'python.django.dial'),
  })
  idx.apply({
    op: 'upsert',
    version: 8,
    entity: 'identity',
    data: ident('id_py', ['python.django.servers', 'family.tools.servers'], false, 'python.django'),
  })
  const host = idx.explain('id_py', 'svc_ft')
  assert.deepEqual(host.bindPolicies, ['python.django.bind'])
  assert.equal(host.canBind, true)
  assert.deepEqual(host.commonRouters, [{ id: 'r_pub', name: 'edge-public' }])
  assert.equal(idx.authorize('id_py', 'svc_ft', 'Bind', 'r_pub').ok, true)
  assert.ok(!has(host, /python\.django\.bind/), host.findings.join('\n'))

  const client = idx.explain('id_geoff', 'svc_ft')
  assert.equal(client.canDial, true)
  assert.deepEqual(client.dialPolicies, ['python.django.dial'])
  // Nothing hosts it yet: the advisor names the identity that could.
  assertFinding(client, /^service family\.tools has no terminators .*python\.django/)
  idx.apply({ op: 'upsert', version: 9, entity: 'terminator', data: term('t1', 'svc_ft', 'r_pub', 'id_py') })
  const after = idx.explain('id_geoff', 'svc_ft')
  assert.ok(!has(after, /terminators/), after.findings.join('\n'))
  assert.ok(!has(after, /Dial/), `no Dial gap left:\n${after.findings.join('\n')}`)
})

function routed(): PolicySnapshot {
  return snapshot({
    identities: [ident('laptop', ['clients']), ident('host', ['servers'])],
    services: [svc('wiki', ['docs'])],
    routers: [rtr('r1', ['eu']), rtr('r2', ['us']), rtr('r3', ['us'], true)],
    servicePolicies: [
      sp('wiki.dial', 'Dial', ['#clients'], ['#docs']),
      sp('wiki.bind', 'Bind', ['#servers'], ['#docs']),
    ],
    edgeRouterPolicies: [erp('eu', ['#clients', '#servers'], ['#eu'])],
    serviceEdgeRouterPolicies: [serp('docs', ['#docs'], ['#eu'])],
    terminators: [term('t1', 'wiki', 'r1', 'host')],
  })
}

test('advisor: a granted pair has no Dial findings and lists policies and routers', () => {
  const idx = new PolicyIndex()
  idx.load(routed())
  const r = idx.explain('laptop', 'wiki')
  assert.equal(r.canDial, true)
  assert.equal(r.canBind, false)
  assert.deepEqual(r.dialPolicies, ['wiki.dial'])
  assert.deepEqual(r.identityRouters, ['r1'])
  assert.deepEqual(r.serviceRouters, ['r1'])
  assert.deepEqual(r.commonRouters, [{ id: 'r1', name: 'r1' }])
  // laptop only dials wiki: having no Bind policy is not a gap (canBind says it may not host it),
  // and neither is a Bind policy that selects wiki but not laptop.
  assert.deepEqual(r.findings, [], r.findings.join('\n'))
  assert.deepEqual(r.bindPolicies, [])
})

test('advisor: no edge router policy, no service edge router policy, nothing in common, disabled routers', () => {
  const idx = new PolicyIndex()
  idx.load(routed())
  idx.apply({ op: 'delete', version: 2, entity: 'edgeRouterPolicy', id: 'eu' })
  let r = idx.explain('laptop', 'wiki')
  assert.equal(r.canDial, false)
  assertFinding(
    r,
    /^identity laptop may use no edge router: no edge router policy selects it: .*`nullport edge create edge-router-policy laptop\.routers --identity-roles '@laptop' --edge-router-roles '#all'`/,
  )
  idx.apply({ op: 'upsert', version: 3, entity: 'edgeRouterPolicy', data: erp('us', ['#clients'], ['#us']) })
  r = idx.explain('laptop', 'wiki')
  assert.deepEqual(r.identityRouters, ['r2'])
  assertFinding(
    r,
    /^identity laptop may use edge routers r2 and service wiki edge routers r1: none in common; .*--identity-roles '@laptop' --edge-router-roles '@r1'.*--service-roles '@wiki' --edge-router-roles '@r2'/,
  )
  idx.apply({ op: 'upsert', version: 4, entity: 'router', data: rtr('r2', ['us'], true) })
  r = idx.explain('laptop', 'wiki')
  assertFinding(
    r,
    /^every edge router identity laptop may use is disabled \(r2, r3\): .*update edge-router r2 --disabled=false/,
  )
  idx.apply({
    op: 'upsert',
    version: 5,
    entity: 'serviceEdgeRouterPolicy',
    data: serp('docs', ['#docs'], ['#asia']),
  })
  r = idx.explain('laptop', 'wiki')
  assertFinding(
    r,
    /^service wiki may be reached through no edge router: service edge router policy docs selects it but no edge router \(no router has attribute asia\)/,
  )
  idx.apply({ op: 'delete', version: 5, entity: 'serviceEdgeRouterPolicy', id: 'docs' })
  r = idx.explain('laptop', 'wiki')
  assertFinding(
    r,
    /^service wiki may be reached through no edge router: .*`nullport edge create service-edge-router-policy wiki\.routers --service-roles '@wiki' --edge-router-roles '#all'`/,
  )
})

test('advisor: disabled identity, unknown names, AllOf near miss, stale @name role, no host at all', () => {
  const idx = new PolicyIndex()
  idx.load(routed())
  idx.apply({ op: 'upsert', version: 2, entity: 'identity', data: ident('laptop', ['clients'], true) })
  let r = idx.explain('laptop', 'wiki')
  assert.equal(r.canDial, false)
  assert.deepEqual(r.dialPolicies, ['wiki.dial'])
  assertFinding(r, /^identity laptop is disabled: .*`nullport edge update identity laptop --disabled=false`/)

  r = idx.explain('nobody', 'nothing')
  assert.equal(r.identity, null)
  assert.equal(r.service, null)
  assertFinding(r, /no identity has id or name nobody: check with `nullport edge list identities`/)
  assertFinding(r, /no service has id or name nothing: check with `nullport edge list services`/)

  idx.apply({ op: 'upsert', version: 3, entity: 'identity', data: ident('tablet', ['eu']) })
  idx.apply({
    op: 'upsert',
    version: 3,
    entity: 'servicePolicy',
    data: sp('strict', 'Dial', ['#clients', '#managed'], ['@wiki'], 'AllOf'),
  })
  r = idx.explain('tablet', 'wiki')
  assertFinding(
    r,
    /^Dial policy strict selects service wiki but no identity: no identity has attribute managed; identity tablet has #eu: .*-a eu,clients,managed` or `nullport edge update service-policy strict --identity-roles '#clients,#managed,@tablet'`/,
  )
  assertFinding(r, /^Dial policy wiki\.dial selects service wiki but not identity tablet .*-a eu,clients`/)
  // wiki.dial is taken, so the suggested name includes the identity.
  assertFinding(
    r,
    /^identity tablet has no Dial policy for service wiki: create one with `nullport edge create service-policy tablet\.wiki\.dial Dial /,
  )

  // A role that holds a name instead of an id (data imported without resolution).
  idx.apply({
    op: 'upsert',
    version: 4,
    entity: 'servicePolicy',
    data: sp('byname', 'Bind', ['@tablet'], ['@wiki-by-name']),
  })
  idx.apply({ op: 'upsert', version: 4, entity: 'service', data: svc('svc9', [], 'wiki-by-name') })
  r = idx.explain('tablet', 'svc9')
  assertFinding(
    r,
    /@wiki-by-name names no service \(wiki-by-name is the name of a service, but roles hold ids/,
  )

  // No one may bind the service: the advisor says so instead of naming hosts.
  idx.apply({ op: 'delete', version: 5, entity: 'servicePolicy', id: 'wiki.bind' })
  idx.apply({ op: 'delete', version: 5, entity: 'terminator', id: 't1' })
  idx.apply({ op: 'upsert', version: 5, entity: 'identity', data: ident('laptop', ['clients']) })
  r = idx.explain('laptop', 'wiki')
  assertFinding(r, /^service wiki has no terminators .*no identity may bind it yet/)
})

test('advisor: findings stay short on a busy identity (only relevant policies, capped)', () => {
  const identities = [ident('busy', ['team'])]
  const services = [svc('target', ['t']), ...Array.from({ length: 40 }, (_, k) => svc(`s${k}`, [`app${k}`]))]
  // 40 valid policies that select busy for other services, 15 that select target for others.
  const servicePolicies = [
    ...Array.from({ length: 40 }, (_, k) => sp(`other${k}`, 'Dial', ['#team'], [`#app${k}`])),
    ...Array.from({ length: 15 }, (_, k) => sp(`near${k}`, 'Dial', [`#group${k}`], ['#t'])),
  ]
  const idx = new PolicyIndex()
  idx.load(snapshot({ identities, services, servicePolicies }))
  const r = idx.explain('busy', 'target')
  assert.ok(!has(r, /other\d+/), 'policies about other services are not listed')
  assert.equal(r.findings.filter((f) => /^Dial policy near\d+/.test(f)).length, 10)
  assertFinding(r, /^\.\.\. and 5 more Dial policies like these/)
})

test('advisor and refusals quote names for the shell', () => {
  const idx = new PolicyIndex()
  idx.load(
    snapshot({
      identities: [ident('i1', [], false, "bob's laptop")],
      services: [svc('s1', [], 'my service')],
      routers: [rtr('r1')],
    }),
  )
  const r = idx.authorize('i1', 's1', 'Dial', 'r1')
  assert.ok(!r.ok)
  assert.match(
    r.message,
    /`nullport edge policy-advisor identities 'bob'\\''s laptop' 'my service'`.*--service-roles '@my service' --identity-roles '@bob'\\''s laptop'`/,
  )
})
