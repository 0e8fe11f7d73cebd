/**
 * Entity tables and role indexes: the two structures the policy index is built from.
 *
 * - `EntityTable` holds identities, services or routers by id, by name and by role attribute,
 *   and selects the entities a compiled role list names without scanning the table (unless the
 *   list says `#all`).
 * - `RoleIndex` holds one side of one policy family (e.g. the identity roles of Dial policies) by
 *   role: attribute -> policies, id -> policies, `#all` policies. `forEachCandidate` visits only
 *   the policies that name one of an entity's attributes, its id, or `#all`; the caller verifies
 *   each candidate with `compiledMatches` (needed for AllOf).
 */
import type { CompiledRoles, RoleSubject } from './roles.js'

export interface TableEntity {
  id: string
  name: string
  roleAttributes: string[]
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  let s = map.get(key)
  if (s === undefined) {
    s = new Set()
    map.set(key, s)
  }
  s.add(value)
}

function removeFrom(map: Map<string, Set<string>>, key: string, value: string): void {
  const s = map.get(key)
  if (s === undefined) return
  s.delete(value)
  if (s.size === 0) map.delete(key)
}

const EMPTY: ReadonlySet<string> = new Set()

export class EntityTable<T extends TableEntity> {
  readonly byId = new Map<string, T>()
  private readonly byName = new Map<string, string>()
  private readonly byAttr = new Map<string, Set<string>>()

  get size(): number {
    return this.byId.size
  }

  get(id: string): T | undefined {
    return this.byId.get(id)
  }

  getByName(name: string): T | undefined {
    const id = this.byName.get(name)
    return id === undefined ? undefined : this.byId.get(id)
  }

  /** Ids of the entities that carry `attr`. Do not mutate. */
  withAttribute(attr: string): ReadonlySet<string> {
    return this.byAttr.get(attr) ?? EMPTY
  }

  /** Stores a copy (attributes deduplicated) and returns the previous version, if any. */
  upsert(entity: T): T | undefined {
    const copy: T = { ...entity, roleAttributes: [...new Set(entity.roleAttributes ?? [])] }
    const old = this.byId.get(copy.id)
    if (old !== undefined) this.unindex(old)
    this.byId.set(copy.id, copy)
    this.byName.set(copy.name, copy.id)
    for (const a of copy.roleAttributes) addTo(this.byAttr, a, copy.id)
    return old
  }

  delete(id: string): T | undefined {
    const old = this.byId.get(id)
    if (old === undefined) return undefined
    this.unindex(old)
    this.byId.delete(id)
    return old
  }

  clear(): void {
    this.byId.clear()
    this.byName.clear()
    this.byAttr.clear()
  }

  private unindex(old: T): void {
    if (this.byName.get(old.name) === old.id) this.byName.delete(old.name)
    for (const a of old.roleAttributes) removeFrom(this.byAttr, a, old.id)
  }

  /** Adds to `out` the ids of the entities `c` selects. Touches only the entities selected (plus the smallest attribute set under AllOf). */
  selectInto(c: CompiledRoles, out: Set<string>): void {
    if (c.all) {
      for (const id of this.byId.keys()) out.add(id)
      return
    }
    for (const id of c.ids) if (this.byId.has(id)) out.add(id)
    if (c.attrs.length === 0) return
    if (c.semantic === 'AnyOf') {
      for (const a of c.attrs) {
        const s = this.byAttr.get(a)
        if (s !== undefined) for (const id of s) out.add(id)
      }
      return
    }
    if (c.invalid.length > 0) return
    // AllOf: walk the smallest attribute set, check the others on the entity.
    let smallest: Set<string> | undefined
    for (const a of c.attrs) {
      const s = this.byAttr.get(a)
      if (s === undefined) return
      if (smallest === undefined || s.size < smallest.size) smallest = s
    }
    if (smallest === undefined) return
    if (c.attrs.length === 1) {
      for (const id of smallest) out.add(id)
      return
    }
    for (const id of smallest) {
      const e = this.byId.get(id)
      if (e === undefined) continue
      let ok = true
      for (const a of c.attrs) {
        if (!e.roleAttributes.includes(a)) {
          ok = false
          break
        }
      }
      if (ok) out.add(id)
    }
  }

  select(c: CompiledRoles): Set<string> {
    const out = new Set<string>()
    this.selectInto(c, out)
    return out
  }

  /** Does `c` select at least one entity? Cheap for attribute roles. */
  selectsAny(c: CompiledRoles): boolean {
    if (c.all) return this.byId.size > 0
    for (const id of c.ids) if (this.byId.has(id)) return true
    if (c.attrs.length === 0) return false
    if (c.semantic === 'AnyOf') return c.attrs.some((a) => this.byAttr.has(a))
    if (c.invalid.length > 0) return false
    const tmp = new Set<string>()
    this.selectInto({ ...c, ids: [] }, tmp)
    return tmp.size > 0
  }

  values(): IterableIterator<T> {
    return this.byId.values()
  }
}

/** One side of one policy family, indexed by role. */
export class RoleIndex {
  private readonly all = new Set<string>()
  private readonly byAttr = new Map<string, Set<string>>()
  private readonly byId = new Map<string, Set<string>>()

  add(policyId: string, c: CompiledRoles): void {
    if (c.all) this.all.add(policyId)
    for (const id of c.ids) addTo(this.byId, id, policyId)
    for (const a of c.attrs) addTo(this.byAttr, a, policyId)
  }

  remove(policyId: string, c: CompiledRoles): void {
    this.all.delete(policyId)
    for (const id of c.ids) removeFrom(this.byId, id, policyId)
    for (const a of c.attrs) removeFrom(this.byAttr, a, policyId)
  }

  clear(): void {
    this.all.clear()
    this.byAttr.clear()
    this.byId.clear()
  }

  /**
   * Calls `fn` for each policy that names `#all`, the subject's id or one of its attributes; a
   * policy may be visited more than once (once per matching key). Return `true` from `fn` to stop.
   * Returns whether it was stopped.
   */
  forEachCandidate(subject: RoleSubject, fn: (policyId: string) => boolean | undefined): boolean {
    for (const p of this.all) if (fn(p) === true) return true
    const ids = this.byId.get(subject.id)
    if (ids !== undefined) for (const p of ids) if (fn(p) === true) return true
    for (const a of subject.roleAttributes) {
      const s = this.byAttr.get(a)
      if (s !== undefined) for (const p of s) if (fn(p) === true) return true
    }
    return false
  }

  /** The distinct candidate policy ids for a subject. */
  candidates(subject: RoleSubject): Set<string> {
    const out = new Set<string>()
    this.forEachCandidate(subject, (p) => {
      out.add(p)
      return false
    })
    return out
  }
}
