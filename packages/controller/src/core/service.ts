/**
 * The service layer: entity CRUD with validation and role resolution, sessions, enrollment
 * records, terminators. Every write runs in ONE store transaction together with its audit row;
 * its policy DataChanges get versions from the `change_version` counter in that transaction and
 * are published to the change feed after commit, in commit order (writes are serialized per
 * process).
 */
import type {
  AdvisorReport,
  ClientService,
  DataChange,
  DataEntity,
  DataEntityName,
  EdgeRouterPolicy,
  PolicyIdentity,
  PolicyIndex,
  PolicyRouter,
  PolicyService,
  PolicySnapshot,
  Semantic,
  ServiceEdgeRouterPolicy,
  ServicePolicy,
  Terminator,
} from '@nullport/protocol'
import { type Kysely, sql } from 'kysely'
import type { Logger } from 'pino'
import type { ControllerConfig } from '../config.js'
import { ControllerError } from '../errors.js'
import type { Store, Tx } from '../store/db.js'
import type {
  ConfigRow,
  ConfigTypeRow,
  EdgeRouterPolicyRow,
  EdgeRouterRow,
  IdentityRow,
  ServiceEdgeRouterPolicyRow,
  ServicePolicyRow,
  ServiceRow,
  TerminatorRow,
} from '../store/schema.js'
import { BUILTIN_CONFIG_TYPES, semanticChecks } from './builtin-config-types.js'
import type { ChangeBatch, ChangeFeed, EntityEvent, EntityKind } from './change-feed.js'
import type { EdgeModule } from './context.js'
import { hashPassword, newId, newToken, sha256Hex, verifyPassword } from './crypto.js'
import { checkSchema, validateJson } from './json-schema.js'
import { type FilterCond, type ListQuery, likeEscape, type Pagination, pageOf, parseFilter } from './query.js'
import { FailureLimiter } from './rate-limit.js'

// biome-ignore lint/suspicious/noExplicitAny: dynamic table access for the generic list/lookup helpers
type AnyDb = Kysely<any>

/** Who makes a change (audit log). */
export interface Actor {
  id: string | null
  name: string
}
export const SYSTEM_ACTOR: Actor = { id: null, name: 'system' }

export type EntityType =
  | 'identities'
  | 'services'
  | 'configs'
  | 'config-types'
  | 'service-policies'
  | 'edge-routers'
  | 'edge-router-policies'
  | 'service-edge-router-policies'

export const ENTITY_TYPES: EntityType[] = [
  'identities',
  'services',
  'configs',
  'config-types',
  'service-policies',
  'edge-routers',
  'edge-router-policies',
  'service-edge-router-policies',
]

export interface ListResult<T> {
  data: T[]
  pagination: Pagination
}

/** Result of a write: the entity as the API shows it, and warnings (e.g. roles matching nothing). */
export interface WriteResult<T = Record<string, unknown>> {
  data: T
  warnings: string[]
}

export interface EnrollmentInfo {
  method: 'ott' | 'erott'
  jwt: string
  expiresAt: string
}

export interface RoleDisplay {
  role: string
  name: string
}

type PendingChange = { op: 'upsert' } & DataEntity extends infer U ? U : never
type Pending = PendingChange | { op: 'delete'; entity: DataEntityName; id: string }

/** The state of one write transaction. */
export interface WriteCtx {
  trx: Tx
  actor: Actor
  now: string
  pending: Pending[]
  entities: EntityEvent[]
  warnings: string[]
}

export interface CoreDeps {
  config: ControllerConfig
  log: Logger
  store: Store
  policy: PolicyIndex
  feed: ChangeFeed
  /** The edge module (enrollment signing); set after the core is built. */
  edge: () => EdgeModule | undefined
}

const IDENTITY_TYPES = ['Device', 'User', 'Service', 'Default'] as const
const PRECEDENCES = ['default', 'required', 'failed'] as const
const STRATEGIES = ['smartrouting', 'weighted', 'random', 'sticky'] as const

function boolOf(v: number | boolean): boolean {
  return v === true || v === 1
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  return (
    e?.code === '23505' ||
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    /UNIQUE constraint failed/.test(e?.message ?? '')
  )
}

function validation(path: string, message: string, extra: Record<string, unknown> = {}): ControllerError {
  return new ControllerError('ERR_VALIDATION', `${path.replace(/^\$\.?/, '') || 'body'}: ${message}`, {
    path,
    ...extra,
  })
}

function nameInUse(type: string, name: string): ControllerError {
  return new ControllerError(
    'ERR_NAME_IN_USE',
    `a ${type} named "${name}" already exists: choose another name`,
    {
      name,
      entity: type,
    },
  )
}

function notFound(type: string, ref: string): ControllerError {
  return new ControllerError('ERR_NOT_FOUND', `no ${type} with id or name "${ref}"`, { entity: type, ref })
}

/** Role attribute list: strings without `#`, unique, trimmed. */
function normAttrs(attrs: string[] | undefined, path: string): string[] {
  if (attrs === undefined) return []
  const out: string[] = []
  attrs.forEach((a, i) => {
    const v = a.trim().replace(/^#/, '')
    if (v === '' || v === 'all' || /[\s,@#]/.test(v) || v.length > 128)
      throw validation(
        `${path}[${i}]`,
        `role attribute "${a}" must be 1-128 characters without spaces, commas, @ or # (and not "all")`,
      )
    if (!out.includes(v)) out.push(v)
  })
  return out
}

function chunk<T>(items: T[], n = 500): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n))
  return out
}

type RoleTarget = 'identity' | 'service' | 'router' | 'postureCheck'

interface PolicyDef {
  kind: 'servicePolicy' | 'edgeRouterPolicy' | 'serviceEdgeRouterPolicy'
  type: EntityType
  label: string
  table: 'service_policies' | 'edge_router_policies' | 'service_edge_router_policies'
  roles: Array<{ field: string; column: string; target: RoleTarget }>
}

const POLICY_DEFS: Record<
  'service-policies' | 'edge-router-policies' | 'service-edge-router-policies',
  PolicyDef
> = {
  'service-policies': {
    kind: 'servicePolicy',
    type: 'service-policies',
    label: 'service policy',
    table: 'service_policies',
    roles: [
      { field: 'identityRoles', column: 'identity_roles', target: 'identity' },
      { field: 'serviceRoles', column: 'service_roles', target: 'service' },
      { field: 'postureCheckRoles', column: 'posture_check_roles', target: 'postureCheck' },
    ],
  },
  'edge-router-policies': {
    kind: 'edgeRouterPolicy',
    type: 'edge-router-policies',
    label: 'edge router policy',
    table: 'edge_router_policies',
    roles: [
      { field: 'identityRoles', column: 'identity_roles', target: 'identity' },
      { field: 'edgeRouterRoles', column: 'edge_router_roles', target: 'router' },
    ],
  },
  'service-edge-router-policies': {
    kind: 'serviceEdgeRouterPolicy',
    type: 'service-edge-router-policies',
    label: 'service edge router policy',
    table: 'service_edge_router_policies',
    roles: [
      { field: 'serviceRoles', column: 'service_roles', target: 'service' },
      { field: 'edgeRouterRoles', column: 'edge_router_roles', target: 'router' },
    ],
  },
}

const ROLE_TABLES: Record<
  Exclude<RoleTarget, 'postureCheck'>,
  { table: string; attrs: string; label: string }
> = {
  identity: { table: 'identities', attrs: 'identity_role_attributes', label: 'identity' },
  service: { table: 'services', attrs: 'service_role_attributes', label: 'service' },
  router: { table: 'edge_routers', attrs: 'edge_router_role_attributes', label: 'edge router' },
}

interface CertInfo {
  fingerprint: string
  expiresAt: string | null
}
interface PendingEnrollment {
  method: string
  jwt: string
  expiresAt: string
  expired: boolean
}

/**
 * The credential fields identity and edge-router views share: current certificates, the earliest
 * expiry among them, and a pending enrollment (its token only in detail views, never once expired).
 */
function credentialView(certs: CertInfo[], enrollment: PendingEnrollment | undefined, detail: boolean) {
  return {
    enrolled: certs.length > 0,
    certificates: certs,
    certExpiresAt:
      certs
        .map((x) => x.expiresAt)
        .filter((x): x is string => !!x)
        .sort()[0] ?? null,
    enrollment: enrollment
      ? {
          method: enrollment.method,
          expiresAt: enrollment.expiresAt,
          expired: enrollment.expired,
          ...(detail && !enrollment.expired ? { jwt: enrollment.jwt } : {}),
        }
      : null,
  }
}

export class CoreService {
  private readonly config: ControllerConfig
  readonly log: Logger
  private readonly store: Store
  private readonly policy: PolicyIndex
  private readonly feed: ChangeFeed
  private readonly edge: () => EdgeModule | undefined
  private queue: Promise<unknown> = Promise.resolve()
  /** This controller process, in the change log (several controllers on one PostgreSQL). */
  readonly instanceId = newId()
  private lastLogId = 0
  private catchUpChain: Promise<void> = Promise.resolve()
  private writesSincePrune = 0
  readonly loginLimiter = new FailureLimiter(5, 60_000)

  constructor(deps: CoreDeps) {
    this.config = deps.config
    this.log = deps.log
    this.store = deps.store
    this.policy = deps.policy
    this.feed = deps.feed
    this.edge = deps.edge
  }

  private get db(): AnyDb {
    return this.store.db as unknown as AnyDb
  }

  // ---------------------------------------------------------------------------------------------
  // transactions

  /**
   * Runs `fn` in one transaction (serialized with every other write of this controller), then
   * writes versions for its DataChanges and publishes the batch after commit.
   */
  write<T>(actor: Actor, fn: (w: WriteCtx) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      let w!: WriteCtx
      let versions: number[] = []
      let current = 0
      let logged = false
      const pg = this.store.dialect === 'postgres'
      const result = await this.store.transaction(async (trx) => {
        w = { trx, actor, now: new Date().toISOString(), pending: [], entities: [], warnings: [] }
        const r = await fn(w)
        const n = w.pending.length
        const row = await (trx as unknown as AnyDb)
          .updateTable('change_version')
          .set({ version: sql`version + ${n}` })
          .where('id', '=', 1)
          .returning('version')
          .executeTakeFirstOrThrow()
        current = Number(row.version)
        versions = w.pending.map((_, i) => current - n + 1 + i)
        if (pg && (n > 0 || w.entities.length > 0)) {
          // other controllers on this database replay the batch (ids follow commit order: the
          // change_version row lock is held from the update above until commit)
          const changes = w.pending.map((p, i) => ({ ...p, version: versions[i]! }))
          const logRow = await w.trx
            .insertInto('change_log')
            .values({
              origin: this.instanceId,
              at: w.now,
              batch: JSON.stringify({ version: current, changes, entities: w.entities, actor: w.actor }),
            })
            .returning('id')
            .executeTakeFirstOrThrow()
          await sql`select pg_notify(${this.store.channelName('nullport_changes')}, ${String(logRow.id)})`.execute(
            trx,
          )
          logged = true
        }
        return r
      })
      if (logged) {
        // publish through the log, in order with other controllers' batches; the write is
        // committed either way (a failed read here is retried on the next write or NOTIFY)
        await this.catchUp().catch((err) =>
          this.log.error({ err }, 'change-log catch-up after a write failed'),
        )
        if (++this.writesSincePrune >= 500) {
          this.writesSincePrune = 0
          const cutoff = new Date(Date.now() - 3_600_000).toISOString()
          await this.store.db
            .deleteFrom('change_log')
            .where('at', '<', cutoff)
            .execute()
            .catch(() => {})
        }
      } else {
        const changes = w.pending.map((p, i) => ({ ...p, version: versions[i]! }) as DataChange)
        if (changes.length > 0 || w.entities.length > 0) {
          this.feed.publish({ version: current, changes, entities: w.entities, actor: w.actor })
        }
      }
      return result
    }
    const p = this.queue.then(run, run)
    this.queue = p.catch(() => {})
    return p
  }

  /** Housekeeping (run every few minutes): expired sessions, old change-log rows. */
  async maintenance(): Promise<{ sessions: number; changeLog: number }> {
    const now = new Date().toISOString()
    const sessions = await this.store.db
      .deleteFrom('api_sessions')
      .where('expires_at', '<', now)
      .executeTakeFirst()
    let changeLog = 0
    if (this.store.dialect === 'postgres') {
      const cutoff = new Date(Date.now() - 3_600_000).toISOString()
      const r = await this.store.db.deleteFrom('change_log').where('at', '<', cutoff).executeTakeFirst()
      changeLog = Number(r.numDeletedRows ?? 0)
    }
    return { sessions: Number(sessions.numDeletedRows ?? 0), changeLog }
  }

  /**
   * PostgreSQL: publishes every change-log batch after the last one seen, in id order (own and
   * other controllers' writes alike). Serialized; called after each local commit and on NOTIFY.
   */
  catchUp(): Promise<void> {
    const run = async () => {
      for (;;) {
        const rows = await this.store.db
          .selectFrom('change_log')
          .select(['id', 'batch'])
          .where('id', '>', this.lastLogId)
          .orderBy('id')
          .limit(500)
          .execute()
        for (const r of rows) {
          this.lastLogId = Number(r.id)
          try {
            const b = JSON.parse(r.batch) as ChangeBatch
            this.feed.publish(b)
          } catch (err) {
            this.log.error({ err, id: r.id }, 'cannot replay a change-log batch')
          }
        }
        if (rows.length < 500) return
      }
    }
    const p = this.catchUpChain.then(run, run)
    this.catchUpChain = p.catch((err) => {
      this.log.error({ err }, 'change-log catch-up failed')
    })
    return p
  }

  private async audit(
    w: WriteCtx,
    action: string,
    entityType: string,
    entityId: string,
    entityName: string | null,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    await w.trx
      .insertInto('audit_log')
      .values({
        at: w.now,
        actor_id: w.actor.id,
        actor_name: w.actor.name,
        action,
        entity_type: entityType,
        entity_id: entityId,
        entity_name: entityName,
        details: JSON.stringify(details),
      })
      .execute()
  }

  private touch(w: WriteCtx, entity: EntityKind, op: EntityEvent['op'], id: string): void {
    w.entities.push({ entity, op, id })
  }

  // ---------------------------------------------------------------------------------------------
  // startup

  /** Creates built-in config types, resets router online state, loads the policy index. */
  async init(): Promise<void> {
    for (const t of BUILTIN_CONFIG_TYPES) {
      const existing = await this.store.db
        .selectFrom('config_types')
        .select(['id', 'schema'])
        .where('name', '=', t.name)
        .executeTakeFirst()
      const schema = JSON.stringify(t.schema)
      if (!existing) {
        await this.write(SYSTEM_ACTOR, async (w) => {
          const id = newId()
          await w.trx
            .insertInto('config_types')
            .values({ id, name: t.name, schema, builtin: 1, created_at: w.now, updated_at: w.now })
            .execute()
          await this.audit(w, 'create', 'config-type', id, t.name, { builtin: true })
        })
      } else if (existing.schema !== schema) {
        await this.write(SYSTEM_ACTOR, async (w) => {
          await w.trx
            .updateTable('config_types')
            .set({ schema, updated_at: w.now })
            .where('id', '=', existing.id)
            .execute()
          await this.audit(w, 'update', 'config-type', existing.id, t.name, {
            builtin: true,
            fields: ['schema'],
          })
        })
      }
    }
    if (this.store.dialect === 'sqlite') {
      // one controller per SQLite file: no router is connected to us yet
      await this.store.db
        .updateTable('edge_routers')
        .set({ is_online: 0 })
        .where('is_online', '=', 1)
        .execute()
    }
    if (this.store.listen) {
      await this.store.listen(
        this.store.channelName('nullport_changes'),
        () => {
          this.catchUp().catch(() => {})
        },
        () => {
          this.catchUp().catch(() => {})
        },
      )
    }
    const { snapshot, logId } = await this.readSnapshot()
    this.lastLogId = logId
    this.policy.load(snapshot)
    this.feed.version = snapshot.version
    // batches committed while the snapshot was read are replayed (the index ignores older versions)
    if (this.store.dialect === 'postgres') await this.catchUp()
  }

  /** Reads the whole policy data from the store (consistent: one transaction). */
  async loadSnapshot(): Promise<PolicySnapshot> {
    return (await this.readSnapshot()).snapshot
  }

  /** The snapshot and, on PostgreSQL, the last change-log id it includes (one consistent read). */
  private async readSnapshot(): Promise<{ snapshot: PolicySnapshot; logId: number }> {
    return this.store.snapshotTransaction(async (trx) => {
      const t = trx as unknown as AnyDb
      let logId = 0
      if (this.store.dialect === 'postgres') {
        const last = await t
          .selectFrom('change_log')
          .select((eb) => eb.fn.max('id').as('m'))
          .executeTakeFirst()
        logId = Number(last?.m ?? 0)
      }
      const version = Number(
        (await t.selectFrom('change_version').select('version').where('id', '=', 1).executeTakeFirstOrThrow())
          .version,
      )
      const attrsOf = async (table: string) => {
        const m = new Map<string, string[]>()
        const rows = (await t.selectFrom(table).select(['entity_id', 'attr']).execute()) as Array<{
          entity_id: string
          attr: string
        }>
        for (const r of rows) {
          const a = m.get(r.entity_id)
          if (a) a.push(r.attr)
          else m.set(r.entity_id, [r.attr])
        }
        return m
      }
      const fps = new Map<string, string[]>()
      for (const r of (await t
        .selectFrom('authenticators')
        .select(['identity_id', 'router_id', 'fingerprint'])
        .where('method', '=', 'cert')
        .execute()) as Array<{
        identity_id: string | null
        router_id: string | null
        fingerprint: string | null
      }>) {
        const owner = r.identity_id ?? r.router_id
        if (!owner || !r.fingerprint) continue
        const a = fps.get(owner)
        if (a) a.push(r.fingerprint)
        else fps.set(owner, [r.fingerprint])
      }
      const iAttrs = await attrsOf('identity_role_attributes')
      const sAttrs = await attrsOf('service_role_attributes')
      const rAttrs = await attrsOf('edge_router_role_attributes')
      const identities = ((await t.selectFrom('identities').selectAll().execute()) as IdentityRow[]).map(
        (r): PolicyIdentity => ({
          id: r.id,
          name: r.name,
          roleAttributes: iAttrs.get(r.id) ?? [],
          disabled: boolOf(r.disabled),
          certFingerprints: fps.get(r.id) ?? [],
        }),
      )
      const services = ((await t.selectFrom('services').selectAll().execute()) as ServiceRow[]).map((r) =>
        toPolicyService(r, sAttrs.get(r.id) ?? []),
      )
      const routers = ((await t.selectFrom('edge_routers').selectAll().execute()) as EdgeRouterRow[]).map(
        (r) => toPolicyRouter(r, rAttrs.get(r.id) ?? [], fps.get(r.id) ?? []),
      )
      const servicePolicies = (
        (await t.selectFrom('service_policies').selectAll().execute()) as ServicePolicyRow[]
      ).map(toServicePolicy)
      const edgeRouterPolicies = (
        (await t.selectFrom('edge_router_policies').selectAll().execute()) as EdgeRouterPolicyRow[]
      ).map(toEdgeRouterPolicy)
      const serviceEdgeRouterPolicies = (
        (await t
          .selectFrom('service_edge_router_policies')
          .selectAll()
          .execute()) as ServiceEdgeRouterPolicyRow[]
      ).map(toServiceEdgeRouterPolicy)
      const terminators = ((await t.selectFrom('terminators').selectAll().execute()) as TerminatorRow[]).map(
        toTerminator,
      )
      return {
        logId,
        snapshot: {
          version,
          identities,
          services,
          routers,
          servicePolicies,
          edgeRouterPolicies,
          serviceEdgeRouterPolicies,
          terminators,
        },
      }
    })
  }

  // ---------------------------------------------------------------------------------------------
  // generic helpers

  private async findRow<R>(trx: AnyDb, table: string, ref: string): Promise<R | undefined> {
    const byId = await trx.selectFrom(table).selectAll().where('id', '=', ref).executeTakeFirst()
    if (byId) return byId as R
    return (await trx.selectFrom(table).selectAll().where('name', '=', ref).executeTakeFirst()) as
      | R
      | undefined
  }

  private async mustFind<R>(trx: AnyDb, table: string, ref: string, label: string): Promise<R> {
    const r = await this.findRow<R>(trx, table, ref)
    if (!r) throw notFound(label, ref)
    return r
  }

  private async checkName(
    trx: AnyDb,
    table: string,
    name: string,
    label: string,
    exceptId?: string,
  ): Promise<void> {
    let q = trx.selectFrom(table).select('id').where('name', '=', name)
    if (exceptId) q = q.where('id', '!=', exceptId)
    if (await q.executeTakeFirst()) throw nameInUse(label, name)
  }

  private checkNameValue(name: unknown, path = '$.name'): string {
    if (typeof name !== 'string') throw validation(path, 'must be a string')
    const n = name.trim()
    if (n.length === 0 || n.length > 255) throw validation(path, 'must be 1-255 characters')
    if (n !== name) throw validation(path, 'must not start or end with spaces')
    return n
  }

  /** Paged list with filter and optional roleFilter; returns rows of `table`. */
  private async listRows<R>(
    table: string,
    q: ListQuery,
    fields: Record<string, string>,
    roleTable?: { attrs: string; table: string },
  ): Promise<{ rows: R[]; pagination: Pagination }> {
    const { limit, offset } = pageOf(q)
    const conds = parseFilter(q.filter, Object.keys(fields))
    checkFilterTypes(conds, fields)
    if (q.roleFilter && q.roleFilter.length > 0 && !roleTable) {
      throw new ControllerError(
        'ERR_VALIDATION',
        'roleFilter is only supported for identities, services and edge-routers',
        {
          path: '$.roleFilter',
        },
      )
    }
    const roleIds: Array<{ attr?: string; id?: string }> = []
    for (const [i, r] of (q.roleFilter ?? []).entries()) {
      if (r === '#all') continue
      if (r.startsWith('#') && r.length > 1) roleIds.push({ attr: r.slice(1) })
      else if (r.startsWith('@') && r.length > 1) {
        const row = await this.findRow<{ id: string }>(this.db, roleTable!.table, r.slice(1))
        roleIds.push({ id: row ? row.id : '\u0000none' })
      } else throw validation(`$.roleFilter[${i}]`, `"${r}" must be #attr, @id-or-name or #all`)
    }
    const semantic = q.roleSemantic ?? 'AllOf'
    // biome-ignore lint/suspicious/noExplicitAny: dynamic query builder
    const apply = (qb: any) => {
      let b = qb
      for (const c of conds) b = b.where(condSql(fields[c.field]!, c))
      if (roleIds.length > 0) {
        // biome-ignore lint/suspicious/noExplicitAny: expression builder
        b = b.where((eb: any) => {
          const parts = roleIds.map((r) =>
            r.attr !== undefined
              ? eb('id', 'in', eb.selectFrom(roleTable!.attrs).select('entity_id').where('attr', '=', r.attr))
              : eb('id', '=', r.id),
          )
          return semantic === 'AllOf' ? eb.and(parts) : eb.or(parts)
        })
      }
      return b
    }
    const total = await apply(
      this.db.selectFrom(table).select((eb) => eb.fn.countAll().as('c')),
    ).executeTakeFirst()
    const rows = await apply(this.db.selectFrom(table).selectAll())
      .orderBy(fields.name ? 'name' : 'id')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute()
    return { rows: rows as R[], pagination: { limit, offset, totalCount: Number(total?.c ?? 0) } }
  }

  private async attrsFor(trx: AnyDb, table: string, ids: string[]): Promise<Map<string, string[]>> {
    const m = new Map<string, string[]>()
    for (const part of chunk(ids)) {
      if (part.length === 0) continue
      const rows = (await trx
        .selectFrom(table)
        .select(['entity_id', 'attr'])
        .where('entity_id', 'in', part)
        .orderBy('attr')
        .execute()) as Array<{ entity_id: string; attr: string }>
      for (const r of rows) {
        const a = m.get(r.entity_id)
        if (a) a.push(r.attr)
        else m.set(r.entity_id, [r.attr])
      }
    }
    return m
  }

  private async setAttrs(trx: AnyDb, table: string, id: string, attrs: string[]): Promise<void> {
    await trx.deleteFrom(table).where('entity_id', '=', id).execute()
    if (attrs.length > 0)
      await trx
        .insertInto(table)
        .values(attrs.map((attr) => ({ entity_id: id, attr })))
        .execute()
  }

  private async fingerprintsFor(trx: AnyDb, column: 'identity_id' | 'router_id', ids: string[]) {
    const m = new Map<string, CertInfo[]>()
    for (const part of chunk(ids)) {
      const rows = (await trx
        .selectFrom('authenticators')
        .select([column, 'fingerprint', 'expires_at'])
        .where('method', '=', 'cert')
        .where(column, 'in', part)
        .execute()) as Array<Record<string, string | null>>
      for (const r of rows) {
        const k = r[column] as string
        const v = { fingerprint: r.fingerprint as string, expiresAt: r.expires_at ?? null }
        const a = m.get(k)
        if (a) a.push(v)
        else m.set(k, [v])
      }
    }
    return m
  }

  private async pendingEnrollments(trx: AnyDb, column: 'identity_id' | 'router_id', ids: string[]) {
    const m = new Map<string, PendingEnrollment>()
    const now = new Date().toISOString()
    for (const part of chunk(ids)) {
      const rows = (await trx
        .selectFrom('enrollments')
        .select([column, 'method', 'jwt', 'expires_at'])
        .where(column, 'in', part)
        .where('used_at', 'is', null)
        .execute()) as Array<Record<string, string>>
      for (const r of rows) {
        m.set(r[column]!, {
          method: r.method!,
          jwt: r.jwt!,
          expiresAt: r.expires_at!,
          expired: r.expires_at! < now,
        })
      }
    }
    return m
  }

  // ---------------------------------------------------------------------------------------------
  // role references

  /** Validates roles, resolves `@name` to `@id`; warns about roles that match nothing. */
  private async resolveRoles(
    w: WriteCtx,
    roles: string[] | undefined,
    target: RoleTarget,
    path: string,
  ): Promise<string[]> {
    const out: string[] = []
    if (roles === undefined) return out
    const trx = w.trx as unknown as AnyDb
    for (const [i, raw] of roles.entries()) {
      const role = raw.trim()
      const at = `${path}[${i}]`
      let resolved: string
      if (role === '#all') {
        resolved = role
      } else if (role.startsWith('#') && role.length > 1) {
        const attr = role.slice(1)
        if (/[\s,@#]/.test(attr)) throw validation(at, `"${raw}" is not a valid #attribute role`)
        resolved = role
        if (target === 'postureCheck') {
          w.warnings.push(
            `${path.slice(2)}: ${role} matches no posture check (posture checks are not supported yet)`,
          )
        } else {
          const t = ROLE_TABLES[target]
          const hit = await trx
            .selectFrom(t.attrs)
            .select('entity_id')
            .where('attr', '=', attr)
            .limit(1)
            .executeTakeFirst()
          if (!hit) w.warnings.push(`${path.slice(2)}: ${role} matches no ${t.label} yet`)
        }
      } else if (role.startsWith('@') && role.length > 1) {
        const ref = role.slice(1)
        if (target === 'postureCheck') {
          throw new ControllerError(
            'ERR_ROLE_NOT_FOUND',
            `${at.slice(2)}: no posture check "${ref}" exists`,
            {
              path: at,
              role: raw,
            },
          )
        }
        const t = ROLE_TABLES[target]
        const row = await this.findRow<{ id: string }>(trx, t.table, ref)
        if (!row)
          throw new ControllerError(
            'ERR_ROLE_NOT_FOUND',
            `${at.slice(2)}: ${role} names no ${t.label}: create it first, or use #attribute roles`,
            { path: at, role: raw, entity: t.label },
          )
        resolved = `@${row.id}`
      } else {
        throw validation(at, `"${raw}" must be #attribute, @id-or-name or #all`)
      }
      if (!out.includes(resolved)) out.push(resolved)
    }
    return out
  }

  /** `[{role, name}]` for roles: `@id` shown as `@name`. */
  private async displayRoles(
    rolesByTarget: Array<{ roles: string[]; target: RoleTarget }>,
  ): Promise<Map<string, string>> {
    const names = new Map<string, string>()
    const want: Record<string, Set<string>> = { identity: new Set(), service: new Set(), router: new Set() }
    for (const { roles, target } of rolesByTarget) {
      if (target === 'postureCheck') continue
      for (const r of roles) if (r.startsWith('@')) want[target]!.add(r.slice(1))
    }
    for (const [target, ids] of Object.entries(want)) {
      const t = ROLE_TABLES[target as Exclude<RoleTarget, 'postureCheck'>]
      for (const part of chunk([...ids])) {
        if (part.length === 0) continue
        const rows = (await this.db
          .selectFrom(t.table)
          .select(['id', 'name'])
          .where('id', 'in', part)
          .execute()) as Array<{
          id: string
          name: string
        }>
        for (const r of rows) names.set(`${target}:${r.id}`, r.name)
      }
    }
    return names
  }

  // ---------------------------------------------------------------------------------------------
  // generic CRUD entry points (management API)

  async list(type: EntityType, q: ListQuery): Promise<ListResult<Record<string, unknown>>> {
    switch (type) {
      case 'identities': {
        const r = await this.listRows<IdentityRow>(
          'identities',
          q,
          {
            name: 'name',
            id: 'id',
            type: 'type',
            isAdmin: 'is_admin',
            disabled: 'disabled',
            createdAt: 'created_at',
          },
          { attrs: 'identity_role_attributes', table: 'identities' },
        )
        return { data: await this.identityViews(r.rows), pagination: r.pagination }
      }
      case 'services': {
        const r = await this.listRows<ServiceRow>(
          'services',
          q,
          { name: 'name', id: 'id', terminatorStrategy: 'terminator_strategy', createdAt: 'created_at' },
          { attrs: 'service_role_attributes', table: 'services' },
        )
        return { data: await this.serviceViews(r.rows), pagination: r.pagination }
      }
      case 'edge-routers': {
        const r = await this.listRows<EdgeRouterRow>(
          'edge_routers',
          q,
          { name: 'name', id: 'id', disabled: 'disabled', isOnline: 'is_online', createdAt: 'created_at' },
          { attrs: 'edge_router_role_attributes', table: 'edge_routers' },
        )
        return { data: await this.routerViews(r.rows), pagination: r.pagination }
      }
      case 'configs': {
        const r = await this.listRows<ConfigRow>('configs', q, {
          name: 'name',
          id: 'id',
          configTypeId: 'config_type_id',
          createdAt: 'created_at',
        })
        return { data: await this.configViews(r.rows), pagination: r.pagination }
      }
      case 'config-types': {
        const r = await this.listRows<ConfigTypeRow>('config_types', q, {
          name: 'name',
          id: 'id',
          createdAt: 'created_at',
        })
        return { data: r.rows.map(configTypeView), pagination: r.pagination }
      }
      default: {
        const def = POLICY_DEFS[type]
        const fields: Record<string, string> = {
          name: 'name',
          id: 'id',
          semantic: 'semantic',
          createdAt: 'created_at',
        }
        if (def.kind === 'servicePolicy') fields.type = 'type'
        const r = await this.listRows<Record<string, string>>(def.table, q, fields)
        return { data: await this.policyViews(def, r.rows), pagination: r.pagination }
      }
    }
  }

  async get(type: EntityType, ref: string): Promise<Record<string, unknown>> {
    switch (type) {
      case 'identities':
        return (
          await this.identityViews(
            [await this.mustFind<IdentityRow>(this.db, 'identities', ref, 'identity')],
            true,
          )
        )[0]!
      case 'services':
        return (
          await this.serviceViews([await this.mustFind<ServiceRow>(this.db, 'services', ref, 'service')])
        )[0]!
      case 'edge-routers':
        return (
          await this.routerViews(
            [await this.mustFind<EdgeRouterRow>(this.db, 'edge_routers', ref, 'edge router')],
            true,
          )
        )[0]!
      case 'configs':
        return (
          await this.configViews([await this.mustFind<ConfigRow>(this.db, 'configs', ref, 'config')])
        )[0]!
      case 'config-types':
        return configTypeView(await this.mustFind<ConfigTypeRow>(this.db, 'config_types', ref, 'config type'))
      default: {
        const def = POLICY_DEFS[type]
        const row = await this.mustFind<Record<string, string>>(this.db, def.table, ref, def.label)
        return (await this.policyViews(def, [row]))[0]!
      }
    }
  }

  create(type: EntityType, body: Record<string, unknown>, actor: Actor): Promise<WriteResult> {
    switch (type) {
      case 'identities':
        return this.createIdentity(body as unknown as IdentityInput, actor)
      case 'services':
        return this.createService(body as unknown as ServiceInput, actor)
      case 'edge-routers':
        return this.createRouter(body as unknown as RouterInput, actor)
      case 'configs':
        return this.createConfig(body as unknown as ConfigInput, actor)
      case 'config-types':
        return this.createConfigType(body as unknown as ConfigTypeInput, actor)
      default:
        return this.createPolicy(POLICY_DEFS[type], body, actor)
    }
  }

  update(type: EntityType, ref: string, body: Record<string, unknown>, actor: Actor): Promise<WriteResult> {
    switch (type) {
      case 'identities':
        return this.updateIdentity(ref, body as unknown as IdentityInput, actor)
      case 'services':
        return this.updateService(ref, body as unknown as ServiceInput, actor)
      case 'edge-routers':
        return this.updateRouter(ref, body as unknown as RouterInput, actor)
      case 'configs':
        return this.updateConfig(ref, body as unknown as ConfigInput, actor)
      case 'config-types':
        return this.updateConfigType(ref, body as unknown as ConfigTypeInput, actor)
      default:
        return this.updatePolicy(POLICY_DEFS[type], ref, body, actor)
    }
  }

  remove(type: EntityType, ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    switch (type) {
      case 'identities':
        return this.deleteIdentity(ref, actor)
      case 'services':
        return this.deleteService(ref, actor)
      case 'edge-routers':
        return this.deleteRouter(ref, actor)
      case 'configs':
        return this.deleteConfig(ref, actor)
      case 'config-types':
        return this.deleteConfigType(ref, actor)
      default:
        return this.deletePolicy(POLICY_DEFS[type], ref, actor)
    }
  }

  // ---------------------------------------------------------------------------------------------
  // identities

  private async identityViews(rows: IdentityRow[], detail = false): Promise<Array<Record<string, unknown>>> {
    const ids = rows.map((r) => r.id)
    const attrs = await this.attrsFor(this.db, 'identity_role_attributes', ids)
    const certs = await this.fingerprintsFor(this.db, 'identity_id', ids)
    const enr = await this.pendingEnrollments(this.db, 'identity_id', ids)
    const users = new Map<string, string>()
    for (const part of chunk(ids)) {
      if (part.length === 0) continue
      for (const r of await this.store.db
        .selectFrom('authenticators')
        .select(['identity_id', 'username'])
        .where('method', '=', 'updb')
        .where('identity_id', 'in', part)
        .execute())
        users.set(r.identity_id!, r.username!)
    }
    return rows.map((r) => {
      const e = enr.get(r.id)
      const c = certs.get(r.id) ?? []
      return {
        id: r.id,
        name: r.name,
        type: r.type,
        roleAttributes: attrs.get(r.id) ?? [],
        isAdmin: boolOf(r.is_admin),
        disabled: boolOf(r.disabled),
        defaultHostingCost: r.default_hosting_cost,
        defaultHostingPrecedence: r.default_hosting_precedence,
        hasPassword: users.has(r.id),
        ...credentialView(c, e, detail),
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      }
    })
  }

  private async policyIdentity(trx: AnyDb, id: string): Promise<PolicyIdentity> {
    const r = (await trx
      .selectFrom('identities')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow()) as IdentityRow
    const attrs = (await this.attrsFor(trx, 'identity_role_attributes', [id])).get(id) ?? []
    const fps = ((await this.fingerprintsFor(trx, 'identity_id', [id])).get(id) ?? []).map(
      (x) => x.fingerprint,
    )
    return { id, name: r.name, roleAttributes: attrs, disabled: boolOf(r.disabled), certFingerprints: fps }
  }

  private normIdentityType(t: unknown): IdentityRow['type'] {
    if (typeof t !== 'string') throw validation('$.type', 'must be a string')
    const found = IDENTITY_TYPES.find((x) => x.toLowerCase() === t.toLowerCase())
    if (!found)
      throw validation('$.type', `must be one of ${IDENTITY_TYPES.join(', ')} (any case), got "${t}"`)
    return found
  }

  private checkPassword(p: unknown, path = '$.password'): string {
    if (typeof p !== 'string' || p.length < 8 || p.length > 1024)
      throw validation(path, 'must be 8-1024 characters')
    return p
  }

  private async issueEnrollment(
    w: WriteCtx,
    kind: 'identity' | 'router',
    entityId: string,
    name: string,
  ): Promise<EnrollmentInfo> {
    const edge = this.edge()
    if (!edge)
      throw new ControllerError('ERR_UNAVAILABLE', 'enrollment signing is not ready yet: retry in a moment')
    const jti = newId()
    const expiresAt = new Date(Date.now() + this.config.enrollmentLifetimeMs)
    const jwt = await edge.signEnrollment({ kind, sub: entityId, jti, name, expiresAt })
    const method = kind === 'identity' ? 'ott' : 'erott'
    await w.trx
      .insertInto('enrollments')
      .values({
        id: jti,
        identity_id: kind === 'identity' ? entityId : null,
        router_id: kind === 'router' ? entityId : null,
        method,
        jwt,
        expires_at: expiresAt.toISOString(),
        used_at: null,
        created_at: w.now,
      })
      .execute()
    return { method, jwt, expiresAt: expiresAt.toISOString() }
  }

  async createIdentity(body: IdentityInput, actor: Actor): Promise<WriteResult> {
    const name = this.checkNameValue(body.name)
    const type = body.type === undefined ? 'Default' : this.normIdentityType(body.type)
    const attrs = normAttrs(body.roleAttributes, '$.roleAttributes')
    const password = body.password === undefined ? undefined : this.checkPassword(body.password)
    const passwordHash = password === undefined ? undefined : await hashPassword(password)
    const isAdmin = body.isAdmin === true
    const r = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      await this.checkName(trx, 'identities', name, 'identity')
      const id = newId()
      await w.trx
        .insertInto('identities')
        .values({
          id,
          name,
          type,
          is_admin: isAdmin ? 1 : 0,
          disabled: body.disabled === true ? 1 : 0,
          default_hosting_cost: body.defaultHostingCost ?? 0,
          default_hosting_precedence: body.defaultHostingPrecedence ?? 'default',
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('identity', name) : err
        })
      await this.setAttrs(trx, 'identity_role_attributes', id, attrs)
      if (passwordHash !== undefined) await this.setPassword(w, id, name, passwordHash)
      const enrollment = isAdmin ? null : await this.issueEnrollment(w, 'identity', id, name)
      await this.audit(w, 'create', 'identity', id, name, {
        fields: Object.keys(body).filter((k) => k !== 'password'),
        ...(password !== undefined ? { password: 'set' } : {}),
      })
      w.pending.push({ op: 'upsert', entity: 'identity', data: await this.policyIdentity(trx, id) })
      this.touch(w, 'identity', 'create', id)
      return { id, enrollment, warnings: w.warnings }
    })
    const view = await this.get('identities', r.id)
    return { data: { ...view, enrollment: r.enrollment }, warnings: r.warnings }
  }

  private async setPassword(
    w: WriteCtx,
    identityId: string,
    username: string,
    hash: string | null,
  ): Promise<void> {
    await w.trx
      .deleteFrom('authenticators')
      .where('identity_id', '=', identityId)
      .where('method', '=', 'updb')
      .execute()
    if (hash === null) return
    const clash = await w.trx
      .selectFrom('authenticators')
      .select('id')
      .where('username', '=', username)
      .executeTakeFirst()
    if (clash) throw nameInUse('username', username)
    await w.trx
      .insertInto('authenticators')
      .values({
        id: newId(),
        identity_id: identityId,
        router_id: null,
        method: 'updb',
        username,
        password_hash: hash,
        fingerprint: null,
        cert_pem: null,
        expires_at: null,
        created_at: w.now,
      })
      .execute()
  }

  private async adminCount(trx: AnyDb, exceptId?: string): Promise<number> {
    let q = trx
      .selectFrom('identities')
      .select((eb) => eb.fn.countAll().as('c'))
      .where('is_admin', '=', 1)
      .where('disabled', '=', 0)
    if (exceptId) q = q.where('id', '!=', exceptId)
    return Number((await q.executeTakeFirst())?.c ?? 0)
  }

  async updateIdentity(ref: string, body: IdentityInput, actor: Actor): Promise<WriteResult> {
    const passwordHash =
      body.password === undefined
        ? undefined
        : body.password === null
          ? null
          : await hashPassword(this.checkPassword(body.password))
    const type = body.type === undefined ? undefined : this.normIdentityType(body.type)
    const attrs =
      body.roleAttributes === undefined ? undefined : normAttrs(body.roleAttributes, '$.roleAttributes')
    const r = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<IdentityRow>(trx, 'identities', ref, 'identity')
      const name = body.name === undefined ? row.name : this.checkNameValue(body.name)
      if (name !== row.name) await this.checkName(trx, 'identities', name, 'identity', row.id)
      const isAdmin = body.isAdmin === undefined ? boolOf(row.is_admin) : body.isAdmin
      const disabled = body.disabled === undefined ? boolOf(row.disabled) : body.disabled
      if (
        boolOf(row.is_admin) &&
        !boolOf(row.disabled) &&
        (!isAdmin || disabled) &&
        (await this.adminCount(trx, row.id)) === 0
      ) {
        throw new ControllerError(
          'ERR_LAST_ADMIN',
          `${row.name} is the last enabled admin: create another admin first`,
          {
            id: row.id,
          },
        )
      }
      await w.trx
        .updateTable('identities')
        .set({
          name,
          type: type ?? row.type,
          is_admin: isAdmin ? 1 : 0,
          disabled: disabled ? 1 : 0,
          default_hosting_cost: body.defaultHostingCost ?? row.default_hosting_cost,
          default_hosting_precedence: body.defaultHostingPrecedence ?? row.default_hosting_precedence,
          updated_at: w.now,
        })
        .where('id', '=', row.id)
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('identity', name) : err
        })
      if (attrs !== undefined) await this.setAttrs(trx, 'identity_role_attributes', row.id, attrs)
      if (passwordHash !== undefined) await this.setPassword(w, row.id, name, passwordHash)
      else if (name !== row.name) {
        await w.trx
          .updateTable('authenticators')
          .set({ username: name })
          .where('identity_id', '=', row.id)
          .where('method', '=', 'updb')
          .execute()
          .catch((err) => {
            throw isUniqueViolation(err) ? nameInUse('username', name) : err
          })
      }
      if (disabled && !boolOf(row.disabled))
        await w.trx.deleteFrom('api_sessions').where('identity_id', '=', row.id).execute()
      await this.audit(w, 'update', 'identity', row.id, name, {
        fields: Object.keys(body).filter((k) => k !== 'password'),
        ...(body.password !== undefined ? { password: body.password === null ? 'removed' : 'set' } : {}),
      })
      w.pending.push({ op: 'upsert', entity: 'identity', data: await this.policyIdentity(trx, row.id) })
      this.touch(w, 'identity', 'update', row.id)
      return { id: row.id, warnings: w.warnings }
    })
    return { data: await this.get('identities', r.id), warnings: r.warnings }
  }

  async deleteIdentity(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<IdentityRow>(trx, 'identities', ref, 'identity')
      if (boolOf(row.is_admin) && !boolOf(row.disabled) && (await this.adminCount(trx, row.id)) === 0) {
        throw new ControllerError(
          'ERR_LAST_ADMIN',
          `${row.name} is the last enabled admin: create another admin first`,
          {
            id: row.id,
          },
        )
      }
      const terms = await w.trx
        .selectFrom('terminators')
        .select('id')
        .where('identity_id', '=', row.id)
        .execute()
      for (const t of terms) w.pending.push({ op: 'delete', entity: 'terminator', id: t.id })
      await w.trx.deleteFrom('identities').where('id', '=', row.id).execute()
      await this.audit(w, 'delete', 'identity', row.id, row.name, { terminators: terms.length })
      w.pending.push({ op: 'delete', entity: 'identity', id: row.id })
      this.touch(w, 'identity', 'delete', row.id)
      return { id: row.id, name: row.name }
    })
  }

  /** New enrollment JWT; the old token and the existing certificates are invalidated at once. */
  async reEnroll(kind: 'identity' | 'router', ref: string, actor: Actor): Promise<WriteResult> {
    const r = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const table = kind === 'identity' ? 'identities' : 'edge_routers'
      const col = kind === 'identity' ? 'identity_id' : 'router_id'
      const row = await this.mustFind<{ id: string; name: string }>(
        trx,
        table,
        ref,
        kind === 'identity' ? 'identity' : 'edge router',
      )
      await trx.deleteFrom('enrollments').where(col, '=', row.id).execute()
      const revoked = await trx
        .deleteFrom('authenticators')
        .where(col, '=', row.id)
        .where('method', '=', 'cert')
        .executeTakeFirst()
      if (kind === 'identity') {
        await w.trx
          .deleteFrom('api_sessions')
          .where('identity_id', '=', row.id)
          .where('kind', '=', 'client')
          .execute()
      }
      const enrollment = await this.issueEnrollment(w, kind, row.id, row.name)
      await this.audit(w, 're-enroll', kind === 'identity' ? 'identity' : 'edge-router', row.id, row.name, {
        revokedCertificates: Number(revoked.numDeletedRows ?? 0),
      })
      if (kind === 'identity') {
        w.pending.push({ op: 'upsert', entity: 'identity', data: await this.policyIdentity(trx, row.id) })
        this.touch(w, 'identity', 'update', row.id)
      } else {
        w.pending.push({ op: 'upsert', entity: 'router', data: await this.policyRouter(trx, row.id) })
        this.touch(w, 'edgeRouter', 'update', row.id)
      }
      return { id: row.id, enrollment }
    })
    const view = await this.get(kind === 'identity' ? 'identities' : 'edge-routers', r.id)
    return { data: { ...view, enrollment: r.enrollment }, warnings: [] }
  }

  // ---------------------------------------------------------------------------------------------
  // services

  private async serviceViews(rows: ServiceRow[]): Promise<Array<Record<string, unknown>>> {
    const ids = rows.map((r) => r.id)
    const attrs = await this.attrsFor(this.db, 'service_role_attributes', ids)
    const links = new Map<string, Array<{ id: string; name: string; type: string }>>()
    for (const part of chunk(ids)) {
      if (part.length === 0) continue
      const rs = await this.store.db
        .selectFrom('service_configs as sc')
        .innerJoin('configs as c', 'c.id', 'sc.config_id')
        .innerJoin('config_types as t', 't.id', 'c.config_type_id')
        .select(['sc.service_id', 'c.id', 'c.name', 't.name as type'])
        .where('sc.service_id', 'in', part)
        .orderBy('c.name')
        .execute()
      for (const x of rs) {
        const a = links.get(x.service_id)
        const v = { id: x.id, name: x.name, type: x.type }
        if (a) a.push(v)
        else links.set(x.service_id, [v])
      }
    }
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      roleAttributes: attrs.get(r.id) ?? [],
      configs: (links.get(r.id) ?? []).map((c) => c.id),
      configsDisplay: links.get(r.id) ?? [],
      encryptionRequired: boolOf(r.encryption_required),
      terminatorStrategy: r.terminator_strategy,
      maxIdleTimeMillis: r.max_idle_time_millis,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }))
  }

  private async policyService(trx: AnyDb, id: string): Promise<PolicyService> {
    const r = (await trx
      .selectFrom('services')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow()) as ServiceRow
    return toPolicyService(r, (await this.attrsFor(trx, 'service_role_attributes', [id])).get(id) ?? [])
  }

  private async setServiceConfigs(w: WriteCtx, serviceId: string, refs: string[]): Promise<void> {
    const trx = w.trx as unknown as AnyDb
    const rows: ConfigRow[] = []
    for (const [i, ref] of refs.entries()) {
      const c = await this.findRow<ConfigRow>(trx, 'configs', ref)
      if (!c)
        throw new ControllerError(
          'ERR_CONFIG_NOT_FOUND',
          `configs[${i}]: no config with id or name "${ref}"`,
          {
            path: `$.configs[${i}]`,
            ref,
          },
        )
      if (rows.some((x) => x.id === c.id)) continue
      const same = rows.find((x) => x.config_type_id === c.config_type_id)
      if (same)
        throw new ControllerError(
          'ERR_DUPLICATE_CONFIG_TYPE',
          `configs[${i}]: "${c.name}" has the same config type as "${same.name}": a service takes one config per type`,
          { path: `$.configs[${i}]` },
        )
      rows.push(c)
    }
    await w.trx.deleteFrom('service_configs').where('service_id', '=', serviceId).execute()
    if (rows.length > 0)
      await w.trx
        .insertInto('service_configs')
        .values(
          rows.map((c) => ({ service_id: serviceId, config_id: c.id, config_type_id: c.config_type_id })),
        )
        .execute()
  }

  async createService(body: ServiceInput, actor: Actor): Promise<WriteResult> {
    const name = this.checkNameValue(body.name)
    const attrs = normAttrs(body.roleAttributes, '$.roleAttributes')
    const r = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      await this.checkName(trx, 'services', name, 'service')
      const id = newId()
      await w.trx
        .insertInto('services')
        .values({
          id,
          name,
          encryption_required: body.encryptionRequired === false ? 0 : 1,
          terminator_strategy: body.terminatorStrategy ?? 'smartrouting',
          max_idle_time_millis: body.maxIdleTimeMillis ?? 0,
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('service', name) : err
        })
      await this.setAttrs(trx, 'service_role_attributes', id, attrs)
      await this.setServiceConfigs(w, id, body.configs ?? [])
      await this.audit(w, 'create', 'service', id, name, { fields: Object.keys(body) })
      w.pending.push({ op: 'upsert', entity: 'service', data: await this.policyService(trx, id) })
      this.touch(w, 'service', 'create', id)
      return { id, warnings: w.warnings }
    })
    return { data: await this.get('services', r.id), warnings: r.warnings }
  }

  async updateService(ref: string, body: ServiceInput, actor: Actor): Promise<WriteResult> {
    const attrs =
      body.roleAttributes === undefined ? undefined : normAttrs(body.roleAttributes, '$.roleAttributes')
    const r = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<ServiceRow>(trx, 'services', ref, 'service')
      const name = body.name === undefined ? row.name : this.checkNameValue(body.name)
      if (name !== row.name) await this.checkName(trx, 'services', name, 'service', row.id)
      await w.trx
        .updateTable('services')
        .set({
          name,
          encryption_required:
            body.encryptionRequired === undefined ? row.encryption_required : body.encryptionRequired ? 1 : 0,
          terminator_strategy: body.terminatorStrategy ?? row.terminator_strategy,
          max_idle_time_millis: body.maxIdleTimeMillis ?? row.max_idle_time_millis,
          updated_at: w.now,
        })
        .where('id', '=', row.id)
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('service', name) : err
        })
      if (attrs !== undefined) await this.setAttrs(trx, 'service_role_attributes', row.id, attrs)
      if (body.configs !== undefined) await this.setServiceConfigs(w, row.id, body.configs)
      await this.audit(w, 'update', 'service', row.id, name, { fields: Object.keys(body) })
      w.pending.push({ op: 'upsert', entity: 'service', data: await this.policyService(trx, row.id) })
      this.touch(w, 'service', 'update', row.id)
      return { id: row.id, warnings: w.warnings }
    })
    return { data: await this.get('services', r.id), warnings: r.warnings }
  }

  async deleteService(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<ServiceRow>(trx, 'services', ref, 'service')
      const terms = await w.trx
        .selectFrom('terminators')
        .select('id')
        .where('service_id', '=', row.id)
        .execute()
      for (const t of terms) w.pending.push({ op: 'delete', entity: 'terminator', id: t.id })
      await w.trx.deleteFrom('terminators').where('service_id', '=', row.id).execute()
      await w.trx.deleteFrom('service_configs').where('service_id', '=', row.id).execute()
      await w.trx.deleteFrom('services').where('id', '=', row.id).execute()
      await this.audit(w, 'delete', 'service', row.id, row.name, { terminators: terms.length })
      w.pending.push({ op: 'delete', entity: 'service', id: row.id })
      this.touch(w, 'service', 'delete', row.id)
      return { id: row.id, name: row.name }
    })
  }

  // ---------------------------------------------------------------------------------------------
  // config types and configs

  private parseSchema(schema: unknown): Record<string, unknown> {
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema))
      throw new ControllerError('ERR_SCHEMA_INVALID', 'schema: must be a JSON Schema object', {
        path: '$.schema',
      })
    const problems = checkSchema(schema)
    if (problems.length > 0)
      throw new ControllerError('ERR_SCHEMA_INVALID', `schema: ${problems.slice(0, 5).join('; ')}`, {
        path: '$.schema',
        problems,
      })
    return schema as Record<string, unknown>
  }

  async createConfigType(body: ConfigTypeInput, actor: Actor): Promise<WriteResult> {
    const name = this.checkNameValue(body.name)
    const schema = this.parseSchema(body.schema ?? { type: 'object' })
    const r = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      await this.checkName(trx, 'config_types', name, 'config type')
      const id = newId()
      await w.trx
        .insertInto('config_types')
        .values({
          id,
          name,
          schema: JSON.stringify(schema),
          builtin: 0,
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('config type', name) : err
        })
      await this.audit(w, 'create', 'config-type', id, name, { fields: Object.keys(body) })
      this.touch(w, 'configType', 'create', id)
      return id
    })
    return { data: await this.get('config-types', r), warnings: [] }
  }

  async updateConfigType(ref: string, body: ConfigTypeInput, actor: Actor): Promise<WriteResult> {
    const schema = body.schema === undefined ? undefined : this.parseSchema(body.schema)
    const id = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<ConfigTypeRow>(trx, 'config_types', ref, 'config type')
      if (boolOf(row.builtin))
        throw new ControllerError(
          'ERR_BUILTIN_READONLY',
          `config type ${row.name} is built in and cannot be changed`,
          {
            id: row.id,
          },
        )
      const name = body.name === undefined ? row.name : this.checkNameValue(body.name)
      if (name !== row.name) await this.checkName(trx, 'config_types', name, 'config type', row.id)
      if (schema !== undefined) {
        // every existing config of this type must still be valid
        const configs = (await trx
          .selectFrom('configs')
          .selectAll()
          .where('config_type_id', '=', row.id)
          .execute()) as ConfigRow[]
        for (const c of configs) {
          const errs = validateJson(schema, JSON.parse(c.data))
          if (errs.length > 0)
            throw new ControllerError(
              'ERR_CONFIG_INVALID',
              `config ${c.name} would not match the new schema: ${errs[0]!.path.replace(/^\$\.?/, '') || 'data'} ${errs[0]!.message}`,
              { config: c.name, path: errs[0]!.path },
            )
        }
      }
      await w.trx
        .updateTable('config_types')
        .set({ name, schema: schema === undefined ? row.schema : JSON.stringify(schema), updated_at: w.now })
        .where('id', '=', row.id)
        .execute()
      await this.audit(w, 'update', 'config-type', row.id, name, { fields: Object.keys(body) })
      this.touch(w, 'configType', 'update', row.id)
      return row.id
    })
    return { data: await this.get('config-types', id), warnings: [] }
  }

  async deleteConfigType(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<ConfigTypeRow>(trx, 'config_types', ref, 'config type')
      if (boolOf(row.builtin))
        throw new ControllerError(
          'ERR_BUILTIN_READONLY',
          `config type ${row.name} is built in and cannot be deleted`,
          {
            id: row.id,
          },
        )
      const used = await trx
        .selectFrom('configs')
        .select('name')
        .where('config_type_id', '=', row.id)
        .limit(10)
        .execute()
      if (used.length > 0)
        throw new ControllerError(
          'ERR_CONFIG_TYPE_IN_USE',
          `config type ${row.name} is used by configs ${used.map((u) => u.name).join(', ')}: delete them first`,
          { configs: used.map((u) => u.name) },
        )
      await w.trx.deleteFrom('config_types').where('id', '=', row.id).execute()
      await this.audit(w, 'delete', 'config-type', row.id, row.name)
      this.touch(w, 'configType', 'delete', row.id)
      return { id: row.id, name: row.name }
    })
  }

  private async checkConfigData(
    trx: AnyDb,
    type: ConfigTypeRow,
    data: unknown,
  ): Promise<Record<string, unknown>> {
    if (typeof data !== 'object' || data === null || Array.isArray(data))
      throw new ControllerError('ERR_CONFIG_INVALID', 'data: must be a JSON object', { path: '$.data' })
    const schema = JSON.parse(type.schema)
    const errs = validateJson(schema, data)
    const semantic = semanticChecks[type.name]
    if (errs.length === 0 && semantic && boolOf(type.builtin))
      errs.push(...semantic(data as Record<string, unknown>))
    void trx
    if (errs.length > 0) {
      const e = errs[0]!
      const path = `$.data${e.path.slice(1)}`
      throw new ControllerError(
        'ERR_CONFIG_INVALID',
        `${path.slice(2)}: ${e.message} (config type ${type.name})`,
        {
          path,
          configType: type.name,
          errors: errs.slice(0, 10).map((x) => ({ ...x, path: `$.data${x.path.slice(1)}` })),
        },
      )
    }
    return data as Record<string, unknown>
  }

  private async configViews(rows: ConfigRow[]): Promise<Array<Record<string, unknown>>> {
    const typeIds = [...new Set(rows.map((r) => r.config_type_id))]
    const types = new Map<string, string>()
    for (const part of chunk(typeIds)) {
      if (part.length === 0) continue
      for (const t of await this.store.db
        .selectFrom('config_types')
        .select(['id', 'name'])
        .where('id', 'in', part)
        .execute())
        types.set(t.id, t.name)
    }
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      configTypeId: r.config_type_id,
      configTypeName: types.get(r.config_type_id) ?? null,
      data: JSON.parse(r.data),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }))
  }

  async createConfig(body: ConfigInput, actor: Actor): Promise<WriteResult> {
    const name = this.checkNameValue(body.name)
    const r = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      if (typeof body.configTypeId !== 'string') throw validation('$.configTypeId', 'is required')
      const type = await this.findRow<ConfigTypeRow>(trx, 'config_types', body.configTypeId)
      if (!type)
        throw new ControllerError(
          'ERR_CONFIG_TYPE_NOT_FOUND',
          `configTypeId: no config type with id or name "${body.configTypeId}" (built in: intercept.v1, host.v1)`,
          { path: '$.configTypeId', ref: body.configTypeId },
        )
      const data = await this.checkConfigData(trx, type, body.data)
      await this.checkName(trx, 'configs', name, 'config')
      const id = newId()
      await w.trx
        .insertInto('configs')
        .values({
          id,
          name,
          config_type_id: type.id,
          data: JSON.stringify(data),
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('config', name) : err
        })
      await this.audit(w, 'create', 'config', id, name, { configType: type.name })
      this.touch(w, 'config', 'create', id)
      return id
    })
    return { data: await this.get('configs', r), warnings: [] }
  }

  async updateConfig(ref: string, body: ConfigInput, actor: Actor): Promise<WriteResult> {
    const id = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<ConfigRow>(trx, 'configs', ref, 'config')
      if (body.configTypeId !== undefined) {
        const t = await this.findRow<ConfigTypeRow>(trx, 'config_types', body.configTypeId)
        if (!t || t.id !== row.config_type_id)
          throw validation(
            '$.configTypeId',
            'the config type of a config cannot be changed: create a new config',
          )
      }
      const name = body.name === undefined ? row.name : this.checkNameValue(body.name)
      if (name !== row.name) await this.checkName(trx, 'configs', name, 'config', row.id)
      const type = (await trx
        .selectFrom('config_types')
        .selectAll()
        .where('id', '=', row.config_type_id)
        .executeTakeFirstOrThrow()) as ConfigTypeRow
      const data =
        body.data === undefined ? JSON.parse(row.data) : await this.checkConfigData(trx, type, body.data)
      await w.trx
        .updateTable('configs')
        .set({ name, data: JSON.stringify(data), updated_at: w.now })
        .where('id', '=', row.id)
        .execute()
      await this.audit(w, 'update', 'config', row.id, name, { fields: Object.keys(body) })
      this.touch(w, 'config', 'update', row.id)
      const services = await w.trx
        .selectFrom('service_configs')
        .select('service_id')
        .where('config_id', '=', row.id)
        .execute()
      for (const s of services) this.touch(w, 'service', 'update', s.service_id)
      return row.id
    })
    return { data: await this.get('configs', id), warnings: [] }
  }

  async deleteConfig(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<ConfigRow>(trx, 'configs', ref, 'config')
      const used = await w.trx
        .selectFrom('service_configs as sc')
        .innerJoin('services as s', 's.id', 'sc.service_id')
        .select(['s.id', 's.name'])
        .where('sc.config_id', '=', row.id)
        .limit(20)
        .execute()
      if (used.length > 0)
        throw new ControllerError(
          'ERR_CONFIG_IN_USE',
          `config ${row.name} is used by services ${used.map((u) => u.name).join(', ')}: remove it from them first (nullport edge update service NAME --configs ...)`,
          { services: used.map((u) => ({ id: u.id, name: u.name })) },
        )
      await w.trx.deleteFrom('configs').where('id', '=', row.id).execute()
      await this.audit(w, 'delete', 'config', row.id, row.name)
      this.touch(w, 'config', 'delete', row.id)
      return { id: row.id, name: row.name }
    })
  }

  // ---------------------------------------------------------------------------------------------
  // edge routers

  private async routerViews(rows: EdgeRouterRow[], detail = false): Promise<Array<Record<string, unknown>>> {
    const ids = rows.map((r) => r.id)
    const attrs = await this.attrsFor(this.db, 'edge_router_role_attributes', ids)
    const certs = await this.fingerprintsFor(this.db, 'router_id', ids)
    const enr = await this.pendingEnrollments(this.db, 'router_id', ids)
    return rows.map((r) => {
      const e = enr.get(r.id)
      const c = certs.get(r.id) ?? []
      return {
        id: r.id,
        name: r.name,
        roleAttributes: attrs.get(r.id) ?? [],
        disabled: boolOf(r.disabled),
        advertise: r.advertise,
        isOnline: boolOf(r.is_online),
        cost: r.cost,
        version: r.version,
        ...credentialView(c, e, detail),
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      }
    })
  }

  private async policyRouter(trx: AnyDb, id: string): Promise<PolicyRouter> {
    const r = (await trx
      .selectFrom('edge_routers')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow()) as EdgeRouterRow
    const attrs = (await this.attrsFor(trx, 'edge_router_role_attributes', [id])).get(id) ?? []
    const fps = ((await this.fingerprintsFor(trx, 'router_id', [id])).get(id) ?? []).map((x) => x.fingerprint)
    return toPolicyRouter(r, attrs, fps)
  }

  async createRouter(body: RouterInput, actor: Actor): Promise<WriteResult> {
    const name = this.checkNameValue(body.name)
    const attrs = normAttrs(body.roleAttributes, '$.roleAttributes')
    const r = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      await this.checkName(trx, 'edge_routers', name, 'edge router')
      const id = newId()
      await w.trx
        .insertInto('edge_routers')
        .values({
          id,
          name,
          disabled: body.disabled === true ? 1 : 0,
          advertise: null,
          is_online: 0,
          cost: body.cost ?? 0,
          version: null,
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('edge router', name) : err
        })
      await this.setAttrs(trx, 'edge_router_role_attributes', id, attrs)
      const enrollment = await this.issueEnrollment(w, 'router', id, name)
      await this.audit(w, 'create', 'edge-router', id, name, { fields: Object.keys(body) })
      w.pending.push({ op: 'upsert', entity: 'router', data: await this.policyRouter(trx, id) })
      this.touch(w, 'edgeRouter', 'create', id)
      return { id, enrollment }
    })
    const view = await this.get('edge-routers', r.id)
    return { data: { ...view, enrollment: r.enrollment }, warnings: [] }
  }

  async updateRouter(ref: string, body: RouterInput, actor: Actor): Promise<WriteResult> {
    const attrs =
      body.roleAttributes === undefined ? undefined : normAttrs(body.roleAttributes, '$.roleAttributes')
    const id = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<EdgeRouterRow>(trx, 'edge_routers', ref, 'edge router')
      const name = body.name === undefined ? row.name : this.checkNameValue(body.name)
      if (name !== row.name) await this.checkName(trx, 'edge_routers', name, 'edge router', row.id)
      await w.trx
        .updateTable('edge_routers')
        .set({
          name,
          disabled: body.disabled === undefined ? row.disabled : body.disabled ? 1 : 0,
          cost: body.cost ?? row.cost,
          updated_at: w.now,
        })
        .where('id', '=', row.id)
        .execute()
      if (attrs !== undefined) await this.setAttrs(trx, 'edge_router_role_attributes', row.id, attrs)
      await this.audit(w, 'update', 'edge-router', row.id, name, { fields: Object.keys(body) })
      w.pending.push({ op: 'upsert', entity: 'router', data: await this.policyRouter(trx, row.id) })
      this.touch(w, 'edgeRouter', 'update', row.id)
      return row.id
    })
    return { data: await this.get('edge-routers', id), warnings: [] }
  }

  async deleteRouter(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<EdgeRouterRow>(trx, 'edge_routers', ref, 'edge router')
      const terms = await w.trx
        .selectFrom('terminators')
        .select('id')
        .where('router_id', '=', row.id)
        .execute()
      for (const t of terms) w.pending.push({ op: 'delete', entity: 'terminator', id: t.id })
      await w.trx.deleteFrom('edge_routers').where('id', '=', row.id).execute()
      await this.audit(w, 'delete', 'edge-router', row.id, row.name, { terminators: terms.length })
      w.pending.push({ op: 'delete', entity: 'router', id: row.id })
      this.touch(w, 'edgeRouter', 'delete', row.id)
      return { id: row.id, name: row.name }
    })
  }

  /**
   * Router status from the fabric API: online/offline, advertised address, version. Only an
   * advertise change is policy data (pushed to routers and SDKs) and audited.
   */
  async setRouterStatus(
    routerId: string,
    s: { isOnline: boolean; advertise?: string; version?: string },
  ): Promise<void> {
    await this.write({ id: routerId, name: `router:${routerId}` }, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<EdgeRouterRow>(trx, 'edge_routers', routerId, 'edge router')
      const advertise = s.advertise ?? row.advertise
      await w.trx
        .updateTable('edge_routers')
        .set({ is_online: s.isOnline ? 1 : 0, advertise, version: s.version ?? row.version })
        .where('id', '=', row.id)
        .execute()
      if (advertise !== row.advertise) {
        await this.audit(w, 'update', 'edge-router', row.id, row.name, { fields: ['advertise'], advertise })
        w.pending.push({ op: 'upsert', entity: 'router', data: await this.policyRouter(trx, row.id) })
      }
      if (boolOf(row.is_online) !== s.isOnline || advertise !== row.advertise)
        this.touch(w, 'edgeRouter', 'update', row.id)
    })
  }

  // ---------------------------------------------------------------------------------------------
  // policies

  private async policyViews(
    def: PolicyDef,
    rows: Array<Record<string, string>>,
  ): Promise<Array<Record<string, unknown>>> {
    const parsed = rows.map((r) => ({
      r,
      roles: def.roles.map((x) => ({ ...x, roles: JSON.parse(r[x.column]!) as string[] })),
    }))
    const names = await this.displayRoles(
      parsed.flatMap((p) => p.roles.map((x) => ({ roles: x.roles, target: x.target }))),
    )
    return parsed.map(({ r, roles }) => {
      const v: Record<string, unknown> = { id: r.id, name: r.name }
      if (def.kind === 'servicePolicy') v.type = r.type
      v.semantic = r.semantic
      for (const x of roles) {
        v[x.field] = x.roles
        v[`${x.field}Display`] = x.roles.map(
          (role): RoleDisplay =>
            role.startsWith('@')
              ? { role, name: `@${names.get(`${x.target}:${role.slice(1)}`) ?? role.slice(1)}` }
              : { role, name: role },
        )
      }
      v.createdAt = r.created_at
      v.updatedAt = r.updated_at
      return v
    })
  }

  private policyEntity(def: PolicyDef, row: Record<string, string>): DataEntity {
    switch (def.kind) {
      case 'servicePolicy':
        return { entity: 'servicePolicy', data: toServicePolicy(row as unknown as ServicePolicyRow) }
      case 'edgeRouterPolicy':
        return { entity: 'edgeRouterPolicy', data: toEdgeRouterPolicy(row as unknown as EdgeRouterPolicyRow) }
      default:
        return {
          entity: 'serviceEdgeRouterPolicy',
          data: toServiceEdgeRouterPolicy(row as unknown as ServiceEdgeRouterPolicyRow),
        }
    }
  }

  private policyType(v: unknown): 'Dial' | 'Bind' {
    if (typeof v === 'string') {
      const t = ['Dial', 'Bind'].find((x) => x.toLowerCase() === v.toLowerCase())
      if (t) return t as 'Dial' | 'Bind'
    }
    throw validation('$.type', `must be Dial or Bind, got ${JSON.stringify(v)}`)
  }

  private semantic(v: unknown): Semantic {
    if (v === undefined) return 'AnyOf'
    if (typeof v === 'string') {
      const t = ['AnyOf', 'AllOf'].find((x) => x.toLowerCase() === v.toLowerCase())
      if (t) return t as Semantic
    }
    throw validation('$.semantic', `must be AnyOf or AllOf, got ${JSON.stringify(v)}`)
  }

  async createPolicy(def: PolicyDef, body: Record<string, unknown>, actor: Actor): Promise<WriteResult> {
    const name = this.checkNameValue(body.name)
    const r = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      await this.checkName(trx, def.table, name, def.label)
      const id = newId()
      const values: Record<string, unknown> = {
        id,
        name,
        semantic: this.semantic(body.semantic),
        created_at: w.now,
        updated_at: w.now,
      }
      if (def.kind === 'servicePolicy') values.type = this.policyType(body.type)
      for (const x of def.roles) {
        values[x.column] = JSON.stringify(
          await this.resolveRoles(w, body[x.field] as string[] | undefined, x.target, `$.${x.field}`),
        )
      }
      await trx
        .insertInto(def.table)
        .values(values)
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse(def.label, name) : err
        })
      await this.audit(w, 'create', def.type.replace(/ies$/, 'y'), id, name, { fields: Object.keys(body) })
      const row = (await trx
        .selectFrom(def.table)
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow()) as Record<string, string>
      w.pending.push({ op: 'upsert', ...this.policyEntity(def, row) } as Pending)
      this.touch(w, def.kind, 'create', id)
      return { id, warnings: w.warnings }
    })
    return { data: await this.get(def.type, r.id), warnings: r.warnings }
  }

  async updatePolicy(
    def: PolicyDef,
    ref: string,
    body: Record<string, unknown>,
    actor: Actor,
  ): Promise<WriteResult> {
    const r = await this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<Record<string, string>>(trx, def.table, ref, def.label)
      const name = body.name === undefined ? row.name! : this.checkNameValue(body.name)
      if (name !== row.name) await this.checkName(trx, def.table, name, def.label, row.id)
      const values: Record<string, unknown> = { name, updated_at: w.now }
      if (body.semantic !== undefined) values.semantic = this.semantic(body.semantic)
      if (def.kind === 'servicePolicy' && body.type !== undefined) values.type = this.policyType(body.type)
      for (const x of def.roles) {
        if (body[x.field] !== undefined)
          values[x.column] = JSON.stringify(
            await this.resolveRoles(w, body[x.field] as string[], x.target, `$.${x.field}`),
          )
      }
      await trx.updateTable(def.table).set(values).where('id', '=', row.id).execute()
      await this.audit(w, 'update', def.type.replace(/ies$/, 'y'), row.id!, name, {
        fields: Object.keys(body),
      })
      const updated = (await trx
        .selectFrom(def.table)
        .selectAll()
        .where('id', '=', row.id)
        .executeTakeFirstOrThrow()) as Record<string, string>
      w.pending.push({ op: 'upsert', ...this.policyEntity(def, updated) } as Pending)
      this.touch(w, def.kind, 'update', row.id!)
      return { id: row.id!, warnings: w.warnings }
    })
    return { data: await this.get(def.type, r.id), warnings: r.warnings }
  }

  async deletePolicy(def: PolicyDef, ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const row = await this.mustFind<Record<string, string>>(trx, def.table, ref, def.label)
      await trx.deleteFrom(def.table).where('id', '=', row.id).execute()
      await this.audit(w, 'delete', def.type.replace(/ies$/, 'y'), row.id!, row.name!)
      w.pending.push({ op: 'delete', entity: def.kind, id: row.id! })
      this.touch(w, def.kind, 'delete', row.id!)
      return { id: row.id!, name: row.name! }
    })
  }

  // ---------------------------------------------------------------------------------------------
  // terminators (fabric API)

  async listTerminators(
    q: ListQuery & { serviceId?: string; routerId?: string },
  ): Promise<ListResult<Record<string, unknown>>> {
    const { limit, offset } = pageOf(q)
    const conds = parseFilter(q.filter, ['id', 'serviceId', 'routerId', 'identityId'])
    checkFilterTypes(conds, {
      id: 'id',
      serviceId: 'service_id',
      routerId: 'router_id',
      identityId: 'identity_id',
    })
    const cols: Record<string, string> = {
      id: 't.id',
      serviceId: 't.service_id',
      routerId: 't.router_id',
      identityId: 't.identity_id',
    }
    // biome-ignore lint/suspicious/noExplicitAny: dynamic query builder
    const apply = (qb: any) => {
      let b = qb
      for (const c of conds) b = b.where(condSql(cols[c.field]!, c))
      return b
    }
    const base = () =>
      this.db
        .selectFrom('terminators as t')
        .innerJoin('services as s', 's.id', 't.service_id')
        .innerJoin('edge_routers as r', 'r.id', 't.router_id')
        .innerJoin('identities as i', 'i.id', 't.identity_id')
    const total = await apply(base().select((eb) => eb.fn.countAll().as('c'))).executeTakeFirst()
    const rows = (await apply(
      base().select([
        't.id',
        't.service_id',
        't.router_id',
        't.identity_id',
        't.cost',
        't.precedence',
        't.created_at',
        's.name as service_name',
        'r.name as router_name',
        'i.name as identity_name',
      ]),
    )
      .orderBy('s.name')
      .orderBy('t.id')
      .limit(limit)
      .offset(offset)
      .execute()) as Array<Record<string, string | number>>
    return {
      data: rows.map((r) => ({
        id: r.id,
        serviceId: r.service_id,
        service: { id: r.service_id, name: r.service_name },
        routerId: r.router_id,
        router: { id: r.router_id, name: r.router_name },
        identityId: r.identity_id,
        identity: { id: r.identity_id, name: r.identity_name },
        cost: r.cost,
        precedence: r.precedence,
        createdAt: r.created_at,
      })),
      pagination: { limit, offset, totalCount: Number(total?.c ?? 0) },
    }
  }

  /** Creates a terminator (a bind at a router). Idempotent per (service, router, identity): the existing one is updated. */
  async createTerminator(
    t: {
      serviceId: string
      routerId: string
      identityId: string
      cost?: number
      precedence?: Terminator['precedence']
    },
    actor: Actor,
  ): Promise<Terminator> {
    return this.write(actor, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const svc = await this.mustFind<ServiceRow>(trx, 'services', t.serviceId, 'service')
      const identity = await this.mustFind<IdentityRow>(trx, 'identities', t.identityId, 'identity')
      const router = await this.mustFind<EdgeRouterRow>(trx, 'edge_routers', t.routerId, 'edge router')
      const cost = t.cost ?? identity.default_hosting_cost
      const precedence = t.precedence ?? (identity.default_hosting_precedence as Terminator['precedence'])
      const existing = (await trx
        .selectFrom('terminators')
        .selectAll()
        .where('service_id', '=', svc.id)
        .where('router_id', '=', router.id)
        .where('identity_id', '=', identity.id)
        .executeTakeFirst()) as TerminatorRow | undefined
      let row: TerminatorRow
      if (existing) {
        await w.trx
          .updateTable('terminators')
          .set({ cost, precedence })
          .where('id', '=', existing.id)
          .execute()
        row = { ...existing, cost, precedence }
      } else {
        row = {
          id: newId(),
          service_id: svc.id,
          router_id: router.id,
          identity_id: identity.id,
          cost,
          precedence,
          created_at: w.now,
        }
        await w.trx.insertInto('terminators').values(row).execute()
      }
      await this.audit(w, existing ? 'update' : 'create', 'terminator', row.id, svc.name, {
        service: svc.name,
        router: router.name,
        identity: identity.name,
      })
      const term = toTerminator(row)
      w.pending.push({ op: 'upsert', entity: 'terminator', data: term })
      this.touch(w, 'terminator', existing ? 'update' : 'create', row.id)
      return term
    })
  }

  async deleteTerminator(id: string, actor: Actor): Promise<{ id: string }> {
    return this.write(actor, async (w) => {
      const row = await w.trx.selectFrom('terminators').selectAll().where('id', '=', id).executeTakeFirst()
      if (!row) throw notFound('terminator', id)
      await w.trx.deleteFrom('terminators').where('id', '=', id).execute()
      await this.audit(w, 'delete', 'terminator', id, null, {
        service: row.service_id,
        router: row.router_id,
      })
      w.pending.push({ op: 'delete', entity: 'terminator', id })
      this.touch(w, 'terminator', 'delete', id)
      return { id }
    })
  }

  // ---------------------------------------------------------------------------------------------
  // admins, passwords and sessions

  /**
   * First-start admin bootstrap. With an admin already present this is a no-op (never a second
   * admin). Without one and without credentials: ERR_NO_ADMIN.
   */
  async ensureAdmin(creds: {
    username?: string
    password?: string
  }): Promise<{ created: boolean; name: string | null }> {
    const existing = await this.store.db
      .selectFrom('identities')
      .select(['id', 'name'])
      .where('is_admin', '=', 1)
      .orderBy('created_at')
      .executeTakeFirst()
    if (existing) return { created: false, name: existing.name }
    if (!creds.username || creds.password === undefined) throw new ControllerError('ERR_NO_ADMIN')
    const username = this.checkNameValue(creds.username, '$.adminUser')
    const hash = await hashPassword(this.checkPassword(creds.password, '$.adminPassword'))
    await this.write(SYSTEM_ACTOR, async (w) => {
      const trx = w.trx as unknown as AnyDb
      await this.checkName(trx, 'identities', username, 'identity')
      const id = newId()
      await w.trx
        .insertInto('identities')
        .values({
          id,
          name: username,
          type: 'User',
          is_admin: 1,
          disabled: 0,
          default_hosting_cost: 0,
          default_hosting_precedence: 'default',
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
      await this.setPassword(w, id, username, hash)
      await this.audit(w, 'create', 'identity', id, username, { isAdmin: true, bootstrap: true })
      w.pending.push({ op: 'upsert', entity: 'identity', data: await this.policyIdentity(trx, id) })
      this.touch(w, 'identity', 'create', id)
    })
    return { created: true, name: username }
  }

  /** Username/password login (rate limited per username + client address). */
  async authenticatePassword(
    username: string,
    password: string,
    clientIp: string,
  ): Promise<{ token: string; expiresAt: string; identity: { id: string; name: string; isAdmin: boolean } }> {
    const key = `${username}\u0000${clientIp}`
    const wait = this.loginLimiter.blockedFor(key)
    if (wait > 0)
      throw new ControllerError(
        'ERR_RATE_LIMITED',
        `too many failed logins for ${username}: retry in ${Math.ceil(wait / 1000)} s`,
        {
          retryAfterSeconds: Math.ceil(wait / 1000),
        },
      )
    const auth = await this.store.db
      .selectFrom('authenticators as a')
      .innerJoin('identities as i', 'i.id', 'a.identity_id')
      .select(['a.password_hash', 'i.id', 'i.name', 'i.is_admin', 'i.disabled'])
      .where('a.method', '=', 'updb')
      .where('a.username', '=', username)
      .executeTakeFirst()
    // the attempt counts as a failure until it succeeds: parallel guesses cannot slip past the limit
    this.loginLimiter.fail(key)
    const ok = await verifyPassword(password, auth?.password_hash ?? null)
    if (!ok || !auth) {
      await this.write({ id: null, name: username }, async (w) => {
        await this.audit(w, 'login-failed', 'api-session', auth?.id ?? '-', username, { ip: clientIp })
      })
      throw new ControllerError('ERR_INVALID_CREDENTIALS')
    }
    if (boolOf(auth.disabled))
      throw new ControllerError('ERR_IDENTITY_DISABLED', `identity ${auth.name} is disabled`)
    this.loginLimiter.succeed(key)
    const s = await this.createSession(auth.id, 'management', { ip: clientIp })
    return { ...s, identity: { id: auth.id, name: auth.name, isAdmin: boolOf(auth.is_admin) } }
  }

  /** Creates an API session for an identity (`management` after a password, `client` after a certificate). */
  async createSession(
    identityId: string,
    kind: 'management' | 'client',
    info: Record<string, unknown> = {},
  ): Promise<{ token: string; expiresAt: string; sessionId: string }> {
    const token = newToken()
    const expiresAt = new Date(Date.now() + this.config.sessionLifetimeMs).toISOString()
    const sessionId = newId()
    await this.write({ id: identityId, name: identityId }, async (w) => {
      const who = await w.trx
        .selectFrom('identities')
        .select(['name'])
        .where('id', '=', identityId)
        .executeTakeFirst()
      if (!who) throw notFound('identity', identityId)
      w.actor = { id: identityId, name: who.name }
      await w.trx
        .insertInto('api_sessions')
        .values({
          id: sessionId,
          token_hash: sha256Hex(token),
          identity_id: identityId,
          kind,
          created_at: w.now,
          expires_at: expiresAt,
          last_used_at: w.now,
        })
        .execute()
      // purge this identity's expired sessions
      await w.trx
        .deleteFrom('api_sessions')
        .where('identity_id', '=', identityId)
        .where('expires_at', '<', w.now)
        .execute()
      await this.audit(w, 'login', 'api-session', sessionId, who.name, { kind, ...info })
    })
    return { token, expiresAt, sessionId }
  }

  /**
   * Checks a session token: ERR_UNAUTHORIZED (unknown), ERR_SESSION_EXPIRED, ERR_IDENTITY_DISABLED.
   * Sessions slide: a session used in the second half of its lifetime is extended.
   */
  async verifySession(
    token: string,
    kind?: 'management' | 'client',
  ): Promise<{
    sessionId: string
    expiresAt: string
    identity: { id: string; name: string; isAdmin: boolean }
  }> {
    const row = await this.store.db
      .selectFrom('api_sessions as s')
      .innerJoin('identities as i', 'i.id', 's.identity_id')
      .select(['s.id', 's.kind', 's.expires_at', 'i.id as identity_id', 'i.name', 'i.is_admin', 'i.disabled'])
      .where('s.token_hash', '=', sha256Hex(token))
      .executeTakeFirst()
    if (!row || (kind && row.kind !== kind))
      throw new ControllerError(
        'ERR_UNAUTHORIZED',
        'the session token is unknown or was logged out: authenticate again',
      )
    const now = Date.now()
    if (Date.parse(row.expires_at) <= now) throw new ControllerError('ERR_SESSION_EXPIRED')
    if (boolOf(row.disabled))
      throw new ControllerError('ERR_IDENTITY_DISABLED', `identity ${row.name} is disabled`)
    let expiresAt = row.expires_at
    if (Date.parse(row.expires_at) - now < this.config.sessionLifetimeMs / 2) {
      expiresAt = new Date(now + this.config.sessionLifetimeMs).toISOString()
      await this.store.db
        .updateTable('api_sessions')
        .set({ expires_at: expiresAt, last_used_at: new Date(now).toISOString() })
        .where('id', '=', row.id)
        .execute()
    }
    return {
      sessionId: row.id,
      expiresAt,
      identity: { id: row.identity_id, name: row.name, isAdmin: boolOf(row.is_admin) },
    }
  }

  async deleteSession(sessionId: string, actor: Actor): Promise<void> {
    await this.write(actor, async (w) => {
      await w.trx.deleteFrom('api_sessions').where('id', '=', sessionId).execute()
      await this.audit(w, 'logout', 'api-session', sessionId, actor.name)
    })
  }

  // ---------------------------------------------------------------------------------------------
  // enrollment records and certificates (edge module)

  async findEnrollment(jti: string): Promise<{
    id: string
    kind: 'identity' | 'router'
    entityId: string
    name: string
    expiresAt: string
    usedAt: string | null
  } | null> {
    const e = await this.store.db
      .selectFrom('enrollments')
      .selectAll()
      .where('id', '=', jti)
      .executeTakeFirst()
    if (!e) return null
    const kind = e.identity_id ? 'identity' : 'router'
    const entityId = (e.identity_id ?? e.router_id)!
    const owner = await this.store.db
      .selectFrom(kind === 'identity' ? 'identities' : 'edge_routers')
      .select('name')
      .where('id', '=', entityId)
      .executeTakeFirst()
    return {
      id: e.id,
      kind,
      entityId,
      name: owner?.name ?? entityId,
      expiresAt: e.expires_at,
      usedAt: e.used_at,
    }
  }

  /**
   * Consumes an enrollment token and records the issued certificate, atomically: the token is
   * marked used in the same transaction that stores the certificate fingerprint. Throws
   * ERR_ENROLLMENT_NOT_FOUND / _USED / _EXPIRED / _INVALID (wrong kind or subject).
   */
  async completeEnrollment(o: {
    jti: string
    kind: 'identity' | 'router'
    /** The JWT `sub`: must match the enrollment's entity. */
    entityId: string
    certPem: string
    fingerprint: string
    certExpiresAt: string
    /** Routers: the advertised address given at enrollment. */
    advertise?: string
  }): Promise<{ id: string; name: string }> {
    return this.write({ id: o.entityId, name: o.entityId }, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const e = await w.trx.selectFrom('enrollments').selectAll().where('id', '=', o.jti).executeTakeFirst()
      if (!e) throw new ControllerError('ERR_ENROLLMENT_NOT_FOUND')
      const entityId = o.kind === 'identity' ? e.identity_id : e.router_id
      if (!entityId || entityId !== o.entityId)
        throw new ControllerError(
          'ERR_ENROLLMENT_INVALID',
          'the enrollment token does not belong to this entity',
        )
      const table = o.kind === 'identity' ? 'identities' : 'edge_routers'
      const owner = (await trx
        .selectFrom(table)
        .select('name')
        .where('id', '=', entityId)
        .executeTakeFirstOrThrow()) as { name: string }
      w.actor = { id: entityId, name: owner.name }
      if (e.used_at)
        throw new ControllerError(
          'ERR_ENROLLMENT_USED',
          `the enrollment token for ${owner.name} was already used at ${e.used_at}`,
        )
      if (e.expires_at <= w.now)
        throw new ControllerError(
          'ERR_ENROLLMENT_EXPIRED',
          `the enrollment token for ${owner.name} expired at ${e.expires_at}`,
        )
      await w.trx.updateTable('enrollments').set({ used_at: w.now }).where('id', '=', e.id).execute()
      await w.trx
        .insertInto('authenticators')
        .values({
          id: newId(),
          identity_id: o.kind === 'identity' ? entityId : null,
          router_id: o.kind === 'router' ? entityId : null,
          method: 'cert',
          username: null,
          password_hash: null,
          fingerprint: o.fingerprint,
          cert_pem: o.certPem,
          expires_at: o.certExpiresAt,
          created_at: w.now,
        })
        .execute()
      if (o.kind === 'router' && o.advertise !== undefined) {
        await w.trx
          .updateTable('edge_routers')
          .set({ advertise: o.advertise, updated_at: w.now })
          .where('id', '=', entityId)
          .execute()
      }
      await this.audit(
        w,
        'enroll',
        o.kind === 'identity' ? 'identity' : 'edge-router',
        entityId,
        owner.name,
        {
          fingerprint: o.fingerprint,
          certExpiresAt: o.certExpiresAt,
        },
      )
      if (o.kind === 'identity') {
        w.pending.push({ op: 'upsert', entity: 'identity', data: await this.policyIdentity(trx, entityId) })
        this.touch(w, 'identity', 'update', entityId)
      } else {
        w.pending.push({ op: 'upsert', entity: 'router', data: await this.policyRouter(trx, entityId) })
        this.touch(w, 'edgeRouter', 'update', entityId)
      }
      return { id: entityId, name: owner.name }
    })
  }

  /** Adds a renewed certificate for an enrolled entity (optionally replacing one by fingerprint). */
  async addCertificate(o: {
    kind: 'identity' | 'router'
    entityId: string
    certPem: string
    fingerprint: string
    certExpiresAt: string
    replaces?: string
    /**
     * Renewal: the certificate the entity renewed with. It stays; certificates of the entity that
     * expired are removed, and of the others only the newest one is kept (live connections made
     * with it keep working until a later renewal prunes it after its expiry). So an entity holds
     * at most three certificates: the one in use, the previous one, the new one.
     */
    renewedWith?: string
  }): Promise<void> {
    await this.write({ id: o.entityId, name: o.entityId }, async (w) => {
      const trx = w.trx as unknown as AnyDb
      const col = o.kind === 'identity' ? 'identity_id' : 'router_id'
      const table = o.kind === 'identity' ? 'identities' : 'edge_routers'
      const owner = await this.mustFind<{ id: string; name: string }>(trx, table, o.entityId, o.kind)
      w.actor = { id: owner.id, name: owner.name }
      if (o.replaces)
        await trx
          .deleteFrom('authenticators')
          .where(col, '=', owner.id)
          .where('fingerprint', '=', o.replaces)
          .execute()
      if (o.renewedWith) {
        const certs = await trx
          .selectFrom('authenticators')
          .select(['id', 'fingerprint', 'expires_at', 'created_at'])
          .where(col, '=', owner.id)
          .where('method', '=', 'cert')
          .orderBy('created_at', 'desc')
          .execute()
        const others = certs.filter((c) => c.fingerprint !== o.renewedWith)
        const live = others.filter((c) => c.expires_at === null || c.expires_at > w.now)
        const keep = new Set(live.slice(0, 1).map((c) => c.id))
        const drop = others.filter((c) => !keep.has(c.id)).map((c) => c.id)
        if (drop.length > 0) await trx.deleteFrom('authenticators').where('id', 'in', drop).execute()
      }
      await w.trx
        .insertInto('authenticators')
        .values({
          id: newId(),
          identity_id: o.kind === 'identity' ? owner.id : null,
          router_id: o.kind === 'router' ? owner.id : null,
          method: 'cert',
          username: null,
          password_hash: null,
          fingerprint: o.fingerprint,
          cert_pem: o.certPem,
          expires_at: o.certExpiresAt,
          created_at: w.now,
        })
        .execute()
      await this.audit(
        w,
        'renew-certificate',
        o.kind === 'identity' ? 'identity' : 'edge-router',
        owner.id,
        owner.name,
        {
          fingerprint: o.fingerprint,
          replaces: o.replaces ?? null,
        },
      )
      if (o.kind === 'identity')
        w.pending.push({ op: 'upsert', entity: 'identity', data: await this.policyIdentity(trx, owner.id) })
      else w.pending.push({ op: 'upsert', entity: 'router', data: await this.policyRouter(trx, owner.id) })
    })
  }

  /** Who owns a certificate (by fingerprint), or null. */
  async findCertificate(fingerprint: string): Promise<{
    kind: 'identity' | 'router'
    id: string
    name: string
    disabled: boolean
    expiresAt: string | null
  } | null> {
    const a = await this.store.db
      .selectFrom('authenticators')
      .selectAll()
      .where('fingerprint', '=', fingerprint)
      .executeTakeFirst()
    if (!a) return null
    if (a.identity_id) {
      const i = await this.store.db
        .selectFrom('identities')
        .select(['id', 'name', 'disabled'])
        .where('id', '=', a.identity_id)
        .executeTakeFirst()
      return i
        ? { kind: 'identity', id: i.id, name: i.name, disabled: boolOf(i.disabled), expiresAt: a.expires_at }
        : null
    }
    const r = await this.store.db
      .selectFrom('edge_routers')
      .select(['id', 'name', 'disabled'])
      .where('id', '=', a.router_id!)
      .executeTakeFirst()
    return r
      ? { kind: 'router', id: r.id, name: r.name, disabled: boolOf(r.disabled), expiresAt: a.expires_at }
      : null
  }

  // ---------------------------------------------------------------------------------------------
  // read models for the client API and the policy advisor

  /** What `GET /edge/client/v1/services` answers for an identity (from the PolicyIndex + configs). */
  async clientServices(identityId: string): Promise<ClientService[]> {
    const dial = this.policy.servicesFor(identityId, 'Dial')
    const bind = this.policy.servicesFor(identityId, 'Bind')
    const ids = [...new Set([...dial, ...bind])]
    if (ids.length === 0) return []
    const identityRouters = this.policy.routersForIdentity(identityId)
    const configs = new Map<string, Record<string, Record<string, unknown>>>()
    for (const part of chunk(ids)) {
      const rows = await this.store.db
        .selectFrom('service_configs as sc')
        .innerJoin('configs as c', 'c.id', 'sc.config_id')
        .innerJoin('config_types as t', 't.id', 'c.config_type_id')
        .select(['sc.service_id', 't.name as type', 'c.data'])
        .where('sc.service_id', 'in', part)
        .execute()
      for (const r of rows) {
        let m = configs.get(r.service_id)
        if (!m) {
          m = {}
          configs.set(r.service_id, m)
        }
        m[r.type] = JSON.parse(r.data)
      }
    }
    const out: ClientService[] = []
    for (const id of ids) {
      const s = this.policy.service(id)
      if (!s) continue
      const permissions: Array<'Dial' | 'Bind'> = []
      if (dial.has(id)) permissions.push('Dial')
      if (bind.has(id)) permissions.push('Bind')
      const serviceRouters = this.policy.routersForService(id)
      const edgeRouterIds = [...identityRouters].filter((r) => serviceRouters.has(r)).sort()
      out.push({
        id,
        name: s.name,
        roleAttributes: s.roleAttributes,
        encryptionRequired: s.encryptionRequired,
        permissions,
        config: configs.get(id) ?? {},
        edgeRouterIds,
      })
    }
    return out.sort((a, b) => a.name.localeCompare(b.name))
  }

  async policyAdvisor(identityRef: string, serviceRef: string): Promise<AdvisorReport> {
    const i = await this.mustFind<IdentityRow>(this.db, 'identities', identityRef, 'identity')
    const s = await this.mustFind<ServiceRow>(this.db, 'services', serviceRef, 'service')
    return this.policy.explain(i.id, s.id)
  }

  async auditLog(
    q: ListQuery & { entityId?: string; entityType?: string; actor?: string },
  ): Promise<ListResult<Record<string, unknown>>> {
    const { limit, offset } = pageOf(q)
    // biome-ignore lint/suspicious/noExplicitAny: dynamic query builder
    const apply = (qb: any) => {
      let b = qb
      if (q.entityId) b = b.where('entity_id', '=', q.entityId)
      if (q.entityType) b = b.where('entity_type', '=', q.entityType)
      if (q.actor) b = b.where('actor_name', '=', q.actor)
      return b
    }
    const total = await apply(
      this.db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('c')),
    ).executeTakeFirst()
    const rows = await apply(this.db.selectFrom('audit_log').selectAll())
      .orderBy('id', 'desc')
      .limit(limit)
      .offset(offset)
      .execute()
    return {
      data: (rows as Array<Record<string, unknown>>).map((r) => ({
        id: Number(r.id),
        at: r.at,
        actor: { id: r.actor_id, name: r.actor_name },
        action: r.action,
        entityType: r.entity_type,
        entityId: r.entity_id,
        entityName: r.entity_name,
        details: JSON.parse(r.details as string),
      })),
      pagination: { limit, offset, totalCount: Number(total?.c ?? 0) },
    }
  }
}

// -----------------------------------------------------------------------------------------------
// row -> model

function toPolicyService(r: ServiceRow, attrs: string[]): PolicyService {
  return {
    id: r.id,
    name: r.name,
    roleAttributes: attrs,
    encryptionRequired: boolOf(r.encryption_required),
    terminatorStrategy: r.terminator_strategy as PolicyService['terminatorStrategy'],
  }
}

function toPolicyRouter(r: EdgeRouterRow, attrs: string[], fps: string[]): PolicyRouter {
  return {
    id: r.id,
    name: r.name,
    roleAttributes: attrs,
    disabled: boolOf(r.disabled),
    advertise: r.advertise,
    cost: r.cost,
    certFingerprints: fps,
  }
}

function toServicePolicy(r: ServicePolicyRow): ServicePolicy {
  return {
    id: r.id,
    name: r.name,
    type: r.type as ServicePolicy['type'],
    semantic: r.semantic as Semantic,
    identityRoles: JSON.parse(r.identity_roles),
    serviceRoles: JSON.parse(r.service_roles),
    postureCheckRoles: JSON.parse(r.posture_check_roles),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

function toEdgeRouterPolicy(r: EdgeRouterPolicyRow): EdgeRouterPolicy {
  return {
    id: r.id,
    name: r.name,
    semantic: r.semantic as Semantic,
    identityRoles: JSON.parse(r.identity_roles),
    edgeRouterRoles: JSON.parse(r.edge_router_roles),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

function toServiceEdgeRouterPolicy(r: ServiceEdgeRouterPolicyRow): ServiceEdgeRouterPolicy {
  return {
    id: r.id,
    name: r.name,
    semantic: r.semantic as Semantic,
    serviceRoles: JSON.parse(r.service_roles),
    edgeRouterRoles: JSON.parse(r.edge_router_roles),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

function toTerminator(r: TerminatorRow): Terminator {
  return {
    id: r.id,
    serviceId: r.service_id,
    routerId: r.router_id,
    identityId: r.identity_id,
    cost: r.cost,
    precedence: r.precedence as Terminator['precedence'],
    createdAt: r.created_at,
  }
}

function configTypeView(r: ConfigTypeRow): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    schema: JSON.parse(r.schema),
    builtin: boolOf(r.builtin),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

const BOOLEAN_COLUMNS = new Set(['is_admin', 'disabled', 'is_online'])

/** Booleans compare with = / != true|false; text fields take "strings" (no silent casts, no 500s). */
function checkFilterTypes(conds: FilterCond[], fields: Record<string, string>): void {
  for (const c of conds) {
    const boolean = BOOLEAN_COLUMNS.has(fields[c.field]!)
    const ok = boolean
      ? typeof c.value === 'boolean' && (c.op === '=' || c.op === '!=')
      : typeof c.value === 'string'
    if (!ok)
      throw new ControllerError(
        'ERR_INVALID_FILTER',
        boolean
          ? `filter: ${c.field} is true or false and takes = or != (e.g. ${c.field} = true)`
          : `filter: ${c.field} takes a "quoted string" (e.g. ${c.field} contains "web")`,
        { field: c.field },
      )
  }
}

function condSql(column: string, c: FilterCond) {
  const ref = sql.ref(column)
  const v = typeof c.value === 'boolean' ? (c.value ? 1 : 0) : c.value
  switch (c.op) {
    case '=':
      return sql<boolean>`${ref} = ${v}`
    case '!=':
      return sql<boolean>`${ref} <> ${v}`
    case 'contains':
      return sql<boolean>`lower(${ref}) like ${`%${likeEscape(String(v).toLowerCase())}%`} escape '\\'`
    case 'startsWith':
      return sql<boolean>`lower(${ref}) like ${`${likeEscape(String(v).toLowerCase())}%`} escape '\\'`
    case 'endsWith':
      return sql<boolean>`lower(${ref}) like ${`%${likeEscape(String(v).toLowerCase())}`} escape '\\'`
  }
}

// -----------------------------------------------------------------------------------------------
// inputs (validated by the API's JSON Schemas first; the core re-checks what the schemas cannot)

export interface IdentityInput {
  name: string
  type?: string
  roleAttributes?: string[]
  isAdmin?: boolean
  disabled?: boolean
  defaultHostingCost?: number
  defaultHostingPrecedence?: (typeof PRECEDENCES)[number]
  /** Sets (string) or removes (null) a username/password authenticator (username = name). */
  password?: string | null
}

export interface ServiceInput {
  name: string
  roleAttributes?: string[]
  /** Config ids or names. */
  configs?: string[]
  encryptionRequired?: boolean
  terminatorStrategy?: (typeof STRATEGIES)[number]
  maxIdleTimeMillis?: number
}

export interface RouterInput {
  name: string
  roleAttributes?: string[]
  disabled?: boolean
  cost?: number
}

export interface ConfigTypeInput {
  name: string
  schema?: Record<string, unknown>
}

export interface ConfigInput {
  name: string
  /** Config type id or name. */
  configTypeId: string
  data: Record<string, unknown>
}
