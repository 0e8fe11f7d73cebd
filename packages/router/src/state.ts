/**
 * The state one router shares between its parts (router.ts builds them over it, the way a
 * router environment is handed to each of its parts): who the router is, its limits, logger and
 * controller client, the policy data and routes the controller pushes, the connections and
 * links, the circuit table and the terminators hosted here. Parts read and change it directly;
 * the operations on each concept live in the part that owns it.
 */
import {
  type IdentityFile,
  type PolicyIndex,
  type PolicyRouter,
  PreAuthGuard,
  type RouteTable,
} from '@nullport/protocol'
import type { Logger } from 'pino'
import { CircuitTable } from './circuits/circuit-table.js'
import type { Peer } from './connections/peer.js'
import type { FabricClient } from './control/fabric-client.js'
import type { RouterMetrics } from './metrics.js'
import type { RouterLimits, RouterTestHooks } from './options.js'
import type { LocalTerminator } from './terminators/terminators.js'

export interface RouterStateInit {
  identity: IdentityFile
  log: Logger
  limits: RouterLimits
  hooks: RouterTestHooks | null
  fabric: FabricClient
  metrics: RouterMetrics
}

export class RouterState {
  readonly id: string
  readonly name: string
  readonly trustDomain: string
  readonly log: Logger
  readonly limits: RouterLimits
  readonly hooks: RouterTestHooks | null
  /** The controller's fabric API (requests and the policy stream). */
  readonly fabric: FabricClient
  readonly metrics: RouterMetrics
  /** What accepted connections may hold before TLS and HELLO are done (acceptor, dispatch). */
  readonly preAuth: PreAuthGuard
  /** The identity in use (its cert/key/ca change on renewal). */
  identity: IdentityFile
  /** The policy data; null until the first snapshot. */
  index: PolicyIndex | null = null
  routes: RouteTable = { version: 0, nextHop: {}, cost: {} }
  /** All routers of the policy data (for links), kept from the snapshot and router changes. */
  readonly routerList = new Map<string, PolicyRouter>()
  /** Every TLS connection (SDKs and links, either direction) until it closes. */
  readonly peers = new Set<Peer>()
  /** The link in use to each router, by router id. */
  readonly links = new Map<string, Peer>()
  readonly table = new CircuitTable<Peer>()
  /** Terminators hosted on this router, by id. */
  readonly terminators = new Map<string, LocalTerminator>()
  /** Set by stop(): nothing new starts. */
  stopping = false
  /** True once the first policy snapshot is loaded. */
  isReady = false
  /** Resolves once the first policy snapshot is loaded (`markReady()`). */
  readonly ready: Promise<void>
  private resolveReady!: () => void
  /** `host:port` of the listener, the advertised one, and the metrics endpoint's. */
  address = ''
  advertise = ''
  metricsAddress: string | null = null

  constructor(init: RouterStateInit) {
    this.identity = init.identity
    this.id = init.identity.id
    this.name = init.identity.name
    this.trustDomain = init.identity.trustDomain
    this.log = init.log
    this.limits = init.limits
    this.hooks = init.hooks
    this.fabric = init.fabric
    this.metrics = init.metrics
    this.preAuth = new PreAuthGuard(
      { deadlineMs: init.limits.handshakeTimeoutMs, perAddress: init.limits.maxPreAuthPerAddress },
      (reason, address) => this.log.info({ reason, address }, 'unauthenticated connection dropped'),
    )
    this.ready = new Promise<void>((r) => {
      this.resolveReady = r
    })
  }

  markReady(): void {
    this.isReady = true
    this.resolveReady()
  }
}
