/**
 * The credential state identity and edge-router views share: current certificates (cert
 * authenticators), the earliest expiry among them, and a pending enrollment (its token only in
 * detail views, never once expired).
 */
import { type AnyDb, chunk } from '../repo.js'

export interface CertInfo {
  fingerprint: string
  expiresAt: string | null
}

export interface PendingEnrollment {
  method: string
  jwt: string
  expiresAt: string
  expired: boolean
}

export type OwnerColumn = 'identity_id' | 'router_id'

/** Current certificates by owner id. */
export async function fingerprintsFor(
  db: AnyDb,
  column: OwnerColumn,
  ids: string[],
): Promise<Map<string, CertInfo[]>> {
  const m = new Map<string, CertInfo[]>()
  for (const part of chunk(ids)) {
    const rows = (await db
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

/** Unused enrollments by owner id. */
export async function pendingEnrollments(
  db: AnyDb,
  column: OwnerColumn,
  ids: string[],
): Promise<Map<string, PendingEnrollment>> {
  const m = new Map<string, PendingEnrollment>()
  const now = new Date().toISOString()
  for (const part of chunk(ids)) {
    const rows = (await db
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

/** The credentials of each of `ids`, ready for `credentialView`. */
export async function credentialsFor(
  db: AnyDb,
  column: OwnerColumn,
  ids: string[],
): Promise<{ certs: Map<string, CertInfo[]>; enrollments: Map<string, PendingEnrollment> }> {
  return {
    certs: await fingerprintsFor(db, column, ids),
    enrollments: await pendingEnrollments(db, column, ids),
  }
}

export function credentialView(
  certs: CertInfo[],
  enrollment: PendingEnrollment | undefined,
  detail: boolean,
) {
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
