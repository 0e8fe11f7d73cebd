/**
 * The policy advisor: explains, for one identity and one service, what grants access, what is
 * missing, which policies are mistaken, and the command that fixes each gap.
 *
 * Beyond "no policy", it catches the mistakes people make in practice (OpenZiti's own tutorials
 * have them): a policy whose service roles name no service (`@python.django` where python.django
 * is an identity), identity roles with an attribute no identity has (`#family.tools.servers`
 * while the host has `python.django.servers`), a policy that selects one side of the pair but not
 * the other, no edge router policy, no service edge router policy, no router in common, disabled
 * routers, and a service with no terminators (nobody hosts it: "no terminators").
 *
 * Only policies relevant to the pair are reported: those selecting the identity or the service,
 * and broken ones that mention either (by id or name in a role, an attribute starting with the
 * service or identity name, or the policy name containing either name).
 */
import type { PolicyIdentity, PolicyService, PolicyType, Role, ServicePolicy } from '../model.js'
import { commands } from './fixes.js'
import type { PolicyIndex } from './policy-index.js'
import type { AdvisorReport } from './policy-index-types.js'
import { type CompiledRoles, compiledMatches, compileRoles } from './roles.js'

type Kind = 'identity' | 'service' | 'router'

const MAX_LISTED = 5
/** Policies reported per type, at most. */
const MAX_POLICIES = 10

function listNames(names: string[]): string {
  if (names.length <= MAX_LISTED) return names.join(', ')
  return `${names.slice(0, MAX_LISTED).join(', ')} and ${names.length - MAX_LISTED} more`
}

export function explainAccess(index: PolicyIndex, identityRef: string, serviceRef: string): AdvisorReport {
  const identity = index.identity(identityRef) ?? index.identityByName(identityRef)
  const service = index.service(serviceRef) ?? index.serviceByName(serviceRef)
  const report: AdvisorReport = {
    identity: identity === undefined ? null : { id: identity.id, name: identity.name },
    service: service === undefined ? null : { id: service.id, name: service.name },
    dialPolicies: [],
    bindPolicies: [],
    identityRouters: [],
    serviceRouters: [],
    commonRouters: [],
    canDial: false,
    canBind: false,
    findings: [],
  }
  const findings = report.findings
  if (identity === undefined) {
    findings.push(`no identity has id or name ${identityRef}: check with \`${commands.list('identities')}\``)
  }
  if (service === undefined) {
    findings.push(`no service has id or name ${serviceRef}: check with \`${commands.list('services')}\``)
  }
  if (identity === undefined || service === undefined) return report

  const advisor = new Advisor(index, identity, service)
  if (identity.disabled) {
    findings.push(
      `identity ${identity.name} is disabled: it may dial and bind nothing; enable it with \`${commands.enableIdentity(identity.name)}\``,
    )
  }

  const policyName = (id: string): string => index.servicePolicy(id)?.name ?? id
  report.dialPolicies = index.grantingPolicies(identity.id, service.id, 'Dial').map(policyName).sort()
  report.bindPolicies = index.grantingPolicies(identity.id, service.id, 'Bind').map(policyName).sort()

  const routerName = (id: string): string => index.router(id)?.name ?? id
  const idAll = index.routersForIdentity(identity.id, { includeDisabled: true })
  const svcAll = index.routersForService(service.id, { includeDisabled: true })
  const enabled = (ids: Set<string>): string[] =>
    [...ids].filter((id) => index.router(id)?.disabled === false)
  const idRouters = enabled(idAll)
  const svcRouters = enabled(svcAll)
  const svcSet = new Set(svcRouters)
  const common = idRouters.filter((id) => svcSet.has(id))
  report.identityRouters = idRouters.map(routerName).sort()
  report.serviceRouters = svcRouters.map(routerName).sort()
  report.commonRouters = common
    .map((id) => ({ id, name: routerName(id) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  report.canDial = !identity.disabled && report.dialPolicies.length > 0 && common.length > 0
  report.canBind = !identity.disabled && report.bindPolicies.length > 0 && common.length > 0

  // Service policies.
  const hasDial = report.dialPolicies.length > 0
  const hasBind = report.bindPolicies.length > 0
  for (const type of ['Dial', 'Bind'] as const) {
    const granted = type === 'Dial' ? hasDial : hasBind
    if (granted) continue
    // An identity that dials the service needs no Bind policy: not a gap (the report's canBind /
    // bindPolicies still say it may not host it).
    if (type === 'Bind' && hasDial) continue
    const other = type === 'Dial' ? hasBind : hasDial
    const name = index.suggestPolicyName(service.name, identity.name, type)
    const create = commands.createServicePolicy(name, type, [`@${service.name}`], [`@${identity.name}`])
    const why = type === 'Dial' && other ? ' (needed only to connect to it)' : ''
    findings.push(
      `identity ${identity.name} has no ${type} policy for service ${service.name}${why}: create one with \`${create}\``,
    )
    findings.push(...advisor.policyFindings(type))
  }

  // Edge routers.
  findings.push(...advisor.routerFindings(idAll, svcAll, idRouters, svcRouters, common))

  // Terminators: only interesting to someone who may dial.
  if (hasDial) findings.push(...advisor.terminatorFindings())
  return report
}

class Advisor {
  constructor(
    private readonly index: PolicyIndex,
    private readonly identity: PolicyIdentity,
    private readonly service: PolicyService,
  ) {}

  /** Findings about the policies of one type that concern the pair but do not grant. */
  policyFindings(type: PolicyType): string[] {
    const out: string[] = []
    const { identity, service } = this
    let reported = 0
    let skipped = 0
    for (const p of this.index.servicePolicyList()) {
      if (p.type !== type) continue
      const ic = compileRoles(p.identityRoles, p.semantic)
      const sc = compileRoles(p.serviceRoles, p.semantic)
      const selI = compiledMatches(ic, identity)
      const selS = compiledMatches(sc, service)
      if (selI && selS) {
        // Selects both but did not grant: withheld by the posture-check seam.
        out.push(
          `${type} policy ${p.name} selects identity ${identity.name} and service ${service.name} but its posture checks (${p.postureCheckRoles.join(', ')}) are not satisfied`,
        )
        continue
      }
      // Relevance (cheap tests first; most policies concern neither side):
      // - it selects the service but not the identity: always (a near miss: what the identity lacks);
      // - it selects the identity but not the service: when its service side is broken or it
      //   mentions the pair (an identity is selected by many policies about other services);
      // - it selects neither: when it mentions the pair and one side selects nothing.
      const mentions = this.mentionsPair(p)
      if (!selI && !selS && !mentions) continue
      const iEmpty = !selI && !this.index.selectsAnything('identity', p.identityRoles, p.semantic)
      const sEmpty = !selS && !this.index.selectsAnything('service', p.serviceRoles, p.semantic)
      if (selI && !sEmpty && !mentions) continue
      if (!selI && !selS && !iEmpty && !sEmpty) continue
      if (++reported > MAX_POLICIES) {
        skipped++
        continue
      }
      if (!selI) out.push(this.sideFinding(p, 'identity', ic, iEmpty, selS))
      if (!selS) out.push(this.sideFinding(p, 'service', sc, sEmpty, selI))
    }
    if (skipped > 0) out.push(`... and ${skipped} more ${type} policies like these`)
    return out
  }

  /** One line about one side of a policy that does not select the asked entity, with its fix. */
  private sideFinding(
    p: ServicePolicy,
    kind: 'identity' | 'service',
    c: CompiledRoles,
    empty: boolean,
    otherSelected: boolean,
  ): string {
    const entity = kind === 'identity' ? this.identity : this.service
    const other = kind === 'identity' ? this.service : this.identity
    const otherKind = kind === 'identity' ? 'service' : 'identity'
    const roles = kind === 'identity' ? p.identityRoles : p.serviceRoles
    const flag = kind === 'identity' ? '--identity-roles' : '--service-roles'
    const policy = `${p.type} policy ${p.name}`
    const selectsOther = otherSelected ? ` selects ${otherKind} ${other.name} but` : ''
    let what: string
    if (empty) {
      const no = otherSelected ? `no ${kind}` : `selects no ${kind}`
      what = `${policy}${selectsOther} ${no}: ${this.whyEmpty(kind, c, roles).join('; ')}`
    } else {
      const shown = roles.map((r) => this.display(r)).join(',')
      what = `${policy}${selectsOther} ${otherSelected ? 'not' : 'does not select'} ${kind} ${entity.name} (its ${flag.slice(2)}: ${shown})`
    }
    const have = entity.roleAttributes
    if (empty && c.attrs.length > 0) {
      what +=
        have.length > 0
          ? `; ${kind} ${entity.name} has ${have.map((a) => `#${a}`).join(', ')}`
          : `; ${kind} ${entity.name} has no attributes`
    }
    // Fixes: give the entity the missing attribute(s), or name it in the policy.
    const fixesList: string[] = []
    const missing = c.attrs.filter((a) => !have.includes(a))
    if (!c.all && missing.length > 0 && c.invalid.length === 0) {
      const add = c.semantic === 'AnyOf' ? [missing[0]!] : missing
      const attrs = [...have, ...add]
      fixesList.push(
        kind === 'identity'
          ? commands.updateIdentityAttributes(entity.name, attrs)
          : commands.updateServiceAttributes(entity.name, attrs),
      )
    }
    const kept = roles.filter((r) => this.keepRole(kind, r)).map((r) => this.display(r))
    const newRoles = [...kept, `@${entity.name}`]
    fixesList.push(
      kind === 'identity'
        ? commands.updateServicePolicyIdentityRoles(p.name, newRoles)
        : commands.updateServicePolicyServiceRoles(p.name, newRoles),
    )
    const verb = p.type === 'Dial' ? 'dial' : 'host'
    const goal =
      kind === 'identity'
        ? `to let ${entity.name} ${verb} ${other.name} through it`
        : `to make it cover ${entity.name}`
    return `${what}: ${goal}, run ${fixesList.map((f) => `\`${f}\``).join(' or ')}`
  }

  /**
   * Keep a role in a suggested replacement list unless it is a dangling `@id` or malformed.
   * Attribute roles are always kept: dropping one from an AllOf list would widen the policy.
   */
  private keepRole(kind: Kind, role: Role): boolean {
    const c = compileRoles([role], 'AnyOf')
    if (c.invalid.length > 0) return false
    if (c.ids.length > 0) return this.exists(kind, c.ids[0]!)
    return true
  }

  /** Why a role list selects no entity of its kind, role by role. */
  private whyEmpty(kind: Kind, c: CompiledRoles, roles: readonly Role[]): string[] {
    const out: string[] = []
    if (roles.length === 0) return [`it has no ${kind} roles`]
    for (const bad of c.invalid) out.push(`${JSON.stringify(bad)} is not a valid role`)
    for (const id of c.ids) {
      if (this.exists(kind, id)) continue
      out.push(`@${id} names no ${kind}${this.crossKindHint(kind, id)}`)
    }
    const absent = c.attrs.filter((a) => this.index.attributeCount(kind, a) === 0)
    for (const a of absent) out.push(`no ${kind} has attribute ${a}`)
    if (c.semantic === 'AllOf' && absent.length === 0 && c.attrs.length > 1 && c.invalid.length === 0) {
      out.push(`no ${kind} has all of ${c.attrs.map((a) => `#${a}`).join(', ')} (AllOf)`)
    }
    if (out.length === 0) out.push(`no ${kind} matches ${roles.join(',')}`)
    return out
  }

  private exists(kind: Kind, id: string): boolean {
    if (kind === 'identity') return this.index.identity(id) !== undefined
    if (kind === 'service') return this.index.service(id) !== undefined
    return this.index.router(id) !== undefined
  }

  /** For a dangling `@x`: is x a name (roles need ids), or an entity of another kind? */
  private crossKindHint(kind: Kind, x: string): string {
    const sameByName =
      kind === 'identity'
        ? this.index.identityByName(x)
        : kind === 'service'
          ? this.index.serviceByName(x)
          : this.index.routerByName(x)
    if (sameByName !== undefined) {
      return ` (${x} is the name of a ${kind}, but roles hold ids: re-save the policy so the controller resolves @${x})`
    }
    const hits: string[] = []
    if (kind !== 'identity' && (this.index.identity(x) ?? this.index.identityByName(x)) !== undefined)
      hits.push('an identity')
    if (kind !== 'service' && (this.index.service(x) ?? this.index.serviceByName(x)) !== undefined)
      hits.push('a service')
    if (kind !== 'router' && (this.index.router(x) ?? this.index.routerByName(x)) !== undefined)
      hits.push('an edge router')
    return hits.length > 0 ? ` (${x} is ${hits.join(' and ')}, not a ${kind})` : ''
  }

  /** `@id` shown as `@name` when the id resolves (the CLI accepts names). */
  private display(role: Role): string {
    if (!role.startsWith('@')) return role
    const id = role.slice(1)
    const e = this.index.identity(id) ?? this.index.service(id) ?? this.index.router(id)
    return e === undefined ? role : `@${e.name}`
  }

  /** Does a policy mention the identity or the service (a likely mistaken policy for this pair)? */
  private mentionsPair(p: ServicePolicy): boolean {
    const { identity, service } = this
    const names = [identity.id, identity.name, service.id, service.name]
    if (p.name.includes(service.name) || p.name.includes(identity.name)) return true
    for (const r of [...p.identityRoles, ...p.serviceRoles]) {
      const v = r.slice(1)
      if (names.includes(v)) return true
      if (r.startsWith('#') && (v.startsWith(`${service.name}.`) || v.startsWith(`${identity.name}.`)))
        return true
    }
    return false
  }

  /** Why the identity (or service) gets no router: no policy selects it, or those that do select no router. */
  private emptyRouterPolicies(kind: 'identity' | 'service'): string {
    const broken: string[] = []
    if (kind === 'identity') {
      for (const p of this.index.edgeRouterPolicyList()) {
        if (!compiledMatches(compileRoles(p.identityRoles, p.semantic), this.identity)) continue
        const why = this.whyEmpty('router', compileRoles(p.edgeRouterRoles, p.semantic), p.edgeRouterRoles)
        broken.push(`edge router policy ${p.name} selects it but no edge router (${why.join('; ')})`)
      }
      return broken.length > 0 ? listNames(broken) : 'no edge router policy selects it'
    }
    for (const p of this.index.serviceEdgeRouterPolicyList()) {
      if (!compiledMatches(compileRoles(p.serviceRoles, p.semantic), this.service)) continue
      const why = this.whyEmpty('router', compileRoles(p.edgeRouterRoles, p.semantic), p.edgeRouterRoles)
      broken.push(`service edge router policy ${p.name} selects it but no edge router (${why.join('; ')})`)
    }
    return broken.length > 0 ? listNames(broken) : 'no service edge router policy selects it'
  }

  routerFindings(
    idAll: Set<string>,
    svcAll: Set<string>,
    idRouters: string[],
    svcRouters: string[],
    common: string[],
  ): string[] {
    const out: string[] = []
    const { identity, service, index } = this
    const name = (id: string): string => index.router(id)?.name ?? id
    const disabledNames = (ids: Set<string>): string[] =>
      [...ids]
        .filter((id) => index.router(id)?.disabled === true)
        .map(name)
        .sort()
    if (idAll.size === 0) {
      out.push(
        `identity ${identity.name} may use no edge router: ${this.emptyRouterPolicies('identity')}: create one with \`${commands.createEdgeRouterPolicy(`${identity.name}.routers`, [`@${identity.name}`], ['#all'])}\``,
      )
    } else if (idRouters.length === 0) {
      const d = disabledNames(idAll)
      out.push(
        `every edge router identity ${identity.name} may use is disabled (${listNames(d)}): enable one with \`${commands.enableRouter(d[0]!)}\``,
      )
    }
    if (svcAll.size === 0) {
      out.push(
        `service ${service.name} may be reached through no edge router: ${this.emptyRouterPolicies('service')}: create one with \`${commands.createServiceEdgeRouterPolicy(`${service.name}.routers`, [`@${service.name}`], ['#all'])}\``,
      )
    } else if (svcRouters.length === 0) {
      const d = disabledNames(svcAll)
      out.push(
        `every edge router service ${service.name} may use is disabled (${listNames(d)}): enable one with \`${commands.enableRouter(d[0]!)}\``,
      )
    }
    if (idRouters.length > 0 && svcRouters.length > 0 && common.length === 0) {
      const a = idRouters.map(name).sort()
      const b = svcRouters.map(name).sort()
      out.push(
        `identity ${identity.name} may use edge routers ${listNames(a)} and service ${service.name} edge routers ${listNames(b)}: none in common; give the identity one of the service's with \`${commands.createEdgeRouterPolicy(`${identity.name}.routers`, [`@${identity.name}`], [`@${b[0]!}`])}\` or the service one of the identity's with \`${commands.createServiceEdgeRouterPolicy(`${service.name}.routers`, [`@${service.name}`], [`@${a[0]!}`])}\``,
      )
    }
    return out
  }

  terminatorFindings(): string[] {
    const { index, service } = this
    const terms = index.terminatorsFor(service.id)
    if (terms.length === 0) {
      const hosts = [...index.identitiesFor(service.id, 'Bind')]
        .map((id) => index.identity(id)?.name ?? id)
        .sort()
      const who =
        hosts.length > 0
          ? `start the hosting app or tunneler of an identity with a Bind policy for it (${listNames(hosts)})`
          : `no identity may bind it yet: create a Bind policy with \`${commands.createServicePolicy(index.suggestPolicyName(service.name, 'host', 'Bind'), 'Bind', [`@${service.name}`], ['@HOST-IDENTITY'])}\`, then start the host`
      return [`service ${service.name} has no terminators (nothing hosts it, dials will fail): ${who}`]
    }
    const usable = terms.filter((t) => index.router(t.routerId)?.disabled === false)
    if (usable.length === 0) {
      return [
        `every terminator of service ${service.name} is on a disabled or deleted edge router: enable the router or restart the host so it binds through another one (\`${commands.list('terminators')}\`)`,
      ]
    }
    return []
  }
}
