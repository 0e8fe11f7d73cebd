/**
 * The generic repository: lookups by id or name, name uniqueness, paged lists with `filter` and
 * `roleFilter`, role attribute rows. Every function takes the handle to read with: `store.db`
 * outside a write, `w.trx` inside one (so a write sees its own rows).
 */
import { type Kysely, sql } from 'kysely'
import { ControllerError } from '../errors.js'
import type { Db, Tx } from '../store/db.js'
import { nameInUse, notFound, validation } from './checks.js'
import { type FilterCond, type ListQuery, likeEscape, type Pagination, pageOf, parseFilter } from './query.js'

// biome-ignore lint/suspicious/noExplicitAny: dynamic table access for the generic list/lookup helpers
export type AnyDb = Kysely<any>

/** The store handle (or a transaction) for the dynamic-table helpers. */
export function anyDb(db: Db | Tx): AnyDb {
  return db as unknown as AnyDb
}

export interface ListResult<T> {
  data: T[]
  pagination: Pagination
}

/** `items` in slices of `n` (bounded `IN (...)` lists). */
export function chunk<T>(items: T[], n = 500): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n))
  return out
}

/** The row whose id, or else whose name, is `ref`. */
export async function findRow<R>(db: AnyDb, table: string, ref: string): Promise<R | undefined> {
  const byId = await db.selectFrom(table).selectAll().where('id', '=', ref).executeTakeFirst()
  if (byId) return byId as R
  return (await db.selectFrom(table).selectAll().where('name', '=', ref).executeTakeFirst()) as R | undefined
}

/** As findRow, or ERR_NOT_FOUND naming `label`. */
export async function mustFind<R>(db: AnyDb, table: string, ref: string, label: string): Promise<R> {
  const r = await findRow<R>(db, table, ref)
  if (!r) throw notFound(label, ref)
  return r
}

/** ERR_NAME_IN_USE when another row of `table` (not `exceptId`) has `name`. */
export async function checkName(
  db: AnyDb,
  table: string,
  name: string,
  label: string,
  exceptId?: string,
): Promise<void> {
  let q = db.selectFrom(table).select('id').where('name', '=', name)
  if (exceptId) q = q.where('id', '!=', exceptId)
  if (await q.executeTakeFirst()) throw nameInUse(label, name)
}

/**
 * Paged list with filter and optional roleFilter; returns rows of `table`. `fields` maps the
 * filterable API fields to columns; `roleTable` names the attribute table for `roleFilter`.
 */
export async function listRows<R>(
  db: AnyDb,
  table: string,
  q: ListQuery,
  fields: Record<string, string>,
  roleTable?: { attrs: string; table: string },
): Promise<{ rows: R[]; pagination: Pagination }> {
  const { limit, offset } = pageOf(q)
  const conds = parseFilter(q.filter, Object.keys(fields))
  checkFilterTypes(conds, fields)
  if (q.roleFilter && q.roleFilter.length > 0 && !roleTable) {
    throw new ControllerError(
      'ERR_VALIDATION',
      'roleFilter is only supported for identities, services and edge-routers',
      {
        path: '$.roleFilter',
      },
    )
  }
  const roleIds: Array<{ attr?: string; id?: string }> = []
  for (const [i, r] of (q.roleFilter ?? []).entries()) {
    if (r === '#all') continue
    if (r.startsWith('#') && r.length > 1) roleIds.push({ attr: r.slice(1) })
    else if (r.startsWith('@') && r.length > 1) {
      const row = await findRow<{ id: string }>(db, roleTable!.table, r.slice(1))
      roleIds.push({ id: row ? row.id : '\u0000none' })
    } else throw validation(`$.roleFilter[${i}]`, `"${r}" must be #attr, @id-or-name or #all`)
  }
  const semantic = q.roleSemantic ?? 'AllOf'
  // biome-ignore lint/suspicious/noExplicitAny: dynamic query builder
  const apply = (qb: any) => {
    let b = qb
    for (const c of conds) b = b.where(condSql(fields[c.field]!, c))
    if (roleIds.length > 0) {
      // biome-ignore lint/suspicious/noExplicitAny: expression builder
      b = b.where((eb: any) => {
        const parts = roleIds.map((r) =>
          r.attr !== undefined
            ? eb('id', 'in', eb.selectFrom(roleTable!.attrs).select('entity_id').where('attr', '=', r.attr))
            : eb('id', '=', r.id),
        )
        return semantic === 'AllOf' ? eb.and(parts) : eb.or(parts)
      })
    }
    return b
  }
  const total = await apply(db.selectFrom(table).select((eb) => eb.fn.countAll().as('c'))).executeTakeFirst()
  const rows = await apply(db.selectFrom(table).selectAll())
    .orderBy(fields.name ? 'name' : 'id')
    .orderBy('id')
    .limit(limit)
    .offset(offset)
    .execute()
  return { rows: rows as R[], pagination: { limit, offset, totalCount: Number(total?.c ?? 0) } }
}

/** Role attributes by entity id, from an attribute table (`entity_id`, `attr`), sorted. */
export async function attrsFor(db: AnyDb, table: string, ids: string[]): Promise<Map<string, string[]>> {
  const m = new Map<string, string[]>()
  for (const part of chunk(ids)) {
    if (part.length === 0) continue
    const rows = (await db
      .selectFrom(table)
      .select(['entity_id', 'attr'])
      .where('entity_id', 'in', part)
      .orderBy('attr')
      .execute()) as Array<{ entity_id: string; attr: string }>
    for (const r of rows) {
      const a = m.get(r.entity_id)
      if (a) a.push(r.attr)
      else m.set(r.entity_id, [r.attr])
    }
  }
  return m
}

/** Replaces an entity's role attributes. */
export async function setAttrs(db: AnyDb, table: string, id: string, attrs: string[]): Promise<void> {
  await db.deleteFrom(table).where('entity_id', '=', id).execute()
  if (attrs.length > 0)
    await db
      .insertInto(table)
      .values(attrs.map((attr) => ({ entity_id: id, attr })))
      .execute()
}

const BOOLEAN_COLUMNS = new Set(['is_admin', 'disabled', 'is_online'])

/** Booleans compare with = / != true|false; text fields take "strings" (no silent casts, no 500s). */
export function checkFilterTypes(conds: FilterCond[], fields: Record<string, string>): void {
  for (const c of conds) {
    const boolean = BOOLEAN_COLUMNS.has(fields[c.field]!)
    const ok = boolean
      ? typeof c.value === 'boolean' && (c.op === '=' || c.op === '!=')
      : typeof c.value === 'string'
    if (!ok)
      throw new ControllerError(
        'ERR_INVALID_FILTER',
        boolean
          ? `filter: ${c.field} is true or false and takes = or != (e.g. ${c.field} = true)`
          : `filter: ${c.field} takes a "quoted string" (e.g. ${c.field} contains "web")`,
        { field: c.field },
      )
  }
}

/** One filter condition as SQL on `column`. */
export function condSql(column: string, c: FilterCond) {
  const ref = sql.ref(column)
  const v = typeof c.value === 'boolean' ? (c.value ? 1 : 0) : c.value
  switch (c.op) {
    case '=':
      return sql<boolean>`${ref} = ${v}`
    case '!=':
      return sql<boolean>`${ref} <> ${v}`
    case 'contains':
      return sql<boolean>`lower(${ref}) like ${`%${likeEscape(String(v).toLowerCase())}%`} escape '\\'`
    case 'startsWith':
      return sql<boolean>`lower(${ref}) like ${`${likeEscape(String(v).toLowerCase())}%`} escape '\\'`
    case 'endsWith':
      return sql<boolean>`lower(${ref}) like ${`%${likeEscape(String(v).toLowerCase())}`} escape '\\'`
  }
}
