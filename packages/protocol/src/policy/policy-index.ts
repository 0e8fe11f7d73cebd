/**
 * The policy index: the policy data of one network, indexed so that the questions the controller
 * and the routers ask ("what may identity X dial or bind, through which routers", "may X dial S
 * at router R") cost time proportional to the policies that concern X and S, not to the size of
 * the network.
 *
 * Semantics (as OpenZiti; roles in ./roles.ts):
 * - A service policy of type T grants T for every identity its identityRoles select x every
 *   service its serviceRoles select. postureCheckRoles are carried, not evaluated yet: the seam is
 *   `PolicyIndexOptions.postureCheck` (default: every policy passes).
 * - Edge router policies give identities x routers; service edge router policies give services x
 *   routers. Disabled routers are in no answer; a disabled or unknown identity may dial, bind and
 *   use nothing (servicesFor / routersForIdentity return empty sets), an unknown service or router
 *   id is never selected (dangling `@id`s and deleted entities never crash a lookup).
 * - authorize(identity, service, type, router) checks, in this order, and returns the first
 *   failure: identity known (ERR_IDENTITY_NOT_FOUND), identity enabled (ERR_IDENTITY_DISABLED),
 *   service known (ERR_SERVICE_NOT_FOUND), a granting policy of the type (ERR_NO_DIAL_PERMISSION /
 *   ERR_NO_BIND_PERMISSION), router known (ERR_ROUTER_NOT_FOUND), router enabled
 *   (ERR_ROUTER_DISABLED), an edge router policy giving the identity the router
 *   (ERR_NO_EDGE_ROUTER_POLICY), a service edge router policy giving the service the router
 *   (ERR_NO_SERVICE_EDGE_ROUTER_POLICY). Router existence and state are checked before the router
 *   policies so that a deleted or disabled router is reported as such, not as a missing policy.
 *   Each message names the fix as a `nullport` command.
 * - Terminators are kept per service; deletes do not cascade inside the index (the controller
 *   sends the deletes it means).
 *
 * Versions: `load(snapshot)` sets `version = snapshot.version`. `apply(change)` applies a change
 * whose `change.version >= version` and then sets `version = max(version, change.version)`;
 * a change with `change.version < version` is ignored (returns false). Several changes of one
 * store transaction share one version, so equal versions must be applied; re-applying a change is
 * harmless because every change is idempotent (an upsert replaces the whole entity, a delete of
 * a missing id does nothing). A snapshot at version V therefore composes with a replay of the
 * change feed from V on.
 *
 * Cost: `apply()` of one change updates the role indexes of that one entity (no rebuild, no scan).
 * Queries walk the policies indexed under the asker's id, its attributes and `#all`, verify each
 * (AllOf), and union the entities those policies select from the attribute index of the other
 * side. There are no per-identity caches, so nothing can go stale.
 *
 * Impact: `apply(change, impact)` also collects, into a `PolicyImpact`, the identities whose
 * service lists may change (before and after the change), so the controller notifies those
 * sessions only instead of every one.
 */
import { ProtocolError } from '../errors.js'
import type {
  DataChange,
  EdgeRouterPolicy,
  PolicyIdentity,
  PolicyRouter,
  PolicyService,
  PolicySnapshot,
  PolicyType,
  Role,
  Semantic,
  ServiceEdgeRouterPolicy,
  ServicePolicy,
  Terminator,
} from '../model.js'
import { explainAccess } from './advisor.js'
import {
  type CompiledEdgeRouterPolicy,
  type CompiledServiceEdgeRouterPolicy,
  type CompiledServicePolicy,
  compileEdgeRouterPolicy,
  compileServiceEdgeRouterPolicy,
  compileServicePolicy,
} from './compiled-policies.js'
import { EntityTable, RoleIndex } from './entity-table.js'
import { fixes } from './fixes.js'
import { IMPACT_MAX_SERVICES, type PolicyImpact } from './impact.js'
import type {
  AdvisorReport,
  AuthzDenyCode,
  AuthzResult,
  PolicyIndexOptions,
  PolicyIndexStats,
  PostureContext,
} from './policy-index-types.js'
import { type CompiledRoles, compiledMatches, compileRoles, parseRoles, type RoleSubject } from './roles.js'

const ENTITY_NAMES = new Set([
  'identity',
  'service',
  'router',
  'servicePolicy',
  'edgeRouterPolicy',
  'serviceEdgeRouterPolicy',
  'terminator',
])

/**
 * Holds the policy data and answers authorization questions in time independent of the number of
 * policies that do not concern the asker. Mutated only by `load` and `apply`.
 *
 * @example
 * const index = new PolicyIndex()
 * index.load(snapshot)
 * const r = index.authorize(identityId, serviceId, 'Dial', routerId)
 * if (!r.ok) refuse(r.code, r.message)
 */
export class PolicyIndex {
  version = 0

  private readonly identities = new EntityTable<PolicyIdentity>()
  private readonly services = new EntityTable<PolicyService>()
  private readonly routers = new EntityTable<PolicyRouter>()

  private readonly sps = new Map<string, CompiledServicePolicy>()
  /** Service policy name -> how many policies carry it (names are unique, but data may lag). */
  private readonly spNames = new Map<string, number>()
  private readonly erps = new Map<string, CompiledEdgeRouterPolicy>()
  private readonly serps = new Map<string, CompiledServiceEdgeRouterPolicy>()

  /** Identity side of service policies, per type. */
  private readonly spByIdentity: Record<PolicyType, RoleIndex> = {
    Dial: new RoleIndex(),
    Bind: new RoleIndex(),
  }
  /** Service side of service policies, per type. */
  private readonly spByService: Record<PolicyType, RoleIndex> = {
    Dial: new RoleIndex(),
    Bind: new RoleIndex(),
  }
  private readonly erpByIdentity = new RoleIndex()
  private readonly serpByService = new RoleIndex()

  private readonly terminators = new Map<string, Terminator>()
  private readonly terminatorsByService = new Map<string, Map<string, Terminator>>()

  private readonly postureCheck: ((ctx: PostureContext) => boolean) | undefined

  constructor(options: PolicyIndexOptions = {}) {
    if (options.postureCheck !== undefined && typeof options.postureCheck !== 'function') {
      throw new TypeError('PolicyIndexOptions.postureCheck must be a function')
    }
    this.postureCheck = options.postureCheck
  }

  /** Replaces all data with the snapshot and sets `version` to the snapshot's. */
  load(snapshot: PolicySnapshot): void {
    this.clear()
    for (const e of snapshot.identities ?? []) this.identities.upsert(e)
    for (const e of snapshot.services ?? []) this.services.upsert(e)
    for (const e of snapshot.routers ?? []) this.routers.upsert(e)
    for (const p of snapshot.servicePolicies ?? []) this.upsertServicePolicy(p)
    for (const p of snapshot.edgeRouterPolicies ?? []) this.upsertEdgeRouterPolicy(p)
    for (const p of snapshot.serviceEdgeRouterPolicies ?? []) this.upsertServiceEdgeRouterPolicy(p)
    for (const t of snapshot.terminators ?? []) this.upsertTerminator(t)
    this.version = snapshot.version
  }

  /**
   * Applies one change if `change.version >= version` (see the file header: equal versions come
   * from one transaction and are applied; older ones are ignored), then sets `version` to the
   * larger of the two. Returns whether the change was applied.
   * @throws ProtocolError `ERR_POLICY_CHANGE` for an unknown op or entity kind (re-sync with a snapshot).
   */
  apply(change: DataChange, impact?: PolicyImpact): boolean {
    if (change === null || typeof change !== 'object' || typeof change.version !== 'number') {
      throw new ProtocolError(
        'ERR_POLICY_CHANGE',
        'policy change without a numeric version: re-sync from a snapshot',
        {
          change,
        },
      )
    }
    if (!ENTITY_NAMES.has(change.entity)) {
      throw new ProtocolError(
        'ERR_POLICY_CHANGE',
        `policy change for unknown entity kind ${JSON.stringify(change.entity)}: upgrade this component or re-sync from a snapshot`,
        { entity: change.entity, version: change.version },
      )
    }
    const op: unknown = change.op
    if (op !== 'upsert' && op !== 'delete') {
      throw new ProtocolError(
        'ERR_POLICY_CHANGE',
        `policy change with unknown op ${JSON.stringify(op)}: re-sync from a snapshot`,
        { op, version: change.version },
      )
    }
    const target: unknown =
      op === 'delete' ? (change as { id?: unknown }).id : (change as { data?: { id?: unknown } }).data?.id
    if (typeof target !== 'string' || target.length === 0) {
      throw new ProtocolError(
        'ERR_POLICY_CHANGE',
        `policy ${op} of ${change.entity} without an id: re-sync from a snapshot`,
        { entity: change.entity, version: change.version },
      )
    }
    if (change.version < this.version) return false
    // Impact = who was affected under the old data plus who is under the new data.
    if (impact !== undefined) this.collectImpact(change, impact)
    if (change.op === 'upsert') {
      switch (change.entity) {
        case 'identity':
          this.identities.upsert(change.data)
          break
        case 'service':
          this.services.upsert(change.data)
          break
        case 'router':
          this.routers.upsert(change.data)
          break
        case 'servicePolicy':
          this.upsertServicePolicy(change.data)
          break
        case 'edgeRouterPolicy':
          this.upsertEdgeRouterPolicy(change.data)
          break
        case 'serviceEdgeRouterPolicy':
          this.upsertServiceEdgeRouterPolicy(change.data)
          break
        case 'terminator':
          this.upsertTerminator(change.data)
          break
      }
    } else {
      switch (change.entity) {
        case 'identity':
          this.identities.delete(change.id)
          break
        case 'service':
          this.services.delete(change.id)
          break
        case 'router':
          this.routers.delete(change.id)
          break
        case 'servicePolicy':
          this.deleteServicePolicy(change.id)
          break
        case 'edgeRouterPolicy':
          this.deleteEdgeRouterPolicy(change.id)
          break
        case 'serviceEdgeRouterPolicy':
          this.deleteServiceEdgeRouterPolicy(change.id)
          break
        case 'terminator':
          this.deleteTerminator(change.id)
          break
      }
    }
    if (impact !== undefined) this.collectImpact(change, impact)
    if (change.version > this.version) this.version = change.version
    return true
  }

  /** Applies changes in order (collecting their impact when given); returns how many were applied. */
  applyAll(changes: readonly DataChange[], impact?: PolicyImpact): number {
    let n = 0
    for (const c of changes) if (this.apply(c, impact)) n++
    return n
  }

  /** A copy of all data (for a router joining late, or a test comparing states). */
  snapshot(): PolicySnapshot {
    const copyAttrs = <T extends { roleAttributes: string[] }>(e: T): T => ({
      ...e,
      roleAttributes: [...e.roleAttributes],
    })
    return {
      version: this.version,
      identities: [...this.identities.values()].map(copyAttrs),
      services: [...this.services.values()].map(copyAttrs),
      routers: [...this.routers.values()].map(copyAttrs),
      servicePolicies: [...this.sps.values()].map((c) => compileServicePolicy(c.raw).raw),
      edgeRouterPolicies: [...this.erps.values()].map((c) => compileEdgeRouterPolicy(c.raw).raw),
      serviceEdgeRouterPolicies: [...this.serps.values()].map(
        (c) => compileServiceEdgeRouterPolicy(c.raw).raw,
      ),
      terminators: [...this.terminators.values()].map((t) => ({ ...t })),
    }
  }

  stats(): PolicyIndexStats {
    return {
      version: this.version,
      identities: this.identities.size,
      services: this.services.size,
      routers: this.routers.size,
      servicePolicies: this.sps.size,
      edgeRouterPolicies: this.erps.size,
      serviceEdgeRouterPolicies: this.serps.size,
      terminators: this.terminators.size,
    }
  }

  // ---- lookups -------------------------------------------------------------------------------
  // The returned objects are the index's own: treat them as read-only.

  identity(id: string): PolicyIdentity | undefined {
    return this.identities.get(id)
  }
  identityByName(name: string): PolicyIdentity | undefined {
    return this.identities.getByName(name)
  }
  service(id: string): PolicyService | undefined {
    return this.services.get(id)
  }
  serviceByName(name: string): PolicyService | undefined {
    return this.services.getByName(name)
  }
  router(id: string): PolicyRouter | undefined {
    return this.routers.get(id)
  }
  routerByName(name: string): PolicyRouter | undefined {
    return this.routers.getByName(name)
  }
  servicePolicy(id: string): ServicePolicy | undefined {
    return this.sps.get(id)?.raw
  }
  edgeRouterPolicy(id: string): EdgeRouterPolicy | undefined {
    return this.erps.get(id)?.raw
  }
  serviceEdgeRouterPolicy(id: string): ServiceEdgeRouterPolicy | undefined {
    return this.serps.get(id)?.raw
  }
  /** All service policies (read-only views). */
  servicePolicyList(): ServicePolicy[] {
    return [...this.sps.values()].map((c) => c.raw)
  }
  edgeRouterPolicyList(): EdgeRouterPolicy[] {
    return [...this.erps.values()].map((c) => c.raw)
  }
  serviceEdgeRouterPolicyList(): ServiceEdgeRouterPolicy[] {
    return [...this.serps.values()].map((c) => c.raw)
  }
  /** Does a role list select at least one identity / service / router? Tolerates malformed roles (they select nothing). */
  selectsAnything(
    kind: 'identity' | 'service' | 'router',
    roles: readonly Role[],
    semantic: Semantic,
  ): boolean {
    return this.table(kind).selectsAny(compileRoles(roles, semantic))
  }
  /**
   * Identity ids that may Dial or Bind the service (the reverse of servicesFor; disabled
   * identities excluded): whom to notify when a service changes, who could host it.
   */
  identitiesFor(serviceId: string, type: PolicyType): Set<string> {
    const out = new Set<string>()
    const service = this.services.get(serviceId)
    if (service === undefined) return out
    for (const pid of this.spByService[type].candidates(service)) {
      const p = this.sps.get(pid)
      if (p !== undefined && compiledMatches(p.service, service)) this.identities.selectInto(p.identity, out)
    }
    for (const id of out) if (this.identities.get(id)?.disabled === true) out.delete(id)
    return out
  }
  /** How many identities / services / routers carry the attribute. */
  attributeCount(kind: 'identity' | 'service' | 'router', attr: string): number {
    return this.table(kind).withAttribute(attr).size
  }

  // ---- questions ------------------------------------------------------------------------------

  /**
   * Service ids the identity may Dial or Bind (service policies only; a disabled or unknown
   * identity gets an empty set). A new set the caller owns.
   */
  servicesFor(identityId: string, type: PolicyType): Set<string> {
    const out = new Set<string>()
    const identity = this.identities.get(identityId)
    if (identity === undefined || identity.disabled) return out
    const granting: CompiledServicePolicy[] = []
    for (const pid of this.spByIdentity[type].candidates(identity)) {
      const p = this.sps.get(pid)
      if (p === undefined || !compiledMatches(p.identity, identity)) continue
      // `#all` services: the answer is every service, built in one go.
      if (p.service.all) return new Set(this.services.byId.keys())
      granting.push(p)
    }
    for (const p of granting) this.services.selectInto(p.service, out)
    return out
  }

  /**
   * The policies (ids) that give identity `type` access to service (whatever the identity's
   * disabled flag; posture checks applied when configured).
   */
  grantingPolicies(identityId: string, serviceId: string, type: PolicyType): string[] {
    const identity = this.identities.get(identityId)
    const service = this.services.get(serviceId)
    if (identity === undefined || service === undefined) return []
    const out: string[] = []
    for (const pid of this.spByIdentity[type].candidates(identity)) {
      if (this.grants(pid, identity, service)) out.push(pid)
    }
    return out
  }

  /**
   * Router ids the identity may use (edge router policies; disabled routers excluded; a disabled
   * or unknown identity gets an empty set). With `includeDisabled`, disabled routers and a
   * disabled identity's routers are included (for diagnostics).
   */
  routersForIdentity(identityId: string, options: { includeDisabled?: boolean } = {}): Set<string> {
    const out = new Set<string>()
    const identity = this.identities.get(identityId)
    if (identity === undefined || (identity.disabled && options.includeDisabled !== true)) return out
    for (const pid of this.erpByIdentity.candidates(identity)) {
      const p = this.erps.get(pid)
      if (p !== undefined && compiledMatches(p.identity, identity)) this.routers.selectInto(p.router, out)
    }
    if (options.includeDisabled !== true) this.dropDisabledRouters(out)
    return out
  }

  /** Router ids the service may be reached through (service edge router policies; disabled routers excluded). */
  routersForService(serviceId: string, options: { includeDisabled?: boolean } = {}): Set<string> {
    const out = new Set<string>()
    const service = this.services.get(serviceId)
    if (service === undefined) return out
    for (const pid of this.serpByService.candidates(service)) {
      const p = this.serps.get(pid)
      if (p !== undefined && compiledMatches(p.service, service)) this.routers.selectInto(p.router, out)
    }
    if (options.includeDisabled !== true) this.dropDisabledRouters(out)
    return out
  }

  /** Enabled routers through which the identity may reach the service (ERP ∩ SERP): `ClientService.edgeRouterIds`. */
  routersFor(identityId: string, serviceId: string): Set<string> {
    const mine = this.routersForIdentity(identityId)
    if (mine.size === 0) return mine
    const theirs = this.routersForService(serviceId)
    const out = new Set<string>()
    for (const r of mine) if (theirs.has(r)) out.add(r)
    return out
  }

  /** Full dial/bind check at one router: identity enabled, service policy, ERP, SERP (order in the file header). */
  authorize(identityId: string, serviceId: string, type: PolicyType, routerId: string): AuthzResult {
    const identity = this.identities.get(identityId)
    if (identity === undefined) {
      return deny('ERR_IDENTITY_NOT_FOUND', fixes.identityNotFound(identityId))
    }
    if (identity.disabled) return deny('ERR_IDENTITY_DISABLED', fixes.identityDisabled(identity.name))
    const service = this.services.get(serviceId)
    if (service === undefined) return deny('ERR_SERVICE_NOT_FOUND', fixes.serviceNotFound(serviceId))
    if (!this.hasGrant(identity, service, type)) {
      return deny(
        type === 'Dial' ? 'ERR_NO_DIAL_PERMISSION' : 'ERR_NO_BIND_PERMISSION',
        fixes.noPermission(
          identity.name,
          service.name,
          type,
          this.suggestPolicyName(service.name, identity.name, type),
        ),
      )
    }
    const router = this.routers.get(routerId)
    if (router === undefined) return deny('ERR_ROUTER_NOT_FOUND', fixes.routerNotFound(routerId))
    if (router.disabled) return deny('ERR_ROUTER_DISABLED', fixes.routerDisabled(router.name))
    if (!this.identityMayUse(identity, router)) {
      return deny(
        'ERR_NO_EDGE_ROUTER_POLICY',
        fixes.noEdgeRouterPolicy(identity.name, service.name, router.name),
      )
    }
    if (!this.serviceMayUse(service, router)) {
      return deny(
        'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
        fixes.noServiceEdgeRouterPolicy(identity.name, service.name, router.name),
      )
    }
    return { ok: true }
  }

  /** The service's terminators (copies), in no particular order; empty for an unknown service. */
  terminatorsFor(serviceId: string): Terminator[] {
    const m = this.terminatorsByService.get(serviceId)
    return m === undefined ? [] : [...m.values()].map((t) => ({ ...t }))
  }

  terminator(id: string): Terminator | undefined {
    const t = this.terminators.get(id)
    return t === undefined ? undefined : { ...t }
  }

  /**
   * Ids of identities / services / routers a role list selects (for "role matches nothing"
   * warnings), in no particular order.
   * @throws ProtocolError `ERR_POLICY_ROLE` on a malformed role.
   */
  matchIdentities(roles: Role[], semantic: Semantic): string[] {
    return this.match('identity', roles, semantic)
  }
  matchServices(roles: Role[], semantic: Semantic): string[] {
    return this.match('service', roles, semantic)
  }
  matchRouters(roles: Role[], semantic: Semantic): string[] {
    return this.match('router', roles, semantic)
  }

  /**
   * The policy-advisor report for one identity and one service (ids; names are accepted too).
   * Findings say what is missing, which policy is mistaken and the command that fixes it.
   */
  explain(identityId: string, serviceId: string): AdvisorReport {
    return explainAccess(this, identityId, serviceId)
  }

  /** A policy name for a suggested `create service-policy` command that no policy uses yet. */
  suggestPolicyName(serviceName: string, identityName: string, type: PolicyType): string {
    const suffix = type.toLowerCase()
    const first = `${serviceName}.${suffix}`
    if (!this.policyNameTaken(first)) return first
    return `${identityName}.${serviceName}.${suffix}`
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Adds to `impact` the identities whose answers depend on the changed entity, in the current data. */
  private collectImpact(change: DataChange, impact: PolicyImpact): void {
    if (impact.all) return
    const id = change.op === 'delete' ? change.id : change.data.id
    switch (change.entity) {
      case 'identity':
        impact.add(id)
        return
      case 'service':
        this.impactOfService(id, impact)
        return
      case 'router': {
        // edgeRouterIds ⊆ routersForIdentity, so only identities whose ERPs select the router.
        const router = this.routers.get(id)
        if (router === undefined) return
        for (const p of this.erps.values()) {
          if (compiledMatches(p.router, router)) this.impactOfRoles(p.identity, impact)
        }
        return
      }
      case 'servicePolicy': {
        const p = this.sps.get(id)
        if (p !== undefined) this.impactOfRoles(p.identity, impact)
        return
      }
      case 'edgeRouterPolicy': {
        const p = this.erps.get(id)
        if (p !== undefined) this.impactOfRoles(p.identity, impact)
        return
      }
      case 'serviceEdgeRouterPolicy': {
        const p = this.serps.get(id)
        if (p === undefined) return
        const services = p.service.all ? undefined : this.services.select(p.service)
        if (services === undefined || services.size > IMPACT_MAX_SERVICES) impact.markAll()
        else for (const sid of services) this.impactOfService(sid, impact)
        return
      }
      case 'terminator':
        return
    }
  }

  /** Identities that may Dial or Bind the service. */
  private impactOfService(serviceId: string, impact: PolicyImpact): void {
    const service = this.services.get(serviceId)
    if (service === undefined) return
    for (const type of ['Dial', 'Bind'] as const) {
      for (const pid of this.spByService[type].candidates(service)) {
        if (impact.all) return
        const p = this.sps.get(pid)
        if (p !== undefined && compiledMatches(p.service, service)) this.impactOfRoles(p.identity, impact)
      }
    }
  }

  private impactOfRoles(c: CompiledRoles, impact: PolicyImpact): void {
    if (impact.all) return
    if (c.all) impact.markAll()
    else this.identities.selectInto(c, impact.identities)
  }

  private policyNameTaken(name: string): boolean {
    return (this.spNames.get(name) ?? 0) > 0
  }

  private table(
    kind: 'identity' | 'service' | 'router',
  ): EntityTable<PolicyIdentity | PolicyService | PolicyRouter> {
    if (kind === 'identity') return this.identities
    return kind === 'service' ? this.services : this.routers
  }

  private match(kind: 'identity' | 'service' | 'router', roles: Role[], semantic: Semantic): string[] {
    parseRoles(roles)
    return [...this.table(kind).select(compileRoles(roles, semantic))]
  }

  private grants(pid: string, identity: PolicyIdentity, service: PolicyService): boolean {
    const p = this.sps.get(pid)
    if (p === undefined) return false
    if (!compiledMatches(p.identity, identity) || !compiledMatches(p.service, service)) return false
    return this.postureSatisfied(p, identity, service)
  }

  /**
   * The posture-check seam. Posture checks are not evaluated yet: a policy with
   * postureCheckRoles grants like any other unless `PolicyIndexOptions.postureCheck` says no.
   */
  private postureSatisfied(
    p: CompiledServicePolicy,
    identity: PolicyIdentity,
    service: PolicyService,
  ): boolean {
    if (this.postureCheck === undefined || p.raw.postureCheckRoles.length === 0) return true
    return this.postureCheck({ policy: p.raw, identity, service })
  }

  private hasGrant(identity: PolicyIdentity, service: PolicyService, type: PolicyType): boolean {
    return this.spByIdentity[type].forEachCandidate(identity, (pid) => this.grants(pid, identity, service))
  }

  private identityMayUse(identity: RoleSubject, router: RoleSubject): boolean {
    return this.erpByIdentity.forEachCandidate(identity, (pid) => {
      const p = this.erps.get(pid)
      return p !== undefined && compiledMatches(p.identity, identity) && compiledMatches(p.router, router)
    })
  }

  private serviceMayUse(service: RoleSubject, router: RoleSubject): boolean {
    return this.serpByService.forEachCandidate(service, (pid) => {
      const p = this.serps.get(pid)
      return p !== undefined && compiledMatches(p.service, service) && compiledMatches(p.router, router)
    })
  }

  private dropDisabledRouters(set: Set<string>): void {
    for (const id of set) if (this.routers.get(id)?.disabled === true) set.delete(id)
  }

  private clear(): void {
    this.identities.clear()
    this.services.clear()
    this.routers.clear()
    this.sps.clear()
    this.spNames.clear()
    this.erps.clear()
    this.serps.clear()
    for (const t of ['Dial', 'Bind'] as const) {
      this.spByIdentity[t].clear()
      this.spByService[t].clear()
    }
    this.erpByIdentity.clear()
    this.serpByService.clear()
    this.terminators.clear()
    this.terminatorsByService.clear()
    this.version = 0
  }

  private upsertServicePolicy(p: ServicePolicy): void {
    this.deleteServicePolicy(p.id)
    const c = compileServicePolicy(p)
    this.spNames.set(c.raw.name, (this.spNames.get(c.raw.name) ?? 0) + 1)
    const type: PolicyType = c.raw.type === 'Bind' ? 'Bind' : 'Dial'
    if (c.raw.type !== 'Bind' && c.raw.type !== 'Dial') {
      // Unknown type: keep it (for snapshots and the advisor) but index it nowhere: it grants nothing.
      this.sps.set(c.raw.id, c)
      return
    }
    this.sps.set(c.raw.id, c)
    this.spByIdentity[type].add(c.raw.id, c.identity)
    this.spByService[type].add(c.raw.id, c.service)
  }

  private deleteServicePolicy(id: string): void {
    const old = this.sps.get(id)
    if (old === undefined) return
    this.sps.delete(id)
    const n = (this.spNames.get(old.raw.name) ?? 1) - 1
    if (n > 0) this.spNames.set(old.raw.name, n)
    else this.spNames.delete(old.raw.name)
    for (const t of ['Dial', 'Bind'] as const) {
      this.spByIdentity[t].remove(id, old.identity)
      this.spByService[t].remove(id, old.service)
    }
  }

  private upsertEdgeRouterPolicy(p: EdgeRouterPolicy): void {
    this.deleteEdgeRouterPolicy(p.id)
    const c = compileEdgeRouterPolicy(p)
    this.erps.set(c.raw.id, c)
    this.erpByIdentity.add(c.raw.id, c.identity)
  }

  private deleteEdgeRouterPolicy(id: string): void {
    const old = this.erps.get(id)
    if (old === undefined) return
    this.erps.delete(id)
    this.erpByIdentity.remove(id, old.identity)
  }

  private upsertServiceEdgeRouterPolicy(p: ServiceEdgeRouterPolicy): void {
    this.deleteServiceEdgeRouterPolicy(p.id)
    const c = compileServiceEdgeRouterPolicy(p)
    this.serps.set(c.raw.id, c)
    this.serpByService.add(c.raw.id, c.service)
  }

  private deleteServiceEdgeRouterPolicy(id: string): void {
    const old = this.serps.get(id)
    if (old === undefined) return
    this.serps.delete(id)
    this.serpByService.remove(id, old.service)
  }

  private upsertTerminator(t: Terminator): void {
    this.deleteTerminator(t.id)
    const copy = { ...t }
    this.terminators.set(copy.id, copy)
    let m = this.terminatorsByService.get(copy.serviceId)
    if (m === undefined) {
      m = new Map()
      this.terminatorsByService.set(copy.serviceId, m)
    }
    m.set(copy.id, copy)
  }

  private deleteTerminator(id: string): void {
    const old = this.terminators.get(id)
    if (old === undefined) return
    this.terminators.delete(id)
    const m = this.terminatorsByService.get(old.serviceId)
    if (m === undefined) return
    m.delete(id)
    if (m.size === 0) this.terminatorsByService.delete(old.serviceId)
  }
}

function deny(code: AuthzDenyCode, message: string): AuthzResult {
  return { ok: false, code, message }
}
