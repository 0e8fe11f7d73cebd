#!/usr/bin/env node
// Policy engine benchmark: a random but realistic network of 100k identities, 10k services,
// 1k service policies, 100 routers, 50 edge router policies, 50 service edge router policies.
// Reports load time, query latency percentiles, the cost of one change, and heap used.
//
// Usage: npx tsc -b packages/protocol && node bench/policy.mjs [--identities N] [--services N]
//        [--policies N] [--seed N] [--json]
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { PolicyImpact, PolicyIndex } from '../packages/protocol/dist/src/index.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : def
}
const N_IDENTITIES = opt('identities', 100_000)
const N_SERVICES = opt('services', 10_000)
const N_POLICIES = opt('policies', 1_000)
const N_ROUTERS = 100
const N_ERPS = 50
const N_SERPS = 50
const SEED = opt('seed', 42)
const JSON_OUT = args.includes('--json')

// mulberry32
let state = SEED >>> 0
function rand() {
  state = (state + 0x6d2b79f5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const int = (n) => Math.floor(rand() * n)
const pick = (xs) => xs[int(xs.length)]
/** Skewed pick: low indexes are popular (a few big teams, many small ones). */
const skewed = (n) => Math.floor(n * rand() ** 2)
const T = '2026-01-01T00:00:00.000Z'

// ---- the model -------------------------------------------------------------------------------
// Identities: one department (20), one region (5), 1-2 teams (500, skewed), sometimes a role (10).
// Services: one app (1000), one tier (3), sometimes a group (100).
// Policies: mostly team/app grants; some department- or group-wide; a few by @id; a few AllOf;
// a handful with #all (e.g. "everyone may dial the wiki").
function buildModel() {
  const identities = []
  for (let i = 0; i < N_IDENTITIES; i++) {
    const attrs = [`dept-${int(20)}`, `region-${int(5)}`, `team-${skewed(500)}`]
    if (rand() < 0.4) attrs.push(`team-${skewed(500)}`)
    if (rand() < 0.3) attrs.push(`role-${int(10)}`)
    identities.push({ id: `i${i}`, name: `user${i}`, roleAttributes: attrs, disabled: rand() < 0.01 })
  }
  const services = []
  for (let s = 0; s < N_SERVICES; s++) {
    const attrs = [`app-${int(1000)}`, `tier-${int(3)}`]
    if (rand() < 0.5) attrs.push(`group-${skewed(100)}`)
    services.push({
      id: `s${s}`,
      name: `svc${s}`,
      roleAttributes: attrs,
      encryptionRequired: true,
      terminatorStrategy: 'smartrouting',
    })
  }
  const routers = []
  for (let r = 0; r < N_ROUTERS; r++) {
    const attrs = [`region-${r % 5}`]
    if (r % 4 === 0) attrs.push('public')
    routers.push({
      id: `r${r}`,
      name: `router${r}`,
      roleAttributes: attrs,
      disabled: r === 7,
      advertise: null,
      cost: 0,
    })
  }
  const servicePolicies = []
  for (let p = 0; p < N_POLICIES; p++) {
    const type = rand() < 0.65 ? 'Dial' : 'Bind'
    let semantic = 'AnyOf'
    let identityRoles
    let serviceRoles
    const x = rand()
    if (x < 0.005) identityRoles = ['#all']
    else if (x < 0.1) identityRoles = [`@i${int(N_IDENTITIES)}`, `@i${int(N_IDENTITIES)}`]
    else if (x < 0.2) identityRoles = [`#dept-${int(20)}`]
    else if (x < 0.3) {
      semantic = 'AllOf'
      identityRoles = [`#dept-${int(20)}`, `#role-${int(10)}`]
    } else identityRoles = [`#team-${skewed(500)}`, ...(rand() < 0.3 ? [`#team-${skewed(500)}`] : [])]
    const y = rand()
    if (y < 0.01) serviceRoles = ['#all']
    else if (y < 0.15) serviceRoles = [`@s${int(N_SERVICES)}`]
    else if (y < 0.35) serviceRoles = [`#group-${skewed(100)}`]
    else serviceRoles = [`#app-${int(1000)}`, ...(rand() < 0.3 ? [`#app-${int(1000)}`] : [])]
    if (semantic === 'AllOf' && serviceRoles.length > 1) serviceRoles = serviceRoles.slice(0, 1)
    servicePolicies.push({
      id: `sp${p}`,
      name: `policy${p}`,
      type,
      semantic,
      identityRoles,
      serviceRoles,
      postureCheckRoles: [],
      createdAt: T,
      updatedAt: T,
    })
  }
  const edgeRouterPolicies = []
  for (let e = 0; e < N_ERPS; e++) {
    const region = e % 5
    const identityRoles = e < 5 ? [`#region-${region}`] : e < 8 ? ['#all'] : [`#dept-${int(20)}`]
    const edgeRouterRoles =
      e < 5 ? [`#region-${region}`] : e < 8 ? ['#public'] : [`@r${int(N_ROUTERS)}`, `@r${int(N_ROUTERS)}`]
    edgeRouterPolicies.push({
      id: `erp${e}`,
      name: `erp${e}`,
      semantic: 'AnyOf',
      identityRoles,
      edgeRouterRoles,
      createdAt: T,
      updatedAt: T,
    })
  }
  const serviceEdgeRouterPolicies = []
  for (let e = 0; e < N_SERPS; e++) {
    const serviceRoles = e === 0 ? ['#all'] : e < 4 ? [`#tier-${e - 1}`] : [`#group-${int(100)}`]
    const edgeRouterRoles = e === 0 ? ['#public'] : e < 4 ? [`#region-${e}`] : ['#all']
    serviceEdgeRouterPolicies.push({
      id: `serp${e}`,
      name: `serp${e}`,
      semantic: 'AnyOf',
      serviceRoles,
      edgeRouterRoles,
      createdAt: T,
      updatedAt: T,
    })
  }
  const terminators = []
  for (let s = 0; s < N_SERVICES; s += 2) {
    terminators.push({
      id: `t${s}`,
      serviceId: `s${s}`,
      routerId: `r${int(N_ROUTERS)}`,
      identityId: `i${int(N_IDENTITIES)}`,
      cost: 0,
      precedence: 'default',
      createdAt: T,
    })
  }
  return {
    version: 1,
    identities,
    services,
    routers,
    servicePolicies,
    edgeRouterPolicies,
    serviceEdgeRouterPolicies,
    terminators,
  }
}

// ---- measurement ---------------------------------------------------------------------------------

function percentiles(samples) {
  const s = Float64Array.from(samples).sort()
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))]
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1], n: s.length }
}
const us = (ms) => `${(ms * 1000).toFixed(1)} µs`
const msf = (ms) => `${ms.toFixed(1)} ms`
const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

const model = buildModel()
gc()
const heapBefore = process.memoryUsage().heapUsed
const index = new PolicyIndex()
let t0 = performance.now()
index.load(model)
const loadMs = performance.now() - t0
gc()
const heapAfter = process.memoryUsage().heapUsed
// The model arrays stay alive (the caller's copy), so the delta is the index alone.

// Warm up the JIT.
for (let k = 0; k < 2000; k++) {
  const id = `i${int(N_IDENTITIES)}`
  index.servicesFor(id, 'Dial')
  index.routersForIdentity(id)
}

// 1. servicesFor(identity, Dial) + routersForIdentity(identity)
const QUERIES = 20_000
const q1 = []
const q1all = [] // identities granted every service (a #all service policy)
const q1some = []
let sizeSum = 0
for (let k = 0; k < QUERIES; k++) {
  const id = `i${int(N_IDENTITIES)}`
  t0 = performance.now()
  const svcs = index.servicesFor(id, 'Dial')
  const rts = index.routersForIdentity(id)
  const dt = performance.now() - t0
  q1.push(dt)
  ;(svcs.size >= N_SERVICES ? q1all : q1some).push(dt)
  sizeSum += svcs.size + rts.size * 0
}
const serviceListAvg = sizeSum / QUERIES

// 2. authorize(): half on pairs that are granted (the full check path), half random.
const pairs = []
for (let k = 0; pairs.length < 5_000 && k < 200_000; k++) {
  const id = `i${int(N_IDENTITIES)}`
  const svcs = [...index.servicesFor(id, 'Dial')]
  if (svcs.length === 0) continue
  const s = pick(svcs)
  const common = [...index.routersFor(id, s)]
  pairs.push([id, s, common.length > 0 ? pick(common) : `r${int(N_ROUTERS)}`])
}
const q2 = []
const outcomes = new Map()
for (let k = 0; k < QUERIES; k++) {
  const [i, s, r] =
    k % 2 === 0 && pairs.length > 0
      ? pick(pairs)
      : [`i${int(N_IDENTITIES)}`, `s${int(N_SERVICES)}`, `r${int(N_ROUTERS)}`]
  t0 = performance.now()
  const res = index.authorize(i, s, 'Dial', r)
  q2.push(performance.now() - t0)
  const key = res.ok ? 'ok' : res.code
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
}

// 3. One policy upsert (new roles) then the affected identity asks again; then an identity attribute change.
let version = 1
const q3apply = []
const q3answer = []
for (let k = 0; k < 200; k++) {
  const p = model.servicePolicies[int(model.servicePolicies.length)]
  const who = `i${int(N_IDENTITIES)}`
  const changed = {
    ...p,
    identityRoles: [...p.identityRoles.filter((r) => r !== '#all'), `@${who}`],
    serviceRoles: [`#app-${int(1000)}`],
  }
  t0 = performance.now()
  index.apply({ op: 'upsert', version: ++version, entity: 'servicePolicy', data: changed })
  const t1 = performance.now()
  index.servicesFor(who, changed.type)
  index.routersForIdentity(who)
  q3answer.push(performance.now() - t1)
  q3apply.push(t1 - t0)
}
const q4 = []
for (let k = 0; k < 200; k++) {
  const i = model.identities[int(N_IDENTITIES)]
  const data = { ...i, roleAttributes: [...i.roleAttributes.slice(0, 2), `team-${skewed(500)}`] }
  t0 = performance.now()
  index.apply({ op: 'upsert', version: ++version, entity: 'identity', data })
  index.servicesFor(i.id, 'Dial')
  q4.push(performance.now() - t0)
}

// 3b. The same kind of upsert, collecting the impact (who must refetch their service list).
const q3impact = []
const impactSizes = []
let impactAll = 0
for (let k = 0; k < 200; k++) {
  const p = model.servicePolicies[int(model.servicePolicies.length)]
  const changed = {
    ...p,
    identityRoles: p.identityRoles.filter((r) => r !== '#all'),
    serviceRoles: [`#app-${int(1000)}`],
  }
  const impact = new PolicyImpact()
  t0 = performance.now()
  index.apply({ op: 'upsert', version: ++version, entity: 'servicePolicy', data: changed }, impact)
  q3impact.push(performance.now() - t0)
  if (impact.all) impactAll++
  else impactSizes.push(impact.identities.size)
}

// 4. explain() (policy-advisor), an occasional admin call.
const q5 = []
for (let k = 0; k < 50; k++) {
  const [i, s] =
    pairs.length > 0 && k % 2 === 0 ? pick(pairs) : [`i${int(N_IDENTITIES)}`, `s${int(N_SERVICES)}`]
  t0 = performance.now()
  index.explain(i, s)
  q5.push(performance.now() - t0)
}

const p1 = percentiles(q1)
const p1all = percentiles(q1all.length > 0 ? q1all : [0])
const p1some = percentiles(q1some)
const p2 = percentiles(q2)
const p3a = percentiles(q3apply)
const p3b = percentiles(q3answer)
const p4 = percentiles(q4)
const p5 = percentiles(q5)
const p3i = percentiles(q3impact)
const pImpact = percentiles(impactSizes)
const rows = [
  [
    'model',
    `${N_IDENTITIES} identities, ${N_SERVICES} services, ${N_POLICIES} service policies, ${N_ROUTERS} routers, ${N_ERPS} ERPs, ${N_SERPS} SERPs`,
  ],
  ['load(snapshot)', msf(loadMs)],
  ['heap used by the index', mb(heapAfter - heapBefore)],
  [
    `servicesFor(Dial) + routersForIdentity, p50 / p99 (avg ${serviceListAvg.toFixed(0)} services)`,
    `${us(p1.p50)} / ${us(p1.p99)}`,
  ],
  [`  identities granted some services (${p1some.n}), p50 / p99`, `${us(p1some.p50)} / ${us(p1some.p99)}`],
  [
    `  identities granted all ${N_SERVICES} services (${q1all.length}), p50 / p99`,
    `${us(p1all.p50)} / ${us(p1all.p99)}`,
  ],
  [`authorize(Dial), p50 / p99`, `${us(p2.p50)} / ${us(p2.p99)}`],
  ['apply(policy upsert), p50 / p99', `${us(p3a.p50)} / ${us(p3a.p99)}`],
  ['  then servicesFor + routersForIdentity, p50 / p99', `${us(p3b.p50)} / ${us(p3b.p99)}`],
  [
    `apply(policy upsert, PolicyImpact), p50 / p99 (identities to notify p50 ${pImpact.p50}, p99 ${pImpact.p99})`,
    `${us(p3i.p50)} / ${us(p3i.p99)}`,
  ],
  ['apply(identity attrs) + servicesFor, p50 / p99', `${us(p4.p50)} / ${us(p4.p99)}`],
  ['explain() (policy-advisor), p50 / p99', `${msf(p5.p50)} / ${msf(p5.p99)}`],
]
if (JSON_OUT) {
  console.log(
    JSON.stringify({
      loadMs,
      heapBytes: heapAfter - heapBefore,
      servicesFor: p1,
      authorize: p2,
      applyPolicy: p3a,
      answerAfterApply: p3b,
      applyIdentity: p4,
      applyPolicyWithImpact: p3i,
      impactSize: pImpact,
      explain: p5,
      authorizeOutcomes: Object.fromEntries(outcomes),
    }),
  )
} else {
  const w = Math.max(...rows.map((r) => r[0].length))
  console.log(`policy engine benchmark (node ${process.version}, seed ${SEED})`)
  for (const [k, v] of rows) console.log(`  ${k.padEnd(w)}  ${v}`)
  console.log(`  authorize outcomes: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`)
}
