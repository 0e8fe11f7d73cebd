// Builders for policy-engine tests (not a test file itself).
import type {
  EdgeRouterPolicy,
  PolicyIdentity,
  PolicyRouter,
  PolicyService,
  PolicySnapshot,
  PolicyType,
  Semantic,
  ServiceEdgeRouterPolicy,
  ServicePolicy,
  Terminator,
} from '../src/index.js'

const T = '2026-01-01T00:00:00.000Z'

export function ident(id: string, attrs: string[] = [], disabled = false, name = id): PolicyIdentity {
  return { id, name, roleAttributes: attrs, disabled }
}

export function svc(id: string, attrs: string[] = [], name = id): PolicyService {
  return { id, name, roleAttributes: attrs, encryptionRequired: true, terminatorStrategy: 'smartrouting' }
}

export function rtr(id: string, attrs: string[] = [], disabled = false, name = id): PolicyRouter {
  return { id, name, roleAttributes: attrs, disabled, advertise: `${id}.example:3022`, cost: 0 }
}

export function sp(
  id: string,
  type: PolicyType,
  identityRoles: string[],
  serviceRoles: string[],
  semantic: Semantic = 'AnyOf',
  name = id,
): ServicePolicy {
  return {
    id,
    name,
    type,
    semantic,
    identityRoles,
    serviceRoles,
    postureCheckRoles: [],
    createdAt: T,
    updatedAt: T,
  }
}

export function erp(
  id: string,
  identityRoles: string[],
  edgeRouterRoles: string[],
  semantic: Semantic = 'AnyOf',
): EdgeRouterPolicy {
  return { id, name: id, semantic, identityRoles, edgeRouterRoles, createdAt: T, updatedAt: T }
}

export function serp(
  id: string,
  serviceRoles: string[],
  edgeRouterRoles: string[],
  semantic: Semantic = 'AnyOf',
): ServiceEdgeRouterPolicy {
  return { id, name: id, semantic, serviceRoles, edgeRouterRoles, createdAt: T, updatedAt: T }
}

export function term(
  id: string,
  serviceId: string,
  routerId: string,
  identityId: string,
  cost = 0,
): Terminator {
  return { id, serviceId, routerId, identityId, cost, precedence: 'default', createdAt: T }
}

export function snapshot(parts: Partial<PolicySnapshot> = {}): PolicySnapshot {
  return {
    version: 1,
    identities: [],
    services: [],
    routers: [],
    servicePolicies: [],
    edgeRouterPolicies: [],
    serviceEdgeRouterPolicies: [],
    terminators: [],
    ...parts,
  }
}

/** A deterministic PRNG (mulberry32) so failures reproduce from the printed seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const sorted = (s: Iterable<string>): string[] => [...s].sort()
