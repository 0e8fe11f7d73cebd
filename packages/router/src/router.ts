/**
 * The edge router: one TLS listener for SDKs and links, local authorization from the policy
 * data the controller pushes, terminator selection, circuit forwarding with per-circuit flow
 * accounting, revocation on every pushed change, and links to the other routers.
 */
import { randomBytes, X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { performance } from 'node:perf_hooks'
import tls from 'node:tls'
import {
  type DialPayload,
  type Frame,
  FrameConnection,
  FrameType,
  type IdentityFile,
  INITIAL_WINDOW,
  loadIdentityFile,
  PolicyIndex,
  type PolicyRouter,
  type PolicySnapshot,
  PROTOCOL_VERSION,
  type RouterEvent,
  type RouteTable,
  saveIdentityFile,
  type Terminator,
} from '@nullport/protocol'
import pino, { type Logger } from 'pino'
import { Backoff } from './backoff.js'
import { type Circuit, type CircuitMeta, CircuitTable, type Leg } from './circuit-table.js'
import { formatHostPort, parseHostPort } from './config.js'
import { RouterError, type RouterWireCode } from './errors.js'
import { FabricClient } from './fabric-client.js'
import { RouterMetrics } from './metrics.js'
import { type Binding, certFingerprint, type LocalTerminator, Peer, spiffeOf } from './peer.js'
import {
  type CertificateInfo,
  CertRenewer,
  type Credentials,
  type RenewOptions,
  resolveRenewOptions,
} from './renew.js'
import { strategyFor, type TerminatorCandidate } from './strategy.js'

export const ROUTER_VERSION = '0.1.0'
const AGENT = `nullport-router/${ROUTER_VERSION}`

/** One end of a forwarded frame, as test hooks see it. */
export interface ForwardEnd {
  kind: 'sdk' | 'router'
  /** Identity id or router id of the peer. */
  id: string
  name: string
  circuitId: number
}

/**
 * Programmatic test hooks. Never reachable from a config file or the CLI.
 */
export interface RouterTestHooks {
  /**
   * Called for every frame this router forwards on a circuit (DIAL, DIAL_SUCCESS, DIAL_FAILED, DATA,
   * HALF_CLOSE, WINDOW_UPDATE, CLOSE), with the circuit id already rewritten for `to`. Return the
   * frame to send (possibly modified), or null to drop it.
   */
  onForward?(frame: Frame, from: ForwardEnd, to: ForwardEnd): Frame | null
}

export interface StartRouterOptions {
  /** The router identity (object, or the path of the identity file written by `nullport router enroll`). */
  identity: IdentityFile | string
  /** `HOST:PORT` to listen on; port 0 lets the OS choose. Default `0.0.0.0:3022`. */
  listen?: string
  /** `HOST[:PORT]` to advertise; without a port (or port 0) the actual listen port. Default: the listen host (127.0.0.1 for 0.0.0.0). */
  advertise?: string
  /** Optional `HOST:PORT` for the Prometheus endpoint (`GET /metrics`). */
  metricsListen?: string
  /** A pino logger; default JSON to stdout at `logLevel`. */
  logger?: Logger
  /** Without `logger`: where the default logger writes its JSON lines (default stdout). */
  logDestination?: { write(line: string): void }
  /**
   * Automatic certificate renewal: once `fraction` (default 2/3) of the certificate's validity has
   * elapsed, the router gets a new certificate for a new key from the controller, switches to it
   * for new connections and, when started from an identity file path, rewrites that file. `false`
   * disables it (`renewCertificate()` still works). Default `{}`.
   */
  renew?: false | RenewOptions
  /** Default `info`. */
  logLevel?: string
  /** Most concurrent TLS connections accepted. Default 10000. */
  maxConnections?: number
  /** Most circuits per connection. Default 4096. */
  maxCircuitsPerConnection?: number
  /** Most binds per SDK connection. Default 256. */
  maxBindsPerConnection?: number
  /** TLS handshake + HELLO must finish within this. Default 10000 ms. */
  handshakeTimeoutMs?: number
  /** A dial without DIAL_SUCCESS/DIAL_FAILED within this fails with ERR_DIAL_TIMEOUT. Default 15000 ms. */
  dialTimeoutMs?: number
  /**
   * Bytes (payload + headers) of one circuit written toward a connection and not yet flushed by
   * its socket (counted per frame, released by the write callback) before the circuit is closed
   * with ERR_FLOW_CONTROL. Default 2 * INITIAL_WINDOW.
   */
  maxQueuedBytesPerCircuit?: number
  /** Link PING period. Default 5000 ms; a link missing 3 PONGs in a row is dropped. */
  linkPingIntervalMs?: number
  /**
   * SDK connections are PINGed this often; one that leaves PINGs unanswered for about six periods
   * is dropped (its circuits closed, its terminators deleted). Default 15000 ms.
   */
  sdkPingIntervalMs?: number
  /** Link latency is reported on change and at least this often. Default 30000 ms. */
  linkReportIntervalMs?: number
  /** Controller reconnect backoff (jittered, exponential). Defaults 250 ms .. 10000 ms. */
  reconnectBaseMs?: number
  reconnectMaxMs?: number
  /** Event stream idle limit (the controller pings). Default 60000 ms. */
  streamIdleTimeoutMs?: number
  /** SSE limits. Default 64 MiB each. */
  maxSseLineBytes?: number
  maxSseEventBytes?: number
  /** Circuit reports are batched over this period. Default 1000 ms. */
  circuitReportIntervalMs?: number
  /** Programmatic only. */
  testHooks?: RouterTestHooks
}

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

/** Extra words for refusal messages: the command that fixes each cause. */
const FIX_HINTS: Partial<Record<string, string>> = {
  ERR_NO_DIAL_PERMISSION:
    'grant it with a Dial service-policy (nullport edge create service-policy NAME Dial ...)',
  ERR_NO_BIND_PERMISSION:
    'grant it with a Bind service-policy (nullport edge create service-policy NAME Bind ...)',
  ERR_NO_EDGE_ROUTER_POLICY: 'add an edge-router-policy giving the identity this router',
  ERR_NO_SERVICE_EDGE_ROUTER_POLICY: 'add a service-edge-router-policy giving the service this router',
  ERR_IDENTITY_DISABLED: 'enable the identity (nullport edge update identity NAME --disabled=false)',
  ERR_SERVICE_NOT_FOUND: 'check the service name (nullport edge list services)',
}

function withHint(code: string, message: string): string {
  const hint = FIX_HINTS[code]
  const m = hint && !message.includes(hint) ? `${message}: ${hint}` : message
  return m.slice(0, 1024)
}

interface AuthOk {
  ok: true
  kind: 'sdk' | 'router'
  id: string
  name: string
  fingerprint: string
}
type AuthResult = AuthOk | { ok: false; code: RouterWireCode; message: string }

interface LinkDialer {
  routerId: string
  backoff: Backoff
  timer: NodeJS.Timeout | null
  connecting: boolean
  peer: Peer | null
}

interface CircuitReport {
  tag: string
  serviceId: string
  identityId: string
  hostIdentityId: string
  terminatorId: string
  routerId: string
  terminatorRouterId: string
  createdAt: string
}

/** The router. Use `startRouter()`. */
export class Router implements RouterHandle {
  readonly id: string
  readonly name: string
  /** The identity in use (its cert/key/ca change on renewal). */
  private current: IdentityFile
  /** The identity file the router was started from (rewritten on renewal), if any. */
  private readonly identityPath: string | null
  private readonly renewer: CertRenewer
  readonly log: Logger
  private readonly opts: StartRouterOptions
  private readonly trustDomain: string
  private server: tls.Server | null = null
  private addressText = ''
  private advertiseText = ''
  private metricsText: string | null = null
  private readonly fabric: FabricClient
  private index: PolicyIndex | null = null
  private routes: RouteTable = { version: 0, nextHop: {}, cost: {} }
  private readonly table = new CircuitTable<Peer>()
  /** Circuit tags passing through this router (count), to refuse a DIAL that comes back in a loop. */
  private readonly tags = new Map<string, number>()
  private readonly peers = new Set<Peer>()
  private readonly links = new Map<string, Peer>()
  private readonly linkDialers = new Map<string, LinkDialer>()
  private readonly terminators = new Map<string, LocalTerminator>()
  /** All routers of the policy data (for links), kept from the snapshot and router changes. */
  private readonly routerList = new Map<string, PolicyRouter>()
  /** (identityId|serviceId) -> the last queued create/delete of that terminator. */
  private readonly keyChain = new Map<string, Promise<void>>()
  /** Terminator id -> key, for deletes that failed while the controller was away. */
  private readonly pendingTerminatorDeletes = new Map<string, string>()
  private readonly hooks: RouterTestHooks | null
  private readonly metrics: RouterMetrics
  private readonly limits: {
    maxConnections: number
    maxCircuitsPerConnection: number
    maxBindsPerConnection: number
    handshakeTimeoutMs: number
    dialTimeoutMs: number
    maxQueued: number
    pingMs: number
    reportMs: number
    circuitReportMs: number
    sdkPingMs: number
  }
  private stopping = false
  private stopPromise: Promise<void> | null = null
  private readyResolve!: () => void
  readonly ready: Promise<void>
  private isReady = false
  private firstSnapshot = true
  private linkReportTimer: NodeJS.Timeout | null = null
  private linkReportSoon: NodeJS.Timeout | null = null
  private circuitReportTimer: NodeJS.Timeout | null = null
  private sdkPingTimer: NodeJS.Timeout | null = null
  private readonly circuitAdds = new Map<string, CircuitReport>()
  private readonly circuitDeletes = new Set<string>()
  bytesForwarded = 0

  constructor(identity: IdentityFile, opts: StartRouterOptions, identityPath: string | null = null) {
    this.current = identity
    this.identityPath = identityPath
    this.opts = opts
    this.id = identity.id
    this.name = identity.name
    this.trustDomain = identity.trustDomain
    const renew = resolveRenewOptions(opts.renew)
    this.log = (
      opts.logger ??
      (opts.logDestination
        ? pino({ level: opts.logLevel ?? 'info' }, opts.logDestination)
        : pino({ level: opts.logLevel ?? 'info' }))
    ).child({
      component: 'router',
      routerId: identity.id,
    })
    this.hooks = opts.testHooks ?? null
    const posInt = (v: number | undefined, d: number, field: string): number => {
      const x = v ?? d
      if (!Number.isInteger(x) || x <= 0)
        throw new RouterError(
          'ERR_ROUTER_CONFIG',
          `router option "${field}" must be a positive integer, got ${x}`,
          { field },
        )
      return x
    }
    this.limits = {
      maxConnections: posInt(opts.maxConnections, 10_000, 'maxConnections'),
      maxCircuitsPerConnection: posInt(opts.maxCircuitsPerConnection, 4096, 'maxCircuitsPerConnection'),
      maxBindsPerConnection: posInt(opts.maxBindsPerConnection, 256, 'maxBindsPerConnection'),
      handshakeTimeoutMs: posInt(opts.handshakeTimeoutMs, 10_000, 'handshakeTimeoutMs'),
      dialTimeoutMs: posInt(opts.dialTimeoutMs, 15_000, 'dialTimeoutMs'),
      maxQueued: posInt(opts.maxQueuedBytesPerCircuit, 2 * INITIAL_WINDOW, 'maxQueuedBytesPerCircuit'),
      pingMs: posInt(opts.linkPingIntervalMs, 5000, 'linkPingIntervalMs'),
      reportMs: posInt(opts.linkReportIntervalMs, 30_000, 'linkReportIntervalMs'),
      circuitReportMs: posInt(opts.circuitReportIntervalMs, 1000, 'circuitReportIntervalMs'),
      sdkPingMs: posInt(opts.sdkPingIntervalMs, 15_000, 'sdkPingIntervalMs'),
    }
    this.ready = new Promise<void>((r) => {
      this.readyResolve = r
    })
    this.fabric = new FabricClient({
      controller: identity.controller,
      certPem: identity.cert,
      keyPem: identity.key,
      caPem: identity.ca,
      logger: this.log.child({ component: 'control' }),
      ...(opts.reconnectBaseMs !== undefined ? { reconnectBaseMs: opts.reconnectBaseMs } : {}),
      ...(opts.reconnectMaxMs !== undefined ? { reconnectMaxMs: opts.reconnectMaxMs } : {}),
      ...(opts.streamIdleTimeoutMs !== undefined ? { streamIdleTimeoutMs: opts.streamIdleTimeoutMs } : {}),
      ...(opts.maxSseLineBytes !== undefined ? { maxSseLineBytes: opts.maxSseLineBytes } : {}),
      ...(opts.maxSseEventBytes !== undefined ? { maxSseEventBytes: opts.maxSseEventBytes } : {}),
    })
    this.renewer = new CertRenewer(
      {
        log: this.log.child({ component: 'renew' }),
        trustDomain: this.trustDomain,
        routerId: this.id,
        current: () => ({ cert: this.current.cert, key: this.current.key, ca: this.current.ca }),
        request: (csr) => this.fabric.renew(csr),
        apply: (next) => this.switchCredentials(next),
      },
      renew,
    )
    this.metrics = new RouterMetrics(this)
  }

  /** The identity in use (cert/key/ca change on renewal). */
  get identity(): IdentityFile {
    return this.current
  }

  certificate(): CertificateInfo {
    return this.renewer.info()
  }

  /** Epoch ms the current certificate expires (metrics). */
  certExpiresAt(): number {
    return Date.parse(this.renewer.info().notAfter)
  }

  renewCertificate(): Promise<CertificateInfo> {
    if (this.stopping) return Promise.reject(new RouterError('ERR_ROUTER_STOPPED', 'the router is stopped'))
    return this.renewer.renewNow()
  }

  /**
   * Switches to verified new credentials: new TLS connections (listener, links, controller
   * calls) use them; connections already open keep theirs. Then rewrites the identity file
   * (atomically, 0600) if the router was started from one.
   */
  private async switchCredentials(next: Credentials): Promise<void> {
    const updated: IdentityFile = { ...this.current, cert: next.cert, key: next.key, ca: next.ca }
    // Validate the secure context before switching anything (throws on a cert/key mismatch).
    const ctx = { cert: next.cert, key: next.key, ca: next.ca, minVersion: 'TLSv1.2' as const }
    tls.createSecureContext(ctx)
    this.server?.setSecureContext(ctx)
    this.fabric.setCredentials({ certPem: next.cert, keyPem: next.key, caPem: next.ca })
    this.current = updated
    if (this.identityPath) {
      try {
        await saveIdentityFile(this.identityPath, updated)
      } catch (err) {
        this.log.error(
          { code: (err as { code?: string }).code, err: (err as Error).message, path: this.identityPath },
          'the renewed certificate is in use but the identity file could not be rewritten: after a restart the router uses the previous certificate until it expires',
        )
      }
    }
  }

  get address(): string {
    return this.addressText
  }
  get advertise(): string {
    return this.advertiseText
  }
  get metricsAddress(): string | null {
    return this.metricsText
  }

  stats(): RouterStats {
    return {
      connections: this.peers.size,
      links: [...this.links.keys()],
      circuits: this.table.size,
      terminators: this.terminators.size,
      policyVersion: this.index?.version ?? 0,
      controllerConnected: this.fabric.connected,
    }
  }

  /** Link latency by peer router id (for metrics). */
  linkLatencies(): Array<{ routerId: string; latencyMs: number }> {
    const out: Array<{ routerId: string; latencyMs: number }> = []
    for (const [id, p] of this.links)
      if (p.latencyMs !== null) out.push({ routerId: id, latencyMs: p.latencyMs })
    return out
  }

  circuitCount(): number {
    return this.table.size
  }

  connectionCounts(): { sdk: number; router: number } {
    let sdk = 0
    let router = 0
    for (const p of this.peers) {
      if (p.kind === 'router') router++
      else sdk++
    }
    return { sdk, router }
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    const listen = parseHostPort(this.opts.listen ?? '0.0.0.0:3022', 'listen', { allowPortZero: true })
    const server = tls.createServer({
      cert: this.identity.cert,
      key: this.identity.key,
      ca: this.identity.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      handshakeTimeout: this.limits.handshakeTimeoutMs,
    })
    server.maxConnections = this.limits.maxConnections
    server.on('secureConnection', (socket) => this.onSecureConnection(socket))
    server.on('tlsClientError', (err, socket) => {
      this.log.info(
        {
          code: 'ERR_CERT_INVALID',
          err: err.message,
          remote: `${socket.remoteAddress}:${socket.remotePort}`,
        },
        'TLS handshake refused',
      )
    })
    server.on('error', (err) => this.log.error({ err }, 'listener error'))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.server = server
    const addr = server.address()
    const port = typeof addr === 'object' && addr ? addr.port : listen.port
    this.addressText = formatHostPort(listen.host, port)
    const adv = this.opts.advertise
      ? parseHostPort(this.opts.advertise, 'advertise', { portOptional: true, allowPortZero: true })
      : { host: listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host, port: 0 }
    this.advertiseText = formatHostPort(adv.host, adv.port === 0 ? port : adv.port)
    if (this.opts.metricsListen) {
      this.metricsText = await this.metrics.listen(
        parseHostPort(this.opts.metricsListen, 'metricsListen', { allowPortZero: true }),
      )
    }
    this.log.info(
      { address: this.addressText, advertise: this.advertiseText },
      'router bound, connecting to the controller',
    )
    this.fabric.startStream({
      beforeConnect: async () => {
        await this.fabric.request('POST', '/fabric/v1/online', {
          advertise: this.advertiseText,
          version: ROUTER_VERSION,
        })
        this.retryTerminatorDeletes()
      },
      onEvent: (ev) => this.onControllerEvent(ev),
      onConnected: () => this.log.info({ controller: this.identity.controller }, 'controller stream open'),
      onDisconnected: (err) => {
        if (this.stopping) return // our own stop() closed it
        this.log.warn(
          { err: err?.message },
          'controller stream lost; circuits keep flowing, authorizing from the last policy data',
        )
      },
    })
    this.linkReportTimer = setInterval(() => this.reportLinks(), this.limits.reportMs)
    this.linkReportTimer.unref()
    this.circuitReportTimer = setInterval(() => this.flushCircuitReports(), this.limits.circuitReportMs)
    this.circuitReportTimer.unref()
    this.sdkPingTimer = setInterval(() => {
      for (const p of this.peers) if (p.kind === 'sdk') this.pingLink(p)
    }, this.limits.sdkPingMs)
    this.sdkPingTimer.unref()
    this.renewer.start()
  }

  stop(): Promise<void> {
    if (!this.stopPromise) this.stopPromise = this.doStop()
    return this.stopPromise
  }

  private async doStop(): Promise<void> {
    this.stopping = true
    this.renewer.stop()
    this.log.info('router stopping')
    const closed = this.server ? new Promise<void>((r) => this.server!.close(() => r())) : Promise.resolve()
    for (const t of [this.linkReportTimer, this.linkReportSoon, this.circuitReportTimer, this.sdkPingTimer])
      if (t) clearInterval(t)
    for (const d of this.linkDialers.values()) if (d.timer) clearTimeout(d.timer)
    const terminatorIds = [...this.terminators.keys(), ...this.pendingTerminatorDeletes.keys()]
    this.terminators.clear()
    for (const p of [...this.peers]) {
      if (p.pingTimer) clearInterval(p.pingTimer)
      p.conn.close('ERR_ROUTER_SHUTDOWN', 'the router is shutting down')
    }
    await Promise.race([
      Promise.allSettled(
        terminatorIds.map((id) =>
          this.fabric.request('DELETE', `/fabric/v1/terminators/${encodeURIComponent(id)}`),
        ),
      ),
      new Promise((r) => setTimeout(r, 3000).unref()),
    ])
    this.fabric.stop()
    await this.metrics.close()
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2500).unref())])
    for (const p of [...this.peers]) p.conn.destroy()
    this.log.info('router stopped')
  }

  // ---------------------------------------------------------------- control plane

  private onControllerEvent(ev: RouterEvent): void {
    switch (ev.type) {
      case 'snapshot':
        this.loadSnapshot(ev.snapshot)
        break
      case 'change': {
        const idx = this.index
        if (!idx) {
          this.log.warn('change before snapshot; resyncing')
          this.fabric.resync()
          return
        }
        for (const ch of ev.changes) {
          idx.apply(ch)
          if (ch.entity === 'router') {
            if (ch.op === 'delete') this.routerList.delete(ch.id)
            else this.routerList.set(ch.data.id, ch.data)
          }
        }
        this.log.debug({ changes: ev.changes.length, version: idx.version }, 'policy changes applied')
        this.afterPolicyUpdate()
        break
      }
      case 'routes':
        this.routes = ev.routes
        this.log.debug({ version: ev.routes.version }, 'routes updated')
        break
      default:
        break
    }
  }

  private loadSnapshot(snapshot: PolicySnapshot): void {
    const idx = new PolicyIndex()
    idx.load(snapshot)
    this.index = idx
    this.routerList.clear()
    for (const r of snapshot.routers) this.routerList.set(r.id, r)
    this.fabric.backoff.reset()
    this.log.info(
      { version: idx.version, identities: snapshot.identities.length, services: snapshot.services.length },
      'policy snapshot loaded',
    )
    if (!this.firstSnapshot) this.reconcileTerminators(snapshot)
    if (this.firstSnapshot) {
      this.firstSnapshot = false
      // Terminators left by an earlier run of this router: nobody serves them.
      for (const t of snapshot.terminators) {
        if (t.routerId === this.id && !this.terminators.has(t.id)) {
          this.queueTerminatorDelete(t.id, `${t.identityId}|${t.serviceId}`)
        }
      }
    }
    if (!this.isReady) {
      this.isReady = true
      // Always announced (process harnesses wait for it), unless logging is off entirely.
      const announce = this.log.level === 'silent' ? this.log : this.log.child({}, { level: 'info' })
      announce.info(
        { address: this.addressText, advertise: this.advertiseText, metrics: this.metricsText },
        'router listening',
      )
      this.readyResolve()
    }
    this.afterPolicyUpdate()
  }

  private afterPolicyUpdate(): void {
    this.recheck()
    this.refreshLinks()
  }

  // ---------------------------------------------------------------- connections

  private onSecureConnection(socket: tls.TLSSocket): void {
    if (this.stopping) {
      socket.destroy()
      return
    }
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 15_000)
    const conn = new FrameConnection(socket)
    const peer: Peer = new Peer(conn, true, (id: number): boolean => this.table.has(peer, id))
    this.peers.add(peer)
    this.wirePeer(peer)
    peer.timer = setTimeout(() => {
      if (!this.isReady) {
        this.refusePeer(
          peer,
          'ERR_NOT_READY',
          'the router has no policy data yet (controller unreachable): retry later',
        )
      } else {
        this.refusePeer(peer, 'ERR_HANDSHAKE_TIMEOUT', `no HELLO within ${this.limits.handshakeTimeoutMs} ms`)
      }
    }, this.limits.handshakeTimeoutMs)
    if (this.peers.size > this.limits.maxConnections) {
      this.refusePeer(
        peer,
        'ERR_TOO_MANY_CONNECTIONS',
        `the router serves at most ${this.limits.maxConnections} connections: try another router`,
      )
      return
    }
    const cert = socket.getPeerX509Certificate()
    if (!cert) {
      this.refusePeer(peer, 'ERR_CERT_INVALID', 'a client certificate is required')
      return
    }
    const authenticate = (): void => {
      if (peer.state !== 'auth') return
      const r = this.authenticate(cert)
      if (!r.ok) {
        this.refusePeer(peer, r.code, r.message)
        return
      }
      peer.kind = r.kind
      peer.entityId = r.id
      peer.name = r.name
      peer.fingerprint = r.fingerprint
      peer.state = 'hello'
      const early = peer.early
      peer.early = []
      for (const f of early) this.onFrame(peer, f)
    }
    if (this.isReady) {
      try {
        authenticate()
      } catch (err) {
        this.log.error({ err, ...peer.describe() }, 'authentication failed')
        peer.conn.destroy()
      }
    } else
      this.ready.then(authenticate).catch((err: unknown) => {
        this.log.error({ err, ...peer.describe() }, 'authentication failed')
        peer.conn.destroy()
      })
  }

  private authenticate(cert: X509Certificate): AuthResult {
    const idx = this.index!
    const spiffe = spiffeOf(cert.subjectAltName, this.trustDomain)
    if (!spiffe || (spiffe.kind !== 'identity' && spiffe.kind !== 'router')) {
      return {
        ok: false,
        code: 'ERR_CERT_INVALID',
        message: `the certificate has no spiffe://${this.trustDomain}/identity|router/ID URI`,
      }
    }
    const fp = certFingerprint(cert)
    if (spiffe.kind === 'identity') {
      const ident = idx.identity(spiffe.id)
      if (!ident)
        return {
          ok: false,
          code: 'ERR_IDENTITY_NOT_FOUND',
          message: `identity ${spiffe.id} does not exist (deleted?): enroll a new identity`,
        }
      if (ident.disabled)
        return {
          ok: false,
          code: 'ERR_IDENTITY_DISABLED',
          message: withHint('ERR_IDENTITY_DISABLED', `identity ${ident.name} is disabled`),
        }
      if (!ident.certFingerprints?.includes(fp)) {
        return {
          ok: false,
          code: 'ERR_CERT_REVOKED',
          message: `the certificate of identity ${ident.name} was revoked (re-enrolled): use the new identity file`,
        }
      }
      return { ok: true, kind: 'sdk', id: ident.id, name: ident.name, fingerprint: fp }
    }
    const r = idx.router(spiffe.id)
    if (!r) return { ok: false, code: 'ERR_ROUTER_NOT_FOUND', message: `router ${spiffe.id} does not exist` }
    if (r.disabled) return { ok: false, code: 'ERR_ROUTER_DISABLED', message: `router ${r.name} is disabled` }
    if (!r.certFingerprints?.includes(fp)) {
      return {
        ok: false,
        code: 'ERR_CERT_REVOKED',
        message: `the certificate of router ${r.name} was revoked (re-enrolled)`,
      }
    }
    return { ok: true, kind: 'router', id: r.id, name: r.name, fingerprint: fp }
  }

  /** Re-checks a connected peer against the current policy data. */
  private peerStillValid(peer: Peer): { ok: true } | { ok: false; code: RouterWireCode; message: string } {
    const idx = this.index!
    if (peer.kind === 'sdk') {
      const ident = idx.identity(peer.entityId)
      if (!ident)
        return { ok: false, code: 'ERR_IDENTITY_NOT_FOUND', message: `identity ${peer.name} was deleted` }
      if (ident.disabled)
        return { ok: false, code: 'ERR_IDENTITY_DISABLED', message: `identity ${peer.name} was disabled` }
      if (!ident.certFingerprints?.includes(peer.fingerprint)) {
        return {
          ok: false,
          code: 'ERR_CERT_REVOKED',
          message: `the certificate of identity ${peer.name} was revoked (re-enrolled): use the new identity file`,
        }
      }
      return { ok: true }
    }
    const r = idx.router(peer.entityId)
    if (!r) return { ok: false, code: 'ERR_ROUTER_NOT_FOUND', message: `router ${peer.name} was deleted` }
    if (r.disabled)
      return { ok: false, code: 'ERR_ROUTER_DISABLED', message: `router ${peer.name} was disabled` }
    if (!peer.fingerprint || !r.certFingerprints?.includes(peer.fingerprint)) {
      return {
        ok: false,
        code: 'ERR_CERT_REVOKED',
        message: `the certificate of router ${peer.name} was revoked`,
      }
    }
    return { ok: true }
  }

  private refusePeer(peer: Peer, code: RouterWireCode, message: string): void {
    if (peer.state === 'closed') return
    this.log.info({ code, ...peer.describe(), reason: message }, 'connection refused')
    peer.state = 'closed'
    if (peer.timer) clearTimeout(peer.timer)
    peer.conn.close(code, message.slice(0, 1024))
  }

  private wirePeer(peer: Peer): void {
    const conn = peer.conn
    conn.on('frame', (f: Frame) => {
      try {
        this.onFrame(peer, f)
      } catch (err) {
        // A bug must cost one connection, never the router.
        this.log.error(
          { err, type: f.type, ...peer.describe() },
          'frame handler failed; closing the connection',
        )
        this.refusePeer(peer, 'ERR_PROTOCOL', 'internal error while handling a frame')
        peer.conn.destroy()
      }
    })
    conn.on('error', (err: Error & { code?: string }) => {
      this.log.info(
        { code: err.code ?? 'ERR_CONNECTION', err: err.message, ...peer.describe() },
        'connection error',
      )
    })
    conn.on('close', () => this.onPeerClose(peer))
  }

  private onPeerClose(peer: Peer): void {
    const wasReady = peer.state === 'ready'
    peer.state = 'closed'
    if (peer.timer) clearTimeout(peer.timer)
    if (peer.pingTimer) clearInterval(peer.pingTimer)
    this.peers.delete(peer)
    for (const c of this.table.circuitsOf(peer)) {
      const mine = c.a.peer === peer ? c.a : c.b!
      const other = mine.other()
      if (other && other.peer !== peer) {
        if (c.state === 'dialing' && mine === c.b) {
          this.sendTo(other.peer, {
            type: FrameType.DIAL_FAILED,
            circuitId: other.id,
            flags: 0,
            payload: {
              code: 'ERR_PEER_GONE',
              message: 'the connection toward the host was lost while dialing',
            },
          })
          this.metrics.dial('failed')
        } else {
          this.sendTo(other.peer, {
            type: FrameType.CLOSE,
            circuitId: other.id,
            flags: 0,
            payload: {
              code: 'ERR_PEER_GONE',
              message: `the connection of ${peer.kind === 'router' ? 'a router on the path' : 'the other end'} was lost`,
            },
          })
        }
      }
      this.removeCircuit(c)
    }
    this.table.dropPeer(peer)
    for (const b of [...peer.binds.values()]) this.removeBinding(b)
    if (peer.kind === 'router' && wasReady) {
      if (this.links.get(peer.entityId) === peer) {
        this.links.delete(peer.entityId)
        this.log.warn({ peerRouter: peer.entityId, name: peer.name }, 'link down')
        this.scheduleLinkReport()
      }
      const d = this.linkDialers.get(peer.entityId)
      if (d && d.peer === peer) {
        d.peer = null
        this.scheduleLinkDial(d)
      }
    }
    this.log.debug({ ...peer.describe() }, 'connection closed')
  }

  private sendTo(peer: Peer, frame: Frame): boolean {
    try {
      return peer.conn.send(frame)
    } catch (err) {
      this.log.error({ err, type: frame.type, ...peer.describe() }, 'frame could not be encoded')
      return false
    }
  }

  private protocolViolation(peer: Peer, message: string): void {
    this.refusePeer(peer, 'ERR_PROTOCOL', message)
  }

  // ---------------------------------------------------------------- frames

  private onFrame(peer: Peer, f: Frame): void {
    switch (peer.state) {
      case 'ready':
        break
      case 'auth':
        if (peer.early.length >= 8)
          this.protocolViolation(peer, 'too many frames before authentication finished')
        else peer.early.push(f)
        return
      case 'hello':
        this.onHelloState(peer, f)
        return
      default:
        return
    }
    switch (f.type) {
      case FrameType.DATA:
        this.onData(peer, f.circuitId, f.flags, f.payload, FrameType.DATA)
        return
      case FrameType.WINDOW_UPDATE:
        this.onWindowUpdate(peer, f.circuitId, f.payload.credit)
        return
      case FrameType.HALF_CLOSE:
        this.onData(peer, f.circuitId, f.flags, f.payload, FrameType.HALF_CLOSE)
        return
      case FrameType.CLOSE:
        this.onClose(peer, f)
        return
      case FrameType.DIAL:
        this.onDial(peer, f.circuitId, f.payload)
        return
      case FrameType.DIAL_SUCCESS:
      case FrameType.DIAL_FAILED:
        this.onDialAnswer(peer, f)
        return
      case FrameType.BIND:
        if (peer.kind !== 'sdk') {
          this.protocolViolation(peer, 'BIND is only accepted from SDK connections')
          return
        }
        void this.onBind(peer, f.payload)
        return
      case FrameType.UNBIND:
        if (peer.kind !== 'sdk') {
          this.protocolViolation(peer, 'UNBIND is only accepted from SDK connections')
          return
        }
        this.onUnbind(peer, f.payload.bindId)
        return
      case FrameType.PING:
        this.sendTo(peer, { type: FrameType.PONG, circuitId: 0, flags: 0, payload: f.payload })
        return
      case FrameType.PONG:
        this.onPong(peer, f.payload)
        return
      case FrameType.GOAWAY:
        peer.draining = true
        this.log.info(
          { code: f.payload.code, message: f.payload.message, ...peer.describe() },
          'peer sent GOAWAY',
        )
        return
      default:
        this.protocolViolation(peer, `unexpected frame type 0x${f.type.toString(16)} after HELLO`)
    }
  }

  private onHelloState(peer: Peer, f: Frame): void {
    if (peer.inbound) {
      if (f.type !== FrameType.HELLO) {
        this.protocolViolation(peer, 'the first frame must be HELLO')
        return
      }
      if (f.payload.role !== peer.kind) {
        this.refusePeer(
          peer,
          'ERR_HELLO',
          `HELLO role "${f.payload.role}" does not match the certificate (a ${peer.kind === 'sdk' ? 'identity' : 'router'} certificate)`,
        )
        return
      }
      this.sendTo(peer, {
        type: FrameType.HELLO_ACK,
        circuitId: 0,
        flags: 0,
        payload: { version: PROTOCOL_VERSION, role: 'router', routerId: this.id },
      })
      this.markReady(peer)
      return
    }
    // Outbound link: waiting for HELLO_ACK.
    if (f.type === FrameType.GOAWAY) {
      this.log.warn(
        { code: f.payload.code, message: f.payload.message, ...peer.describe() },
        'link refused by peer',
      )
      return
    }
    if (f.type !== FrameType.HELLO_ACK || f.payload.routerId !== peer.entityId) {
      this.protocolViolation(peer, 'expected HELLO_ACK from the linked router')
      return
    }
    this.markReady(peer)
  }

  private markReady(peer: Peer): void {
    peer.state = 'ready'
    if (peer.timer) clearTimeout(peer.timer)
    peer.timer = null
    if (peer.kind === 'router') this.registerLink(peer)
    this.log.debug({ ...peer.describe() }, 'connection ready')
  }

  private endOf(leg: Leg<Peer>): { kind: 'sdk' | 'router'; id: string; name: string; circuitId: number } {
    return { kind: leg.peer.kind, id: leg.peer.entityId, name: leg.peer.name, circuitId: leg.id }
  }

  /** Forwards a control frame (already addressed to `to`), through the test hook if any. */
  private forwardCtl(frame: Frame, from: Leg<Peer>, to: Leg<Peer>): boolean {
    if (this.hooks?.onForward) {
      const f2 = this.hooks.onForward(frame, this.endOf(from), this.endOf(to))
      if (!f2) return true
      return this.sendTo(to.peer, f2)
    }
    return this.sendTo(to.peer, frame)
  }

  /** Hot path: DATA and HALF_CLOSE. */
  private onData(peer: Peer, circuitId: number, flags: number, payload: Uint8Array, type: number): void {
    const leg = this.table.lookup(peer, circuitId)
    if (!leg) return
    const c = leg.circuit
    const out = leg.other()
    if (!out) return
    const n = payload.byteLength
    if (type === FrameType.DATA) {
      if (!leg.consume(n)) {
        this.abortCircuit(
          c,
          'ERR_FLOW_CONTROL',
          `the sender exceeded its flow-control window of ${this.table.window} bytes`,
        )
        return
      }
      if (leg === c.a) c.bytesUp += n
      else c.bytesDown += n
      this.bytesForwarded += n
    }
    if (this.hooks?.onForward) {
      const frame = { type, circuitId: out.id, flags, payload } as Frame
      const f2 = this.hooks.onForward(frame, this.endOf(leg), this.endOf(out))
      if (!f2) return
      this.sendTo(out.peer, f2)
      return
    }
    // Bound what this circuit has queued toward the next hop: bytes written and not yet flushed by
    // that socket (released in write order by the peer's flush callback). Bytes already sent do
    // not count, however long the connection stays backed up by other circuits.
    const size = n + 12
    if (out.queued + size > this.limits.maxQueued) {
      this.abortCircuit(
        c,
        'ERR_FLOW_CONTROL',
        `more than ${this.limits.maxQueued} bytes queued toward a slow receiver: it granted credit it could not take`,
      )
      return
    }
    const p = out.peer
    out.queued += size
    p.pushUnflushed(out, size)
    p.conn.forwardData(out.id, flags, payload, type, p.onFlushed)
  }

  private onWindowUpdate(peer: Peer, circuitId: number, credit: number): void {
    const leg = this.table.lookup(peer, circuitId)
    if (!leg) return
    const out = leg.other()
    if (!out) return
    out.inWindow += credit
    if (out.inWindow > 0xffff_ffff) {
      this.abortCircuit(leg.circuit, 'ERR_FLOW_CONTROL', 'WINDOW_UPDATE raised the window above 2^32-1 bytes')
      return
    }
    const frame: Frame = { type: FrameType.WINDOW_UPDATE, circuitId: out.id, flags: 0, payload: { credit } }
    if (this.hooks?.onForward) this.forwardCtl(frame, leg, out)
    else this.sendTo(out.peer, frame)
  }

  private onClose(peer: Peer, f: Extract<Frame, { type: typeof FrameType.CLOSE }>): void {
    const leg = this.table.lookup(peer, f.circuitId)
    if (!leg) return
    const c = leg.circuit
    const out = leg.other()
    if (out) {
      if (c.state === 'dialing' && leg === c.b) {
        // The host closed instead of answering: the dialer learns it as a failed dial.
        this.forwardCtl(
          {
            type: FrameType.DIAL_FAILED,
            circuitId: out.id,
            flags: 0,
            payload: {
              code: f.payload.code ?? 'ERR_DIAL_REFUSED',
              message: f.payload.message ?? 'the host closed the circuit while it was being dialed',
            },
          },
          leg,
          out,
        )
        if (this.isIngress(c)) this.metrics.dial('failed')
      } else {
        this.forwardCtl(
          { type: FrameType.CLOSE, circuitId: out.id, flags: f.flags, payload: f.payload },
          leg,
          out,
        )
      }
    }
    this.removeCircuit(c)
  }

  private isIngress(c: Circuit<Peer>): boolean {
    return c.a.peer.kind === 'sdk'
  }

  /** Closes a circuit from this router: CLOSE {code} (or DIAL_FAILED while dialing) to both ends. */
  private abortCircuit(c: Circuit<Peer>, code: RouterWireCode, message: string): void {
    if (c.state === 'closed') return
    this.log.info(
      { code, circuit: c.meta.tag, service: c.meta.serviceName, dialer: c.meta.dialerName, reason: message },
      'circuit closed by router',
    )
    const msg = message.slice(0, 1024)
    if (c.state === 'dialing') {
      this.sendTo(c.a.peer, {
        type: FrameType.DIAL_FAILED,
        circuitId: c.a.id,
        flags: 0,
        payload: { code, message: msg },
      })
      if (this.isIngress(c)) this.metrics.dial(code === 'ERR_DIAL_TIMEOUT' ? 'timeout' : 'failed')
    } else {
      this.sendTo(c.a.peer, {
        type: FrameType.CLOSE,
        circuitId: c.a.id,
        flags: 0,
        payload: { code, message: msg },
      })
    }
    if (c.b)
      this.sendTo(c.b.peer, {
        type: FrameType.CLOSE,
        circuitId: c.b.id,
        flags: 0,
        payload: { code, message: msg },
      })
    this.removeCircuit(c)
  }

  private removeCircuit(c: Circuit<Peer>): void {
    if (c.state === 'closed') return
    const wasOpen = c.state === 'open'
    this.table.remove(c)
    const n = (this.tags.get(c.meta.tag) ?? 1) - 1
    if (n <= 0) this.tags.delete(c.meta.tag)
    else this.tags.set(c.meta.tag, n)
    const t = this.terminators.get(c.meta.terminatorId)
    if (t && c.b && c.b.peer.kind === 'sdk') {
      t.circuits = Math.max(0, t.circuits - 1)
      for (const b of t.bindings) if (b.peer === c.b.peer) b.circuits = Math.max(0, b.circuits - 1)
    }
    if (this.isIngress(c) && wasOpen) {
      if (this.circuitAdds.has(c.meta.tag)) this.circuitAdds.delete(c.meta.tag)
      else this.circuitDeletes.add(c.meta.tag)
    }
  }

  // ---------------------------------------------------------------- dials

  private refuseDial(
    peer: Peer,
    circuitId: number,
    code: string,
    message: string,
    ctx: Record<string, unknown>,
  ): void {
    const msg = withHint(code, message)
    this.log.info({ code, ...ctx, reason: msg, ...peer.describe() }, 'dial refused')
    this.sendTo(peer, { type: FrameType.DIAL_FAILED, circuitId, flags: 0, payload: { code, message: msg } })
    if (peer.kind === 'sdk') this.metrics.dial('refused')
  }

  private onDial(peer: Peer, circuitId: number, p: DialPayload): void {
    const wrongParity = peer.alloc.isLocal(circuitId)
    if (wrongParity || this.table.has(peer, circuitId)) {
      // docs/protocol.md: DIAL_FAILED, and GOAWAY for a repeated offender.
      if (++peer.idViolations > 8) {
        this.protocolViolation(peer, 'repeated DIALs on invalid circuit ids')
        return
      }
      this.refuseDial(
        peer,
        circuitId,
        'ERR_CIRCUIT_ID',
        wrongParity
          ? `circuit id ${circuitId} has the router's parity: the side that opened the connection uses odd ids`
          : `circuit id ${circuitId} is already in use on this connection`,
        {},
      )
      return
    }
    if (this.table.countOn(peer) >= this.limits.maxCircuitsPerConnection) {
      this.refuseDial(
        peer,
        circuitId,
        'ERR_TOO_MANY_CIRCUITS',
        `a connection may carry at most ${this.limits.maxCircuitsPerConnection} circuits: open another connection`,
        {},
      )
      return
    }
    if (this.stopping) {
      this.refuseDial(
        peer,
        circuitId,
        'ERR_ROUTER_SHUTDOWN',
        'the router is shutting down: dial through another router',
        {},
      )
      return
    }
    if (peer.kind === 'sdk') this.ingressDial(peer, circuitId, p)
    else this.linkDial(peer, circuitId, p)
  }

  private candidates(serviceId: string, hostIdentityId: string | undefined): TerminatorCandidate[] {
    const idx = this.index!
    const out: TerminatorCandidate[] = []
    const seen = new Set<string>()
    for (const t of this.terminators.values()) {
      if (t.serviceId !== serviceId) continue
      if (hostIdentityId && t.identityId !== hostIdentityId) continue
      if (!this.liveBinding(t, false)) continue
      const host = idx.identity(t.identityId)
      if (!host || host.disabled) continue
      seen.add(t.id)
      out.push({
        terminator: {
          id: t.id,
          serviceId: t.serviceId,
          routerId: this.id,
          identityId: t.identityId,
          cost: t.cost,
          precedence: t.precedence,
          createdAt: '',
        },
        routeCost: 0,
        activeCircuits: t.circuits,
      })
    }
    for (const t of idx.terminatorsFor(serviceId)) {
      if (seen.has(t.id) || t.routerId === this.id) continue
      if (hostIdentityId && t.identityId !== hostIdentityId) continue
      const r = idx.router(t.routerId)
      if (!r || r.disabled) continue
      const host = idx.identity(t.identityId)
      if (!host || host.disabled) continue
      const hop = this.nextHopPeer(t.routerId)
      if (!hop) continue
      out.push({ terminator: t, routeCost: this.routes.cost[t.routerId] ?? 1000, activeCircuits: 0 })
    }
    return out
  }

  /** The link to send a circuit toward `routerId`: the route's next hop, else a direct link. */
  private nextHopPeer(routerId: string): Peer | null {
    const usable = (p: Peer | undefined): p is Peer => p !== undefined && p.state === 'ready' && !p.draining
    const hop = this.routes.nextHop[routerId]
    const viaRoute = hop === undefined ? undefined : this.links.get(hop)
    if (usable(viaRoute)) return viaRoute
    const direct = this.links.get(routerId)
    return usable(direct) ? direct : null
  }

  /** A binding of a local terminator to send a dial to (round robin), respecting maxConnections. */
  private liveBinding(t: LocalTerminator, advance: boolean): Binding | null {
    const n = t.bindings.length
    for (let i = 0; i < n; i++) {
      const b = t.bindings[(t.next + i) % n]!
      if (b.removed || b.peer.state !== 'ready' || b.peer.draining) continue
      if (b.maxConnections > 0 && b.circuits >= b.maxConnections) continue
      if (advance) t.next = (t.next + i + 1) % n
      return b
    }
    return null
  }

  private ingressDial(peer: Peer, circuitId: number, p: DialPayload): void {
    const idx = this.index!
    const svc = idx.serviceByName(p.service) ?? idx.service(p.service)
    const ctx = { service: p.service, identity: peer.name }
    if (!svc) {
      this.refuseDial(peer, circuitId, 'ERR_SERVICE_NOT_FOUND', `service "${p.service}" does not exist`, ctx)
      return
    }
    const az = idx.authorize(peer.entityId, svc.id, 'Dial', this.id)
    if (!az.ok) {
      this.refuseDial(peer, circuitId, az.code, az.message, ctx)
      return
    }
    const cands = this.candidates(svc.id, p.hostIdentityId)
    const pick = strategyFor(svc.terminatorStrategy).select(cands, {
      serviceId: svc.id,
      dialerId: peer.entityId,
      random: Math.random,
    })
    if (!pick) {
      // Hosts bound here but every one at its maxConnections: say so, not "no host".
      const full = [...this.terminators.values()].filter(
        (t) =>
          t.serviceId === svc.id &&
          (!p.hostIdentityId || t.identityId === p.hostIdentityId) &&
          t.bindings.some((b) => !b.removed && b.peer.state === 'ready' && !b.peer.draining) &&
          idx.identity(t.identityId) !== undefined &&
          !idx.identity(t.identityId)?.disabled,
      )
      if (full.length > 0) {
        this.refuseDial(
          peer,
          circuitId,
          'ERR_MAX_CONNECTIONS',
          `every host of service ${svc.name} is at its maxConnections: retry later, or raise maxConnections in the host's listen()`,
          ctx,
        )
        return
      }
      if (idx.terminatorsFor(svc.id).some((t) => t.routerId !== this.id)) {
        this.refuseDial(
          peer,
          circuitId,
          'ERR_NO_TERMINATORS',
          `service ${svc.name} is hosted only on routers that router ${this.name} cannot reach now (no link): check \`nullport edge list edge-routers\``,
          ctx,
        )
        return
      }
      this.refuseDial(
        peer,
        circuitId,
        'ERR_NO_TERMINATORS',
        `service ${svc.name} has no host: no identity is bound to it (start the hosting app, or check its Bind policy with \`nullport edge policy-advisor identities HOST ${svc.name}\`)`,
        ctx,
      )
      return
    }
    const t = pick.terminator
    const meta: CircuitMeta = {
      tag: randomBytes(16).toString('hex'),
      serviceId: svc.id,
      serviceName: svc.name,
      dialerId: peer.entityId,
      dialerName: peer.name,
      terminatorId: t.id,
      terminatorRouterId: t.routerId,
      hostIdentityId: t.identityId,
    }
    const payload: DialPayload = {
      service: svc.name,
      dialer: { id: peer.entityId, name: peer.name },
      terminatorId: t.id,
      hostIdentityId: t.identityId,
      circuitTag: meta.tag,
    }
    if (p.e2e) payload.e2e = p.e2e
    if (p.appData) payload.appData = p.appData
    this.dialOut(peer, circuitId, meta, payload, t)
  }

  /** Sends the DIAL toward the terminator (host connection or next link) and arms the timeout. */
  private dialOut(
    peer: Peer,
    circuitId: number,
    meta: CircuitMeta,
    payload: DialPayload,
    t: Terminator,
  ): void {
    let outPeer: Peer | null
    let binding: Binding | null = null
    if (t.routerId === this.id) {
      const lt = this.terminators.get(t.id)
      binding = lt ? this.liveBinding(lt, true) : null
      if (!lt || !binding) {
        this.refuseDial(
          peer,
          circuitId,
          lt ? 'ERR_TERMINATOR_AT_CAPACITY' : 'ERR_INVALID_TERMINATOR',
          lt
            ? `terminator ${t.id} is at its maxConnections`
            : `terminator ${t.id} is not hosted on router ${this.name}`,
          { service: meta.serviceName },
        )
        return
      }
      outPeer = binding.peer
    } else {
      outPeer = this.nextHopPeer(t.routerId)
      if (outPeer === peer || (peer.kind === 'router' && this.tags.has(meta.tag))) {
        // Inconsistent routes would bounce the DIAL between routers: refuse instead of looping.
        outPeer = null
      }
      if (!outPeer) {
        this.refuseDial(peer, circuitId, 'ERR_NO_ROUTE', `no usable route toward router ${t.routerId}`, {
          service: meta.serviceName,
        })
        return
      }
    }
    const c = this.table.open(meta, peer, circuitId)
    this.tags.set(meta.tag, (this.tags.get(meta.tag) ?? 0) + 1)
    let outId: number
    try {
      outId = outPeer.alloc.next()
    } catch {
      this.removeCircuit(c)
      this.refuseDial(peer, circuitId, 'ERR_TOO_MANY_CIRCUITS', 'no free circuit id toward the host', {})
      return
    }
    const out = this.table.attach(c, outPeer, outId)
    if (binding) {
      binding.circuits++
      const lt = this.terminators.get(t.id)
      if (lt) lt.circuits++
    }
    c.timer = setTimeout(() => {
      this.abortCircuit(
        c,
        'ERR_DIAL_TIMEOUT',
        `no answer from the host of "${meta.serviceName}" within ${this.limits.dialTimeoutMs} ms`,
      )
    }, this.limits.dialTimeoutMs)
    this.forwardCtl({ type: FrameType.DIAL, circuitId: outId, flags: 0, payload }, c.a, out)
    this.log.debug(
      { circuit: meta.tag, service: meta.serviceName, terminator: t.id, via: outPeer.entityId },
      'dialing',
    )
  }

  private linkDial(peer: Peer, circuitId: number, p: DialPayload): void {
    const idx = this.index!
    const ctx = { service: p.service, dialer: p.dialer?.name, fromRouter: peer.name }
    if (!p.dialer || !p.terminatorId || !p.hostIdentityId || !p.circuitTag) {
      this.refuseDial(
        peer,
        circuitId,
        'ERR_PROTOCOL',
        'a DIAL over a link needs dialer, terminatorId, hostIdentityId and circuitTag',
        ctx,
      )
      return
    }
    const svc = idx.serviceByName(p.service)
    if (!svc) {
      this.refuseDial(peer, circuitId, 'ERR_SERVICE_NOT_FOUND', `service "${p.service}" does not exist`, ctx)
      return
    }
    // Defense in depth: the dialer must still exist, be enabled and hold a Dial policy.
    const dialer = idx.identity(p.dialer.id)
    if (!dialer) {
      this.refuseDial(
        peer,
        circuitId,
        'ERR_IDENTITY_NOT_FOUND',
        `identity ${p.dialer.id} does not exist`,
        ctx,
      )
      return
    }
    if (dialer.disabled) {
      this.refuseDial(peer, circuitId, 'ERR_IDENTITY_DISABLED', `identity ${dialer.name} is disabled`, ctx)
      return
    }
    if (idx.grantingPolicies(dialer.id, svc.id, 'Dial').length === 0) {
      this.refuseDial(
        peer,
        circuitId,
        'ERR_NO_DIAL_PERMISSION',
        `identity ${dialer.name} may not dial "${svc.name}"`,
        ctx,
      )
      return
    }
    const lt = this.terminators.get(p.terminatorId)
    let t: Terminator | undefined
    if (lt) {
      if (lt.serviceId !== svc.id || lt.identityId !== p.hostIdentityId) {
        this.refuseDial(
          peer,
          circuitId,
          'ERR_INVALID_TERMINATOR',
          `terminator ${lt.id} does not serve "${svc.name}" for that host`,
          ctx,
        )
        return
      }
      t = {
        id: lt.id,
        serviceId: lt.serviceId,
        routerId: this.id,
        identityId: lt.identityId,
        cost: lt.cost,
        precedence: lt.precedence,
        createdAt: '',
      }
    } else {
      t = idx.terminatorsFor(svc.id).find((x) => x.id === p.terminatorId)
      if (!t || t.routerId === this.id || t.identityId !== p.hostIdentityId) {
        this.refuseDial(
          peer,
          circuitId,
          'ERR_INVALID_TERMINATOR',
          `terminator ${p.terminatorId} is not hosted on router ${this.name} or beyond it`,
          ctx,
        )
        return
      }
    }
    const meta: CircuitMeta = {
      tag: p.circuitTag,
      serviceId: svc.id,
      serviceName: svc.name,
      dialerId: dialer.id,
      dialerName: dialer.name,
      terminatorId: t.id,
      terminatorRouterId: t.routerId,
      hostIdentityId: t.identityId,
    }
    this.dialOut(peer, circuitId, meta, { ...p, service: svc.name }, t)
  }

  private onDialAnswer(
    peer: Peer,
    f: Extract<Frame, { type: typeof FrameType.DIAL_SUCCESS | typeof FrameType.DIAL_FAILED }>,
  ): void {
    const leg = this.table.lookup(peer, f.circuitId)
    if (!leg || leg !== leg.circuit.b || leg.circuit.state !== 'dialing') {
      this.log.debug({ circuitId: f.circuitId, ...peer.describe() }, 'dial answer for no pending dial')
      return
    }
    const c = leg.circuit
    const a = c.a
    if (f.type === FrameType.DIAL_FAILED) {
      this.log.info(
        { code: f.payload.code, circuit: c.meta.tag, service: c.meta.serviceName, reason: f.payload.message },
        'dial failed at the host',
      )
      this.forwardCtl({ type: FrameType.DIAL_FAILED, circuitId: a.id, flags: 0, payload: f.payload }, leg, a)
      if (this.isIngress(c)) this.metrics.dial('failed')
      this.removeCircuit(c)
      return
    }
    if (c.timer) clearTimeout(c.timer)
    c.timer = null
    c.state = 'open'
    let payload = f.payload
    if (peer.kind === 'sdk') {
      // The terminating router names the host as its TLS certificate proved it.
      payload = { hostIdentity: { id: peer.entityId, name: peer.name }, circuitTag: c.meta.tag }
      if (f.payload.e2e) payload.e2e = f.payload.e2e
    }
    this.forwardCtl({ type: FrameType.DIAL_SUCCESS, circuitId: a.id, flags: 0, payload }, leg, a)
    if (this.isIngress(c)) {
      this.metrics.dial('success')
      this.circuitAdds.set(c.meta.tag, {
        tag: c.meta.tag,
        serviceId: c.meta.serviceId,
        identityId: c.meta.dialerId,
        hostIdentityId: c.meta.hostIdentityId,
        terminatorId: c.meta.terminatorId,
        routerId: this.id,
        terminatorRouterId: c.meta.terminatorRouterId,
        createdAt: new Date(c.createdAt).toISOString(),
      })
    }
  }

  // ---------------------------------------------------------------- binds

  private async onBind(
    peer: Peer,
    p: {
      bindId: number
      service: string
      cost: number
      precedence: 'default' | 'required' | 'failed'
      maxConnections: number
    },
  ): Promise<void> {
    const existing = peer.binds.get(p.bindId)
    if (existing) {
      if (existing.terminator) {
        this.sendTo(peer, {
          type: FrameType.BIND_SUCCESS,
          circuitId: 0,
          flags: 0,
          payload: { bindId: p.bindId, terminatorId: existing.terminator.id },
        })
      }
      return
    }
    const fail = (code: string, message: string): void => {
      const msg = withHint(code, message)
      this.log.info(
        { code, service: p.service, bindId: p.bindId, reason: msg, ...peer.describe() },
        'bind refused',
      )
      this.sendTo(peer, {
        type: FrameType.BIND_FAILED,
        circuitId: 0,
        flags: 0,
        payload: { bindId: p.bindId, code, message: msg },
      })
    }
    const idx = this.index!
    const svc = idx.serviceByName(p.service) ?? idx.service(p.service)
    if (!svc) return fail('ERR_SERVICE_NOT_FOUND', `service "${p.service}" does not exist`)
    const az = idx.authorize(peer.entityId, svc.id, 'Bind', this.id)
    if (!az.ok) return fail(az.code, az.message)
    if (peer.binds.size >= this.limits.maxBindsPerConnection) {
      return fail(
        'ERR_BIND_FAILED',
        `a connection may hold at most ${this.limits.maxBindsPerConnection} binds`,
      )
    }
    const binding: Binding = {
      peer,
      bindId: p.bindId,
      serviceId: svc.id,
      serviceName: svc.name,
      cost: p.cost,
      precedence: p.precedence,
      maxConnections: p.maxConnections,
      terminator: null,
      circuits: 0,
      removed: false,
    }
    peer.binds.set(p.bindId, binding)
    const key = `${peer.entityId}|${svc.id}`
    // Creates and deletes of the terminator of one (identity, service) run one after another, so
    // an SDK that reconnects and binds again while its old terminator is being deleted gets a
    // fresh one, never a deleted one. The controller's terminators are idempotent per (service,
    // router, identity): every connection of that identity here shares one terminator.
    await this.serial(key, async () => {
      if (binding.removed) return
      const shared = [...this.terminators.values()].find(
        (t) => t.identityId === peer.entityId && t.serviceId === svc.id,
      )
      if (shared) {
        shared.bindings.push(binding)
        binding.terminator = shared
        this.bindSucceeded(binding, shared)
        return
      }
      try {
        const t = await this.fabric.request<Terminator>('POST', '/fabric/v1/terminators', {
          serviceId: svc.id,
          identityId: peer.entityId,
          cost: p.cost,
          precedence: p.precedence,
        })
        if (binding.removed || this.stopping) {
          if (!this.stopping) this.queueTerminatorDelete(t.id, key)
          return
        }
        const lt: LocalTerminator = {
          id: t.id,
          serviceId: svc.id,
          identityId: peer.entityId,
          cost: p.cost,
          precedence: p.precedence,
          bindings: [binding],
          next: 0,
          circuits: 0,
        }
        this.terminators.set(t.id, lt)
        binding.terminator = lt
        this.bindSucceeded(binding, lt)
      } catch (err) {
        peer.binds.delete(p.bindId)
        binding.removed = true
        const e = err as RouterError
        fail(
          e.code === 'ERR_CONTROLLER_UNAVAILABLE' ? 'ERR_CONTROLLER_UNAVAILABLE' : 'ERR_BIND_FAILED',
          `the controller could not create the terminator: ${e.message} (bind again when the controller is back)`,
        )
      }
    })
  }

  private bindSucceeded(b: Binding, t: LocalTerminator): void {
    this.sendTo(b.peer, {
      type: FrameType.BIND_SUCCESS,
      circuitId: 0,
      flags: 0,
      payload: { bindId: b.bindId, terminatorId: t.id },
    })
    this.log.info(
      {
        service: b.serviceName,
        terminator: t.id,
        bindId: b.bindId,
        bindings: t.bindings.length,
        ...b.peer.describe(),
      },
      'bound',
    )
  }

  /**
   * After a resync: terminators this router still serves but the controller no longer has (it
   * deletes a router's terminators when its stream stays down) are created again, so dials through
   * other routers find them. The controller may assign a new id.
   */
  private reconcileTerminators(snapshot: PolicySnapshot): void {
    const known = new Set(snapshot.terminators.map((t) => t.id))
    for (const t of [...this.terminators.values()]) {
      if (known.has(t.id)) continue
      const key = `${t.identityId}|${t.serviceId}`
      void this.serial(key, async () => {
        if (this.terminators.get(t.id) !== t || this.stopping) return
        try {
          const fresh = await this.fabric.request<Terminator>('POST', '/fabric/v1/terminators', {
            serviceId: t.serviceId,
            identityId: t.identityId,
            cost: t.cost,
            precedence: t.precedence,
          })
          if (this.terminators.get(t.id) !== t) {
            if (!this.terminators.has(fresh.id)) this.queueTerminatorDelete(fresh.id, key)
            return
          }
          if (fresh.id !== t.id) {
            const old = t.id
            this.terminators.delete(old)
            t.id = fresh.id
            this.terminators.set(t.id, t)
            for (const c of this.table.all()) if (c.meta.terminatorId === old) c.meta.terminatorId = t.id
          }
          this.log.info({ terminator: t.id, service: t.serviceId }, 'terminator re-created after resync')
        } catch (err) {
          const e = err as RouterError
          this.log.warn({ terminator: t.id, err: e.message }, 'terminator could not be re-created')
          if (e.details?.status === 403) {
            // Bind no longer allowed: the next policy check unbinds the hosts.
            return
          }
        }
      })
    }
  }

  /** Runs `fn` after every earlier task of `key` finished. */
  private serial(key: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.keyChain.get(key) ?? Promise.resolve()
    const next = prev.then(fn).catch((err: unknown) => {
      this.log.error({ err }, 'terminator task failed')
    })
    this.keyChain.set(key, next)
    void next.then(() => {
      if (this.keyChain.get(key) === next) this.keyChain.delete(key)
    })
    return next
  }

  private onUnbind(peer: Peer, bindId: number): void {
    const b = peer.binds.get(bindId)
    if (!b) return
    this.removeBinding(b)
    this.log.info({ service: b.serviceName, bindId, ...peer.describe() }, 'unbound')
  }

  /** Removes a binding; the terminator goes when its last binding does. */
  private removeBinding(b: Binding): void {
    if (b.removed) return
    b.removed = true
    b.peer.binds.delete(b.bindId)
    const t = b.terminator
    if (!t) return
    t.bindings = t.bindings.filter((x) => x !== b)
    if (t.bindings.length === 0) {
      this.terminators.delete(t.id)
      if (!this.stopping) this.queueTerminatorDelete(t.id, `${t.identityId}|${t.serviceId}`)
    }
  }

  /** Deletes a terminator at the controller (serialized with creates of the same key; retried after reconnects). */
  private queueTerminatorDelete(id: string, key: string): void {
    this.pendingTerminatorDeletes.set(id, key)
    void this.serial(key, async () => {
      if (this.terminators.has(id)) {
        this.pendingTerminatorDeletes.delete(id)
        return
      }
      try {
        await this.fabric.request('DELETE', `/fabric/v1/terminators/${encodeURIComponent(id)}`)
        this.pendingTerminatorDeletes.delete(id)
      } catch (err) {
        const e = err as RouterError
        if (e.details?.status === 404) this.pendingTerminatorDeletes.delete(id)
        else
          this.log.warn(
            { terminator: id, err: e.message },
            'terminator delete failed; retrying when the controller is back',
          )
      }
    })
  }

  private retryTerminatorDeletes(): void {
    for (const [id, key] of [...this.pendingTerminatorDeletes]) this.queueTerminatorDelete(id, key)
  }

  // ---------------------------------------------------------------- revocation

  /** Re-checks every connection, terminator and circuit against the current policy data. */
  private recheck(): void {
    if (!this.index || this.stopping) return
    const idx = this.index
    const memo = new Map<string, { ok: boolean; code?: string; message?: string }>()
    const authz = (
      identityId: string,
      serviceId: string,
      type: 'Dial' | 'Bind',
    ): { ok: boolean; code?: string; message?: string } => {
      const k = `${type}|${identityId}|${serviceId}`
      let r = memo.get(k)
      if (!r) {
        r = idx.authorize(identityId, serviceId, type, this.id)
        memo.set(k, r)
      }
      return r
    }
    for (const peer of [...this.peers]) {
      if (peer.state === 'auth' || peer.state === 'closed') continue
      const v = this.peerStillValid(peer)
      if (!v.ok) this.refusePeer(peer, v.code, v.message)
    }
    for (const t of [...this.terminators.values()]) {
      const r = authz(t.identityId, t.serviceId, 'Bind')
      if (r.ok) continue
      const msg = `Bind permission revoked (${r.code}): ${r.message ?? ''}`.slice(0, 1024)
      this.log.info({ code: 'ERR_REVOKED', reason: r.code, terminator: t.id }, 'terminator revoked')
      for (const b of [...t.bindings]) {
        this.sendTo(b.peer, {
          type: FrameType.UNBIND,
          circuitId: 0,
          flags: 0,
          payload: { bindId: b.bindId, code: 'ERR_REVOKED', message: msg },
        })
        this.removeBinding(b)
      }
      for (const c of [...this.table.all()])
        if (c.meta.terminatorId === t.id) this.abortCircuit(c, 'ERR_REVOKED', msg)
    }
    for (const c of [...this.table.all()]) {
      if (c.state === 'closed') continue
      const m = c.meta
      const dialer = idx.identity(m.dialerId)
      if (!dialer || dialer.disabled) {
        this.abortCircuit(
          c,
          'ERR_REVOKED',
          `the dialing identity ${m.dialerName} was ${dialer ? 'disabled' : 'deleted'}`,
        )
        continue
      }
      const host = idx.identity(m.hostIdentityId)
      if (!host || host.disabled) {
        this.abortCircuit(c, 'ERR_REVOKED', `the hosting identity was ${host ? 'disabled' : 'deleted'}`)
        continue
      }
      if (!idx.service(m.serviceId)) {
        this.abortCircuit(c, 'ERR_REVOKED', `service ${m.serviceName} was deleted`)
        continue
      }
      if (this.isIngress(c)) {
        const r = authz(m.dialerId, m.serviceId, 'Dial')
        if (!r.ok) {
          this.abortCircuit(c, 'ERR_REVOKED', `Dial permission revoked (${r.code}): ${r.message ?? ''}`)
          continue
        }
      } else if (idx.grantingPolicies(m.dialerId, m.serviceId, 'Dial').length === 0) {
        this.abortCircuit(c, 'ERR_REVOKED', `Dial permission revoked for ${m.dialerName}`)
        continue
      }
      if (
        m.terminatorRouterId !== this.id &&
        idx.grantingPolicies(m.hostIdentityId, m.serviceId, 'Bind').length === 0
      ) {
        this.abortCircuit(c, 'ERR_REVOKED', 'the host lost its Bind permission')
      }
    }
  }

  // ---------------------------------------------------------------- links

  private refreshLinks(): void {
    if (!this.index || this.stopping) return
    const desired = new Map<string, string>()
    for (const r of this.routerList.values()) {
      if (r.id === this.id || r.disabled || !r.advertise) continue
      if (this.id < r.id) desired.set(r.id, r.advertise)
    }
    for (const [id, d] of this.linkDialers) {
      if (!desired.has(id)) {
        if (d.timer) clearTimeout(d.timer)
        this.linkDialers.delete(id)
        d.peer?.conn.close('ERR_ROUTER_NOT_FOUND', 'router no longer linked')
      }
    }
    for (const id of desired.keys()) {
      let d = this.linkDialers.get(id)
      if (!d) {
        d = {
          routerId: id,
          backoff: new Backoff({ baseMs: 250, maxMs: 10_000 }),
          timer: null,
          connecting: false,
          peer: null,
        }
        this.linkDialers.set(id, d)
      }
      if (!d.peer && !d.connecting && !d.timer) this.dialLink(d)
    }
  }

  private scheduleLinkDial(d: LinkDialer): void {
    if (this.stopping || d.timer || this.linkDialers.get(d.routerId) !== d) return
    const delay = d.backoff.next()
    d.timer = setTimeout(() => {
      d.timer = null
      this.dialLink(d)
    }, delay)
    d.timer.unref()
  }

  private dialLink(d: LinkDialer): void {
    if (this.stopping || !this.index) return
    const r = this.index.router(d.routerId)
    if (!r?.advertise || r.disabled) return
    let hp: { host: string; port: number }
    try {
      hp = parseHostPort(r.advertise, 'advertise')
    } catch {
      this.log.warn({ peerRouter: r.id, advertise: r.advertise }, 'router advertises an invalid address')
      return
    }
    d.connecting = true
    const expected = r.id
    const socket = tls.connect({
      host: hp.host,
      port: hp.port,
      cert: this.identity.cert,
      key: this.identity.key,
      ca: this.identity.ca,
      ...(isIP(hp.host) ? {} : { servername: hp.host }),
      minVersion: 'TLSv1.2',
      checkServerIdentity: (_host, cert) => {
        const s = spiffeOf(cert.subjectaltname, this.trustDomain)
        if (s?.kind !== 'router' || s.id !== expected) {
          return new Error(
            `the router at ${r.advertise} is not ${expected} (certificate names ${s ? `${s.kind}/${s.id}` : 'nothing'})`,
          )
        }
        return undefined
      },
    })
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 15_000)
    const conn = new FrameConnection(socket)
    const peer: Peer = new Peer(conn, false, (id: number): boolean => this.table.has(peer, id))
    peer.kind = 'router'
    peer.entityId = expected
    peer.name = r.name
    peer.state = 'hello'
    this.wirePeer(peer)
    const timer = setTimeout(() => {
      this.refusePeer(peer, 'ERR_HANDSHAKE_TIMEOUT', 'link handshake timed out')
    }, this.limits.handshakeTimeoutMs)
    peer.timer = timer
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate()
      if (cert) peer.fingerprint = certFingerprint(cert)
      this.peers.add(peer)
      const v = this.peerStillValid(peer)
      if (!v.ok) {
        this.refusePeer(peer, v.code, v.message)
        return
      }
      this.sendTo(peer, {
        type: FrameType.HELLO,
        circuitId: 0,
        flags: 0,
        payload: { version: PROTOCOL_VERSION, role: 'router', agent: AGENT },
      })
    })
    conn.once('close', () => {
      d.connecting = false
      if (peer.state !== 'ready' && d.peer !== peer) {
        // never became a link
        this.peers.delete(peer)
        this.log.debug({ peerRouter: expected }, 'link attempt failed')
        this.scheduleLinkDial(d)
      }
    })
    d.peer = null
    const onReady = (): void => {
      d.connecting = false
      d.peer = peer
      d.backoff.reset()
    }
    peer.onReady = onReady
  }

  private registerLink(peer: Peer): void {
    const existing = this.links.get(peer.entityId)
    if (existing && existing !== peer) {
      this.log.info({ peerRouter: peer.entityId }, 'replacing an older link')
      this.links.delete(peer.entityId)
      existing.conn.close('ERR_LINK_REPLACED', 'a newer link to this router replaced this one')
    }
    this.links.set(peer.entityId, peer)
    peer.onReady?.()
    this.log.info(
      { peerRouter: peer.entityId, name: peer.name, direction: peer.inbound ? 'in' : 'out' },
      'link up',
    )
    peer.pingTimer = setInterval(() => this.pingLink(peer), this.limits.pingMs)
    peer.pingTimer.unref()
    this.pingLink(peer)
  }

  /** PINGs a link or an SDK connection; one that leaves PINGs unanswered for a while is dropped. */
  private pingLink(peer: Peer): void {
    if (peer.state !== 'ready') return
    if (peer.pingSent.size >= 3) {
      peer.missedPings++
      if (peer.missedPings >= 3) {
        this.log.warn({ ...peer.describe() }, 'peer unresponsive to PING; dropping the connection')
        peer.conn.destroy()
        return
      }
    }
    const seq = ++peer.pingSeq >>> 0
    const payload = Buffer.alloc(8)
    payload.writeUInt32BE(seq, 0)
    peer.pingSent.set(seq, performance.now())
    if (peer.pingSent.size > 8) {
      const first = peer.pingSent.keys().next().value
      if (first !== undefined) peer.pingSent.delete(first)
    }
    this.sendTo(peer, { type: FrameType.PING, circuitId: 0, flags: 0, payload })
  }

  private onPong(peer: Peer, payload: Uint8Array): void {
    if (payload.byteLength !== 8) return
    const seq = Buffer.from(payload.buffer, payload.byteOffset, 8).readUInt32BE(0)
    const sent = peer.pingSent.get(seq)
    if (sent === undefined) return
    peer.pingSent.delete(seq)
    for (const k of [...peer.pingSent.keys()]) if (k < seq) peer.pingSent.delete(k)
    peer.missedPings = 0
    if (peer.kind !== 'router') return
    const rtt = performance.now() - sent
    peer.latencyMs = peer.latencyMs === null ? rtt : peer.latencyMs * 0.7 + rtt * 0.3
    const prev = peer.reportedLatencyMs
    if (prev === null || Math.abs(peer.latencyMs - prev) > Math.max(1, prev * 0.25)) this.scheduleLinkReport()
  }

  private scheduleLinkReport(): void {
    if (this.linkReportSoon || this.stopping) return
    this.linkReportSoon = setTimeout(() => {
      this.linkReportSoon = null
      this.reportLinks()
    }, 200)
    this.linkReportSoon.unref()
  }

  private reportLinks(): void {
    if (this.stopping) return
    const peers: Array<{ routerId: string; latencyMs: number }> = []
    for (const [id, p] of this.links) {
      if (p.state !== 'ready') continue
      const ms = p.latencyMs ?? 1
      p.reportedLatencyMs = ms
      peers.push({ routerId: id, latencyMs: Math.max(0, Math.round(ms * 100) / 100) })
    }
    this.fabric.request('POST', '/fabric/v1/links', { peers }).catch((err: Error) => {
      this.log.debug({ err: err.message }, 'link report failed')
    })
  }

  // ---------------------------------------------------------------- circuit reports

  private flushCircuitReports(): void {
    if (this.stopping) return
    if (this.circuitAdds.size > 0) {
      const circuits = [...this.circuitAdds.values()]
      this.circuitAdds.clear()
      this.fabric.request('POST', '/fabric/v1/circuits', { circuits }).catch((err: Error) => {
        this.log.debug({ err: err.message, count: circuits.length }, 'circuit report failed (best effort)')
      })
    }
    if (this.circuitDeletes.size > 0) {
      const tags = [...this.circuitDeletes].slice(0, 256)
      for (const tag of tags) {
        this.circuitDeletes.delete(tag)
        this.fabric.request('DELETE', `/fabric/v1/circuits/${tag}`).catch(() => {})
      }
    }
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
  let identity: IdentityFile
  try {
    identity = typeof opts.identity === 'string' ? await loadIdentityFile(opts.identity) : opts.identity
  } catch (err) {
    const e = err as Error & { code?: string }
    if (e.code === 'ERR_IDENTITY_FILE_MISSING') {
      throw new RouterError(
        'ERR_ROUTER_IDENTITY',
        `router identity file ${String(opts.identity)} cannot be read: enroll the router first with \`nullport router enroll ROUTER.jwt --advertise HOST:PORT -o router.json\``,
        { path: opts.identity },
        { cause: err },
      )
    }
    throw err
  }
  if (identity.kind !== 'router') {
    throw new RouterError(
      'ERR_ROUTER_IDENTITY',
      `the identity file of ${identity.name} is a ${identity.kind} identity: enroll a router with \`nullport router enroll\``,
      {
        kind: identity.kind,
      },
    )
  }
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(identity.cert)
  } catch (err) {
    throw new RouterError(
      'ERR_ROUTER_IDENTITY',
      `the router certificate cannot be parsed: ${(err as Error).message}`,
      {},
      { cause: err },
    )
  }
  const s = spiffeOf(leaf.subjectAltName, identity.trustDomain)
  if (s?.kind !== 'router' || s.id !== identity.id) {
    throw new RouterError(
      'ERR_ROUTER_IDENTITY',
      `the router certificate does not name spiffe://${identity.trustDomain}/router/${identity.id}: re-enroll the router`,
      {},
    )
  }
  if (new Date(leaf.validTo).getTime() < Date.now()) {
    throw new RouterError(
      'ERR_ROUTER_IDENTITY',
      `the router certificate expired at ${leaf.validTo}: re-enroll the router (nullport edge re-enroll edge-router ${identity.name})`,
      {},
    )
  }
  const r = new Router(identity, opts, typeof opts.identity === 'string' ? opts.identity : null)
  try {
    await r.start()
  } catch (err) {
    await r.stop().catch(() => {})
    throw err
  }
  return r
}
