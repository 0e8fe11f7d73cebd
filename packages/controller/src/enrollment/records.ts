/**
 * Enrollment records (the `enrollments` table): one pending one-time token per identity or edge
 * router. Issued with the entity (or by re-enrollment, which revokes its certificates at once),
 * looked up by the token's `jti`, and consumed in the same transaction that stores the issued
 * certificate. Tokens are signed by the signer given at construction (tokens.ts).
 */
import type { ControllerConfig } from '../config.js'
import { newId } from '../core/crypto.js'
import { mustFind } from '../core/repo.js'
import { revokeSessions } from '../core/sessions.js'
import { type Actor, record, type WriteCtx, type WritePipeline } from '../core/write.js'
import { ControllerError } from '../errors.js'
import type { Db } from '../store/db.js'
import { ENROLLED, insertCertificate } from './certificates.js'
import type { EnrolledKind } from './tokens.js'

/** Signs an enrollment JWT (claims per docs/architecture.md, "Enrollment tokens"): EnrollmentSigner. */
export interface EnrollmentSigning {
  sign(o: { kind: EnrolledKind; sub: string; jti: string; name: string; expiresAt: Date }): Promise<string>
}

export interface EnrollmentInfo {
  method: 'ott' | 'erott'
  jwt: string
  expiresAt: string
}

export interface EnrollmentRecord {
  id: string
  kind: EnrolledKind
  entityId: string
  name: string
  expiresAt: string
  usedAt: string | null
}

export class EnrollmentRecords {
  constructor(
    private readonly db: Db,
    private readonly writes: WritePipeline,
    private readonly config: ControllerConfig,
    private readonly signer: EnrollmentSigning | undefined,
  ) {}

  /** A new token for an entity, signed and stored inside the write that creates or re-enrolls it. */
  async issue(w: WriteCtx, kind: EnrolledKind, entityId: string, name: string): Promise<EnrollmentInfo> {
    if (!this.signer)
      throw new ControllerError('ERR_UNAVAILABLE', 'enrollment signing is not ready yet: retry in a moment')
    const jti = newId()
    const expiresAt = new Date(Date.now() + this.config.enrollmentLifetimeMs)
    const jwt = await this.signer.sign({ kind, sub: entityId, jti, name, expiresAt })
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

  /** New enrollment JWT; the old token and the existing certificates are invalidated at once. */
  async reEnroll(
    kind: EnrolledKind,
    ref: string,
    actor: Actor,
  ): Promise<{ id: string; enrollment: EnrollmentInfo }> {
    const k = ENROLLED[kind]
    return this.writes.write(actor, async (w) => {
      const row = await mustFind<{ id: string; name: string }>(
        w.trx,
        k.table,
        ref,
        kind === 'identity' ? 'identity' : 'edge router',
      )
      await w.trx.deleteFrom('enrollments').where(k.column, '=', row.id).execute()
      const revoked = await w.trx
        .deleteFrom('authenticators')
        .where(k.column, '=', row.id)
        .where('method', '=', 'cert')
        .executeTakeFirst()
      if (kind === 'identity') await revokeSessions(w.trx, row.id, 'client')
      const enrollment = await this.issue(w, kind, row.id, row.name)
      await record(w, {
        action: 're-enroll',
        type: k.audit,
        id: row.id,
        name: row.name,
        details: { revokedCertificates: Number(revoked.numDeletedRows ?? 0) },
        change: await k.change(w.trx, row.id),
        touch: k.touch,
      })
      return { id: row.id, enrollment }
    })
  }

  /** The enrollment with this id (a token's `jti`), with its owner's kind and name, or null. */
  async find(jti: string): Promise<EnrollmentRecord | null> {
    const e = await this.db.selectFrom('enrollments').selectAll().where('id', '=', jti).executeTakeFirst()
    if (!e) return null
    const kind = e.identity_id ? 'identity' : 'router'
    const entityId = (e.identity_id ?? e.router_id)!
    const owner = await this.db
      .selectFrom(ENROLLED[kind].table)
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
  async complete(o: {
    jti: string
    kind: EnrolledKind
    /** The JWT `sub`: must match the enrollment's entity. */
    entityId: string
    certPem: string
    fingerprint: string
    certExpiresAt: string
    /** Routers: the advertised address given at enrollment. */
    advertise?: string
  }): Promise<{ id: string; name: string }> {
    const k = ENROLLED[o.kind]
    return this.writes.write({ id: o.entityId, name: o.entityId }, async (w) => {
      const e = await w.trx.selectFrom('enrollments').selectAll().where('id', '=', o.jti).executeTakeFirst()
      if (!e) throw new ControllerError('ERR_ENROLLMENT_NOT_FOUND')
      const entityId = o.kind === 'identity' ? e.identity_id : e.router_id
      if (!entityId || entityId !== o.entityId)
        throw new ControllerError(
          'ERR_ENROLLMENT_INVALID',
          'the enrollment token does not belong to this entity',
        )
      const owner = (await w.trx
        .selectFrom(k.table)
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
      await insertCertificate(w, o.kind, entityId, o)
      if (o.kind === 'router' && o.advertise !== undefined) {
        await w.trx
          .updateTable('edge_routers')
          .set({ advertise: o.advertise, updated_at: w.now })
          .where('id', '=', entityId)
          .execute()
      }
      await record(w, {
        action: 'enroll',
        type: k.audit,
        id: entityId,
        name: owner.name,
        details: { fingerprint: o.fingerprint, certExpiresAt: o.certExpiresAt },
        change: await k.change(w.trx, entityId),
        touch: k.touch,
      })
      return { id: entityId, name: owner.name }
    })
  }
}
