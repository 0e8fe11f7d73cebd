/**
 * API sessions and login: username/password login for the management API (rate limited per
 * username + client address), certificate login for the client API, session tokens (stored as
 * SHA-256 hashes, sliding expiry), logout, and the purge of expired sessions.
 */
import type { ControllerConfig } from '../config.js'
import { ControllerError } from '../errors.js'
import type { Db, Tx } from '../store/db.js'
import { boolOf, notFound } from './checks.js'
import { newId, newToken, sha256Hex, verifyPassword } from './crypto.js'
import { FailureLimiter } from './rate-limit.js'
import { type Actor, record, type WritePipeline } from './write.js'

export type SessionKind = 'management' | 'client'

export interface SessionIdentity {
  id: string
  name: string
  isAdmin: boolean
}

/** Ends an identity's sessions (of one kind, or all) inside a write. */
export async function revokeSessions(trx: Tx, identityId: string, kind?: SessionKind): Promise<void> {
  let q = trx.deleteFrom('api_sessions').where('identity_id', '=', identityId)
  if (kind) q = q.where('kind', '=', kind)
  await q.execute()
}

export class Sessions {
  readonly loginLimiter = new FailureLimiter(5, 60_000)

  constructor(
    private readonly db: Db,
    private readonly writes: WritePipeline,
    private readonly config: ControllerConfig,
  ) {}

  /** Username/password login (rate limited per username + client address). */
  async authenticatePassword(
    username: string,
    password: string,
    clientIp: string,
  ): Promise<{ token: string; expiresAt: string; identity: SessionIdentity }> {
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
    const auth = await this.db
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
      await this.writes.write({ id: null, name: username }, (w) =>
        record(w, {
          action: 'login-failed',
          type: 'api-session',
          id: auth?.id ?? '-',
          name: username,
          details: { ip: clientIp },
        }),
      )
      throw new ControllerError('ERR_INVALID_CREDENTIALS')
    }
    if (boolOf(auth.disabled))
      throw new ControllerError('ERR_IDENTITY_DISABLED', `identity ${auth.name} is disabled`)
    this.loginLimiter.succeed(key)
    const s = await this.create(auth.id, 'management', { ip: clientIp })
    return { ...s, identity: { id: auth.id, name: auth.name, isAdmin: boolOf(auth.is_admin) } }
  }

  /** Creates an API session for an identity (`management` after a password, `client` after a certificate). */
  async create(
    identityId: string,
    kind: SessionKind,
    info: Record<string, unknown> = {},
  ): Promise<{ token: string; expiresAt: string; sessionId: string }> {
    const token = newToken()
    const expiresAt = new Date(Date.now() + this.config.sessionLifetimeMs).toISOString()
    const sessionId = newId()
    await this.writes.write({ id: identityId, name: identityId }, async (w) => {
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
      await record(w, {
        action: 'login',
        type: 'api-session',
        id: sessionId,
        name: who.name,
        details: { kind, ...info },
      })
    })
    return { token, expiresAt, sessionId }
  }

  /**
   * Checks a session token: ERR_UNAUTHORIZED (unknown), ERR_SESSION_EXPIRED, ERR_IDENTITY_DISABLED.
   * Sessions slide: a session used in the second half of its lifetime is extended.
   */
  async verify(
    token: string,
    kind?: SessionKind,
  ): Promise<{ sessionId: string; expiresAt: string; identity: SessionIdentity }> {
    const row = await this.db
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
      await this.db
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

  /** Logout. */
  async remove(sessionId: string, actor: Actor): Promise<void> {
    await this.writes.write(actor, async (w) => {
      await w.trx.deleteFrom('api_sessions').where('id', '=', sessionId).execute()
      await record(w, { action: 'logout', type: 'api-session', id: sessionId, name: actor.name })
    })
  }

  /** Deletes expired sessions; returns how many. */
  async purgeExpired(): Promise<number> {
    const now = new Date().toISOString()
    const r = await this.db.deleteFrom('api_sessions').where('expires_at', '<', now).executeTakeFirst()
    return Number(r.numDeletedRows ?? 0)
  }
}
