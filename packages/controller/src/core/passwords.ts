/**
 * Password authenticators (`method = 'updb'`, username = the identity's name): what admins log in
 * with (sessions.ts). Set, removed and renamed together with their identity.
 */
import { isUniqueViolation, nameInUse, validation } from './checks.js'
import { newId } from './crypto.js'
import type { WriteCtx } from './write.js'

/** A password: 8-1024 characters. */
export function checkPassword(p: unknown, path = '$.password'): string {
  if (typeof p !== 'string' || p.length < 8 || p.length > 1024)
    throw validation(path, 'must be 8-1024 characters')
  return p
}

/** Replaces the identity's password authenticator (`hash` null: removes it). */
export async function setPassword(
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

/** The identity was renamed: so is its username. */
export async function renamePasswordUser(w: WriteCtx, identityId: string, name: string): Promise<void> {
  await w.trx
    .updateTable('authenticators')
    .set({ username: name })
    .where('identity_id', '=', identityId)
    .where('method', '=', 'updb')
    .execute()
    .catch((err) => {
      throw isUniqueViolation(err) ? nameInUse('username', name) : err
    })
}
