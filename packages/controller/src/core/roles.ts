/**
 * Roles: the role attributes an identity, service or router carries (`#attr`), and the role
 * references policies hold (`#attr`, `@id`, `#all`). `@name` is resolved to `@id` on write
 * (ERR_ROLE_NOT_FOUND if none); a role that matches nothing yet is accepted with a warning.
 */
import { ControllerError } from '../errors.js'
import { validation } from './checks.js'
import { type AnyDb, anyDb, chunk, findRow } from './repo.js'
import type { WriteCtx } from './write.js'

export type RoleTarget = 'identity' | 'service' | 'router' | 'postureCheck'

/** A role as the API shows it: `@id` with `@name`. */
export interface RoleDisplay {
  role: string
  name: string
}

const ROLE_TABLES: Record<
  Exclude<RoleTarget, 'postureCheck'>,
  { table: string; attrs: string; label: string }
> = {
  identity: { table: 'identities', attrs: 'identity_role_attributes', label: 'identity' },
  service: { table: 'services', attrs: 'service_role_attributes', label: 'service' },
  router: { table: 'edge_routers', attrs: 'edge_router_role_attributes', label: 'edge router' },
}

/** Role attribute list: strings without `#`, unique, trimmed. */
export function normAttrs(attrs: string[] | undefined, path: string): string[] {
  if (attrs === undefined) return []
  const out: string[] = []
  attrs.forEach((a, i) => {
    const v = a.trim().replace(/^#/, '')
    if (v === '' || v === 'all' || /[\s,@#]/.test(v) || v.length > 128)
      throw validation(
        `${path}[${i}]`,
        `role attribute "${a}" must be 1-128 characters without spaces, commas, @ or # (and not "all")`,
      )
    if (!out.includes(v)) out.push(v)
  })
  return out
}

/** Validates roles, resolves `@name` to `@id`; warns about roles that match nothing. */
export async function resolveRoles(
  w: WriteCtx,
  roles: string[] | undefined,
  target: RoleTarget,
  path: string,
): Promise<string[]> {
  const out: string[] = []
  if (roles === undefined) return out
  const trx = anyDb(w.trx)
  for (const [i, raw] of roles.entries()) {
    const role = raw.trim()
    const at = `${path}[${i}]`
    let resolved: string
    if (role === '#all') {
      resolved = role
    } else if (role.startsWith('#') && role.length > 1) {
      const attr = role.slice(1)
      if (/[\s,@#]/.test(attr)) throw validation(at, `"${raw}" is not a valid #attribute role`)
      resolved = role
      if (target === 'postureCheck') {
        w.warnings.push(
          `${path.slice(2)}: ${role} matches no posture check (posture checks are not supported yet)`,
        )
      } else {
        const t = ROLE_TABLES[target]
        const hit = await trx
          .selectFrom(t.attrs)
          .select('entity_id')
          .where('attr', '=', attr)
          .limit(1)
          .executeTakeFirst()
        if (!hit) w.warnings.push(`${path.slice(2)}: ${role} matches no ${t.label} yet`)
      }
    } else if (role.startsWith('@') && role.length > 1) {
      const ref = role.slice(1)
      if (target === 'postureCheck') {
        throw new ControllerError('ERR_ROLE_NOT_FOUND', `${at.slice(2)}: no posture check "${ref}" exists`, {
          path: at,
          role: raw,
        })
      }
      const t = ROLE_TABLES[target]
      const row = await findRow<{ id: string }>(trx, t.table, ref)
      if (!row)
        throw new ControllerError(
          'ERR_ROLE_NOT_FOUND',
          `${at.slice(2)}: ${role} names no ${t.label}: create it first, or use #attribute roles`,
          { path: at, role: raw, entity: t.label },
        )
      resolved = `@${row.id}`
    } else {
      throw validation(at, `"${raw}" must be #attribute, @id-or-name or #all`)
    }
    if (!out.includes(resolved)) out.push(resolved)
  }
  return out
}

/** Names of the entities `@id` roles point at, keyed `target:id`. */
export async function roleNames(
  db: AnyDb,
  rolesByTarget: Array<{ roles: string[]; target: RoleTarget }>,
): Promise<Map<string, string>> {
  const names = new Map<string, string>()
  const want: Record<string, Set<string>> = { identity: new Set(), service: new Set(), router: new Set() }
  for (const { roles, target } of rolesByTarget) {
    if (target === 'postureCheck') continue
    for (const r of roles) if (r.startsWith('@')) want[target]!.add(r.slice(1))
  }
  for (const [target, ids] of Object.entries(want)) {
    const t = ROLE_TABLES[target as Exclude<RoleTarget, 'postureCheck'>]
    for (const part of chunk([...ids])) {
      if (part.length === 0) continue
      const rows = (await db
        .selectFrom(t.table)
        .select(['id', 'name'])
        .where('id', 'in', part)
        .execute()) as Array<{
        id: string
        name: string
      }>
      for (const r of rows) names.set(`${target}:${r.id}`, r.name)
    }
  }
  return names
}

/** `[{role, name}]` for roles: `@id` shown as `@name` (from `roleNames`). */
export function displayRoles(roles: string[], target: RoleTarget, names: Map<string, string>): RoleDisplay[] {
  return roles.map(
    (role): RoleDisplay =>
      role.startsWith('@')
        ? { role, name: `@${names.get(`${target}:${role.slice(1)}`) ?? role.slice(1)}` }
        : { role, name: role },
  )
}
