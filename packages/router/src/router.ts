/**
 * The edge router: one TLS listener for SDKs and links, local authorization from the policy
 * data the controller pushes, terminator selection, circuit forwarding with per-circuit flow
 * accounting, revocation on every pushed change, and links to the other routers.
 *
 * This file is the facade: `startRouter()` and the `RouterHandle` it returns. The work is done by
 * the parts it builds over one shared `RouterState` (state.ts), in dependency order:
 * circuit reports, terminators, the forwarder, links and keepalive, terminator selection, the
 * dialer, the per-connection dispatch, the acceptor and the link dialer, revocation, and the
 * policy stream that drives them.
 */
import tls from 'node:tls'
import {
  formatHostPort,
  type IdentityFile,
  type PreAuthLimits,
  type PreAuthStats,
  saveIdentityFile,
} from '@nullport/protocol'
import { Dialer } from './circuits/dialer.js'
import { Forwarder } from './circuits/forwarder.js'
import { CircuitReports } from './circuits/reports.js'
import { Acceptor } from './connections/acceptor.js'
import { Dispatch } from './connections/dispatch.js'
import { FabricClient } from './control/fabric-client.js'
import { PolicySync } from './control/policy-sync.js'
import { RouterError } from './errors.js'
import { Keepalive } from './links/keepalive.js'
import { LinkDialer } from './links/link-dialer.js'
import { Links } from './links/links.js'
import { type MetricsSource, RouterMetrics } from './metrics.js'
import {
  advertiseAddress,
  fabricClientOptions,
  listenAddress,
  loadRouterIdentity,
  metricsListenAddress,
  resolveLimits,
  routerLogger,
  type StartRouterOptions,
} from './options.js'
import { type CertificateInfo, CertRenewer, type Credentials, resolveRenewOptions } from './renew.js'
import { Revocation } from './revocation.js'
import { RouterState } from './state.js'
import { TerminatorSelection } from './terminators/selection.js'
import { Terminators } from './terminators/terminators.js'

export interface RouterStats {
  connections: number
  links: string[]
  circuits: number
  terminators: number
  policyVersion: number
  controllerConnected: boolean
}

export interface RouterHandle {
  readonly id: string
  readonly name: string
  /** Actual `host:port` the listener is bound to. */
  readonly address: string
  /** `host:port` reported to the controller. */
  readonly advertise: string
  /** `host:port` of the metrics endpoint, if enabled. */
  readonly metricsAddress: string | null
  /** Resolves once the first policy snapshot is loaded (the router can authorize). */
  readonly ready: Promise<void>
  stats(): RouterStats
  /** The certificate the router presents now (listener, links, controller calls). */
  certificate(): CertificateInfo
  /**
   * Renews the certificate now (see `renew`); resolves to the new certificate once it is in use
   * (and written to the identity file). Rejects with the failure (the controller's code in
   * `details.apiCode`, e.g. ERR_RATE_LIMITED); the current certificate then stays in use.
   */
  renewCertificate(): Promise<CertificateInfo>
  /** Closes listeners, sends GOAWAY to peers, deletes this router's terminators. */
  stop(): Promise<void>
}

/** The router. Use `startRouter()`. */
class Router implements RouterHandle, MetricsSource {
  readonly id: string
  readonly name: string
  readonly ready: Promise<void>
  private readonly state: RouterState
  private readonly opts: StartRouterOptions
  /** The identity file the router was started from (rewritten on renewal), if any. */
  private readonly identityPath: string | null
  private readonly renewer: CertRenewer
  private readonly reports: CircuitReports
  private readonly terminators: Terminators
  private readonly forwarder: Forwarder
  private readonly links: Links
  private readonly keepalive: Keepalive
  private readonly acceptor: Acceptor
  private readonly linkDialer: LinkDialer
  private readonly sync: PolicySync
  private stopPromise: Promise<void> | null = null

  constructor(identity: IdentityFile, opts: StartRouterOptions, identityPath: string | null = null) {
    this.opts = opts
    this.identityPath = identityPath
    this.id = identity.id
    this.name = identity.name
    const renew = resolveRenewOptions(opts.renew)
    const log = routerLogger(opts, identity.id)
    const limits = resolveLimits(opts)
    const fabric = new FabricClient(fabricClientOptions(identity, opts, log.child({ component: 'control' })))
    const s = new RouterState({
      identity,
      log,
      limits,
      hooks: opts.testHooks ?? null,
      fabric,
      metrics: new RouterMetrics(this),
    })
    this.state = s
    this.ready = s.ready
    this.renewer = new CertRenewer(
      {
        log: log.child({ component: 'renew' }),
        trustDomain: s.trustDomain,
        routerId: s.id,
        current: () => ({ cert: s.identity.cert, key: s.identity.key, ca: s.identity.ca }),
        request: (csr) => fabric.renew(csr),
        apply: (next) => this.switchCredentials(next),
      },
      renew,
    )
    this.reports = new CircuitReports(s)
    this.terminators = new Terminators(s)
    this.forwarder = new Forwarder(s, this.terminators, this.reports)
    this.links = new Links(s)
    this.keepalive = new Keepalive(s, this.links)
    const selection = new TerminatorSelection(s, this.links)
    const dialer = new Dialer(s, this.forwarder, selection, this.terminators, this.links, this.reports)
    const dispatch = new Dispatch(s, this.forwarder, dialer, this.terminators, this.keepalive, this.links)
    this.acceptor = new Acceptor(s, dispatch)
    this.linkDialer = new LinkDialer(s, dispatch)
    const revocation = new Revocation(s, this.terminators, this.forwarder)
    this.sync = new PolicySync(s, this.terminators, revocation, this.linkDialer)
  }

  get address(): string {
    return this.state.address
  }
  get advertise(): string {
    return this.state.advertise
  }
  get metricsAddress(): string | null {
    return this.state.metricsAddress
  }

  stats(): RouterStats {
    const s = this.state
    return {
      connections: s.peers.size,
      links: [...s.links.keys()],
      circuits: s.table.size,
      terminators: s.terminators.size,
      policyVersion: s.index?.version ?? 0,
      controllerConnected: s.fabric.connected,
    }
  }

  certificate(): CertificateInfo {
    return this.renewer.info()
  }

  renewCertificate(): Promise<CertificateInfo> {
    if (this.state.stopping)
      return Promise.reject(new RouterError('ERR_ROUTER_STOPPED', 'the router is stopped'))
    return this.renewer.renewNow()
  }

  /**
   * Switches to verified new credentials: new TLS connections (listener, links, controller
   * calls) use them; connections already open keep theirs. Then rewrites the identity file
   * (atomically, 0600) if the router was started from one.
   */
  private async switchCredentials(next: Credentials): Promise<void> {
    const s = this.state
    const updated: IdentityFile = { ...s.identity, cert: next.cert, key: next.key, ca: next.ca }
    // Validate the secure context before switching anything (throws on a cert/key mismatch).
    const ctx = { cert: next.cert, key: next.key, ca: next.ca, minVersion: 'TLSv1.2' as const }
    tls.createSecureContext(ctx)
    this.acceptor.setSecureContext(ctx)
    s.fabric.setCredentials({ certPem: next.cert, keyPem: next.key, caPem: next.ca })
    s.identity = updated
    if (this.identityPath) {
      try {
        await saveIdentityFile(this.identityPath, updated)
      } catch (err) {
        s.log.error(
          { code: (err as { code?: string }).code, err: (err as Error).message, path: this.identityPath },
          'the renewed certificate is in use but the identity file could not be rewritten: after a restart the router uses the previous certificate until it expires',
        )
      }
    }
  }

  // ---------------------------------------------------------------- metrics source

  get bytesForwarded(): number {
    return this.forwarder.bytesForwarded
  }

  circuitCount(): number {
    return this.state.table.size
  }

  connectionCounts(): { sdk: number; router: number } {
    let sdk = 0
    let router = 0
    for (const p of this.state.peers) {
      if (p.kind === 'router') router++
      else sdk++
    }
    return { sdk, router }
  }

  linkLatencies(): Array<{ routerId: string; latencyMs: number }> {
    return this.links.latencies()
  }

  preAuth(): { stats: PreAuthStats; limits: PreAuthLimits; maxConnections: number } {
    const s = this.state
    return { stats: s.preAuth.stats(), limits: s.preAuth.limits, maxConnections: s.limits.maxConnections }
  }

  certExpiresAt(): number {
    return Date.parse(this.renewer.info().notAfter)
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    const s = this.state
    const listen = listenAddress(this.opts)
    const port = await this.acceptor.listen(listen)
    s.address = formatHostPort(listen.host, port)
    s.advertise = advertiseAddress(this.opts, listen, port)
    const metricsListen = metricsListenAddress(this.opts)
    if (metricsListen) s.metricsAddress = await s.metrics.listen(metricsListen)
    s.log.info({ address: s.address, advertise: s.advertise }, 'router bound, connecting to the controller')
    this.sync.start()
    this.links.start()
    this.reports.start()
    this.keepalive.start()
    this.renewer.start()
  }

  stop(): Promise<void> {
    if (!this.stopPromise) this.stopPromise = this.doStop()
    return this.stopPromise
  }

  private async doStop(): Promise<void> {
    const s = this.state
    s.stopping = true
    this.renewer.stop()
    s.log.info('router stopping')
    const closed = this.acceptor.close()
    this.links.stop()
    this.reports.stop()
    this.keepalive.stop()
    this.linkDialer.stop()
    const terminatorIds = this.terminators.takeAllForStop()
    for (const p of [...s.peers]) p.conn.close('ERR_ROUTER_SHUTDOWN', 'the router is shutting down')
    await Promise.race([
      Promise.allSettled(
        terminatorIds.map((id) =>
          s.fabric.request('DELETE', `/fabric/v1/terminators/${encodeURIComponent(id)}`),
        ),
      ),
      new Promise((r) => setTimeout(r, 3000).unref()),
    ])
    s.fabric.stop()
    await s.metrics.close()
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2500).unref())])
    for (const p of [...s.peers]) p.conn.destroy()
    s.log.info('router stopped')
  }
}

/**
 * Starts an edge router: binds the TLS listener, reports itself online, follows the controller's
 * policy stream, and links to the other routers. Resolves once the listener is bound; `ready`
 * resolves once the first policy snapshot is loaded.
 *
 * @example
 * const r = await startRouter({ identity: 'router.identity.json', listen: '127.0.0.1:0' })
 * await r.ready
 * console.log(r.address)
 * await r.stop()
 */
export async function startRouter(opts: StartRouterOptions): Promise<RouterHandle> {
  const identity = await loadRouterIdentity(opts.identity)
  const r = new Router(identity, opts, typeof opts.identity === 'string' ? opts.identity : null)
  try {
    await r.start()
  } catch (err) {
    await r.stop().catch(() => {})
    throw err
  }
  return r
}
