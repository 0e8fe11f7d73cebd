/**
 * Certificates of enrolled entities (cert authenticators): stored at enrollment and renewal, found
 * by fingerprint. Renewal keeps the certificate renewed with and the newest other unexpired one,
 * and removes the rest in the same transaction (docs/architecture.md, "Certificate renewal").
 */
import type { EntityKind } from '../core/change-feed.js'
import { boolOf } from '../core/checks.js'
import { newId } from '../core/crypto.js'
import { type AnyDb, mustFind } from '../core/repo.js'
import { identityChange, routerChange } from '../core/snapshot.js'
import { type Pending, record, type WriteCtx, type WritePipeline } from '../core/write.js'
import type { Db } from '../store/db.js'
import type { EnrolledKind } from './tokens.js'

export interface IssuedCertificate {
  certPem: string
  fingerprint: string
  certExpiresAt: string
}

export interface CertificateOwner {
  kind: EnrolledKind
  id: string
  name: string
  disabled: boolean
  expiresAt: string | null
}

/** How each enrolled kind is stored, audited and published. */
export const ENROLLED: Record<
  EnrolledKind,
  {
    table: 'identities' | 'edge_routers'
    column: 'identity_id' | 'router_id'
    audit: string
    touch: EntityKind
    change: (db: AnyDb, id: string) => Promise<Pending>
  }
> = {
  identity: {
    table: 'identities',
    column: 'identity_id',
    audit: 'identity',
    touch: 'identity',
    change: identityChange,
  },
  router: {
    table: 'edge_routers',
    column: 'router_id',
    audit: 'edge-router',
    touch: 'edgeRouter',
    change: routerChange,
  },
}

/** Stores an issued certificate as a cert authenticator of the entity. */
export async function insertCertificate(
  w: WriteCtx,
  kind: EnrolledKind,
  entityId: string,
  c: IssuedCertificate,
): Promise<void> {
  await w.trx
    .insertInto('authenticators')
    .values({
      id: newId(),
      identity_id: kind === 'identity' ? entityId : null,
      router_id: kind === 'router' ? entityId : null,
      method: 'cert',
      username: null,
      password_hash: null,
      fingerprint: c.fingerprint,
      cert_pem: c.certPem,
      expires_at: c.certExpiresAt,
      created_at: w.now,
    })
    .execute()
}

export class Certificates {
  constructor(
    private readonly db: Db,
    private readonly writes: WritePipeline,
  ) {}

  /** Adds a renewed certificate for an enrolled entity (optionally replacing one by fingerprint). */
  async add(
    o: IssuedCertificate & {
      kind: EnrolledKind
      entityId: string
      replaces?: string
      /**
       * Renewal: the certificate the entity renewed with. It stays; certificates of the entity that
       * expired are removed, and of the others only the newest one is kept (live connections made
       * with it keep working until a later renewal prunes it after its expiry). So an entity holds
       * at most three certificates: the one in use, the previous one, the new one.
       */
      renewedWith?: string
    },
  ): Promise<void> {
    const k = ENROLLED[o.kind]
    await this.writes.write({ id: o.entityId, name: o.entityId }, async (w) => {
      const owner = await mustFind<{ id: string; name: string }>(w.trx, k.table, o.entityId, o.kind)
      w.actor = { id: owner.id, name: owner.name }
      if (o.replaces)
        await w.trx
          .deleteFrom('authenticators')
          .where(k.column, '=', owner.id)
          .where('fingerprint', '=', o.replaces)
          .execute()
      if (o.renewedWith) {
        const certs = await w.trx
          .selectFrom('authenticators')
          .select(['id', 'fingerprint', 'expires_at', 'created_at'])
          .where(k.column, '=', owner.id)
          .where('method', '=', 'cert')
          .orderBy('created_at', 'desc')
          .execute()
        const others = certs.filter((c) => c.fingerprint !== o.renewedWith)
        const live = others.filter((c) => c.expires_at === null || c.expires_at > w.now)
        const keep = new Set(live.slice(0, 1).map((c) => c.id))
        const drop = others.filter((c) => !keep.has(c.id)).map((c) => c.id)
        if (drop.length > 0) await w.trx.deleteFrom('authenticators').where('id', 'in', drop).execute()
      }
      await insertCertificate(w, o.kind, owner.id, o)
      await record(w, {
        action: 'renew-certificate',
        type: k.audit,
        id: owner.id,
        name: owner.name,
        details: { fingerprint: o.fingerprint, replaces: o.replaces ?? null },
        change: await k.change(w.trx, owner.id),
      })
    })
  }

  /** Who owns a certificate (by fingerprint), or null. */
  async find(fingerprint: string): Promise<CertificateOwner | null> {
    const a = await this.db
      .selectFrom('authenticators')
      .selectAll()
      .where('fingerprint', '=', fingerprint)
      .executeTakeFirst()
    if (!a) return null
    const kind: EnrolledKind = a.identity_id ? 'identity' : 'router'
    const o = await this.db
      .selectFrom(ENROLLED[kind].table)
      .select(['id', 'name', 'disabled'])
      .where('id', '=', (a.identity_id ?? a.router_id) as string)
      .executeTakeFirst()
    return o ? { kind, id: o.id, name: o.name, disabled: boolOf(o.disabled), expiresAt: a.expires_at } : null
  }
}
