/**
 * Identities: who dials and hosts services (SDKs, tunnelers) and who administers the network
 * (admins log in with a password). Created with an enrollment token (except admins); the last
 * enabled admin cannot be disabled, demoted or deleted. The first admin is bootstrapped here.
 */
import { DEFAULT_TERMINATOR_PRECEDENCE, type TerminatorPrecedence } from '@nullport/protocol'
import { ControllerError } from '../../errors.js'
import type { IdentityRow } from '../../store/schema.js'
import { boolOf, checkNameValue, isUniqueViolation, nameInUse, validation } from '../checks.js'
import { hashPassword, newId } from '../crypto.js'
import { checkPassword, renamePasswordUser, setPassword } from '../passwords.js'
import type { ListQuery } from '../query.js'
import { type AnyDb, attrsFor, checkName, chunk, listRows, mustFind, setAttrs } from '../repo.js'
import { normAttrs } from '../roles.js'
import { revokeSessions } from '../sessions.js'
import { identityChange } from '../snapshot.js'
import { type Actor, record, SYSTEM_ACTOR, type WriteResult } from '../write.js'
import { credentialsFor, credentialView } from './credentials.js'
import type { EntityDeps, EntityKind, EntityView } from './kind.js'
import { terminatorsGoWith } from './terminators.js'

const IDENTITY_TYPES = ['Device', 'User', 'Service', 'Default'] as const

export type IdentityInput = {
  name: string
  type?: string
  roleAttributes?: string[]
  isAdmin?: boolean
  disabled?: boolean
  defaultHostingCost?: number
  defaultHostingPrecedence?: TerminatorPrecedence
  /** Sets (string) or removes (null) a username/password authenticator (username = name). */
  password?: string | null
}

function normIdentityType(t: unknown): IdentityRow['type'] {
  if (typeof t !== 'string') throw validation('$.type', 'must be a string')
  const found = IDENTITY_TYPES.find((x) => x.toLowerCase() === t.toLowerCase())
  if (!found) throw validation('$.type', `must be one of ${IDENTITY_TYPES.join(', ')} (any case), got "${t}"`)
  return found
}

function lastAdmin(row: IdentityRow): ControllerError {
  return new ControllerError(
    'ERR_LAST_ADMIN',
    `${row.name} is the last enabled admin: create another admin first`,
    {
      id: row.id,
    },
  )
}

async function adminCount(db: AnyDb, exceptId?: string): Promise<number> {
  let q = db
    .selectFrom('identities')
    .select((eb) => eb.fn.countAll().as('c'))
    .where('is_admin', '=', 1)
    .where('disabled', '=', 0)
  if (exceptId) q = q.where('id', '!=', exceptId)
  return Number((await q.executeTakeFirst())?.c ?? 0)
}

export class Identities implements EntityKind {
  constructor(private readonly d: EntityDeps) {}

  async list(q: ListQuery) {
    const r = await listRows<IdentityRow>(
      this.d.db,
      'identities',
      q,
      {
        name: 'name',
        id: 'id',
        type: 'type',
        isAdmin: 'is_admin',
        disabled: 'disabled',
        createdAt: 'created_at',
      },
      { attrs: 'identity_role_attributes', table: 'identities' },
    )
    return { data: await this.views(r.rows), pagination: r.pagination }
  }

  async get(ref: string): Promise<EntityView> {
    return (
      await this.views([await mustFind<IdentityRow>(this.d.db, 'identities', ref, 'identity')], true)
    )[0]!
  }

  async create(body: IdentityInput, actor: Actor): Promise<WriteResult> {
    const name = checkNameValue(body.name)
    const type = body.type === undefined ? 'Default' : normIdentityType(body.type)
    const attrs = normAttrs(body.roleAttributes, '$.roleAttributes')
    const password = body.password === undefined ? undefined : checkPassword(body.password)
    const passwordHash = password === undefined ? undefined : await hashPassword(password)
    const isAdmin = body.isAdmin === true
    const r = await this.d.writes.write(actor, async (w) => {
      await checkName(w.trx, 'identities', name, 'identity')
      const id = newId()
      await w.trx
        .insertInto('identities')
        .values({
          id,
          name,
          type,
          is_admin: isAdmin ? 1 : 0,
          disabled: body.disabled === true ? 1 : 0,
          default_hosting_cost: body.defaultHostingCost ?? 0,
          default_hosting_precedence: body.defaultHostingPrecedence ?? DEFAULT_TERMINATOR_PRECEDENCE,
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('identity', name) : err
        })
      await setAttrs(w.trx, 'identity_role_attributes', id, attrs)
      if (passwordHash !== undefined) await setPassword(w, id, name, passwordHash)
      const enrollment = isAdmin ? null : await this.d.enrollments.issue(w, 'identity', id, name)
      await record(w, {
        action: 'create',
        type: 'identity',
        id,
        name,
        details: {
          fields: Object.keys(body).filter((k) => k !== 'password'),
          ...(password !== undefined ? { password: 'set' } : {}),
        },
        change: await identityChange(w.trx, id),
        touch: 'identity',
      })
      return { id, enrollment, warnings: w.warnings }
    })
    const view = await this.get(r.id)
    return { data: { ...view, enrollment: r.enrollment }, warnings: r.warnings }
  }

  async update(ref: string, body: Partial<IdentityInput>, actor: Actor): Promise<WriteResult> {
    const passwordHash =
      body.password === undefined
        ? undefined
        : body.password === null
          ? null
          : await hashPassword(checkPassword(body.password))
    const type = body.type === undefined ? undefined : normIdentityType(body.type)
    const attrs =
      body.roleAttributes === undefined ? undefined : normAttrs(body.roleAttributes, '$.roleAttributes')
    const r = await this.d.writes.write(actor, async (w) => {
      const row = await mustFind<IdentityRow>(w.trx, 'identities', ref, 'identity')
      const name = body.name === undefined ? row.name : checkNameValue(body.name)
      if (name !== row.name) await checkName(w.trx, 'identities', name, 'identity', row.id)
      const isAdmin = body.isAdmin === undefined ? boolOf(row.is_admin) : body.isAdmin
      const disabled = body.disabled === undefined ? boolOf(row.disabled) : body.disabled
      if (
        boolOf(row.is_admin) &&
        !boolOf(row.disabled) &&
        (!isAdmin || disabled) &&
        (await adminCount(w.trx, row.id)) === 0
      ) {
        throw lastAdmin(row)
      }
      await w.trx
        .updateTable('identities')
        .set({
          name,
          type: type ?? row.type,
          is_admin: isAdmin ? 1 : 0,
          disabled: disabled ? 1 : 0,
          default_hosting_cost: body.defaultHostingCost ?? row.default_hosting_cost,
          default_hosting_precedence: body.defaultHostingPrecedence ?? row.default_hosting_precedence,
          updated_at: w.now,
        })
        .where('id', '=', row.id)
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('identity', name) : err
        })
      if (attrs !== undefined) await setAttrs(w.trx, 'identity_role_attributes', row.id, attrs)
      if (passwordHash !== undefined) await setPassword(w, row.id, name, passwordHash)
      else if (name !== row.name) await renamePasswordUser(w, row.id, name)
      if (disabled && !boolOf(row.disabled)) await revokeSessions(w.trx, row.id)
      await record(w, {
        action: 'update',
        type: 'identity',
        id: row.id,
        name,
        details: {
          fields: Object.keys(body).filter((k) => k !== 'password'),
          ...(body.password !== undefined ? { password: body.password === null ? 'removed' : 'set' } : {}),
        },
        change: await identityChange(w.trx, row.id),
        touch: 'identity',
      })
      return { id: row.id, warnings: w.warnings }
    })
    return { data: await this.get(r.id), warnings: r.warnings }
  }

  async remove(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.d.writes.write(actor, async (w) => {
      const row = await mustFind<IdentityRow>(w.trx, 'identities', ref, 'identity')
      if (boolOf(row.is_admin) && !boolOf(row.disabled) && (await adminCount(w.trx, row.id)) === 0)
        throw lastAdmin(row)
      const terminators = await terminatorsGoWith(w, 'identity_id', row.id)
      await w.trx.deleteFrom('identities').where('id', '=', row.id).execute()
      await record(w, {
        action: 'delete',
        type: 'identity',
        id: row.id,
        name: row.name,
        details: { terminators },
        change: { op: 'delete', entity: 'identity', id: row.id },
        touch: 'identity',
      })
      return { id: row.id, name: row.name }
    })
  }

  /**
   * First-start admin bootstrap. With an admin already present this is a no-op (never a second
   * admin). Without one and without credentials: ERR_NO_ADMIN.
   */
  async ensureAdmin(creds: {
    username?: string
    password?: string
  }): Promise<{ created: boolean; name: string | null }> {
    const existing = await this.d.db
      .selectFrom('identities')
      .select(['id', 'name'])
      .where('is_admin', '=', 1)
      .orderBy('created_at')
      .executeTakeFirst()
    if (existing) return { created: false, name: existing.name }
    if (!creds.username || creds.password === undefined) throw new ControllerError('ERR_NO_ADMIN')
    const username = checkNameValue(creds.username, '$.adminUser')
    const hash = await hashPassword(checkPassword(creds.password, '$.adminPassword'))
    await this.d.writes.write(SYSTEM_ACTOR, async (w) => {
      await checkName(w.trx, 'identities', username, 'identity')
      const id = newId()
      await w.trx
        .insertInto('identities')
        .values({
          id,
          name: username,
          type: 'User',
          is_admin: 1,
          disabled: 0,
          default_hosting_cost: 0,
          default_hosting_precedence: DEFAULT_TERMINATOR_PRECEDENCE,
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
      await setPassword(w, id, username, hash)
      await record(w, {
        action: 'create',
        type: 'identity',
        id,
        name: username,
        details: { isAdmin: true, bootstrap: true },
        change: await identityChange(w.trx, id),
        touch: 'identity',
      })
    })
    return { created: true, name: username }
  }

  private async views(rows: IdentityRow[], detail = false): Promise<EntityView[]> {
    const ids = rows.map((r) => r.id)
    const attrs = await attrsFor(this.d.db, 'identity_role_attributes', ids)
    const { certs, enrollments } = await credentialsFor(this.d.db, 'identity_id', ids)
    const users = new Map<string, string>()
    for (const part of chunk(ids)) {
      if (part.length === 0) continue
      for (const r of await this.d.db
        .selectFrom('authenticators')
        .select(['identity_id', 'username'])
        .where('method', '=', 'updb')
        .where('identity_id', 'in', part)
        .execute())
        users.set(r.identity_id!, r.username!)
    }
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      type: r.type,
      roleAttributes: attrs.get(r.id) ?? [],
      isAdmin: boolOf(r.is_admin),
      disabled: boolOf(r.disabled),
      defaultHostingCost: r.default_hosting_cost,
      defaultHostingPrecedence: r.default_hosting_precedence,
      hasPassword: users.has(r.id),
      ...credentialView(certs.get(r.id) ?? [], enrollments.get(r.id), detail),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }))
  }
}
