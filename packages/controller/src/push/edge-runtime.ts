/**
 * The edge module's state (created by createEdge in src/edge-routes.ts): the network PKI, the
 * enrollment signer, the SSE hubs for SDKs and routers, router presence (online, terminator grace
 * period), link measurements and routes, circuit reports. It follows the change feed: every
 * committed batch goes to the routers' streams and, as `services-changed`, to SDK sessions.
 */

import { hostname } from 'node:os'
import type { DataChange } from '@nullport/protocol'
import type { Logger } from 'pino'
import { CircuitRegistry } from '../api/fabric/circuits.js'
import { splitHostPort } from '../config.js'
import type { ChangeBatch } from '../core/change-feed.js'
import type { ControllerContext, EdgeModule } from '../core/context.js'
import { FailureLimiter } from '../core/rate-limit.js'
import { RenewLimiter } from '../enrollment/renew.js'
import { EnrollmentSigner } from '../enrollment/tokens.js'
import { NetworkPki } from '../pki/network-pki.js'
import { RouteManager } from '../routing/route-manager.js'
import { ClientEventHub } from './client-hub.js'
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
  readonly terminatorGraceMs: number
  readonly routerStreamMaxBuffered: number
  readonly clientStreamMaxBuffered: number
  readonly pingIntervalMs: number
  private readonly graceTimers = new Map<string, NodeJS.Timeout>()
  /** Routers that said they are online but have no stream yet: marked offline if none opens. */
  private readonly announceTimers = new Map<string, NodeJS.Timeout>()
  /** How long after `POST /online` a router must open its stream (default 30 s). */
  readonly streamWaitMs: number
  readonly startupGraceMs: number
  /** Failed enrollments per client address (see EdgeRuntimeOptions.enrollMaxFailuresPerMinute). */
  readonly enrollLimiter: FailureLimiter
  readonly renewLimiter = new RenewLimiter()
  private startupTimer: NodeJS.Timeout | undefined
  private readonly log: Logger
  private unsubscribe: Array<() => void> = []
  private routesScheduled = false
  private closed = false

  private constructor(
    readonly ctx: ControllerContext,
    readonly pki: NetworkPki,
    readonly signer: EnrollmentSigner,
    o: EdgeRuntimeOptions,
  ) {
    this.tls = { key: pki.serverKeyPem, cert: pki.serverCertPem, ca: pki.caBundlePem }
    this.caBundlePem = pki.caBundlePem
    this.terminatorGraceMs = o.terminatorGraceMs ?? 10_000
    this.routerStreamMaxBuffered = o.routerStreamMaxBuffered ?? 16 * 1024 * 1024
    this.clientStreamMaxBuffered = o.clientStreamMaxBuffered ?? 256 * 1024
    this.pingIntervalMs = o.pingIntervalMs ?? 15_000
    this.streamWaitMs = o.streamWaitMs ?? 30_000
    this.startupGraceMs = o.startupGraceMs ?? 30_000
    this.enrollLimiter = new FailureLimiter(o.enrollMaxFailuresPerMinute ?? 20, 60_000)
    this.log = ctx.log('edge')
  }

  static async create(ctx: ControllerContext, o: EdgeRuntimeOptions = {}): Promise<EdgeRuntime> {
    const hosts: string[] = []
    if (ctx.config.advertise) hosts.push(new URL(ctx.config.advertise).hostname)
    const listenHost = splitHostPort(ctx.config.listen).host
    const wildcard = listenHost === '' || listenHost === '0.0.0.0' || listenHost === '::'
    if (!wildcard) hosts.push(listenHost)
    // Listening on every interface without an advertised name: the machine's host name helps.
    else if (!ctx.config.advertise && /^[A-Za-z0-9.-]+$/.test(hostname())) hosts.push(hostname())
    const pki = await NetworkPki.open({
      dataDir: ctx.config.dataDir,
      trustDomain: ctx.config.trustDomain,
      hosts,
      identityCertLifetimeSeconds: Math.floor(ctx.config.identityCertLifetimeMs / 1000),
      logger: ctx.log('pki'),
    })
    const signer = await EnrollmentSigner.create(pki, () => ctx.baseUrl)
    const rt = new EdgeRuntime(ctx, pki, signer, o)
    rt.follow()
    return rt
  }

  signEnrollment(o: {
    kind: 'identity' | 'router'
    sub: string
    jti: string
    name: string
    expiresAt: Date
  }): Promise<string> {
    return this.signer.sign(o)
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
    if (this.startupTimer) clearTimeout(this.startupTimer)
    for (const u of this.unsubscribe) u()
    for (const t of this.graceTimers.values()) clearTimeout(t)
    this.graceTimers.clear()
    for (const t of this.announceTimers.values()) clearTimeout(t)
    this.announceTimers.clear()
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
      this.scheduleRoutes()
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

  // ------------------------------------------------------------------ router presence

  /**
   * `POST /online` marked the router online; unless its stream opens within `streamWaitMs`, it is
   * marked offline again (a router that crashed between the two steps is not shown online forever).
   */
  routerAnnounced(routerId: string): void {
    if (this.closed || this.routers.isConnected(routerId)) return
    const prev = this.announceTimers.get(routerId)
    if (prev) clearTimeout(prev)
    const timer = setTimeout(() => {
      this.announceTimers.delete(routerId)
      if (this.closed || this.routers.isConnected(routerId)) return
      this.ctx.core.setRouterStatus(routerId, { isOnline: false }).catch((err: Error) => {
        if (!this.closed) this.log.warn({ err: err.message, routerId }, 'cannot mark router offline')
      })
    }, this.streamWaitMs)
    timer.unref()
    this.announceTimers.set(routerId, timer)
  }

  /** A router's stream opened: cancel its terminator grace timer. */
  routerConnected(routerId: string): void {
    const a = this.announceTimers.get(routerId)
    if (a) {
      clearTimeout(a)
      this.announceTimers.delete(routerId)
    }
    const t = this.graceTimers.get(routerId)
    if (t) {
      clearTimeout(t)
      this.graceTimers.delete(routerId)
    }
    this.scheduleRoutes()
  }

  /** A router's stream closed: offline now, terminators and circuits after the grace period. */
  routerDisconnected(routerId: string, reason: string): void {
    this.log.info({ routerId, reason }, 'router stream closed')
    this.routes.removeRouter(routerId)
    this.scheduleRoutes()
    if (this.closed) return
    if (!this.ctx.policy.router(routerId)) {
      // Deleted: its terminators went with it; nothing to record.
      this.circuits.dropRouter(routerId)
      return
    }
    this.ctx.core.setRouterStatus(routerId, { isOnline: false }).catch((err: Error) => {
      if (!this.closed) this.log.warn({ err: err.message, routerId }, 'cannot mark router offline')
    })
    const prev = this.graceTimers.get(routerId)
    if (prev) clearTimeout(prev)
    const timer = setTimeout(() => {
      this.graceTimers.delete(routerId)
      if (this.closed || this.routers.isConnected(routerId)) return
      this.circuits.dropRouter(routerId)
      void this.deleteRouterTerminators(routerId)
    }, this.terminatorGraceMs)
    timer.unref()
    this.graceTimers.set(routerId, timer)
  }

  private async deleteRouterTerminators(routerId: string): Promise<void> {
    try {
      const rows = await this.ctx.db
        .selectFrom('terminators')
        .select('id')
        .where('router_id', '=', routerId)
        .execute()
      const name = this.ctx.policy.router(routerId)?.name ?? routerId
      for (const r of rows) {
        if (this.closed || this.routers.isConnected(routerId)) return
        await this.ctx.core
          .deleteTerminator(r.id, { id: routerId, name: `router:${name}` })
          .catch((err: Error & { code?: string }) => {
            if (err.code !== 'ERR_NOT_FOUND') throw err
          })
      }
      if (rows.length > 0)
        this.log.info(
          { routerId, terminators: rows.length },
          'removed the terminators of a router that went away',
        )
    } catch (err) {
      if (!this.closed)
        this.log.warn(
          { err: (err as Error).message, routerId },
          'cannot remove terminators of a router that went away',
        )
    }
  }

  // ------------------------------------------------------------------ routes

  /** Recomputes routes soon (coalesces bursts of triggers into one computation). */
  scheduleRoutes(): void {
    if (this.routesScheduled || this.closed) return
    this.routesScheduled = true
    setImmediate(() => {
      this.routesScheduled = false
      if (this.closed) return
      this.recomputeRoutes()
    })
  }

  recomputeRoutes(): void {
    const nodes = []
    for (const id of this.routers.connected()) {
      const r = this.ctx.policy.router(id)
      if (!r || r.disabled) continue
      nodes.push({ id, cost: r.cost })
    }
    const changed = this.routes.recompute(nodes)
    for (const [id, table] of changed) this.routers.sendRoutes(id, table)
    if (changed.size > 0) this.log.debug({ routers: [...changed.keys()] }, 'routes pushed')
  }
}
