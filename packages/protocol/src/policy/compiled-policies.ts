/** Policies compiled for matching: a private copy of the policy with its role lists compiled. */
import type { EdgeRouterPolicy, ServiceEdgeRouterPolicy, ServicePolicy } from '../model.js'
import { type CompiledRoles, compileRoles } from './roles.js'

export interface CompiledServicePolicy {
  raw: ServicePolicy
  identity: CompiledRoles
  service: CompiledRoles
  posture: CompiledRoles
}
export interface CompiledEdgeRouterPolicy {
  raw: EdgeRouterPolicy
  identity: CompiledRoles
  router: CompiledRoles
}
export interface CompiledServiceEdgeRouterPolicy {
  raw: ServiceEdgeRouterPolicy
  service: CompiledRoles
  router: CompiledRoles
}

export function compileServicePolicy(p: ServicePolicy): CompiledServicePolicy {
  const copy: ServicePolicy = {
    ...p,
    identityRoles: [...(p.identityRoles ?? [])],
    serviceRoles: [...(p.serviceRoles ?? [])],
    postureCheckRoles: [...(p.postureCheckRoles ?? [])],
  }
  return {
    raw: copy,
    identity: compileRoles(copy.identityRoles, copy.semantic),
    service: compileRoles(copy.serviceRoles, copy.semantic),
    posture: compileRoles(copy.postureCheckRoles, copy.semantic),
  }
}

export function compileEdgeRouterPolicy(p: EdgeRouterPolicy): CompiledEdgeRouterPolicy {
  const copy: EdgeRouterPolicy = {
    ...p,
    identityRoles: [...(p.identityRoles ?? [])],
    edgeRouterRoles: [...(p.edgeRouterRoles ?? [])],
  }
  return {
    raw: copy,
    identity: compileRoles(copy.identityRoles, copy.semantic),
    router: compileRoles(copy.edgeRouterRoles, copy.semantic),
  }
}

export function compileServiceEdgeRouterPolicy(p: ServiceEdgeRouterPolicy): CompiledServiceEdgeRouterPolicy {
  const copy: ServiceEdgeRouterPolicy = {
    ...p,
    serviceRoles: [...(p.serviceRoles ?? [])],
    edgeRouterRoles: [...(p.edgeRouterRoles ?? [])],
  }
  return {
    raw: copy,
    service: compileRoles(copy.serviceRoles, copy.semantic),
    router: compileRoles(copy.edgeRouterRoles, copy.semantic),
  }
}
