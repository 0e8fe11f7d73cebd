/**
 * The shared data model: the JSON shapes that the controller stores and serves, that routers
 * receive as policy data, and that SDKs receive as their service list.
 *
 * Ids are opaque strings (controller-generated, URL-safe, e.g. `id_4Yf...`). Names are unique per
 * entity type. Role attributes are plain strings without the leading `#`.
 */
import type { TerminatorPrecedence, TerminatorStrategyName } from './terminator-options.js'

export type Semantic = 'AnyOf' | 'AllOf'
export type PolicyType = 'Dial' | 'Bind'
export type IdentityType = 'Device' | 'User' | 'Service' | 'Router' | 'Default'

/** A role reference: `#attr`, `@id-or-name`, or `#all`. Stored as written; `@name` is resolved to `@id` by the controller on write. */
export type Role = string

export interface Identity {
  id: string
  name: string
  type: IdentityType
  roleAttributes: string[]
  isAdmin: boolean
  disabled: boolean
  /** Default hosting cost/precedence for its terminators. */
  defaultHostingCost: number
  defaultHostingPrecedence: TerminatorPrecedence
  createdAt: string
  updatedAt: string
}

export interface Service {
  id: string
  name: string
  roleAttributes: string[]
  /** Config ids. */
  configs: string[]
  encryptionRequired: boolean
  terminatorStrategy: TerminatorStrategyName
  maxIdleTimeMillis: number
  createdAt: string
  updatedAt: string
}

export interface ConfigType {
  id: string
  name: string
  /** JSON Schema (draft 2020-12 subset) the configs of this type are validated against. */
  schema: Record<string, unknown>
  createdAt: string
  updatedAt: string
}

export interface Config {
  id: string
  name: string
  configTypeId: string
  data: Record<string, unknown>
  createdAt: string
  updatedAt: string
}

export interface ServicePolicy {
  id: string
  name: string
  type: PolicyType
  semantic: Semantic
  identityRoles: Role[]
  serviceRoles: Role[]
  postureCheckRoles: Role[]
  createdAt: string
  updatedAt: string
}

export interface EdgeRouter {
  id: string
  name: string
  roleAttributes: string[]
  disabled: boolean
  /** `host:port` the router advertises for SDK and link connections (TLS). Null until it first connects. */
  advertise: string | null
  isOnline: boolean
  /** Static link cost added to measured latency when routing. */
  cost: number
  createdAt: string
  updatedAt: string
}

export interface EdgeRouterPolicy {
  id: string
  name: string
  semantic: Semantic
  identityRoles: Role[]
  edgeRouterRoles: Role[]
  createdAt: string
  updatedAt: string
}

export interface ServiceEdgeRouterPolicy {
  id: string
  name: string
  semantic: Semantic
  serviceRoles: Role[]
  edgeRouterRoles: Role[]
  createdAt: string
  updatedAt: string
}

export interface Terminator {
  id: string
  serviceId: string
  routerId: string
  identityId: string
  cost: number
  precedence: TerminatorPrecedence
  createdAt: string
}

/** intercept.v1 config data (the fields OpenZiti users know). */
export interface InterceptV1 {
  protocols: Array<'tcp' | 'udp'>
  addresses: string[]
  portRanges: Array<{ low: number; high: number }>
  dialOptions?: { identity?: string; connectTimeoutSeconds?: number }
  sourceIp?: string
}

/** host.v1 config data. */
export interface HostV1 {
  protocol?: 'tcp' | 'udp'
  forwardProtocol?: boolean
  allowedProtocols?: Array<'tcp' | 'udp'>
  address?: string
  forwardAddress?: boolean
  allowedAddresses?: string[]
  port?: number
  forwardPort?: boolean
  allowedPortRanges?: Array<{ low: number; high: number }>
  allowedSourceAddresses?: string[]
  listenOptions?: {
    cost?: number
    precedence?: TerminatorPrecedence
    maxConnections?: number
    identity?: string
    bindUsingEdgeIdentity?: boolean
    connectTimeout?: string
    connectTimeoutSeconds?: number
  }
}

/**
 * The policy data a router needs to authorize dials and binds locally. Identities and routers
 * carry only what policy evaluation needs. Sent as a snapshot, then kept current by `DataChange`s.
 */
export interface PolicyIdentity {
  id: string
  name: string
  roleAttributes: string[]
  disabled: boolean
  /**
   * SHA-256 fingerprints (lower-case hex of the DER) of the identity's currently valid
   * certificates. A router refuses a TLS peer whose certificate is not listed (revoked by
   * re-enrollment or deletion). Absent: not known (policy-only uses such as tests).
   */
  certFingerprints?: string[]
}
export interface PolicyService {
  id: string
  name: string
  roleAttributes: string[]
  encryptionRequired: boolean
  terminatorStrategy: Service['terminatorStrategy']
}
export interface PolicyRouter {
  id: string
  name: string
  roleAttributes: string[]
  disabled: boolean
  advertise: string | null
  cost: number
  /** As for identities: the router's currently valid certificates. */
  certFingerprints?: string[]
}

export interface PolicySnapshot {
  /** Monotonic version; every change increments it. */
  version: number
  identities: PolicyIdentity[]
  services: PolicyService[]
  routers: PolicyRouter[]
  servicePolicies: ServicePolicy[]
  edgeRouterPolicies: EdgeRouterPolicy[]
  serviceEdgeRouterPolicies: ServiceEdgeRouterPolicy[]
  terminators: Terminator[]
}

export type DataEntity =
  | { entity: 'identity'; data: PolicyIdentity }
  | { entity: 'service'; data: PolicyService }
  | { entity: 'router'; data: PolicyRouter }
  | { entity: 'servicePolicy'; data: ServicePolicy }
  | { entity: 'edgeRouterPolicy'; data: EdgeRouterPolicy }
  | { entity: 'serviceEdgeRouterPolicy'; data: ServiceEdgeRouterPolicy }
  | { entity: 'terminator'; data: Terminator }

export type DataEntityName = DataEntity['entity']

/** One change to the policy data. `upsert` replaces the whole entity. */
export type DataChange =
  | ({ op: 'upsert'; version: number } & DataEntity)
  | { op: 'delete'; version: number; entity: DataEntityName; id: string }

/** Next hop per destination router, computed by the controller from measured link latency. */
export interface RouteTable {
  version: number
  /** destination router id -> next-hop router id (equal to the destination for a direct link). */
  nextHop: Record<string, string>
  /** destination router id -> path cost (ms + static costs). */
  cost: Record<string, number>
}

/**
 * Events the controller pushes to routers over `GET /fabric/v1/stream` (server-sent events).
 * SSE `event:` is the `type`, `data:` the JSON of the whole object.
 */
export type RouterEvent =
  | { type: 'snapshot'; snapshot: PolicySnapshot }
  | { type: 'change'; changes: DataChange[] }
  | { type: 'routes'; routes: RouteTable }
  | { type: 'ping'; at: string }

/** A service as the client API lists it to an identity (`GET /edge/client/v1/services`). */
export interface ClientService {
  id: string
  name: string
  roleAttributes: string[]
  encryptionRequired: boolean
  permissions: PolicyType[]
  /** Config data by config type name, e.g. `{ "intercept.v1": {...}, "host.v1": {...} }`. */
  config: Record<string, Record<string, unknown>>
  /** Ids of routers through which this identity may reach this service (ERP ∩ SERP). */
  edgeRouterIds: string[]
}

export interface ClientEdgeRouter {
  id: string
  name: string
  /** `host:port` for TLS. */
  advertise: string
  isOnline: boolean
}

/**
 * Events the controller pushes to SDKs over `GET /edge/client/v1/events` (server-sent events).
 * On any `services-changed` the SDK refetches `GET /edge/client/v1/services`.
 */
export type ClientEvent =
  | { type: 'services-changed'; version: number }
  | { type: 'routers-changed'; version: number }
  | { type: 'revoked'; reason: string }
  | { type: 'ping'; at: string }

/** The trust domain is part of every SPIFFE ID the network issues. */
export const DEFAULT_TRUST_DOMAIN = 'nullport'
