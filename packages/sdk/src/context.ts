import { EventEmitter } from 'node:events'
import {
  type ClientService,
  type E2EOwnIdentity,
  type IdentityFile,
  loadIdentityFile,
  parseIdentityFile,
} from '@nullport/protocol'
import { type ContextOptions, contextTimings, controllerUrl } from './context-options.js'
import { ControlSync } from './control-sync.js'
import { ControllerClient } from './controller-client.js'
import { Dialer, type DialOptions } from './dialer.js'
import { SdkError } from './errors.js'
import { Hosting } from './hosting.js'
import { type Logger, silentLogger } from './logger.js'
import type { ListenOptions, OverlayServer } from './overlay-server.js'
import type { OverlaySocket, PeerIdentity } from './overlay-socket.js'
import { type CertificateInfo, CertRenewer, certificateInfo, checkRenewOption } from './renew.js'
import type { TlsCredentials } from './router-connection.js'
import { type EdgeRouterState, RouterPool } from './router-pool.js'
import { StallWatch } from './stall-watch.js'

/**
 * An identity's view of the network: authenticated to the controller with its certificate, it
 * keeps the list of services it may use current (pushed over server-sent events, never
 * polled), holds TLS connections to edge routers (preferring the lowest measured latency), and
 * dials and hosts services. Several contexts may live in one process.
 *
 * Events: 'services' (ClientService[]), 'routers' (ClientEdgeRouter[]), 'revoked' (SdkError
 * ERR_IDENTITY_REVOKED: everything was closed), 'certificate' (CertificateInfo & { previous }:
 * the certificate was renewed), 'renewError' (SdkError ERR_RENEW_FAILED, with `retryInMs` in its
 * details, null when it will not retry), 'stall' ({ lagMs, at }: the process's event loop was
 * blocked that long, so nothing was served meanwhile; option `stallWarningMs`), 'close'.
 *
 * @example
 * const ctx = await loadContext('./alice.json')
 * const socket = await ctx.dial('echo')
 * socket.end('hi')
 * await ctx.close()
 */
export class Context extends EventEmitter {
  /** Who this context is (from the identity file, confirmed by the controller). */
  readonly identity: PeerIdentity
  private file: IdentityFile
  private readonly renewer: CertRenewer
  private readonly logger: Logger
  private readonly controller: ControllerClient
  private readonly creds: TlsCredentials
  private readonly e2eOwn: E2EOwnIdentity
  private readonly connectTimeoutMs: number
  private readonly sync: ControlSync
  private readonly pool: RouterPool
  private readonly dialer: Dialer
  private readonly hosting: Hosting
  private closedFlag = false
  private readonly stallWatch: StallWatch | null

  /** @internal Use `loadContext()`. */
  constructor(file: IdentityFile, opts: ContextOptions = {}, filePath: string | null = null) {
    super()
    this.file = file
    const renew = checkRenewOption(opts.renew)
    this.identity = { id: file.id, name: file.name }
    this.logger = opts.logger ?? silentLogger
    this.creds = { cert: file.cert, key: file.key, ca: file.ca, trustDomain: file.trustDomain }
    this.e2eOwn = { certChainPem: file.cert, keyPem: file.key }
    const t = contextTimings(opts)
    this.connectTimeoutMs = t.connectTimeoutMs
    this.stallWatch =
      t.stallWarningMs === null
        ? null
        : new StallWatch(t.stallWarningMs, (r) => {
            this.logger.warn?.({ lagMs: r.lagMs }, 'the event loop was blocked: nothing was served meanwhile')
            this.emit('stall', r)
          })
    this.stallWatch?.start()
    this.controller = new ControllerClient(controllerUrl(opts, file.controller), this.creds)
    this.sync = new ControlSync({
      identity: this.identity,
      controller: this.controller,
      logger: this.logger,
      reconnect: t.reconnect,
      eventsIdleTimeoutMs: t.eventsIdleTimeoutMs,
      sink: {
        routersChanged: (list) => {
          this.pool.apply(list)
          this.emit('routers', this.pool.routers())
        },
        servicesChanged: () => {
          this.hosting.reconcileAll(true)
          this.emit('services', this.services())
        },
        revoked: (reason) => this.revoke(reason),
      },
    })
    this.hosting = new Hosting({
      identity: this.identity,
      e2eOwn: this.e2eOwn,
      caPem: file.ca,
      logger: this.logger,
      sync: this.sync,
      readyRouters: () => this.pool.ready(),
      routerCount: () => this.pool.size,
    })
    this.pool = new RouterPool({
      credentials: this.creds,
      agent: t.agent,
      logger: this.logger,
      connectTimeoutMs: t.connectTimeoutMs,
      pingIntervalMs: t.pingIntervalMs,
      reconnect: t.reconnect,
      onDial: this.hosting.route,
      onConnected: () => this.hosting.reconcileAll(false),
      onCertificateRefused: () => this.sync.checkRevoked(),
    })
    this.dialer = new Dialer({
      identity: this.identity,
      e2eOwn: this.e2eOwn,
      caPem: file.ca,
      dialTimeoutMs: t.dialTimeoutMs,
      sync: this.sync,
      pool: this.pool,
    })
    this.renewer = new CertRenewer(
      {
        identity: this.identity,
        trustDomain: file.trustDomain,
        caPem: file.ca,
        currentCert: () => this.creds.cert,
        requestRenewal: (csr) => this.controller.renew(csr),
        apply: (cert, key) => {
          // new connections (controller, routers) and e2e hellos use it; live ones continue
          this.creds.cert = cert
          this.creds.key = key
          this.e2eOwn.certChainPem = cert
          this.e2eOwn.keyPem = key
          this.file = { ...this.file, cert, key }
          this.controller.setCredentials({ cert, key })
        },
        filePath,
        fileContent: () => this.file,
        onRenewed: (info) => {
          this.logger.info?.({ ...info, identity: this.identity.name }, 'certificate renewed')
          this.emit('certificate', info)
        },
        onFailed: (err, retryInMs) => {
          const e = new SdkError(
            err.code === 'ERR_IDENTITY_REVOKED' ? 'ERR_RENEW_FAILED' : err.code,
            err.message,
            {
              ...err.details,
              retryInMs,
            },
            { cause: err },
          )
          this.logger.warn?.({ err: e, retryInMs }, 'certificate renewal failed')
          if (this.listenerCount('renewError') > 0) this.emit('renewError', e)
        },
      },
      renew,
    )
  }

  /** The identity certificate in use: fingerprint and validity. */
  certificate(): CertificateInfo {
    return certificateInfo(this.creds.cert)
  }

  /**
   * Renews the identity certificate now (automatic renewal does this on its own): resolves with
   * the new certificate's info, or rejects with ERR_RENEW_FAILED (the old certificate stays in use).
   */
  async renewCertificate(): Promise<CertificateInfo> {
    if (this.closedFlag) throw new SdkError('ERR_CONTEXT_CLOSED', 'the context is closed')
    return this.renewer.renew()
  }

  /** @internal Authenticates, fetches services and routers, subscribes to events, connects routers. */
  async start(): Promise<void> {
    await this.sync.authenticate()
    await this.sync.refresh()
    this.sync.subscribe()
    this.renewer.start()
    // Wait (bounded) for the first router connections, so that the first dial does not have to.
    await this.pool.firstConnection(this.connectTimeoutMs)
  }

  /** True after close() or revocation. */
  get closed(): boolean {
    return this.closedFlag
  }

  /** The services this identity may Dial or Bind (current: kept up to date by pushed changes). */
  services(): ClientService[] {
    return this.sync.services().slice()
  }

  /** Edge routers this identity may use, with `connected` and measured `latencyMs`. */
  edgeRouters(): EdgeRouterState[] {
    return this.pool.edgeRouters()
  }

  /**
   * Dials a service by name. Resolves with a connected OverlaySocket once the host accepted (and,
   * with end-to-end encryption, both ends verified each other). Fails closed with an SdkError:
   * ERR_SERVICE_NOT_FOUND, ERR_NO_DIAL_PERMISSION, ERR_NO_EDGE_ROUTERS, ERR_NO_TERMINATORS,
   * ERR_DIAL_TIMEOUT, ERR_DIAL_ABORTED, ERR_E2E_*, or the router's DIAL_FAILED code.
   *
   * @example
   * const socket = await ctx.dial('db', { timeoutMs: 5000 })
   * socket.pipe(process.stdout)
   */
  async dial(service: string, opts: DialOptions = {}): Promise<OverlaySocket> {
    if (this.closedFlag) throw new SdkError('ERR_CONTEXT_CLOSED', 'the context is closed')
    return this.dialer.dial(service, opts)
  }

  /**
   * Hosts a service: binds it on the edge routers this identity may use for it, without any
   * listening socket. See OverlayServer for events.
   *
   * @example
   * const server = ctx.listen('echo', { cost: 10, maxConnections: 50 })
   * server.on('connection', (s) => { console.log('from', s.remoteIdentity.name); s.pipe(s) })
   * server.on('error', (err) => console.error(err.code, err.message))
   */
  listen(service: string, opts: ListenOptions = {}): OverlayServer {
    if (this.closedFlag) throw new SdkError('ERR_CONTEXT_CLOSED', 'the context is closed')
    return this.hosting.listen(service, opts)
  }

  private revoke(reason: string): void {
    if (this.closedFlag) return
    const err = new SdkError(
      'ERR_IDENTITY_REVOKED',
      `identity ${this.identity.name} was revoked (${reason}): every circuit and listener is closed; re-enroll it with \`nullport edge re-enroll ${this.identity.name}\``,
      { identity: this.identity },
    )
    this.shutdown(err)
    this.emit('revoked', err)
    this.emit('close')
  }

  /** Closes everything; sockets fail with `err`, or (`quiet`, an application's close()) end without one. */
  private shutdown(err: SdkError, quiet = false): void {
    if (this.closedFlag) return
    this.closedFlag = true
    this.stallWatch?.stop()
    this.renewer.stop()
    this.sync.close()
    const socketErr = quiet ? undefined : err
    this.hosting.destroyAll(socketErr)
    this.dialer.destroyAll(socketErr)
    this.pool.close(err, quiet)
    this.controller.close()
  }

  /**
   * Closes every circuit (destroyed without an error, their peers see the circuit closed),
   * listener and router connection of this context, and the event stream. Close servers first
   * (`server.close()`) and end sockets for a graceful drain.
   */
  async close(): Promise<void> {
    if (this.closedFlag) return
    this.shutdown(new SdkError('ERR_CONTEXT_CLOSED', 'the context was closed'), true)
    this.emit('close')
  }
}

/**
 * Loads an identity (a file written by enrollment, or its parsed content) and connects it to the
 * network: authenticates to the controller with the identity's certificate, fetches the services
 * and edge routers it may use, subscribes to pushed changes, and connects to the routers.
 *
 * @example
 * import { loadContext } from '@nullport/sdk'
 * const ctx = await loadContext('/etc/nullport/web.json')
 * console.log(ctx.identity.name, ctx.services().map((s) => s.name))
 */
export async function loadContext(
  pathOrIdentityFile: string | IdentityFile,
  opts: ContextOptions = {},
): Promise<Context> {
  let file: IdentityFile
  if (typeof pathOrIdentityFile === 'string') {
    file = await loadIdentityFile(pathOrIdentityFile)
  } else {
    file = parseIdentityFile(pathOrIdentityFile)
  }
  if (file.kind !== 'identity') {
    throw new SdkError(
      'ERR_IDENTITY_FILE',
      `${file.name} is a ${file.kind} identity file: the SDK needs an identity (not a router) file`,
    )
  }
  const ctx = new Context(file, opts, typeof pathOrIdentityFile === 'string' ? pathOrIdentityFile : null)
  try {
    await ctx.start()
  } catch (err) {
    await ctx.close()
    throw err
  }
  return ctx
}
