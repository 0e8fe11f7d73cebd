/**
 * Edge routers: created with an enrollment token; their status (online, advertised address,
 * version) comes from the fabric API. Only an advertise change is policy data; deleting one
 * deletes its terminators.
 */
import type { EdgeRouterRow } from '../../store/schema.js'
import { boolOf, checkNameValue, isUniqueViolation, nameInUse } from '../checks.js'
import { newId } from '../crypto.js'
import type { ListQuery } from '../query.js'
import { attrsFor, checkName, listRows, mustFind, setAttrs } from '../repo.js'
import { normAttrs } from '../roles.js'
import { routerChange } from '../snapshot.js'
import { type Actor, record, touch, type WriteResult } from '../write.js'
import { credentialsFor, credentialView } from './credentials.js'
import type { EntityDeps, EntityKind, EntityView } from './kind.js'
import { terminatorsGoWith } from './terminators.js'

export type RouterInput = {
  name: string
  roleAttributes?: string[]
  disabled?: boolean
  cost?: number
}

export interface RouterStatus {
  isOnline: boolean
  advertise?: string
  version?: string
}

export class Routers implements EntityKind {
  constructor(private readonly d: EntityDeps) {}

  async list(q: ListQuery) {
    const r = await listRows<EdgeRouterRow>(
      this.d.db,
      'edge_routers',
      q,
      { name: 'name', id: 'id', disabled: 'disabled', isOnline: 'is_online', createdAt: 'created_at' },
      { attrs: 'edge_router_role_attributes', table: 'edge_routers' },
    )
    return { data: await this.views(r.rows), pagination: r.pagination }
  }

  async get(ref: string): Promise<EntityView> {
    return (
      await this.views([await mustFind<EdgeRouterRow>(this.d.db, 'edge_routers', ref, 'edge router')], true)
    )[0]!
  }

  async create(body: RouterInput, actor: Actor): Promise<WriteResult> {
    const name = checkNameValue(body.name)
    const attrs = normAttrs(body.roleAttributes, '$.roleAttributes')
    const r = await this.d.writes.write(actor, async (w) => {
      await checkName(w.trx, 'edge_routers', name, 'edge router')
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
      await setAttrs(w.trx, 'edge_router_role_attributes', id, attrs)
      const enrollment = await this.d.enrollments.issue(w, 'router', id, name)
      await record(w, {
        action: 'create',
        type: 'edge-router',
        id,
        name,
        details: { fields: Object.keys(body) },
        change: await routerChange(w.trx, id),
        touch: 'edgeRouter',
      })
      return { id, enrollment }
    })
    const view = await this.get(r.id)
    return { data: { ...view, enrollment: r.enrollment }, warnings: [] }
  }

  async update(ref: string, body: Partial<RouterInput>, actor: Actor): Promise<WriteResult> {
    const attrs =
      body.roleAttributes === undefined ? undefined : normAttrs(body.roleAttributes, '$.roleAttributes')
    const id = await this.d.writes.write(actor, async (w) => {
      const row = await mustFind<EdgeRouterRow>(w.trx, 'edge_routers', ref, 'edge router')
      const name = body.name === undefined ? row.name : checkNameValue(body.name)
      if (name !== row.name) await checkName(w.trx, 'edge_routers', name, 'edge router', row.id)
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
      if (attrs !== undefined) await setAttrs(w.trx, 'edge_router_role_attributes', row.id, attrs)
      await record(w, {
        action: 'update',
        type: 'edge-router',
        id: row.id,
        name,
        details: { fields: Object.keys(body) },
        change: await routerChange(w.trx, row.id),
        touch: 'edgeRouter',
      })
      return row.id
    })
    return { data: await this.get(id), warnings: [] }
  }

  async remove(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.d.writes.write(actor, async (w) => {
      const row = await mustFind<EdgeRouterRow>(w.trx, 'edge_routers', ref, 'edge router')
      const terminators = await terminatorsGoWith(w, 'router_id', row.id)
      await w.trx.deleteFrom('edge_routers').where('id', '=', row.id).execute()
      await record(w, {
        action: 'delete',
        type: 'edge-router',
        id: row.id,
        name: row.name,
        details: { terminators },
        change: { op: 'delete', entity: 'router', id: row.id },
        touch: 'edgeRouter',
      })
      return { id: row.id, name: row.name }
    })
  }

  /**
   * Router status from the fabric API: online/offline, advertised address, version. Only an
   * advertise change is policy data (pushed to routers and SDKs) and audited.
   */
  async setStatus(routerId: string, s: RouterStatus): Promise<void> {
    await this.d.writes.write({ id: routerId, name: `router:${routerId}` }, async (w) => {
      const row = await mustFind<EdgeRouterRow>(w.trx, 'edge_routers', routerId, 'edge router')
      const advertise = s.advertise ?? row.advertise
      await w.trx
        .updateTable('edge_routers')
        .set({ is_online: s.isOnline ? 1 : 0, advertise, version: s.version ?? row.version })
        .where('id', '=', row.id)
        .execute()
      if (advertise !== row.advertise) {
        await record(w, {
          action: 'update',
          type: 'edge-router',
          id: row.id,
          name: row.name,
          details: { fields: ['advertise'], advertise },
          change: await routerChange(w.trx, row.id),
        })
      }
      if (boolOf(row.is_online) !== s.isOnline || advertise !== row.advertise)
        touch(w, 'edgeRouter', 'update', row.id)
    })
  }

  /** A router's stream opened: it is online (unless it was deleted meanwhile). */
  async streamOpened(routerId: string): Promise<void> {
    const row = await this.d.db
      .selectFrom('edge_routers')
      .select(['is_online'])
      .where('id', '=', routerId)
      .executeTakeFirst()
    if (row && Number(row.is_online) !== 1) await this.setStatus(routerId, { isOnline: true })
  }

  /** Whether each router is marked online (routers not found are left out). */
  async onlineFlags(ids: string[]): Promise<Map<string, boolean>> {
    const online = new Map<string, boolean>()
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500)
      const rows = (await this.d.db
        .selectFrom('edge_routers')
        .select(['id', 'is_online'])
        .where('id', 'in', part)
        .execute()) as Array<{ id: string; is_online: number }>
      for (const r of rows) online.set(r.id, Number(r.is_online) === 1)
    }
    return online
  }

  /** One controller per SQLite file: at start no router is connected to it yet. */
  async markAllOffline(): Promise<void> {
    await this.d.db.updateTable('edge_routers').set({ is_online: 0 }).where('is_online', '=', 1).execute()
  }

  private async views(rows: EdgeRouterRow[], detail = false): Promise<EntityView[]> {
    const ids = rows.map((r) => r.id)
    const attrs = await attrsFor(this.d.db, 'edge_router_role_attributes', ids)
    const { certs, enrollments } = await credentialsFor(this.d.db, 'router_id', ids)
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      roleAttributes: attrs.get(r.id) ?? [],
      disabled: boolOf(r.disabled),
      advertise: r.advertise,
      isOnline: boolOf(r.is_online),
      cost: r.cost,
      version: r.version,
      ...credentialView(certs.get(r.id) ?? [], enrollments.get(r.id), detail),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }))
  }
}
