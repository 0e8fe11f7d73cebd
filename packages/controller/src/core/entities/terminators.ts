/**
 * Terminators: where a service is hosted (a bind of a hosting identity at a router). Routers
 * create and delete them through the fabric API (authorized by the Bind policies); admins list
 * them. Idempotent per (service, router, identity).
 */
import type { PolicyIndex, Terminator, TerminatorPrecedence } from '@nullport/protocol'
import { ControllerError } from '../../errors.js'
import type { Db } from '../../store/db.js'
import type { EdgeRouterRow, IdentityRow, ServiceRow, TerminatorRow } from '../../store/schema.js'
import { notFound } from '../checks.js'
import { newId } from '../crypto.js'
import { type ListQuery, pageOf, parseFilter } from '../query.js'
import { anyDb, checkFilterTypes, condSql, type ListResult, mustFind } from '../repo.js'
import { toTerminator } from '../snapshot.js'
import { type Actor, record, type WriteCtx, type WritePipeline } from '../write.js'

export interface TerminatorInput {
  serviceId: string
  routerId: string
  identityId: string
  cost?: number
  precedence?: TerminatorPrecedence
}

/**
 * Inside a write that deletes an identity, service or router: the delete changes of the
 * terminators that go with it (routers drop them). Returns how many.
 */
export async function terminatorsGoWith(
  w: WriteCtx,
  column: 'identity_id' | 'service_id' | 'router_id',
  id: string,
): Promise<number> {
  const terms = await w.trx.selectFrom('terminators').select('id').where(column, '=', id).execute()
  for (const t of terms) w.pending.push({ op: 'delete', entity: 'terminator', id: t.id })
  return terms.length
}

export class Terminators {
  constructor(
    private readonly db: Db,
    private readonly writes: WritePipeline,
    private readonly policy: PolicyIndex,
  ) {}

  /** Admins' list (filter fields: id, serviceId, routerId, identityId), with names. */
  async list(
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
      anyDb(this.db)
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

  /**
   * A router hosts a service for an identity (`POST /fabric/v1/terminators`): the service by id or
   * name, the identity's Bind permission at this router checked against the policy index
   * (ERR_NOT_FOUND, ERR_BIND_NOT_AUTHORIZED), then `create`.
   */
  async bind(
    routerId: string,
    body: { serviceId: string; identityId: string; cost?: number; precedence?: TerminatorPrecedence },
    actor: Actor,
  ): Promise<Terminator> {
    const svc = this.policy.service(body.serviceId) ?? this.policy.serviceByName(body.serviceId)
    if (!svc)
      throw new ControllerError('ERR_NOT_FOUND', `no service "${body.serviceId}"`, {
        entity: 'service',
        ref: body.serviceId,
      })
    const authz = this.policy.authorize(body.identityId, svc.id, 'Bind', routerId)
    if (!authz.ok) {
      throw new ControllerError(
        'ERR_BIND_NOT_AUTHORIZED',
        `identity ${body.identityId} may not host ${svc.name} at this router: ${authz.message}`,
        {
          reason: authz.code,
          serviceId: svc.id,
          identityId: body.identityId,
        },
      )
    }
    return this.create(
      {
        serviceId: svc.id,
        routerId,
        identityId: body.identityId,
        ...(body.cost !== undefined ? { cost: body.cost } : {}),
        ...(body.precedence !== undefined ? { precedence: body.precedence } : {}),
      },
      actor,
    )
  }

  /** Creates a terminator (a bind at a router). Idempotent per (service, router, identity): the existing one is updated. */
  async create(t: TerminatorInput, actor: Actor): Promise<Terminator> {
    return this.writes.write(actor, async (w) => {
      const svc = await mustFind<ServiceRow>(w.trx, 'services', t.serviceId, 'service')
      const identity = await mustFind<IdentityRow>(w.trx, 'identities', t.identityId, 'identity')
      const router = await mustFind<EdgeRouterRow>(w.trx, 'edge_routers', t.routerId, 'edge router')
      const cost = t.cost ?? identity.default_hosting_cost
      const precedence = t.precedence ?? (identity.default_hosting_precedence as TerminatorPrecedence)
      const existing = await w.trx
        .selectFrom('terminators')
        .selectAll()
        .where('service_id', '=', svc.id)
        .where('router_id', '=', router.id)
        .where('identity_id', '=', identity.id)
        .executeTakeFirst()
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
      const term = toTerminator(row)
      await record(w, {
        action: existing ? 'update' : 'create',
        type: 'terminator',
        id: row.id,
        name: svc.name,
        details: { service: svc.name, router: router.name, identity: identity.name },
        change: { op: 'upsert', entity: 'terminator', data: term },
        touch: 'terminator',
      })
      return term
    })
  }

  async remove(id: string, actor: Actor): Promise<{ id: string }> {
    return this.writes.write(actor, async (w) => {
      const row = await w.trx.selectFrom('terminators').selectAll().where('id', '=', id).executeTakeFirst()
      if (!row) throw notFound('terminator', id)
      await w.trx.deleteFrom('terminators').where('id', '=', id).execute()
      await record(w, {
        action: 'delete',
        type: 'terminator',
        id,
        name: null,
        details: { service: row.service_id, router: row.router_id },
        change: { op: 'delete', entity: 'terminator', id },
        touch: 'terminator',
      })
      return { id }
    })
  }

  /**
   * A router removes one of its own terminators (`DELETE /fabric/v1/terminators/:id`):
   * ERR_NOT_FOUND, or ERR_FORBIDDEN for another router's.
   */
  async unbind(routerId: string, id: string, actor: Actor): Promise<{ id: string }> {
    const row = await this.db
      .selectFrom('terminators')
      .select(['id', 'router_id'])
      .where('id', '=', id)
      .executeTakeFirst()
    if (!row)
      throw new ControllerError('ERR_NOT_FOUND', `no terminator ${id}`, { entity: 'terminator', ref: id })
    if (row.router_id !== routerId) {
      throw new ControllerError(
        'ERR_FORBIDDEN',
        `terminator ${id} belongs to another router: a router may delete only its own`,
        { id },
      )
    }
    await this.remove(id, actor)
    return { id }
  }

  /** Ids of a router's terminators. */
  async idsOfRouter(routerId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('terminators')
      .select('id')
      .where('router_id', '=', routerId)
      .execute()
    return rows.map((r) => r.id)
  }
}
