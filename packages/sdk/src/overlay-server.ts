import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import {
  Backoff,
  type ClientService,
  DEFAULT_TERMINATOR_PRECEDENCE,
  type DialPayload,
  type E2EHello,
  type E2EOwnIdentity,
  type E2ESession,
  hostAccept,
  isTerminatorPrecedence,
  policyAdvisorCommand,
  type TerminatorPrecedence,
} from '@nullport/protocol'
import { SdkError } from './errors.js'
import type { Logger } from './logger.js'
import type { OverlaySocket, PeerIdentity } from './overlay-socket.js'
import { remoteError, wireCode, wireMessage } from './remote-error.js'
import type { BindHandler, PendingAccept, RouterConnection } from './router-connection.js'

/** Options of `ctx.listen()`. */
export interface ListenOptions {
  /** Terminator cost (0..65535), lower is preferred by routers. Default 0. */
  cost?: number
  /** Terminator precedence. Default 'default'. */
  precedence?: TerminatorPrecedence
  /** Most concurrent connections; further dials fail with ERR_MAX_CONNECTIONS. 0 = unlimited (default). */
  maxConnections?: number
  /**
   * Routers (ids or names) to bind on. Default: every edge router the service may use with this
   * identity (several for redundancy).
   */
  routers?: string[]
  /** `allowHalfOpen` of accepted sockets (like net.Server). Default false. */
  allowHalfOpen?: boolean
  /**
   * Called for each incoming dial (after the dialer's e2e hello verified) before it is accepted,
   * e.g. a tunneler opens its underlay connection first. Resolve to accept: the value is passed
   * as the third argument of 'connection'. Reject to refuse: the dialer's dial() fails with the
   * error's `code` (a DIAL_FAILED). When the dial can no longer be accepted once it resolves
   * (router gone, server closing), a resolved value with a `destroy()` method is destroyed.
   * Default: accept every dial at once.
   */
  admit?: (dial: IncomingDial) => unknown
}

/** An incoming dial, as `admit` and 'connection' (second argument) see it. */
export interface IncomingDial {
  service: string
  /** Who dialed (as the router reports it; verified from the e2e certificate when encrypted). */
  dialer: PeerIdentity
  /** The dialer's appData (tunnelers: `{protocol, address, port, sourceAddress}` for host.v1 forwarding). */
  appData: DialPayload['appData'] | undefined
  circuitTag: string
}

/** @internal What a server needs from its context. */
export interface ServerHost {
  readonly identity: PeerIdentity
  readonly e2eOwn: E2EOwnIdentity
  readonly caPem: string
  readonly logger: Logger
  serviceInfo(name: string): ClientService | undefined
  readyRouters(): RouterConnection[]
  removeServer(server: OverlayServer): void
}

/** One terminator of a server: a bind on one router. */
export interface TerminatorInfo {
  routerId: string
  routerName: string
  terminatorId: string
}

/**
 * Bind refusals that pass by themselves: the router has not heard of a just-created service yet,
 * has no policy data yet, or could not reach the controller to create the terminator. Retried
 * with jittered, capped backoff (and at once when the service list changes); other refusals
 * (ERR_NO_BIND_PERMISSION, ...) are final and surface as 'error'.
 */
const TRANSIENT_BIND_CODES = new Set(['ERR_SERVICE_NOT_FOUND', 'ERR_NOT_READY', 'ERR_CONTROLLER_UNAVAILABLE'])

/** Backoff of bind retries after a transient refusal (per router). */
const BIND_RETRY = { initialMs: 250, maxMs: 15_000 }

interface BindRetry {
  backoff: Backoff
  timer: NodeJS.Timeout | null
}

interface BindState {
  conn: RouterConnection
  bindId: number
  terminatorId: string | null
}

/**
 * Hosts a service on the overlay, like a `net.Server` but with no listening socket: it binds the
 * service on one or more edge routers (outbound connections) and receives circuits from them.
 *
 * Events: 'listening' (after the first BIND_SUCCESS), 'bound' (TerminatorInfo, after every
 * BIND_SUCCESS, e.g. the re-bind after a router reconnected), 'connection' (OverlaySocket, with
 * `remoteIdentity` = the dialer), 'error' (SdkError: ERR_NO_BIND_PERMISSION, ERR_NO_EDGE_ROUTERS,
 * ...; emitted when no router accepts the bind; transient refusals, ERR_SERVICE_NOT_FOUND /
 * ERR_NOT_READY / ERR_CONTROLLER_UNAVAILABLE, are retried with backoff instead), 'clientError' (an incoming dial that failed,
 * e.g. ERR_E2E_VERIFY_FAILED), 'close'.
 *
 * @example
 * const server = ctx.listen('echo', { maxConnections: 100 })
 * server.on('connection', (socket) => socket.pipe(socket))
 * await once(server, 'listening')
 * console.log(server.address()) // { service: 'echo', terminators: [...] }
 */
export class OverlayServer extends EventEmitter {
  readonly service: string
  /** True after the first BIND_SUCCESS, false after close(). */
  listening = false
  maxConnections: number
  private readonly host: ServerHost
  private readonly opts: Required<Omit<ListenOptions, 'routers' | 'admit'>> & {
    routers: string[] | undefined
    admit: ListenOptions['admit']
  }
  private readonly binds = new Map<string, BindState>()
  /** Routers that refused the bind, by router id -> the connection that refused (not retried on it until services change). */
  private readonly failures = new Map<string, RouterConnection>()
  /** Routers whose last refusal was transient, by router id: the backoff and the pending retry. */
  private readonly retries = new Map<string, BindRetry>()
  private readonly connections = new Set<OverlaySocket>()
  private closing = false
  private closePromise: Promise<void> | null = null
  private errorReported = false

  /** @internal Made by `ctx.listen()`. */
  constructor(host: ServerHost, service: string, opts: ListenOptions = {}) {
    super()
    const cost = opts.cost ?? 0
    if (!Number.isInteger(cost) || cost < 0 || cost > 0xffff) {
      throw new SdkError(
        'ERR_INVALID_OPTION',
        `listen option cost must be an integer from 0 to 65535, got ${cost}`,
      )
    }
    const precedence = opts.precedence ?? DEFAULT_TERMINATOR_PRECEDENCE
    if (!isTerminatorPrecedence(precedence)) {
      throw new SdkError(
        'ERR_INVALID_OPTION',
        `listen option precedence must be "default", "required" or "failed"`,
      )
    }
    const max = opts.maxConnections ?? 0
    if (!Number.isInteger(max) || max < 0 || max > 0x7fff_ffff) {
      throw new SdkError(
        'ERR_INVALID_OPTION',
        `listen option maxConnections must be an integer >= 0 (0 = unlimited), got ${max}`,
      )
    }
    if (
      opts.routers !== undefined &&
      (!Array.isArray(opts.routers) || opts.routers.some((r) => typeof r !== 'string'))
    ) {
      throw new SdkError(
        'ERR_INVALID_OPTION',
        'listen option routers must be an array of router ids or names',
      )
    }
    this.host = host
    this.service = service
    this.maxConnections = max
    this.opts = {
      cost,
      precedence,
      maxConnections: max,
      routers: opts.routers,
      allowHalfOpen: opts.allowHalfOpen ?? false,
      admit: opts.admit,
    }
  }

  /** `{ service, terminators }`: the service and the routers it is bound on now. */
  address(): { service: string; terminators: TerminatorInfo[] } {
    const terminators: TerminatorInfo[] = []
    for (const b of this.binds.values()) {
      if (b.terminatorId !== null) {
        terminators.push({
          routerId: b.conn.routerId,
          routerName: b.conn.routerName,
          terminatorId: b.terminatorId,
        })
      }
    }
    return { service: this.service, terminators }
  }

  /** Like net.Server#getConnections. */
  getConnections(cb?: (err: Error | null, count: number) => void): number {
    const n = this.connections.size
    if (cb) process.nextTick(cb, null, n)
    return n
  }

  /**
   * @internal Binds on every target router that is connected and not bound yet. With
   * `retryRefused` (the service list changed), routers that refused before are asked again.
   */
  reconcile(retryRefused = false): void {
    if (this.closing) return
    if (retryRefused) {
      this.failures.clear()
      for (const r of this.retries.values()) {
        if (r.timer) clearTimeout(r.timer)
        r.timer = null
      }
    }
    const svc = this.host.serviceInfo(this.service)
    const ready = this.host.readyRouters()
    let targets: RouterConnection[]
    if (this.opts.routers) {
      const want = new Set(this.opts.routers)
      targets = ready.filter((c) => want.has(c.routerId) || want.has(c.routerName))
    } else if (svc?.permissions.includes('Bind')) {
      const ids = new Set(svc.edgeRouterIds)
      targets = ready.filter((c) => ids.has(c.routerId))
    } else {
      // Not (yet) in our service list: let the routers decide and pass their refusal through.
      targets = ready
    }
    for (const conn of targets) {
      const cur = this.binds.get(conn.routerId)
      if (cur && cur.conn === conn) continue
      if (this.failures.get(conn.routerId) === conn) continue
      const state: BindState = { conn, bindId: 0, terminatorId: null }
      this.binds.set(conn.routerId, state)
      state.bindId = conn.bind(
        this.service,
        { cost: this.opts.cost, precedence: this.opts.precedence, maxConnections: this.opts.maxConnections },
        this.bindHandler,
      )
    }
    if (targets.length === 0 && this.binds.size === 0 && svc && !this.errorReported && ready.length > 0) {
      this.reportError(
        new SdkError(
          svc.permissions.includes('Bind') ? 'ERR_NO_EDGE_ROUTERS' : 'ERR_NO_BIND_PERMISSION',
          svc.permissions.includes('Bind')
            ? `service ${this.service} has no edge router that identity ${this.host.identity.name} may use: run \`${this.advisor()}\``
            : `identity ${this.host.identity.name} has no Bind policy for service ${this.service}: run \`${this.advisor()}\``,
          { service: this.service },
        ),
      )
    }
  }

  /** The command that explains this identity's policies for the service. */
  private advisor(): string {
    return policyAdvisorCommand(this.host.identity.name, this.service)
  }

  private reportError(err: SdkError): void {
    if (this.errorReported) return
    this.errorReported = true
    this.emit('error', err)
  }

  private readonly bindHandler: BindHandler = {
    onBindSuccess: (conn, bindId, terminatorId) => {
      const b = this.binds.get(conn.routerId)
      if (!b || b.conn !== conn || b.bindId !== bindId) return
      b.terminatorId = terminatorId
      this.failures.delete(conn.routerId)
      this.clearRetry(conn.routerId)
      this.errorReported = false
      this.host.logger.debug?.({ service: this.service, routerId: conn.routerId, terminatorId }, 'bound')
      if (this.closing) {
        conn.unbind(bindId)
        return
      }
      const info: TerminatorInfo = { routerId: conn.routerId, routerName: conn.routerName, terminatorId }
      if (!this.listening) {
        this.listening = true
        this.emit('listening')
      }
      this.emit('bound', info)
    },
    onBindFailed: (conn, bindId, code, message) => {
      const b = this.binds.get(conn.routerId)
      if (!b || b.conn !== conn || b.bindId !== bindId) return
      this.binds.delete(conn.routerId)
      if (TRANSIENT_BIND_CODES.has(code) && !this.closing) {
        this.scheduleRetry(conn, code, message)
        return
      }
      let err = remoteError(code, message, 'ERR_BIND_FAILED', {
        service: this.service,
        routerId: conn.routerId,
      })
      if (err.code === 'ERR_NO_BIND_PERMISSION') {
        err = new SdkError(
          'ERR_NO_BIND_PERMISSION',
          `identity ${this.host.identity.name} has no Bind policy for service ${this.service}: run \`${this.advisor()}\``,
          { ...err.details },
        )
      }
      this.failures.set(conn.routerId, conn)
      if (!this.hasActiveBind()) this.reportError(err)
    },
    onUnbind: (conn, bindId, code, message) => {
      const b = this.binds.get(conn.routerId)
      if (!b || b.conn !== conn || b.bindId !== bindId) return
      this.binds.delete(conn.routerId)
      if (code === 'ERR_ROUTER_CONNECTION_LOST' || this.closing) return // re-bound when the router is back
      const err = remoteError(code, message, 'ERR_BIND_FAILED', {
        service: this.service,
        routerId: conn.routerId,
      })
      this.failures.set(conn.routerId, conn)
      if (!this.hasActiveBind()) {
        this.listening = false
        this.reportError(err)
      }
    },
  }

  /** A transient refusal: bind on this router again after a jittered, capped delay. */
  private scheduleRetry(conn: RouterConnection, code: string, message: string): void {
    let r = this.retries.get(conn.routerId)
    if (!r) {
      r = { backoff: new Backoff(BIND_RETRY), timer: null }
      this.retries.set(conn.routerId, r)
    }
    if (r.timer) clearTimeout(r.timer)
    const delay = r.backoff.next()
    this.failures.set(conn.routerId, conn)
    const log = r.backoff.attempts === 1 ? this.host.logger.info : this.host.logger.debug
    log?.call(
      this.host.logger,
      { service: this.service, routerId: conn.routerId, code, reason: message, delay },
      'bind refused for now, retrying',
    )
    const retry = r
    retry.timer = setTimeout(() => {
      retry.timer = null
      if (this.closing) return
      if (this.failures.get(conn.routerId) === conn) this.failures.delete(conn.routerId)
      this.reconcile()
    }, delay)
    retry.timer.unref()
  }

  private clearRetry(routerId: string): void {
    const r = this.retries.get(routerId)
    if (r?.timer) clearTimeout(r.timer)
    this.retries.delete(routerId)
  }

  private hasActiveBind(): boolean {
    return this.binds.size > 0
  }

  /**
   * @internal A DIAL from a router for this service, reserved on `conn` until this server
   * accepts or refuses it.
   */
  handleDial(conn: RouterConnection, dial: PendingAccept): void {
    const p = dial.payload
    const fail = (code: string, message: string): void => conn.refuse(dial, code, message)
    if (this.closing) {
      fail('ERR_SERVICE_NOT_LISTENING', `the host is closing service ${this.service}`)
      return
    }
    if (this.maxConnections > 0 && this.connections.size + this.admitting >= this.maxConnections) {
      fail('ERR_MAX_CONNECTIONS', `the host of ${this.service} is at maxConnections (${this.maxConnections})`)
      return
    }
    if (p.service !== this.service) {
      // A router asked this server to accept a dial for another service: never accept it under our name.
      fail('ERR_SERVICE_MISMATCH', `this host serves ${this.service}, not ${p.service}`)
      return
    }
    const svc = this.host.serviceInfo(this.service)
    const required = svc ? svc.encryptionRequired : true
    let session: E2ESession | null = null
    let hello: E2EHello | undefined
    if (p.e2e) {
      try {
        const r = hostAccept({
          // the name this host bound, never the router-supplied one: the dialer signed the name it dialed
          service: this.service,
          own: this.host.e2eOwn,
          caPem: this.host.caPem,
          dialerHello: p.e2e,
          ...(p.dialer ? { expectedDialerId: p.dialer.id } : {}),
        })
        session = r.session
        hello = r.hello
      } catch (err) {
        const code = wireCode(err, 'ERR_E2E_VERIFY_FAILED')
        fail(code, wireMessage(err))
        this.emit(
          'clientError',
          remoteError(
            code,
            `end-to-end verification of a dialer failed: ${wireMessage(err)}`,
            'ERR_E2E_VERIFY_FAILED',
            {
              service: this.service,
              dialer: p.dialer,
            },
          ),
        )
        return
      }
    } else if (required) {
      fail(
        'ERR_E2E_REQUIRED',
        `service ${this.service} requires end-to-end encryption and the dialer sent no e2e hello`,
      )
      this.emit(
        'clientError',
        new SdkError(
          'ERR_E2E_REQUIRED',
          `a dialer of ${this.service} did not offer end-to-end encryption: refused`,
          {
            dialer: p.dialer,
          },
        ),
      )
      return
    }
    const remote: PeerIdentity = session
      ? { id: session.peer.identityId, name: session.peer.commonName }
      : (p.dialer ?? { id: 'unknown', name: 'unknown' })
    const circuitTag = p.circuitTag ?? randomBytes(16).toString('hex')
    const incoming: IncomingDial = { service: this.service, dialer: remote, appData: p.appData, circuitTag }
    const admit = this.opts.admit
    if (!admit) {
      this.accept(conn, dial, session, hello, incoming, undefined)
      return
    }
    this.admitting++
    Promise.resolve()
      .then(() => admit(incoming))
      .then(
        (value) => {
          this.admitting--
          if (this.closing || !conn.ready) {
            destroyAdmitted(value)
            fail('ERR_SERVICE_NOT_LISTENING', `the host is closing service ${this.service}`)
            return
          }
          // the router closed the circuit while admit() ran (the dialer gave up)
          if (!this.accept(conn, dial, session, hello, incoming, value)) destroyAdmitted(value)
        },
        (err: unknown) => {
          this.admitting--
          fail(wireCode(err, 'ERR_DIAL_FAILED'), wireMessage(err) || 'the host refused the dial')
        },
      )
  }

  private admitting = 0

  /** Accepts the dial on its connection and emits 'connection'; false when it is no longer pending. */
  private accept(
    conn: RouterConnection,
    dial: PendingAccept,
    session: E2ESession | null,
    hello: E2EHello | undefined,
    incoming: IncomingDial,
    admitted: unknown,
  ): boolean {
    const circuitTag = incoming.circuitTag
    const socket = conn.accept(
      dial,
      {
        e2e: session,
        remoteIdentity: incoming.dialer,
        localIdentity: this.host.identity,
        service: this.service,
        circuitTag,
        allowHalfOpen: this.opts.allowHalfOpen,
      },
      {
        hostIdentity: { id: this.host.identity.id, name: this.host.identity.name },
        circuitTag,
        ...(hello ? { e2e: hello } : {}),
      },
    )
    if (socket === null) return false
    this.connections.add(socket)
    socket.once('close', () => {
      this.connections.delete(socket)
      if (this.closing && this.connections.size === 0) this.emit('all-connections-closed')
    })
    this.emit('connection', socket, incoming, admitted)
    return true
  }

  /**
   * Unbinds from every router (no new connections), then resolves once the existing connections
   * have ended; emits 'close'. Like net.Server#close, `cb` is called then too.
   */
  close(cb?: (err?: Error) => void): Promise<void> {
    if (!this.closePromise) {
      this.closing = true
      this.listening = false
      for (const id of [...this.retries.keys()]) this.clearRetry(id)
      for (const b of this.binds.values()) b.conn.unbind(b.bindId)
      this.binds.clear()
      this.host.removeServer(this)
      this.closePromise = new Promise<void>((resolve) => {
        if (this.connections.size === 0) resolve()
        else this.once('all-connections-closed', () => resolve())
      }).then(() => {
        this.emit('close')
      })
    }
    if (cb) this.closePromise.then(() => cb(), cb)
    return this.closePromise
  }

  /** @internal The context closed: destroy every connection (with `err`, when given). */
  destroyAll(err: Error | undefined): void {
    void this.close()
    for (const s of this.connections) s.destroy(err)
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.closing
  }
}

/** An admitted value (e.g. a tunneler's underlay socket) of a dial that cannot be accepted any more. */
function destroyAdmitted(value: unknown): void {
  const d = (value as { destroy?: unknown } | null)?.destroy
  if (typeof d === 'function') d.call(value)
}
