/**
 * Policies: service policies (which identities may Dial or Bind which services), edge router
 * policies (which identities may use which routers) and service edge router policies (which
 * services may be reached through which routers). One class, one definition per kind: the table,
 * and the role fields with what their roles select.
 */
import type { DataEntity, Semantic } from '@nullport/protocol'
import type { Tx } from '../../store/db.js'
import type { EdgeRouterPolicyRow, ServiceEdgeRouterPolicyRow, ServicePolicyRow } from '../../store/schema.js'
import { checkNameValue, isUniqueViolation, nameInUse, validation } from '../checks.js'
import { newId } from '../crypto.js'
import type { ListQuery } from '../query.js'
import { anyDb, checkName, listRows, mustFind } from '../repo.js'
import { displayRoles, type RoleTarget, resolveRoles, roleNames } from '../roles.js'
import { toEdgeRouterPolicy, toServiceEdgeRouterPolicy, toServicePolicy } from '../snapshot.js'
import { type Actor, type Pending, record, type WriteResult } from '../write.js'
import type { EntityDeps, EntityKind, EntityType, EntityView } from './kind.js'

export type PolicyType = 'service-policies' | 'edge-router-policies' | 'service-edge-router-policies'

export interface PolicyDef {
  kind: 'servicePolicy' | 'edgeRouterPolicy' | 'serviceEdgeRouterPolicy'
  type: EntityType
  label: string
  /** In the audit log. */
  audit: string
  table: 'service_policies' | 'edge_router_policies' | 'service_edge_router_policies'
  roles: Array<{ field: string; column: string; target: RoleTarget }>
}

export const POLICY_DEFS: Record<PolicyType, PolicyDef> = {
  'service-policies': {
    kind: 'servicePolicy',
    type: 'service-policies',
    label: 'service policy',
    audit: 'service-policy',
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
    audit: 'edge-router-policy',
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
    audit: 'service-edge-router-policy',
    table: 'service_edge_router_policies',
    roles: [
      { field: 'serviceRoles', column: 'service_roles', target: 'service' },
      { field: 'edgeRouterRoles', column: 'edge_router_roles', target: 'router' },
    ],
  },
}

type PolicyRow = Record<string, string>

function policyType(v: unknown): 'Dial' | 'Bind' {
  if (typeof v === 'string') {
    const t = ['Dial', 'Bind'].find((x) => x.toLowerCase() === v.toLowerCase())
    if (t) return t as 'Dial' | 'Bind'
  }
  throw validation('$.type', `must be Dial or Bind, got ${JSON.stringify(v)}`)
}

function semantic(v: unknown): Semantic {
  if (v === undefined) return 'AnyOf'
  if (typeof v === 'string') {
    const t = ['AnyOf', 'AllOf'].find((x) => x.toLowerCase() === v.toLowerCase())
    if (t) return t as Semantic
  }
  throw validation('$.semantic', `must be AnyOf or AllOf, got ${JSON.stringify(v)}`)
}

export class Policies implements EntityKind {
  constructor(
    private readonly d: EntityDeps,
    private readonly def: PolicyDef,
  ) {}

  async list(q: ListQuery) {
    const fields: Record<string, string> = {
      name: 'name',
      id: 'id',
      semantic: 'semantic',
      createdAt: 'created_at',
    }
    if (this.def.kind === 'servicePolicy') fields.type = 'type'
    const r = await listRows<PolicyRow>(this.d.db, this.def.table, q, fields)
    return { data: await this.views(r.rows), pagination: r.pagination }
  }

  async get(ref: string): Promise<EntityView> {
    const row = await mustFind<PolicyRow>(this.d.db, this.def.table, ref, this.def.label)
    return (await this.views([row]))[0]!
  }

  async create(body: Record<string, unknown>, actor: Actor): Promise<WriteResult> {
    const def = this.def
    const name = checkNameValue(body.name)
    const r = await this.d.writes.write(actor, async (w) => {
      const trx = anyDb(w.trx)
      await checkName(trx, def.table, name, def.label)
      const id = newId()
      const values: Record<string, unknown> = {
        id,
        name,
        semantic: semantic(body.semantic),
        created_at: w.now,
        updated_at: w.now,
      }
      if (def.kind === 'servicePolicy') values.type = policyType(body.type)
      for (const x of def.roles) {
        values[x.column] = JSON.stringify(
          await resolveRoles(w, body[x.field] as string[] | undefined, x.target, `$.${x.field}`),
        )
      }
      await trx
        .insertInto(def.table)
        .values(values)
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse(def.label, name) : err
        })
      await record(w, {
        action: 'create',
        type: def.audit,
        id,
        name,
        details: { fields: Object.keys(body) },
        change: await this.change(w.trx, id),
        touch: def.kind,
      })
      return { id, warnings: w.warnings }
    })
    return { data: await this.get(r.id), warnings: r.warnings }
  }

  async update(ref: string, body: Record<string, unknown>, actor: Actor): Promise<WriteResult> {
    const def = this.def
    const r = await this.d.writes.write(actor, async (w) => {
      const trx = anyDb(w.trx)
      const row = await mustFind<PolicyRow>(trx, def.table, ref, def.label)
      const name = body.name === undefined ? row.name! : checkNameValue(body.name)
      if (name !== row.name) await checkName(trx, def.table, name, def.label, row.id)
      const values: Record<string, unknown> = { name, updated_at: w.now }
      if (body.semantic !== undefined) values.semantic = semantic(body.semantic)
      if (def.kind === 'servicePolicy' && body.type !== undefined) values.type = policyType(body.type)
      for (const x of def.roles) {
        if (body[x.field] !== undefined)
          values[x.column] = JSON.stringify(
            await resolveRoles(w, body[x.field] as string[], x.target, `$.${x.field}`),
          )
      }
      await trx.updateTable(def.table).set(values).where('id', '=', row.id).execute()
      await record(w, {
        action: 'update',
        type: def.audit,
        id: row.id!,
        name,
        details: { fields: Object.keys(body) },
        change: await this.change(w.trx, row.id!),
        touch: def.kind,
      })
      return { id: row.id!, warnings: w.warnings }
    })
    return { data: await this.get(r.id), warnings: r.warnings }
  }

  async remove(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    const def = this.def
    return this.d.writes.write(actor, async (w) => {
      const trx = anyDb(w.trx)
      const row = await mustFind<PolicyRow>(trx, def.table, ref, def.label)
      await trx.deleteFrom(def.table).where('id', '=', row.id).execute()
      await record(w, {
        action: 'delete',
        type: def.audit,
        id: row.id!,
        name: row.name!,
        change: { op: 'delete', entity: def.kind, id: row.id! },
        touch: def.kind,
      })
      return { id: row.id!, name: row.name! }
    })
  }

  /** The policy as written, as its upsert DataChange. */
  private async change(trx: Tx, id: string): Promise<Pending> {
    const row = (await anyDb(trx)
      .selectFrom(this.def.table)
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow()) as PolicyRow
    return { op: 'upsert', ...this.entity(row) } as Pending
  }

  private entity(row: PolicyRow): DataEntity {
    switch (this.def.kind) {
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

  private async views(rows: PolicyRow[]): Promise<EntityView[]> {
    const def = this.def
    const parsed = rows.map((r) => ({
      r,
      roles: def.roles.map((x) => ({ ...x, roles: JSON.parse(r[x.column]!) as string[] })),
    }))
    const names = await roleNames(
      this.d.db,
      parsed.flatMap((p) => p.roles.map((x) => ({ roles: x.roles, target: x.target }))),
    )
    return parsed.map(({ r, roles }) => {
      const v: EntityView = { id: r.id, name: r.name }
      if (def.kind === 'servicePolicy') v.type = r.type
      v.semantic = r.semantic
      for (const x of roles) {
        v[x.field] = x.roles
        v[`${x.field}Display`] = displayRoles(x.roles, x.target, names)
      }
      v.createdAt = r.created_at
      v.updatedAt = r.updated_at
      return v
    })
  }
}
