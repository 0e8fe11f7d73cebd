/**
 * The policy data as the store holds it, in the PolicyIndex's model (protocol/policy): the whole
 * snapshot (loaded at start, one consistent read) and the single-entity reads a write publishes
 * as its DataChange.
 */
import type {
  EdgeRouterPolicy,
  PolicyIdentity,
  PolicyRouter,
  PolicyService,
  PolicySnapshot,
  Semantic,
  ServiceEdgeRouterPolicy,
  ServicePolicy,
  Terminator,
} from '@nullport/protocol'
import type { Store } from '../store/db.js'
import type {
  EdgeRouterPolicyRow,
  EdgeRouterRow,
  IdentityRow,
  ServiceEdgeRouterPolicyRow,
  ServicePolicyRow,
  ServiceRow,
  TerminatorRow,
} from '../store/schema.js'
import { boolOf } from './checks.js'
import { fingerprintsFor } from './entities/credentials.js'
import { type AnyDb, anyDb, attrsFor } from './repo.js'
import type { Pending } from './write.js'

/** The snapshot and, on PostgreSQL, the last change-log id it includes (one consistent read). */
export async function readSnapshot(store: Store): Promise<{ snapshot: PolicySnapshot; logId: number }> {
  return store.snapshotTransaction(async (trx) => {
    const t = anyDb(trx)
    let logId = 0
    if (store.dialect === 'postgres') {
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
    const identities = ((await t.selectFrom('identities').selectAll().execute()) as IdentityRow[]).map((r) =>
      toPolicyIdentity(r, iAttrs.get(r.id) ?? [], fps.get(r.id) ?? []),
    )
    const services = ((await t.selectFrom('services').selectAll().execute()) as ServiceRow[]).map((r) =>
      toPolicyService(r, sAttrs.get(r.id) ?? []),
    )
    const routers = ((await t.selectFrom('edge_routers').selectAll().execute()) as EdgeRouterRow[]).map((r) =>
      toPolicyRouter(r, rAttrs.get(r.id) ?? [], fps.get(r.id) ?? []),
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

// -----------------------------------------------------------------------------------------------
// one entity, as a write publishes it (its upsert DataChange)

export async function identityChange(db: AnyDb, id: string): Promise<Pending> {
  const r = (await db
    .selectFrom('identities')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirstOrThrow()) as IdentityRow
  const attrs = (await attrsFor(db, 'identity_role_attributes', [id])).get(id) ?? []
  const fps = ((await fingerprintsFor(db, 'identity_id', [id])).get(id) ?? []).map((x) => x.fingerprint)
  return { op: 'upsert', entity: 'identity', data: toPolicyIdentity(r, attrs, fps) }
}

export async function serviceChange(db: AnyDb, id: string): Promise<Pending> {
  const r = (await db
    .selectFrom('services')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirstOrThrow()) as ServiceRow
  const attrs = (await attrsFor(db, 'service_role_attributes', [id])).get(id) ?? []
  return { op: 'upsert', entity: 'service', data: toPolicyService(r, attrs) }
}

export async function routerChange(db: AnyDb, id: string): Promise<Pending> {
  const r = (await db
    .selectFrom('edge_routers')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirstOrThrow()) as EdgeRouterRow
  const attrs = (await attrsFor(db, 'edge_router_role_attributes', [id])).get(id) ?? []
  const fps = ((await fingerprintsFor(db, 'router_id', [id])).get(id) ?? []).map((x) => x.fingerprint)
  return { op: 'upsert', entity: 'router', data: toPolicyRouter(r, attrs, fps) }
}

// -----------------------------------------------------------------------------------------------
// row -> model

function toPolicyIdentity(r: IdentityRow, attrs: string[], fps: string[]): PolicyIdentity {
  return {
    id: r.id,
    name: r.name,
    roleAttributes: attrs,
    disabled: boolOf(r.disabled),
    certFingerprints: fps,
  }
}

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

export function toServicePolicy(r: ServicePolicyRow): ServicePolicy {
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

export function toEdgeRouterPolicy(r: EdgeRouterPolicyRow): EdgeRouterPolicy {
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

export function toServiceEdgeRouterPolicy(r: ServiceEdgeRouterPolicyRow): ServiceEdgeRouterPolicy {
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

export function toTerminator(r: TerminatorRow): Terminator {
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
