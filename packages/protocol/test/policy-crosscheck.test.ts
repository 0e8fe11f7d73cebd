// Proves the index right: on a few hundred random small models, and after every one of a series of
// random changes to each, every indexed answer equals the answer of a naive O(n) evaluator written
// from the semantics alone (no code shared with the index).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type DataChange,
  PolicyImpact,
  PolicyIndex,
  type PolicySnapshot,
  type PolicyType,
  type Semantic,
  type ServicePolicy,
} from '../src/index.js'
import { erp, ident, rng, rtr, serp, snapshot, sorted, sp, svc, term } from './policy-fixtures.js'

// ---- the naive evaluator ------------------------------------------------------------------------

const NOBODY = '\u0000invalid-role'

interface Subject {
  id: string
  roleAttributes: string[]
}

/** OpenZiti's rule, from its definition: #all or listed id, else attributes by semantic. */
function naiveMatch(roles: string[], semantic: Semantic, e: Subject): boolean {
  let all = false
  const ids: string[] = []
  const attrs: string[] = []
  for (const r of roles) {
    const valid = r.length > 1 && (r[0] === '#' || r[0] === '@') && !/\s/.test(r)
    if (!valid) attrs.push(NOBODY)
    else if (r === '#all') all = true
    else if (r[0] === '@') ids.push(r.slice(1))
    else attrs.push(r.slice(1))
  }
  if (all || ids.includes(e.id)) return true
  const real = attrs.filter((a) => a !== NOBODY)
  if (semantic === 'AnyOf') return real.some((a) => e.roleAttributes.includes(a))
  return attrs.length > 0 && attrs.every((a) => e.roleAttributes.includes(a))
}

class Naive {
  constructor(readonly m: PolicySnapshot) {}

  enabledIdentity(id: string) {
    const i = this.m.identities.find((x) => x.id === id)
    return i !== undefined && !i.disabled ? i : undefined
  }

  grants(p: ServicePolicy, iid: string, sid: string): boolean {
    const i = this.m.identities.find((x) => x.id === iid)
    const s = this.m.services.find((x) => x.id === sid)
    if (i === undefined || s === undefined) return false
    return naiveMatch(p.identityRoles, p.semantic, i) && naiveMatch(p.serviceRoles, p.semantic, s)
  }

  servicesFor(iid: string, type: PolicyType): string[] {
    if (this.enabledIdentity(iid) === undefined) return []
    return this.m.services
      .filter((s) => this.m.servicePolicies.some((p) => p.type === type && this.grants(p, iid, s.id)))
      .map((s) => s.id)
      .sort()
  }

  granting(iid: string, sid: string, type: PolicyType): string[] {
    return this.m.servicePolicies
      .filter((p) => p.type === type && this.grants(p, iid, sid))
      .map((p) => p.id)
      .sort()
  }

  identitiesFor(sid: string, type: PolicyType): string[] {
    return this.m.identities
      .filter((i) => !i.disabled && this.granting(i.id, sid, type).length > 0)
      .map((i) => i.id)
      .sort()
  }

  routersForIdentity(iid: string): string[] {
    const i = this.enabledIdentity(iid)
    if (i === undefined) return []
    return this.m.routers
      .filter(
        (r) =>
          !r.disabled &&
          this.m.edgeRouterPolicies.some(
            (p) => naiveMatch(p.identityRoles, p.semantic, i) && naiveMatch(p.edgeRouterRoles, p.semantic, r),
          ),
      )
      .map((r) => r.id)
      .sort()
  }

  routersForService(sid: string): string[] {
    const s = this.m.services.find((x) => x.id === sid)
    if (s === undefined) return []
    return this.m.routers
      .filter(
        (r) =>
          !r.disabled &&
          this.m.serviceEdgeRouterPolicies.some(
            (p) => naiveMatch(p.serviceRoles, p.semantic, s) && naiveMatch(p.edgeRouterRoles, p.semantic, r),
          ),
      )
      .map((r) => r.id)
      .sort()
  }

  authorize(iid: string, sid: string, type: PolicyType, rid: string): string {
    const i = this.m.identities.find((x) => x.id === iid)
    if (i === undefined) return 'ERR_IDENTITY_NOT_FOUND'
    if (i.disabled) return 'ERR_IDENTITY_DISABLED'
    if (!this.m.services.some((x) => x.id === sid)) return 'ERR_SERVICE_NOT_FOUND'
    if (this.granting(iid, sid, type).length === 0) {
      return type === 'Dial' ? 'ERR_NO_DIAL_PERMISSION' : 'ERR_NO_BIND_PERMISSION'
    }
    const r = this.m.routers.find((x) => x.id === rid)
    if (r === undefined) return 'ERR_ROUTER_NOT_FOUND'
    if (r.disabled) return 'ERR_ROUTER_DISABLED'
    if (!this.routersForIdentity(iid).includes(rid)) return 'ERR_NO_EDGE_ROUTER_POLICY'
    if (!this.routersForService(sid).includes(rid)) return 'ERR_NO_SERVICE_EDGE_ROUTER_POLICY'
    return 'ok'
  }

  match(kind: 'identities' | 'services' | 'routers', roles: string[], semantic: Semantic): string[] {
    return this.m[kind]
      .filter((e) => naiveMatch(roles, semantic, e))
      .map((e) => e.id)
      .sort()
  }

  /** Applies a change to the plain model with the documented version rule. */
  apply(c: DataChange): void {
    if (c.version < this.m.version) return
    this.m.version = Math.max(this.m.version, c.version)
    const lists = {
      identity: this.m.identities,
      service: this.m.services,
      router: this.m.routers,
      servicePolicy: this.m.servicePolicies,
      edgeRouterPolicy: this.m.edgeRouterPolicies,
      serviceEdgeRouterPolicy: this.m.serviceEdgeRouterPolicies,
      terminator: this.m.terminators,
    } as Record<string, Array<{ id: string }>>
    const list = lists[c.entity]!
    const id = c.op === 'delete' ? c.id : c.data.id
    const at = list.findIndex((x) => x.id === id)
    if (at >= 0) list.splice(at, 1)
    if (c.op === 'upsert') list.push(structuredClone(c.data))
  }
}

// ---- random models ---------------------------------------------------------------------------

const ATTRS = ['a', 'b', 'c', 'd', 'e']
const IDS = {
  identity: ['i0', 'i1', 'i2', 'i3', 'i4', 'i5', 'i6'],
  service: ['s0', 's1', 's2', 's3', 's4'],
  router: ['r0', 'r1', 'r2', 'r3'],
}

function gen(seed: number) {
  const rand = rng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  const attrs = (): string[] => ATTRS.filter(() => rand() < 0.35)
  const roles = (kind: keyof typeof IDS): string[] => {
    const n = Math.floor(rand() * 4) // 0..3 roles; 0 = matches nothing
    const out: string[] = []
    for (let k = 0; k < n; k++) {
      const x = rand()
      if (x < 0.08) out.push('#all')
      else if (x < 0.65) out.push(`#${pick(ATTRS)}`)
      else if (x < 0.97) out.push(`@${pick([...IDS[kind], 'ghost'])}`)
      else out.push(pick(['bad role', 'x', '#']))
    }
    return out
  }
  const semantic = (): Semantic => (rand() < 0.5 ? 'AnyOf' : 'AllOf')
  const type = (): PolicyType => (rand() < 0.5 ? 'Dial' : 'Bind')
  const some = <T>(ids: string[], p: number, f: (id: string) => T): T[] => ids.filter(() => rand() < p).map(f)
  const entity = {
    identity: (id: string) => ident(id, attrs(), rand() < 0.15),
    service: (id: string) => svc(id, attrs()),
    router: (id: string) => rtr(id, attrs(), rand() < 0.15),
    servicePolicy: (id: string) => sp(id, type(), roles('identity'), roles('service'), semantic()),
    edgeRouterPolicy: (id: string) => erp(id, roles('identity'), roles('router'), semantic()),
    serviceEdgeRouterPolicy: (id: string) => serp(id, roles('service'), roles('router'), semantic()),
    terminator: (id: string) =>
      term(id, pick([...IDS.service, 'ghost']), pick(IDS.router), pick(IDS.identity)),
  }
  const policyIds = (p: string) => [0, 1, 2, 3, 4, 5].map((n) => `${p}${n}`)
  const ids: Record<keyof typeof entity, string[]> = {
    identity: IDS.identity,
    service: IDS.service,
    router: IDS.router,
    servicePolicy: policyIds('sp'),
    edgeRouterPolicy: policyIds('erp'),
    serviceEdgeRouterPolicy: policyIds('serp'),
    terminator: policyIds('t'),
  }
  const model = snapshot({
    version: 5,
    identities: some(ids.identity, 0.8, entity.identity),
    services: some(ids.service, 0.8, entity.service),
    routers: some(ids.router, 0.8, entity.router),
    servicePolicies: some(ids.servicePolicy, 0.6, entity.servicePolicy),
    edgeRouterPolicies: some(ids.edgeRouterPolicy, 0.4, entity.edgeRouterPolicy),
    serviceEdgeRouterPolicies: some(ids.serviceEdgeRouterPolicy, 0.4, entity.serviceEdgeRouterPolicy),
    terminators: some(ids.terminator, 0.4, entity.terminator),
  })
  let version = 5
  const change = (): DataChange => {
    const kind = pick(Object.keys(entity) as Array<keyof typeof entity>)
    const id = pick(ids[kind])
    // Mostly forward, sometimes the same version (one transaction), sometimes stale.
    const v = rand()
    version = v < 0.6 ? version + 1 : v < 0.9 ? version : version - 1
    if (rand() < 0.3) return { op: 'delete', version, entity: kind, id }
    return { op: 'upsert', version, entity: kind, data: entity[kind](id) } as DataChange
  }
  return { model, change, roles, semantic }
}

function compare(idx: PolicyIndex, naive: Naive, where: string): void {
  const ii = [...IDS.identity, 'ghost']
  const ss = [...IDS.service, 'ghost']
  const rr = [...IDS.router, 'ghost']
  assert.equal(idx.version, naive.m.version, `${where}: version`)
  for (const i of ii) {
    for (const type of ['Dial', 'Bind'] as const) {
      assert.deepEqual(
        sorted(idx.servicesFor(i, type)),
        naive.servicesFor(i, type),
        `${where}: servicesFor(${i}, ${type})`,
      )
    }
    assert.deepEqual(
      sorted(idx.routersForIdentity(i)),
      naive.routersForIdentity(i),
      `${where}: routersForIdentity(${i})`,
    )
  }
  for (const s of ss) {
    assert.deepEqual(
      sorted(idx.routersForService(s)),
      naive.routersForService(s),
      `${where}: routersForService(${s})`,
    )
    assert.deepEqual(
      sorted(idx.terminatorsFor(s).map((t) => t.id)),
      naive.m.terminators
        .filter((t) => t.serviceId === s)
        .map((t) => t.id)
        .sort(),
      `${where}: terminatorsFor(${s})`,
    )
    for (const type of ['Dial', 'Bind'] as const) {
      assert.deepEqual(
        sorted(idx.identitiesFor(s, type)),
        naive.identitiesFor(s, type),
        `${where}: identitiesFor(${s})`,
      )
      for (const i of ii) {
        assert.deepEqual(
          idx.grantingPolicies(i, s, type).sort(),
          naive.granting(i, s, type),
          `${where}: grantingPolicies(${i}, ${s}, ${type})`,
        )
        for (const r of rr) {
          const got = idx.authorize(i, s, type, r)
          assert.equal(
            got.ok ? 'ok' : got.code,
            naive.authorize(i, s, type, r),
            `${where}: authorize(${i}, ${s}, ${type}, ${r})`,
          )
        }
      }
    }
  }
}

/** Everything an identity's client service list is made of. */
function answers(idx: PolicyIndex, i: string): string {
  const dial = sorted(idx.servicesFor(i, 'Dial'))
  const bind = sorted(idx.servicesFor(i, 'Bind'))
  const services = [...new Set([...dial, ...bind])].sort().map((s) => {
    const d = idx.service(s)
    return [s, d?.name, d?.roleAttributes, d?.encryptionRequired, sorted(idx.routersFor(i, s))]
  })
  return JSON.stringify({ dial, bind, routers: sorted(idx.routersForIdentity(i)), services })
}

const MODELS = 300
const STEPS = 25

test(`indexed answers equal a naive evaluator on ${MODELS} random models, after each of ${STEPS} random changes`, () => {
  let applied = 0
  let ignored = 0
  let narrow = 0
  let missed = 0
  for (let seed = 1; seed <= MODELS; seed++) {
    const { model, change } = gen(seed)
    const idx = new PolicyIndex()
    idx.load(structuredClone(model))
    const naive = new Naive(structuredClone(model))
    compare(idx, naive, `seed ${seed} load`)
    for (let step = 1; step <= STEPS; step++) {
      const c = change()
      const before = new Map(IDS.identity.map((i) => [i, answers(idx, i)]))
      const impact = new PolicyImpact()
      const ok = idx.apply(structuredClone(c), impact)
      naive.apply(c)
      if (ok) applied++
      else ignored++
      if (!impact.all) narrow++
      // The impact never misses an identity whose answers changed.
      for (const i of IDS.identity) {
        if (!impact.has(i) && answers(idx, i) !== before.get(i)) {
          missed++
          assert.fail(`seed ${seed} step ${step} (${c.op} ${c.entity}): impact misses ${i}`)
        }
      }
      compare(idx, naive, `seed ${seed} step ${step} (${c.op} ${c.entity} v${c.version})`)
    }
    // explain() never throws on messy data and agrees with authorize().
    for (const i of [...IDS.identity, 'ghost']) {
      for (const s of [...IDS.service, 'ghost']) {
        const r = idx.explain(i, s)
        for (const type of ['Dial', 'Bind'] as const) {
          const anyRouter = IDS.router.some((rid) => idx.authorize(i, s, type, rid).ok)
          const can = type === 'Dial' ? r.canDial : r.canBind
          assert.equal(
            can,
            anyRouter,
            `seed ${seed}: explain(${i}, ${s}).can${type}\n${r.findings.join('\n')}`,
          )
          const names = idx.grantingPolicies(i, s, type).map((id) => idx.servicePolicy(id)?.name)
          assert.deepEqual(type === 'Dial' ? r.dialPolicies : r.bindPolicies, sorted(names as string[]))
        }
        if (r.identity !== null && r.service !== null && !r.canDial && !r.canBind) {
          assert.ok(r.findings.length > 0, `seed ${seed}: explain(${i}, ${s}) denies without a finding`)
        }
      }
    }
    // A fresh index loaded from the mutated one's snapshot answers the same.
    const fresh = new PolicyIndex()
    fresh.load(idx.snapshot())
    compare(fresh, naive, `seed ${seed} reload`)
  }
  assert.ok(applied > MODELS * STEPS * 0.5, `most changes applied (${applied})`)
  assert.ok(ignored > 0, 'some stale changes were exercised')
  assert.equal(missed, 0)
  assert.ok(narrow > MODELS * STEPS * 0.5, `most impacts are narrower than "everyone" (${narrow})`)
})

test('match* functions equal the naive evaluator on random role lists', () => {
  for (let seed = 1000; seed < 1000 + MODELS; seed++) {
    const { model, roles, semantic } = gen(seed)
    const idx = new PolicyIndex()
    idx.load(model)
    const naive = new Naive(model)
    for (let k = 0; k < 10; k++) {
      const sem = semantic()
      const ri = roles('identity').filter((r) => !/\s/.test(r) && r.length > 1 && '#@'.includes(r[0]!))
      const rs = roles('service').filter((r) => !/\s/.test(r) && r.length > 1 && '#@'.includes(r[0]!))
      const rr = roles('router').filter((r) => !/\s/.test(r) && r.length > 1 && '#@'.includes(r[0]!))
      assert.deepEqual(
        sorted(idx.matchIdentities(ri, sem)),
        naive.match('identities', ri, sem),
        `seed ${seed} ${ri} ${sem}`,
      )
      assert.deepEqual(
        sorted(idx.matchServices(rs, sem)),
        naive.match('services', rs, sem),
        `seed ${seed} ${rs} ${sem}`,
      )
      assert.deepEqual(
        sorted(idx.matchRouters(rr, sem)),
        naive.match('routers', rr, sem),
        `seed ${seed} ${rr} ${sem}`,
      )
      assert.equal(idx.selectsAnything('identity', ri, sem), naive.match('identities', ri, sem).length > 0)
    }
  }
})
