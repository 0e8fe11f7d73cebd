import { EventEmitter } from 'node:events'
import {
  type ClientEdgeRouter,
  type ClientEvent,
  type ClientService,
  type DialPayload,
  dialerFinish,
  dialerHello,
  type E2EOwnIdentity,
  type E2ESession,
  FrameType,
  type IdentityFile,
  loadIdentityFile,
  parseIdentityFile,
} from '@nullport/protocol'
import { Backoff, type BackoffOptions } from './backoff.js'
import { ControllerClient } from './controller-client.js'
import { SdkError } from './errors.js'
import { type Logger, silentLogger } from './logger.js'
import { type ListenOptions, OverlayServer, type ServerHost } from './overlay-server.js'
import { OverlaySocket, type PeerIdentity } from './overlay-socket.js'
import { remoteError, wireCode, wireMessage } from './remote-error.js'
import {
  type CertificateInfo,
  CertRenewer,
  certificateInfo,
  checkRenewOption,
  type RenewOption,
} from './renew.js'
import { RouterConnection, type TlsCredentials } from './router-connection.js'

/** Options of `loadContext()`. */
export interface ContextOptions {
  /** pino-compatible logger. Default: silent. */
  logger?: Logger
  /** Controller URL; default: the one in the identity file. */
  controller?: string
  /** TLS connect + HELLO timeout for routers, in ms. Default 10000. */
  connectTimeoutMs?: number
  /** Interval of router latency pings, in ms. Default 15000. */
  pingIntervalMs?: number
  /** Default dial timeout, in ms. Default 15000. */
  dialTimeoutMs?: number
  /** Backoff of reconnects to the controller event stream and to routers. Default 250 ms .. 30 s. */
  reconnect?: BackoffOptions
  /** If the event stream is silent this long (ms), it is reconnected. Default 90000. */
  eventsIdleTimeoutMs?: number
  /** Agent string sent in HELLO. Default `nullport-sdk-node/<version>`. */
  agent?: string
  /**
   * Automatic renewal of the identity certificate: `{ fraction }` renews once that share of its
   * lifetime has passed (default 2/3); `false` disables it. A context loaded from a file rewrites
   * the file (atomically, 0600) with the renewed certificate and key.
   */
  renew?: RenewOption
}

/** Options of `ctx.dial()`. */
export interface DialOptions {
  /** Give up after this many ms (ERR_DIAL_TIMEOUT). Default: the context's dialTimeoutMs (15000). */
  timeoutMs?: number
  /** Caller data for host.v1 forwarding (tunnelers). */
  appData?: DialPayload['appData']
  /** Abort the dial (ERR_DIAL_ABORTED). */
  signal?: AbortSignal
  /** `allowHalfOpen` of the socket (like net.Socket). Default false. */
  allowHalfOpen?: boolean
}

interface RouterSlot {
  info: ClientEdgeRouter
  conn: RouterConnection | null
  connecting: Promise<RouterConnection> | null
  backoff: Backoff
  timer: NodeJS.Timeout | null
  lastError: Error | null
}

function checkPositiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v <= 0)
    throw new SdkError('ERR_INVALID_OPTION', `option ${name} must be a positive integer (ms), got ${v}`)
  return v
}

/**
 * An identity's view of the network: authenticated to the controller with its certificate, it
 * keeps the list of services it may use current (pushed over server-sent events, never
 * polled), holds TLS connections to edge routers (preferring the lowest measured latency), and
 * dials and hosts services. Several contexts may live in one process.
 *
 * Events: 'services' (ClientService[]), 'routers' (ClientEdgeRouter[]), 'revoked' (SdkError
 * ERR_IDENTITY_REVOKED: everything was closed), 'certificate' (CertificateInfo & { previous }:
 * the certificate was renewed), 'renewError' (SdkError ERR_RENEW_FAILED, with `retryInMs` in its
 * details, null when it will not retry), 'close'.
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
  private readonly opts: {
    connectTimeoutMs: number
    pingIntervalMs: number
    dialTimeoutMs: number
    eventsIdleTimeoutMs: number
    reconnect: BackoffOptions
    agent: string
  }
  private serviceList: ClientService[] = []
  private serviceByName = new Map<string, ClientService>()
  private routerList: ClientEdgeRouter[] = []
  private readonly routers = new Map<string, RouterSlot>()
  private readonly servers = new Map<string, OverlayServer>()
  private readonly dialed = new Set<OverlaySocket>()
  private closeEvents: (() => void) | null = null
  private eventsBackoff: Backoff
  private eventsTimer: NodeJS.Timeout | null = null
  private refreshing: Promise<void> | null = null
  private refreshAgain = false
  private closedFlag = false
  private readonly serverHost: ServerHost

  /** @internal Use `loadContext()`. */
  constructor(file: IdentityFile, opts: ContextOptions = {}, filePath: string | null = null) {
    super()
    this.file = file
    const renew = checkRenewOption(opts.renew)
    this.identity = { id: file.id, name: file.name }
    this.logger = opts.logger ?? silentLogger
    this.creds = { cert: file.cert, key: file.key, ca: file.ca, trustDomain: file.trustDomain }
    this.e2eOwn = { certChainPem: file.cert, keyPem: file.key }
    this.opts = {
      connectTimeoutMs: checkPositiveInt('connectTimeoutMs', opts.connectTimeoutMs, 10_000),
      pingIntervalMs: checkPositiveInt('pingIntervalMs', opts.pingIntervalMs, 15_000),
      dialTimeoutMs: checkPositiveInt('dialTimeoutMs', opts.dialTimeoutMs, 15_000),
      eventsIdleTimeoutMs: checkPositiveInt('eventsIdleTimeoutMs', opts.eventsIdleTimeoutMs, 90_000),
      reconnect: opts.reconnect ?? {},
      agent: opts.agent ?? 'nullport-sdk-node/0.1.0',
    }
    this.eventsBackoff = new Backoff(this.opts.reconnect)
    let controllerUrl: string
    try {
      controllerUrl = new URL(opts.controller ?? file.controller).toString()
    } catch (err) {
      throw new SdkError(
        'ERR_INVALID_OPTION',
        `option controller must be an https:// URL`,
        {},
        { cause: err },
      )
    }
    this.controller = new ControllerClient(controllerUrl, this.creds)
    this.serverHost = {
      identity: this.identity,
      e2eOwn: this.e2eOwn,
      caPem: file.ca,
      logger: this.logger,
      serviceInfo: (name) => this.serviceByName.get(name),
      readyRouters: () => this.readyRouters(),
      removeServer: (server) => {
        if (this.servers.get(server.service) === server) this.servers.delete(server.service)
      },
    }
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
    const who = await this.controller.authenticate()
    if (who && typeof who.id === 'string' && who.id !== this.identity.id) {
      throw new SdkError(
        'ERR_AUTHENTICATION_FAILED',
        `the controller authenticated this certificate as ${who.id}, but the identity file says ${this.identity.id}`,
      )
    }
    await this.refresh()
    this.subscribe()
    this.renewer.start()
    // Wait (bounded) for the first router connections, so that the first dial does not have to.
    const pending = [...this.routers.values()]
      .map((s) => s.connecting)
      .filter((p): p is Promise<RouterConnection> => p !== null)
    if (pending.length > 0) {
      await Promise.race([
        Promise.any(pending).catch(() => undefined),
        new Promise((r) => setTimeout(r, this.opts.connectTimeoutMs).unref()),
      ])
    }
  }

  /** True after close() or revocation. */
  get closed(): boolean {
    return this.closedFlag
  }

  /** The services this identity may Dial or Bind (current: kept up to date by pushed changes). */
  services(): ClientService[] {
    return this.serviceList.slice()
  }

  /** Edge routers this identity may use, with `connected` and measured `latencyMs`. */
  edgeRouters(): Array<ClientEdgeRouter & { connected: boolean; latencyMs: number | null }> {
    return this.routerList.map((r) => {
      const c = this.routers.get(r.id)?.conn
      const ok = c?.ready ?? false
      return { ...r, connected: ok, latencyMs: ok && Number.isFinite(c!.latencyMs) ? c!.latencyMs : null }
    })
  }

  // ---------------------------------------------------------------------------------------------
  // controller: services, routers, events

  private async refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true
      return this.refreshing
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false
        const [services, routers] = await Promise.all([
          this.controller.services(),
          this.controller.edgeRouters(),
        ])
        if (this.closedFlag) return
        this.applyRouters(routers)
        this.applyServices(services)
      } while (this.refreshAgain && !this.closedFlag)
    })().finally(() => {
      this.refreshing = null
    })
    return this.refreshing
  }

  private applyServices(list: ClientService[]): void {
    this.serviceList = list
    this.serviceByName = new Map(list.map((s) => [s.name, s]))
    for (const s of this.servers.values()) s.reconcile(true)
    this.emit('services', this.services())
  }

  private applyRouters(list: ClientEdgeRouter[]): void {
    this.routerList = list
    const seen = new Set<string>()
    for (const r of list) {
      if (!r.advertise) continue
      seen.add(r.id)
      const slot = this.routers.get(r.id)
      if (slot) {
        const moved = slot.info.advertise !== r.advertise
        slot.info = r
        if (moved && slot.conn) slot.conn.close()
        if (!slot.conn && !slot.connecting && r.isOnline) this.connectRouter(slot)
        continue
      }
      const s: RouterSlot = {
        info: r,
        conn: null,
        connecting: null,
        backoff: new Backoff(this.opts.reconnect),
        timer: null,
        lastError: null,
      }
      this.routers.set(r.id, s)
      if (r.isOnline) this.connectRouter(s)
    }
    for (const [id, slot] of this.routers) {
      if (seen.has(id)) continue
      this.routers.delete(id)
      if (slot.timer) clearTimeout(slot.timer)
      slot.conn?.close(
        new SdkError(
          'ERR_NO_EDGE_ROUTERS',
          `router ${slot.info.name} may no longer be used by this identity`,
        ),
      )
    }
    this.emit('routers', this.routerList.slice())
  }

  private subscribe(): void {
    if (this.closedFlag) return
    let opened = false
    this.closeEvents = this.controller.events(
      () => {
        opened = true
        this.eventsBackoff.reset()
        this.logger.debug?.({}, 'event stream open')
        // Changes may have happened while we were not subscribed.
        this.refresh().catch((err) => this.logger.warn?.({ err }, 'refresh failed'))
      },
      (ev) => this.onEvent(ev),
      (err) => {
        this.closeEvents = null
        if (this.closedFlag) return
        if ((err as SdkError).code === 'ERR_IDENTITY_REVOKED') {
          this.revoke((err as SdkError).message)
          return
        }
        const delay = this.eventsBackoff.next()
        this.logger.info?.({ err, delay, opened }, 'event stream lost, reconnecting')
        this.eventsTimer = setTimeout(() => {
          this.eventsTimer = null
          this.subscribe()
        }, delay)
        this.eventsTimer.unref()
      },
      this.opts.eventsIdleTimeoutMs,
    )
  }

  private onEvent(ev: ClientEvent): void {
    switch (ev.type) {
      case 'services-changed':
      case 'routers-changed':
        this.refresh().catch((err) => {
          if ((err as SdkError).code === 'ERR_IDENTITY_REVOKED') this.revoke((err as SdkError).message)
          else this.logger.warn?.({ err }, 'refresh failed')
        })
        return
      case 'revoked':
        this.revoke(ev.reason)
        return
      default:
        return
    }
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

  // ---------------------------------------------------------------------------------------------
  // routers

  private connectRouter(slot: RouterSlot): Promise<RouterConnection> {
    if (slot.connecting) return slot.connecting
    if (slot.timer) {
      clearTimeout(slot.timer)
      slot.timer = null
    }
    const conn = new RouterConnection({
      routerId: slot.info.id,
      routerName: slot.info.name,
      address: slot.info.advertise,
      credentials: this.creds,
      agent: this.opts.agent,
      logger: this.logger,
      connectTimeoutMs: this.opts.connectTimeoutMs,
      pingIntervalMs: this.opts.pingIntervalMs,
      onDial: (c, id, p) => this.onDial(c, id, p),
    })
    const p = conn.connect().then(
      () => {
        slot.connecting = null
        if (this.closedFlag || this.routers.get(slot.info.id) !== slot) {
          conn.close()
          throw new SdkError('ERR_CONTEXT_CLOSED', 'the context is closed')
        }
        slot.conn = conn
        slot.lastError = null
        slot.backoff.reset()
        this.logger.debug?.({ routerId: slot.info.id }, 'router connected')
        conn.once('close', (err: Error) => {
          if (slot.conn === conn) slot.conn = null
          this.logger.info?.({ err, routerId: slot.info.id }, 'router connection closed')
          this.scheduleReconnect(slot, err)
        })
        conn.on('latency', () => undefined)
        for (const s of this.servers.values()) s.reconcile()
        return conn
      },
      (err: Error) => {
        slot.connecting = null
        slot.lastError = err
        this.logger.info?.({ err, routerId: slot.info.id }, 'router connect failed')
        this.scheduleReconnect(slot, err)
        throw err
      },
    )
    p.catch(() => undefined)
    slot.connecting = p
    return p
  }

  private scheduleReconnect(slot: RouterSlot, err: Error): void {
    if (this.closedFlag || this.routers.get(slot.info.id) !== slot || slot.timer) return
    const reason = (err as SdkError).details?.remoteCode ?? (err as SdkError).code
    if (reason === 'ERR_CERT_REVOKED') {
      // The router refused our certificate: ask the controller whether we are revoked.
      this.refresh().catch((e) => {
        if ((e as SdkError).code === 'ERR_IDENTITY_REVOKED') this.revoke((e as SdkError).message)
      })
    }
    const delay = slot.backoff.next()
    slot.timer = setTimeout(() => {
      slot.timer = null
      if (!this.closedFlag && this.routers.get(slot.info.id) === slot && !slot.conn) this.connectRouter(slot)
    }, delay)
    slot.timer.unref()
  }

  private readyRouters(): RouterConnection[] {
    const out: RouterConnection[] = []
    for (const s of this.routers.values()) if (s.conn?.ready) out.push(s.conn)
    return out
  }

  /**
   * Ready connections to the given routers, lowest latency first; when none is ready, connects
   * to them and waits for the first to succeed.
   */
  private async routersFor(ids: string[], signal: AbortSignal): Promise<RouterConnection[]> {
    const slots = ids.map((id) => this.routers.get(id)).filter((s): s is RouterSlot => s !== undefined)
    const ready = slots
      .map((s) => s.conn)
      .filter((c): c is RouterConnection => c?.ready === true)
      .sort((a, b) => a.latencyMs - b.latencyMs)
    if (ready.length > 0 || slots.length === 0) return ready
    const attempts = slots.map((s) => (s.conn?.ready ? Promise.resolve(s.conn) : this.connectRouter(s)))
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason)
      signal.addEventListener('abort', () => reject(signal.reason), { once: true })
    })
    aborted.catch(() => undefined)
    try {
      const first = await Promise.race([Promise.any(attempts), aborted])
      return [first]
    } catch (err) {
      if (signal.aborted) throw signal.reason
      const errors = (err as AggregateError).errors ?? [err]
      throw new SdkError(
        'ERR_NO_EDGE_ROUTERS',
        `no edge router for this service is reachable: ${errors.map((e: Error) => e.message).join('; ')}`,
        { routers: slots.map((s) => s.info.name) },
        { cause: err },
      )
    }
  }

  // ---------------------------------------------------------------------------------------------
  // dialing

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
    if (typeof service !== 'string' || service.length === 0 || service.length > 256) {
      throw new SdkError('ERR_INVALID_OPTION', 'dial: service must be a service name (1 to 256 characters)')
    }
    const timeoutMs = checkPositiveInt('timeoutMs', opts.timeoutMs, this.opts.dialTimeoutMs)
    const ac = new AbortController()
    const timer = setTimeout(
      () =>
        ac.abort(
          new SdkError(
            'ERR_DIAL_TIMEOUT',
            `dial ${service}: no answer within ${timeoutMs} ms (raise timeoutMs, or check the host)`,
            {
              service,
              timeoutMs,
            },
          ),
        ),
      timeoutMs,
    )
    const onUserAbort = (): void =>
      ac.abort(new SdkError('ERR_DIAL_ABORTED', `dial ${service} was aborted`, { service }))
    if (opts.signal) {
      if (opts.signal.aborted) onUserAbort()
      else opts.signal.addEventListener('abort', onUserAbort, { once: true })
    }
    try {
      return await this.dialInner(service, opts, ac.signal)
    } finally {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onUserAbort)
    }
  }

  private async dialInner(name: string, opts: DialOptions, signal: AbortSignal): Promise<OverlaySocket> {
    const me = this.identity.name
    const advisor = `nullport edge policy-advisor identities ${me} ${name}`
    const svc = this.serviceByName.get(name) ?? this.serviceList.find((s) => s.id === name)
    let candidates: RouterConnection[]
    if (svc) {
      if (!svc.permissions.includes('Dial')) {
        throw new SdkError(
          'ERR_NO_DIAL_PERMISSION',
          `identity ${me} has no Dial policy for service ${svc.name}: run \`${advisor}\``,
          {
            identity: this.identity,
            service: svc.name,
          },
        )
      }
      if (svc.edgeRouterIds.length === 0) {
        throw new SdkError(
          'ERR_NO_EDGE_ROUTERS',
          `identity ${me} may use no edge router for service ${svc.name} (edge router policies and service edge router policies have no router in common): run \`${advisor}\``,
          { identity: this.identity, service: svc.name },
        )
      }
      candidates = await this.routersFor(svc.edgeRouterIds, signal)
    } else {
      // Not in our list: it does not exist, or no policy grants it to us. The router knows which.
      candidates = this.readyRouters().sort((a, b) => a.latencyMs - b.latencyMs)
      if (candidates.length === 0) {
        throw new SdkError(
          'ERR_SERVICE_NOT_FOUND',
          `service ${name} is not visible to identity ${me}: it does not exist or no Dial policy grants it: run \`${advisor}\``,
          { identity: this.identity, service: name },
        )
      }
    }
    if (candidates.length === 0) {
      throw new SdkError(
        'ERR_NO_EDGE_ROUTERS',
        `no edge router for service ${name} is connected: check that routers are online`,
        {
          service: name,
        },
      )
    }
    const serviceName = svc?.name ?? name
    const useE2E = svc ? svc.encryptionRequired : true
    let lastErr: Error | null = null
    for (const conn of candidates.slice(0, 2)) {
      try {
        return await this.dialOn(conn, serviceName, useE2E, opts, signal)
      } catch (err) {
        lastErr = err as Error
        // Only a lost router connection is worth another router; refusals are final.
        if ((err as SdkError).code !== 'ERR_ROUTER_CONNECTION_LOST' || signal.aborted) break
      }
    }
    throw this.explain(lastErr!, serviceName)
  }

  /** Adds the fix to well-known refusals. */
  private explain(err: Error, service: string): Error {
    if (!(err instanceof SdkError)) return err
    const me = this.identity.name
    const advisor = `nullport edge policy-advisor identities ${me} ${service}`
    const d = { ...err.details, identity: this.identity, service }
    switch (err.code) {
      case 'ERR_NO_DIAL_PERMISSION':
        return new SdkError(
          err.code,
          `identity ${me} has no Dial policy for service ${service}: run \`${advisor}\``,
          d,
        )
      case 'ERR_SERVICE_NOT_FOUND':
        return new SdkError(
          err.code,
          `service ${service} does not exist (or is not visible to ${me}): run \`${advisor}\``,
          d,
        )
      case 'ERR_NO_TERMINATORS':
        // The router's message is already the whole story (a host on an unreachable router);
        // otherwise one clean sentence, never the router's text nested in ours.
        if (/cannot reach/.test(err.message)) return err
        return new SdkError(
          err.code,
          `service ${service} has no host: no identity is bound to it (start the hosting app, or check its Bind policy with \`nullport edge policy-advisor identities HOST ${service}\`)`,
          d,
        )
      case 'ERR_NO_EDGE_ROUTER_POLICY':
      case 'ERR_NO_SERVICE_EDGE_ROUTER_POLICY':
        return new SdkError(err.code, `${err.message}: run \`${advisor}\``, d)
      default:
        return err
    }
  }

  private async dialOn(
    conn: RouterConnection,
    service: string,
    useE2E: boolean,
    opts: DialOptions,
    signal: AbortSignal,
  ): Promise<OverlaySocket> {
    let state: unknown = null
    const payload: DialPayload = { service }
    if (opts.appData) payload.appData = opts.appData
    if (useE2E) {
      const h = dialerHello({ service, own: this.e2eOwn })
      payload.e2e = h.hello
      state = h.state
    }
    if (signal.aborted) throw signal.reason
    const answer = await conn.dial(payload, signal)
    if (!answer.ok) {
      throw remoteError(answer.payload.code, answer.payload.message, 'ERR_DIAL_FAILED', {
        service,
        routerId: conn.routerId,
      })
    }
    const { circuitId } = answer
    const ok = answer.payload
    const abortCircuit = (err: SdkError): never => {
      conn.send({
        type: FrameType.CLOSE,
        circuitId,
        flags: 0,
        payload: { code: wireCode(err, 'ERR_E2E_VERIFY_FAILED'), message: wireMessage(err) },
      })
      throw err
    }
    let session: E2ESession | null = null
    let remote: PeerIdentity = ok.hostIdentity
    if (useE2E) {
      if (!ok.e2e) {
        abortCircuit(
          new SdkError(
            'ERR_E2E_VERIFY_FAILED',
            `the host of ${service} answered without end-to-end encryption: refused (fail closed)`,
            {
              service,
            },
          ),
        )
      }
      try {
        session = dialerFinish({
          state,
          caPem: this.file.ca,
          hostHello: ok.e2e!,
          expectedHostId: ok.hostIdentity.id,
        })
      } catch (err) {
        const code = wireCode(err, 'ERR_E2E_VERIFY_FAILED')
        abortCircuit(
          remoteError(
            code,
            `end-to-end verification of the host of ${service} failed: ${wireMessage(err)}`,
            'ERR_E2E_VERIFY_FAILED',
            {
              service,
              hostIdentity: ok.hostIdentity,
            },
          ),
        )
      }
      remote = { id: session!.peer.identityId, name: session!.peer.commonName }
    }
    if (signal.aborted) {
      conn.send({ type: FrameType.CLOSE, circuitId, flags: 0, payload: { code: 'ERR_DIAL_TIMEOUT' } })
      throw signal.reason
    }
    const socket = new OverlaySocket({
      link: conn,
      circuitId,
      e2e: session,
      remoteIdentity: remote,
      localIdentity: this.identity,
      service,
      circuitTag: ok.circuitTag,
      routerId: conn.routerId,
      allowHalfOpen: opts.allowHalfOpen ?? false,
    })
    conn.attach(circuitId, socket)
    this.dialed.add(socket)
    socket.once('close', () => this.dialed.delete(socket))
    process.nextTick(() => {
      if (socket.destroyed) return
      socket.emit('connect')
      socket.emit('ready')
    })
    return socket
  }

  // ---------------------------------------------------------------------------------------------
  // hosting

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
    if (this.servers.has(service)) {
      throw new SdkError(
        'ERR_INVALID_OPTION',
        `service ${service} is already hosted by this context: close the other listener first`,
      )
    }
    const server = new OverlayServer(this.serverHost, service, opts)
    this.servers.set(service, server)
    process.nextTick(() => {
      server.reconcile()
      if (this.routers.size === 0 && !server.listening && !server.closed) {
        server.emit(
          'error',
          new SdkError(
            'ERR_NO_EDGE_ROUTERS',
            `identity ${this.identity.name} may use no edge router: run \`nullport edge policy-advisor identities ${this.identity.name} ${service}\``,
            { service },
          ),
        )
      }
    })
    return server
  }

  private onDial(conn: RouterConnection, circuitId: number, p: DialPayload): void {
    let server = this.servers.get(p.service)
    if (!server) {
      const svc = this.serviceList.find((s) => s.id === p.service)
      if (svc) server = this.servers.get(svc.name)
    }
    if (!server || server.closed) {
      conn.send({
        type: FrameType.DIAL_FAILED,
        circuitId,
        flags: 0,
        payload: {
          code: 'ERR_SERVICE_NOT_LISTENING',
          message: `identity ${this.identity.name} is not listening on ${p.service}`,
        },
      })
      return
    }
    server.handleDial(conn, circuitId, p)
  }

  // ---------------------------------------------------------------------------------------------
  // lifecycle

  /** Closes everything; sockets fail with `err`, or (`quiet`, an application's close()) end without one. */
  private shutdown(err: SdkError, quiet = false): void {
    if (this.closedFlag) return
    this.closedFlag = true
    this.renewer.stop()
    this.closeEvents?.()
    this.closeEvents = null
    if (this.eventsTimer) clearTimeout(this.eventsTimer)
    const socketErr = quiet ? undefined : err
    for (const s of [...this.servers.values()]) s.destroyAll(socketErr)
    for (const s of [...this.dialed]) s.destroy(socketErr)
    for (const slot of this.routers.values()) {
      if (slot.timer) clearTimeout(slot.timer)
      slot.conn?.close(err, quiet)
      slot.connecting?.then((c) => c.close(err, quiet)).catch(() => undefined)
    }
    this.routers.clear()
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
