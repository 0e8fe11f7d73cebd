/**
 * List queries: `limit` (default 100, max 1000), `offset`, `filter` (a small expression language:
 * `name contains "x"`, `name = "x"`, `name != "x"`, `name startsWith "x"`, `true`, joined with
 * `and`), `roleFilter` (`#attr` or `@id-or-name`, repeatable) with `roleSemantic` AllOf (default) | AnyOf.
 */
import { ControllerError } from '../errors.js'

export interface ListQuery {
  limit?: number
  offset?: number
  filter?: string
  roleFilter?: string[]
  roleSemantic?: 'AllOf' | 'AnyOf'
}

export interface Pagination {
  limit: number
  offset: number
  totalCount: number
}

export type FilterOp = '=' | '!=' | 'contains' | 'startsWith' | 'endsWith'
export interface FilterCond {
  field: string
  op: FilterOp
  value: string | number | boolean
}

export const DEFAULT_LIMIT = 100
export const MAX_LIMIT = 1000

export function pageOf(q: ListQuery): { limit: number; offset: number } {
  const limit = q.limit ?? DEFAULT_LIMIT
  const offset = q.offset ?? 0
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw new ControllerError('ERR_VALIDATION', `limit must be an integer from 1 to ${MAX_LIMIT}`, {
      path: '$.limit',
    })
  if (!Number.isInteger(offset) || offset < 0)
    throw new ControllerError('ERR_VALIDATION', 'offset must be an integer >= 0', { path: '$.offset' })
  return { limit, offset }
}

const OPS: Record<string, FilterOp> = {
  '=': '=',
  '==': '=',
  '!=': '!=',
  contains: 'contains',
  startswith: 'startsWith',
  endswith: 'endsWith',
}

/** Parses a filter; `fields` lists the allowed field names. */
export function parseFilter(filter: string | undefined, fields: readonly string[]): FilterCond[] {
  if (filter === undefined || filter.trim() === '' || filter.trim() === 'true') return []
  if (filter.length > 1024) throw bad(filter, 'longer than 1024 characters')
  const tokens: Array<{ t: 'word' | 'str' | 'op'; v: string }> = []
  let i = 0
  while (i < filter.length) {
    const ch = filter[i]!
    if (/\s/.test(ch)) {
      i++
    } else if (ch === '"') {
      let s = ''
      i++
      while (i < filter.length && filter[i] !== '"') {
        if (filter[i] === '\\' && i + 1 < filter.length) i++
        s += filter[i]
        i++
      }
      if (filter[i] !== '"') throw bad(filter, 'unterminated string')
      i++
      tokens.push({ t: 'str', v: s })
    } else if (ch === '=' || ch === '!') {
      const op =
        filter.slice(i, i + 2) === '!=' || filter.slice(i, i + 2) === '==' ? filter.slice(i, i + 2) : ch
      if (op === '!') throw bad(filter, 'unexpected "!"')
      tokens.push({ t: 'op', v: op })
      i += op.length
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(filter.slice(i))
      if (!m) throw bad(filter, `unexpected "${ch}"`)
      tokens.push({ t: 'word', v: m[0] })
      i += m[0].length
    }
  }
  const conds: FilterCond[] = []
  let k = 0
  while (k < tokens.length) {
    const f = tokens[k]
    const o = tokens[k + 1]
    const v = tokens[k + 2]
    if (f?.t !== 'word') throw bad(filter, 'expected a field name')
    if (!fields.includes(f.v)) throw bad(filter, `unknown field "${f.v}" (fields: ${fields.join(', ')})`)
    const op = o ? OPS[o.v.toLowerCase()] : undefined
    if (!op) throw bad(filter, `expected an operator (=, !=, contains, startsWith, endsWith) after ${f.v}`)
    if (!v) throw bad(filter, `expected a value after ${o!.v}`)
    let value: string | number | boolean
    if (v.t === 'str') value = v.v
    else if (v.v === 'true' || v.v === 'false') value = v.v === 'true'
    else if (/^-?[0-9]+$/.test(v.v)) value = Number(v.v)
    else throw bad(filter, `value ${v.v} must be a "quoted string", a number, true or false`)
    conds.push({ field: f.v, op, value })
    k += 3
    if (k < tokens.length) {
      if (tokens[k]!.t !== 'word' || tokens[k]!.v.toLowerCase() !== 'and')
        throw bad(filter, 'conditions are joined with "and"')
      k++
      if (k >= tokens.length) throw bad(filter, 'expected a condition after "and"')
    }
  }
  return conds
}

function bad(filter: string, why: string): ControllerError {
  return new ControllerError(
    'ERR_INVALID_FILTER',
    `filter ${JSON.stringify(filter)}: ${why}; example: name contains "web" and name != "web-old"`,
    { filter },
  )
}

/** Escapes LIKE wildcards (escape char `\`). */
export function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`)
}
