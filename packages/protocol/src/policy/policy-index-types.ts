/** Public types of the policy index: authorization answers, advisor reports, options, stats. */
import type { PolicyIdentity, PolicyService, ServicePolicy } from '../model.js'

export type AuthzDenyCode =
  | 'ERR_IDENTITY_NOT_FOUND'
  | 'ERR_IDENTITY_DISABLED'
  | 'ERR_SERVICE_NOT_FOUND'
  | 'ERR_NO_DIAL_PERMISSION'
  | 'ERR_NO_BIND_PERMISSION'
  | 'ERR_ROUTER_NOT_FOUND'
  | 'ERR_ROUTER_DISABLED'
  | 'ERR_NO_EDGE_ROUTER_POLICY'
  | 'ERR_NO_SERVICE_EDGE_ROUTER_POLICY'

export type AuthzResult = { ok: true } | { ok: false; code: AuthzDenyCode; message: string }

export interface AdvisorReport {
  identity: { id: string; name: string } | null
  service: { id: string; name: string } | null
  /** Policies granting Dial / Bind, by name. */
  dialPolicies: string[]
  bindPolicies: string[]
  /**
   * Names of the enabled routers the identity may use (edge router policies) and the service may
   * use (service edge router policies), and both (`isOnline` is filled in by the controller; the
   * index does not know it).
   */
  identityRouters: string[]
  serviceRouters: string[]
  commonRouters: Array<{ id: string; name: string; isOnline?: boolean }>
  canDial: boolean
  canBind: boolean
  /** Human lines explaining each gap and the command that fixes it. */
  findings: string[]
}

/** Context handed to the posture-check seam. */
export interface PostureContext {
  policy: ServicePolicy
  identity: PolicyIdentity
  service: PolicyService
}

export interface PolicyIndexOptions {
  /**
   * Posture checks (not implemented yet): called for a policy that would grant access and whose
   * `postureCheckRoles` are not empty; return false to withhold its grant. Default: every policy
   * passes. Consulted by `authorize` and `grantingPolicies`; `servicesFor` lists services
   * regardless (as OpenZiti lists them with their posture queries).
   */
  postureCheck?: (ctx: PostureContext) => boolean
}

/** Counts, for logs and metrics. */
export interface PolicyIndexStats {
  version: number
  identities: number
  services: number
  routers: number
  servicePolicies: number
  edgeRouterPolicies: number
  serviceEdgeRouterPolicies: number
  terminators: number
}
