/**
 * Roles and their matching semantics, exactly as OpenZiti evaluates them
 * (`evaluatePolicyAgainstEntity` in openziti/ziti controller/db/policy_common.go):
 *
 * - `#all` matches every entity of the kind, whatever the semantic.
 * - `@id` matches the entity with that id, whatever the semantic: ids are always OR'ed, so an AllOf
 *   policy with `@laptop,@phone` selects both (AllOf is OpenZiti's default semantic; users write
 *   such lists all the time). An `@x` that names no entity selects nothing.
 * - `#attr` roles are combined by the semantic: AnyOf = the entity has at least one of them,
 *   AllOf = the entity has every one of them. No attribute roles = no attribute match.
 * - An empty role list matches nothing.
 *
 * A policy's semantic applies to each of its role lists (identity, service, router, posture).
 * Stored roles that do not parse (the controller validates on write, so only imported or corrupt
 * data) are treated as an attribute nobody has: they never match, and under AllOf they make the
 * attribute part unsatisfiable (fail closed).
 */
import { ProtocolError } from '../errors.js'
import type { Role, Semantic } from '../model.js'

/** Parsed role: `#all`, `#attr`, `@id`. */
export type ParsedRole = { kind: 'all' } | { kind: 'attr'; value: string } | { kind: 'id'; value: string }

const WHITESPACE = /\s/

/** Parses a role, or returns a reason it is malformed. Never throws. */
export function tryParseRole(role: unknown): ParsedRole | { kind: 'invalid'; reason: string } {
  if (typeof role !== 'string') return { kind: 'invalid', reason: 'a role must be a string' }
  if (role.length === 0) return { kind: 'invalid', reason: 'a role must not be empty' }
  if (WHITESPACE.test(role)) return { kind: 'invalid', reason: 'a role must not contain whitespace' }
  const prefix = role[0]
  const value = role.slice(1)
  if (prefix !== '#' && prefix !== '@') {
    return {
      kind: 'invalid',
      reason: "a role starts with '#' (attribute, or #all) or '@' (one entity by id)",
    }
  }
  if (value.length === 0) return { kind: 'invalid', reason: `'${prefix}' must be followed by a name` }
  if (prefix === '@') return { kind: 'id', value }
  if (value === 'all') return { kind: 'all' }
  return { kind: 'attr', value }
}

/**
 * Parses `#all`, `#attr` or `@id`.
 * @throws ProtocolError `ERR_POLICY_ROLE` for an empty role, a missing prefix or whitespace.
 * @example parseRole('#family.tools.clients') // { kind: 'attr', value: 'family.tools.clients' }
 */
export function parseRole(role: Role): ParsedRole {
  const parsed = tryParseRole(role)
  if (parsed.kind === 'invalid') {
    throw new ProtocolError(
      'ERR_POLICY_ROLE',
      `invalid role ${JSON.stringify(role)}: ${parsed.reason}, e.g. '#servers', '@laptop' or '#all'`,
      { role },
    )
  }
  return parsed
}

/** Parses every role of a list; throws `ERR_POLICY_ROLE` (naming the field when given) on the first bad one. */
export function parseRoles(roles: readonly Role[], field?: string): ParsedRole[] {
  return roles.map((role) => {
    try {
      return parseRole(role)
    } catch (err) {
      if (field === undefined || !(err instanceof ProtocolError)) throw err
      throw new ProtocolError('ERR_POLICY_ROLE', `${field}: ${err.message}`, { ...err.details, field })
    }
  })
}

/** Formats a parsed role back to its string form. */
export function formatRole(role: ParsedRole): Role {
  if (role.kind === 'all') return '#all'
  return role.kind === 'attr' ? `#${role.value}` : `@${role.value}`
}

/** A role list compiled once for fast matching. */
export interface CompiledRoles {
  readonly semantic: Semantic
  /** `#all` present. */
  readonly all: boolean
  /** `@id` values (OR'ed). */
  readonly ids: readonly string[]
  /** `#attr` values (combined by the semantic). */
  readonly attrs: readonly string[]
  /** Roles that did not parse (never match; AllOf attribute part unsatisfiable). */
  readonly invalid: readonly string[]
}

export function compileRoles(roles: readonly Role[] | undefined, semantic: Semantic): CompiledRoles {
  let all = false
  const ids: string[] = []
  const attrs: string[] = []
  const invalid: string[] = []
  for (const role of roles ?? []) {
    const p = tryParseRole(role)
    if (p.kind === 'all') all = true
    else if (p.kind === 'id') {
      if (!ids.includes(p.value)) ids.push(p.value)
    } else if (p.kind === 'attr') {
      if (!attrs.includes(p.value)) attrs.push(p.value)
    } else invalid.push(String(role))
  }
  return { semantic: semantic === 'AnyOf' ? 'AnyOf' : 'AllOf', all, ids, attrs, invalid }
}

/** The part of an entity that roles look at. */
export interface RoleSubject {
  id: string
  roleAttributes: readonly string[]
}

/** Does a compiled role list select this entity? */
export function compiledMatches(c: CompiledRoles, subject: RoleSubject): boolean {
  if (c.all) return true
  if (c.ids.length > 0 && c.ids.includes(subject.id)) return true
  return attrsMatch(c, subject.roleAttributes)
}

/** The attribute part of a match (no ids, no `#all`). */
export function attrsMatch(c: CompiledRoles, attributes: readonly string[]): boolean {
  if (c.semantic === 'AnyOf') {
    for (const a of c.attrs) if (attributes.includes(a)) return true
    return false
  }
  if (c.attrs.length === 0 || c.invalid.length > 0) return false
  for (const a of c.attrs) if (!attributes.includes(a)) return false
  return true
}

/**
 * Does a role list (with the policy's semantic) select this entity? Throws `ERR_POLICY_ROLE` on a
 * malformed role; use it on input, the index itself tolerates bad stored roles.
 * @example rolesMatch(['#a', '#b'], 'AllOf', { id: 'x', roleAttributes: ['a', 'b'] }) // true
 */
export function rolesMatch(roles: readonly Role[], semantic: Semantic, subject: RoleSubject): boolean {
  parseRoles(roles)
  return compiledMatches(compileRoles(roles, semantic), subject)
}
