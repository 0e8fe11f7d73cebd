/**
 * The edge runtime (created by startController with the network PKI and the enrollment signer):
 * the SSE hubs for SDKs and routers, router presence, link measurements and routes, circuit
 * reports, and the enrollment and renewal limiters. It follows the change feed: every committed
 * batch goes to the routers' streams and, as `services-changed`, to SDK sessions.
 */
import type { DataChange } from '@nullport/protocol'
import type { Logger } from 'pino'
import type { ChangeBatch } from '../core/change-feed.js'
import type { ControllerContext, EdgeModule } from '../core/context.js'
import { FailureLimiter } from '../core/rate-limit.js'
import { RenewLimiter } from '../enrollment/renew.js'
import type { EnrollmentSigner } from '../enrollment/tokens.js'
import type { NetworkPki } from '../pki/network-pki.js'
import { RouteManager } from '../routing/route-manager.js'
import { CircuitRegistry } from './circuit-registry.js'
import { ClientEventHub } from './client-hub.js'
import { RouterPresence } from './presence.js'
import { RoutePush } from './route-push.js'
import { RouterHub } from './router-hub.js'

export interface EdgeRuntimeOptions {
  /** How long a router's terminators survive its stream closing (default 10 s). */
  terminatorGraceMs?: number
  /** Bytes a router stream may have pending before it is dropped (default 16 MiB). */
  routerStreamMaxBuffered?: number
  /** Bytes an SDK event stream may have pending before it is dropped (default 256 KiB). */
  clientStreamMaxBuffered?: number
  /** SSE ping interval (default 15 s). */
  pingIntervalMs?: number
  /** How long after `POST /online` a router must open its stream before it is marked offline again (default 30 s). */
  streamWaitMs?: number
  /**
   * After start, routers have this long to reconnect before the terminators stored for them (from
   * before the restart) are deleted (default 30 s).
   */
  startupGraceMs?: number
  /**
   * Failed enrollments (identity and router) one client address may make per minute before
   * further enrollments from it answer ERR_RATE_LIMITED until the minute passes (default 20).
   * Bounds token guessing and CSR floods; the check runs before the body is read.
   */
  enrollMaxFailuresPerMinute?: number
}

export class EdgeRuntime implements EdgeModule {
  readonly tls: { key: string; cert: string; ca: string }
  readonly caBundlePem: string
  readonly clients = new ClientEventHub()
  readonly routers = new RouterHub()
  readonly routes = new RouteManager()
  readonly circuits = new CircuitRegistry()
  readonly routePush: RoutePush
  readonly presence: RouterPresence
  readonly routerStreamMaxBuffered: number
  readonly clientStreamMaxBuffered: number
  readonly pingIntervalMs: number
  readonly startupGraceMs: number
  /** Failed enrollments per client address (see EdgeRuntimeOptions.enrollMaxFailuresPerMinute). */
  readonly enrollLimiter: FailureLimiter
  readonly renewLimiter = new RenewLimiter()
  private readonly log: Logger
  private unsubscribe: Array<() => void> = []
  private closed = false

  constructor(
    readonly ctx: ControllerContext,
    readonly pki: NetworkPki,
    readonly signer: EnrollmentSigner,
    o: EdgeRuntimeOptions = {},
  ) {
    this.tls = { key: pki.serverKeyPem, cert: pki.serverCertPem, ca: pki.caBundlePem }
    this.caBundlePem = pki.caBundlePem
    this.routerStreamMaxBuffered = o.routerStreamMaxBuffered ?? 16 * 1024 * 1024
    this.clientStreamMaxBuffered = o.clientStreamMaxBuffered ?? 256 * 1024
    this.pingIntervalMs = o.pingIntervalMs ?? 15_000
    this.startupGraceMs = o.startupGraceMs ?? 30_000
    this.enrollLimiter = new FailureLimiter(o.enrollMaxFailuresPerMinute ?? 20, 60_000)
    this.log = ctx.log('edge')
    this.routePush = new RoutePush(this.routes, this.routers, ctx.policy, this.log)
    this.presence = new RouterPresence({
      core: ctx.core,
      policy: ctx.policy,
      routers: this.routers,
      routes: this.routes,
      routePush: this.routePush,
      circuits: this.circuits,
      log: this.log,
      terminatorGraceMs: o.terminatorGraceMs ?? 10_000,
      streamWaitMs: o.streamWaitMs ?? 30_000,
    })
    this.follow()
  }

  onListening(baseUrl: string): void {
    this.log.info(
      { baseUrl, rootFingerprint: this.pki.rootFingerprint, trustDomain: this.pki.trustDomain },
      'edge ready',
    )
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const u of this.unsubscribe) u()
    this.presence.close()
    this.routePush.close()
    this.clients.closeAll()
    this.routers.closeAll()
  }

  // ------------------------------------------------------------------ change feed

  private follow(): void {
    const onChanges = (changes: DataChange[]) => this.onChanges(changes)
    const onBatch = (batch: ChangeBatch) => this.onBatch(batch)
    this.ctx.changes.on('changes', onChanges)
    this.ctx.changes.on('batch', onBatch)
    this.unsubscribe.push(
      () => this.ctx.changes.off('changes', onChanges),
      () => this.ctx.changes.off('batch', onBatch),
    )
  }

  private onChanges(changes: DataChange[]): void {
    this.routers.broadcast(changes)
    this.clients.onChanges(changes, (id) => this.ctx.policy.identity(id))
    let routersTouched = false
    for (const c of changes) if (c.entity === 'router') routersTouched = true
    if (routersTouched) {
      // A re-enrolled, disabled or deleted router loses its stream at once.
      const gone = this.routers.disconnectWhere((id, fp) => {
        const r = this.ctx.policy.router(id)
        return !r || r.disabled || !(r.certFingerprints ?? []).includes(fp)
      })
      if (gone.length > 0)
        this.log.info({ routers: gone }, 'closed streams of revoked, disabled or deleted routers')
      this.routePush.schedule()
    }
  }

  private onBatch(batch: ChangeBatch): void {
    // Configs are not policy data but are part of SDK service lists; router presence is in
    // ClientEdgeRouter.isOnline.
    let configs = false
    let routers = false
    for (const e of batch.entities) {
      if (e.entity === 'config' || e.entity === 'configType') configs = true
      if (e.entity === 'edgeRouter') routers = true
    }
    const policyEveryone = batch.changes.some((c) => c.entity !== 'identity' && c.entity !== 'terminator')
    const policyRouters = batch.changes.some((c) => c.entity === 'router')
    if (configs && !policyEveryone) this.clients.servicesChanged(batch.version)
    if (routers && !policyRouters) this.clients.routersChanged(batch.version)
  }
}
