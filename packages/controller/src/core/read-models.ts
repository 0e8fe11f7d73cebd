/**
 * Read models: the answers built from the PolicyIndex (and the store for what is not policy
 * data): an identity's client service list and usable routers, the policy advisor, the audit log.
 */
import type { AdvisorReport, ClientEdgeRouter, ClientService, PolicyIndex } from '@nullport/protocol'
import type { Db } from '../store/db.js'
import type { IdentityRow, ServiceRow } from '../store/schema.js'
import type { Routers } from './entities/routers.js'
import { type ListQuery, pageOf } from './query.js'
import { anyDb, chunk, type ListResult, mustFind } from './repo.js'

export class ReadModels {
  constructor(
    private readonly db: Db,
    private readonly policy: PolicyIndex,
    private readonly routers: Routers,
  ) {}

  /** What `GET /edge/client/v1/services` answers for an identity (from the PolicyIndex + configs). */
  async clientServices(identityId: string): Promise<ClientService[]> {
    const dial = this.policy.servicesFor(identityId, 'Dial')
    const bind = this.policy.servicesFor(identityId, 'Bind')
    const ids = [...new Set([...dial, ...bind])]
    if (ids.length === 0) return []
    const identityRouters = this.policy.routersForIdentity(identityId)
    const configs = new Map<string, Record<string, Record<string, unknown>>>()
    for (const part of chunk(ids)) {
      const rows = await this.db
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

  /**
   * What `GET /edge/client/v1/edge-routers` answers: the routers the identity may use (edge router
   * policies) that are enabled and have an advertised address, by name.
   */
  async clientEdgeRouters(identityId: string): Promise<ClientEdgeRouter[]> {
    const ids = [...this.policy.routersForIdentity(identityId)]
    const online = await this.routers.onlineFlags(ids)
    const all: ClientEdgeRouter[] = []
    for (const id of ids) {
      const r = this.policy.router(id)
      if (!r || r.disabled || !r.advertise) continue
      all.push({ id, name: r.name, advertise: r.advertise, isOnline: online.get(id) ?? false })
    }
    return all.sort((a, b) => a.name.localeCompare(b.name))
  }

  /** Whether an identity may dial/bind a service, through which routers, and what is missing. */
  async policyAdvisor(identityRef: string, serviceRef: string): Promise<AdvisorReport> {
    const i = await mustFind<IdentityRow>(this.db, 'identities', identityRef, 'identity')
    const s = await mustFind<ServiceRow>(this.db, 'services', serviceRef, 'service')
    return this.policy.explain(i.id, s.id)
  }

  /** Who changed what, newest first. */
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
    const db = anyDb(this.db)
    const total = await apply(
      db.selectFrom('audit_log').select((eb) => eb.fn.countAll().as('c')),
    ).executeTakeFirst()
    const rows = await apply(db.selectFrom('audit_log').selectAll())
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
