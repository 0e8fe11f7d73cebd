#!/usr/bin/env node
// Controller benchmark: bulk-loads 100k identities / 10k services / 1k service policies (plus
// routers and router policies) into a real controller store through the store layer (Kysely, one
// transaction per batch), starts a real controller on it (HTTPS on 127.0.0.1:0), then times:
//   - the start (migrations, loading the PolicyIndex from the store),
//   - one identity's client service list (what GET /edge/client/v1/services answers: PolicyIndex +
//     configs from the store), cold and warm, and p50/p99 over many identities,
//   - one policy change end to end: HTTP PATCH -> committed -> index updated (checked through the
//     policy advisor over HTTP and in the index).
//
// Usage: npx tsc -b packages/controller && node bench/controller.mjs [--identities N]
//        [--services N] [--policies N] [--database postgres://...?schema=x] [--json]
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { loadConfig, openStore, startController } from '../packages/controller/dist/src/index.js'

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : def
}
const N_ID = Number(opt('identities', 100_000))
const N_SVC = Number(opt('services', 10_000))
const N_POL = Number(opt('policies', 1_000))
const N_ROUTERS = 20
const DATABASE = opt('database', 'sqlite')
const JSON_OUT = args.includes('--json')
const log = (...a) => {
  if (!JSON_OUT) console.log(...a)
}
const ms = (t) => Math.round(t * 100) / 100

const dataDir = mkdtempSync(join(tmpdir(), 'nullport-bench-ctrl-'))
const results = {
  identities: N_ID,
  services: N_SVC,
  policies: N_POL,
  database: DATABASE === 'sqlite' ? 'sqlite' : 'postgres',
}

// ---------------------------------------------------------------------------------------------
// 1. bulk load through the store layer
const now = new Date().toISOString()
const pad = (n) => String(n).padStart(6, '0')
const store = await openStore({ database: DATABASE, dataDir })
const db = store.db
let t0 = performance.now()
async function bulk(table, rows, size = 400) {
  for (let i = 0; i < rows.length; i += size * 20) {
    await store.transaction(async (trx) => {
      for (let j = i; j < Math.min(rows.length, i + size * 20); j += size) {
        await trx
          .insertInto(table)
          .values(rows.slice(j, j + size))
          .execute()
      }
    })
  }
}
// identities: team-(i % 1000), dept-(i % 50)
const identities = []
const idAttrs = []
for (let i = 0; i < N_ID; i++) {
  const id = `bid${pad(i)}`
  identities.push({
    id,
    name: `identity-${pad(i)}`,
    type: 'Device',
    is_admin: 0,
    disabled: 0,
    default_hosting_cost: 0,
    default_hosting_precedence: 'default',
    created_at: now,
    updated_at: now,
  })
  idAttrs.push({ entity_id: id, attr: `team-${i % 1000}` }, { entity_id: id, attr: `dept-${i % 50}` })
}
await bulk('identities', identities)
await bulk('identity_role_attributes', idAttrs)
// services: app-(j % 1000), tier-(j % 20); every service has an intercept config
const ct = await db.selectFrom('config_types').select(['id', 'name']).execute()
const intercept = ct.find((c) => c.name === 'intercept.v1')
let interceptId = intercept?.id
if (!interceptId) {
  interceptId = 'bench-intercept'
  await db
    .insertInto('config_types')
    .values({
      id: interceptId,
      name: 'intercept.v1',
      schema: '{"type":"object"}',
      builtin: 1,
      created_at: now,
      updated_at: now,
    })
    .execute()
}
const services = []
const svcAttrs = []
const configs = []
const links = []
for (let j = 0; j < N_SVC; j++) {
  const id = `bsv${pad(j)}`
  services.push({
    id,
    name: `service-${pad(j)}`,
    encryption_required: 1,
    terminator_strategy: 'smartrouting',
    max_idle_time_millis: 0,
    created_at: now,
    updated_at: now,
  })
  svcAttrs.push({ entity_id: id, attr: `app-${j % 1000}` }, { entity_id: id, attr: `tier-${j % 20}` })
  configs.push({
    id: `bcf${pad(j)}`,
    name: `intercept-${pad(j)}`,
    config_type_id: interceptId,
    data: JSON.stringify({
      protocols: ['tcp'],
      addresses: [`service-${pad(j)}.ziti`],
      portRanges: [{ low: 443, high: 443 }],
    }),
    created_at: now,
    updated_at: now,
  })
  links.push({ service_id: id, config_id: `bcf${pad(j)}`, config_type_id: interceptId })
}
await bulk('services', services)
await bulk('service_role_attributes', svcAttrs)
await bulk('configs', configs)
await bulk('service_configs', links)
// routers + router policies
const routers = []
for (let r = 0; r < N_ROUTERS; r++) {
  routers.push({
    id: `brt${pad(r)}`,
    name: `router-${r}`,
    disabled: 0,
    advertise: `127.0.0.1:${3022 + r}`,
    is_online: 0,
    cost: 0,
    version: null,
    created_at: now,
    updated_at: now,
  })
}
await bulk('edge_routers', routers)
await bulk(
  'edge_router_role_attributes',
  routers.map((r, i) => ({ entity_id: r.id, attr: i % 2 === 0 ? 'public' : 'private' })),
)
const policies = []
for (let k = 0; k < N_POL; k++) {
  const dial = k % 10 !== 9
  policies.push({
    id: `bsp${pad(k)}`,
    name: `policy-${pad(k)}`,
    type: dial ? 'Dial' : 'Bind',
    semantic: 'AnyOf',
    identity_roles: JSON.stringify(dial ? [`#team-${k % 1000}`] : [`#dept-${k % 50}`]),
    service_roles: JSON.stringify([`#app-${k % 1000}`]),
    posture_check_roles: '[]',
    created_at: now,
    updated_at: now,
  })
}
await bulk('service_policies', policies)
await bulk('edge_router_policies', [
  {
    id: 'berp1',
    name: 'all-public',
    semantic: 'AnyOf',
    identity_roles: '["#all"]',
    edge_router_roles: '["#public"]',
    created_at: now,
    updated_at: now,
  },
])
await bulk('service_edge_router_policies', [
  {
    id: 'bserp1',
    name: 'all-svc',
    semantic: 'AnyOf',
    service_roles: '["#all"]',
    edge_router_roles: '["#all"]',
    created_at: now,
    updated_at: now,
  },
])
await store.close()
results.bulkLoadMs = ms(performance.now() - t0)
log(
  `bulk load (store layer): ${N_ID} identities, ${N_SVC} services + configs, ${N_POL} policies in ${results.bulkLoadMs} ms`,
)

// ---------------------------------------------------------------------------------------------
// 2. a real controller on that store
t0 = performance.now()
const running = await startController({
  config: loadConfig({ dataDir, listen: '127.0.0.1:0', database: DATABASE, logLevel: 'warn' }),
  admin: { username: 'admin', password: 'bench-password-1' },
})
results.startMs = ms(performance.now() - t0)
const { ctx, url } = running
const heapMb = Math.round(process.memoryUsage().heapUsed / 1048576)
results.heapMb = heapMb
log(
  `controller start (migrations check, PolicyIndex load from the store): ${results.startMs} ms, heap ${heapMb} MiB`,
)

const ca = ctx.edge.caBundlePem
function call(method, path, body, token) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body)
    const req = request(
      `${url}${path}`,
      {
        method,
        ca,
        headers: {
          ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let text = ''
        res.on('data', (c) => {
          text += c
        })
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }))
      },
    )
    req.on('error', reject)
    req.end(data)
  })
}

// ---------------------------------------------------------------------------------------------
// 3. one identity's service list (the client API's answer)
const who = 'bid000000'
t0 = performance.now()
let list = await ctx.core.clientServices(who)
results.clientServicesColdMs = ms(performance.now() - t0)
t0 = performance.now()
list = await ctx.core.clientServices(who)
results.clientServicesWarmMs = ms(performance.now() - t0)
results.clientServicesCount = list.length
results.clientServicesRouters = list[0]?.edgeRouterIds.length ?? 0
const samples = []
for (let i = 0; i < 200; i++) {
  const id = `bid${pad((i * 7919) % N_ID)}`
  const t = performance.now()
  await ctx.core.clientServices(id)
  samples.push(performance.now() - t)
}
samples.sort((a, b) => a - b)
results.clientServicesP50Ms = ms(samples[Math.floor(samples.length * 0.5)])
results.clientServicesP99Ms = ms(samples[Math.floor(samples.length * 0.99)])
t0 = performance.now()
ctx.policy.servicesFor(who, 'Dial')
results.indexServicesForMs = ms(performance.now() - t0)
log(
  `client service list for ${who}: ${list.length} services (${results.clientServicesRouters} routers each), cold ${results.clientServicesColdMs} ms, warm ${results.clientServicesWarmMs} ms; 200 identities p50 ${results.clientServicesP50Ms} ms p99 ${results.clientServicesP99Ms} ms; PolicyIndex.servicesFor alone ${results.indexServicesForMs} ms`,
)

// ---------------------------------------------------------------------------------------------
// 4. one policy change end to end: HTTP PATCH -> committed -> index updated
const auth = await call('POST', '/edge/management/v1/authenticate', {
  username: 'admin',
  password: 'bench-password-1',
})
const token = auth.body.data.token
const target = 'service-000500' // app-500: not reachable for team-0 before the change
const before = await call(
  'GET',
  `/edge/management/v1/policy-advisor/identities/identity-000000/services/${target}`,
  undefined,
  token,
)
if (before.body.data.canDial) throw new Error('bench setup: identity-000000 can already dial the target')
let changeSeen = 0
const off = ctx.changes.subscribe((changes) => {
  if (changes.some((c) => c.entity === 'servicePolicy')) changeSeen = performance.now()
})
t0 = performance.now()
const patch = await call(
  'PATCH',
  '/edge/management/v1/service-policies/policy-000000',
  { serviceRoles: ['#app-0', '#app-500'] },
  token,
)
const patchMs = performance.now() - t0
if (patch.status !== 200) throw new Error(`PATCH failed: ${JSON.stringify(patch.body)}`)
const indexOk = ctx.policy.servicesFor(who, 'Dial').has('bsv000500')
const after = await call(
  'GET',
  `/edge/management/v1/policy-advisor/identities/identity-000000/services/${target}`,
  undefined,
  token,
)
const e2eMs = performance.now() - t0
off()
results.policyChangePatchMs = ms(patchMs)
results.policyChangeCommittedToIndexMs = changeSeen ? ms(changeSeen - t0) : null
results.policyChangeVisibleViaAdvisorMs = ms(e2eMs)
results.policyChangeApplied = indexOk && after.body.data.canDial === true
log(
  `policy change: PATCH answered in ${results.policyChangePatchMs} ms (index updated ${results.policyChangeCommittedToIndexMs} ms after the request started), visible through the advisor after ${results.policyChangeVisibleViaAdvisorMs} ms; applied: ${results.policyChangeApplied}`,
)

// a few more PATCHes for a steadier figure
const more = []
for (let i = 1; i <= 20; i++) {
  const t = performance.now()
  const r = await call(
    'PATCH',
    `/edge/management/v1/service-policies/policy-${pad(i)}`,
    { serviceRoles: [`#app-${i}`, '#app-999'] },
    token,
  )
  if (r.status !== 200) throw new Error(JSON.stringify(r.body))
  more.push(performance.now() - t)
}
more.sort((a, b) => a - b)
results.policyChangeP50Ms = ms(more[10])
log(
  `20 more policy PATCHes end to end: p50 ${results.policyChangeP50Ms} ms, max ${ms(more[more.length - 1])} ms`,
)

// server-side lists at this size (pagination, filter, roleFilter, name resolution)
for (const [label, path] of [
  [
    'identities, filter name contains',
    `/edge/management/v1/identities?limit=100&filter=${encodeURIComponent('name contains "0999"')}`,
  ],
  ['identities, roleFilter #team-7', '/edge/management/v1/identities?limit=100&roleFilter=%23team-7'],
  ['identities, page at offset 90000', '/edge/management/v1/identities?limit=100&offset=90000'],
  ['service-policies with names resolved', '/edge/management/v1/service-policies?limit=100'],
]) {
  await call('GET', path, undefined, token)
  const t = performance.now()
  const r = await call('GET', path, undefined, token)
  const took = ms(performance.now() - t)
  results[`list: ${label}`] = took
  log(`GET ${label}: ${r.body.data.length} of ${r.body.meta.pagination.totalCount} in ${took} ms`)
}

await running.close()
rmSync(dataDir, { recursive: true, force: true })
if (JSON_OUT) console.log(JSON.stringify(results))
