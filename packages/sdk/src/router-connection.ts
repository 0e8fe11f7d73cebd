import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import tls from 'node:tls'
import {
  CircuitIdAllocator,
  type DialPayload,
  type DialSuccessPayload,
  type E2ESession,
  type Frame,
  FrameConnection,
  FrameType,
  type HostPort,
  makeSpiffeId,
  PROTOCOL_VERSION,
  type TerminatorPrecedence,
  tryParseHostPort,
  uriSans,
  WIRE_MESSAGE_MAX,
} from '@nullport/protocol'
import { SdkError } from './errors.js'
import type { Logger } from './logger.js'
import {
  type CircuitLink,
  OverlaySocket,
  type OverlaySocketInit,
  type PeerIdentity,
} from './overlay-socket.js'
import { remoteError, wireCode, wireMessage } from './remote-error.js'

/** Credentials and trust of the local identity, shared by all connections of a context. */
export interface TlsCredentials {
  cert: string
  key: string
  /** Network CA bundle (root, intermediate). */
  ca: string
  trustDomain: string
}

export interface RouterConnectionOptions {
  routerId: string
  routerName: string
  /** `host:port` the router advertises. */
  address: string
  credentials: TlsCredentials
  agent: string
  logger: Logger
  /** TLS connect + HELLO timeout in ms. */
  connectTimeoutMs: number
  /** Interval of latency pings in ms. */
  pingIntervalMs: number
  /**
   * A DIAL for a service this identity hosts, reserved on this connection (`PendingAccept`): the
   * bound server answers it with `accept()` or `refuse()` (hosting.ts routes it to that server).
   */
  onDial: (conn: RouterConnection, dial: PendingAccept) => void
}

/** What a dialer gives `dial()`: the DIAL payload and how to turn DIAL_SUCCESS into a circuit. */
export interface DialRequest {
  payload: DialPayload
  signal: AbortSignal
  localIdentity: PeerIdentity
  allowHalfOpen: boolean
  /**
   * Checks the host's DIAL_SUCCESS (with e2e: verifies the host and finishes the handshake). It
   * runs in the dispatch of that frame, so the circuit's socket exists before the next frame of
   * the same read. Throwing refuses the answer: the circuit is closed with the error's code and
   * `dial()` rejects with the error.
   */
  verify(answer: DialSuccessPayload): { e2e: E2ESession | null; remoteIdentity: PeerIdentity }
}

/** What the accepting server supplies for the socket of an accepted circuit. */
export type AcceptInit = Omit<OverlaySocketInit, 'link' | 'circuitId' | 'routerId'>

/**
 * An incoming DIAL for a hosted service: its circuit id stays reserved on the connection until
 * the server answers with `accept()` or `refuse()`, or the router closes the circuit first.
 */
export interface PendingAccept {
  readonly circuitId: number
  readonly payload: DialPayload
}

/** Receives the answers to one BIND. */
export interface BindHandler {
  onBindSuccess(conn: RouterConnection, bindId: number, terminatorId: string): void
  onBindFailed(conn: RouterConnection, bindId: number, code: string, message: string): void
  onUnbind(
    conn: RouterConnection,
    bindId: number,
    code: string | undefined,
    message: string | undefined,
  ): void
}

/** A DIAL this side sent, waiting for its answer. */
interface PendingDial {
  readonly req: DialRequest
  resolve(socket: OverlaySocket): void
  reject(err: Error): void
}

const PING_SIZE = 8

/** A router's advertised `host:port` / `[v6]:port` (ERR_ROUTER_UNREACHABLE when it is not one). */
function routerAddress(address: string): HostPort {
  const r = tryParseHostPort(address, { host: 'any' })
  if (r.ok) return r
  if (r.reason === 'bad-port' || r.reason === 'port-zero')
    throw new SdkError('ERR_ROUTER_UNREACHABLE', `router address "${address}" has an invalid port`)
  throw new SdkError('ERR_ROUTER_UNREACHABLE', `router address "${address}" is not host:port`)
}

/**
 * One TLS connection (mTLS, identity certificate) from this SDK to an edge router, carrying many
 * circuits. Verifies the router's certificate chain to the network CA and its SPIFFE router id,
 * speaks HELLO, measures latency with PING, and dispatches frames to circuits and binds.
 *
 * Events: 'ready', 'latency' (ms), 'close' (Error | undefined).
 */
export class RouterConnection extends EventEmitter implements CircuitLink {
  readonly routerId: string
  readonly routerName: string
  readonly address: string
  /** Smoothed round-trip time in ms (Infinity until measured). */
  latencyMs = Number.POSITIVE_INFINITY
  private readonly opts: RouterConnectionOptions
  private socket: tls.TLSSocket | null = null
  private conn: FrameConnection | null = null
  private readonly ids: CircuitIdAllocator
  /** Open circuits (dialed and accepted): the one owner of each, from its first frame on. */
  private readonly circuits = new Map<number, OverlaySocket>()
  /** DIALs sent, by circuit id, until DIAL_SUCCESS (a socket in `circuits`) or a failure. */
  private readonly dialing = new Map<number, PendingDial>()
  /** DIALs received for hosted services, by circuit id, until accept() or refuse(). */
  private readonly accepting = new Map<number, PendingAccept>()
  private readonly binds = new Map<number, BindHandler>()
  private nextBindId = 1
  private drainWaiters: Array<() => void> = []
  private readyFlag = false
  private closedFlag = false
  private closeError: Error | undefined
  private pingTimer: NodeJS.Timeout | null = null
  private pingToken: Buffer | null = null
  private pingSentAt = 0
  private missedPongs = 0

  constructor(opts: RouterConnectionOptions) {
    super()
    this.opts = opts
    this.routerId = opts.routerId
    this.routerName = opts.routerName
    this.address = opts.address
    this.ids = new CircuitIdAllocator(true, (id) => this.circuits.has(id) || this.dialing.has(id))
  }

  get ready(): boolean {
    return this.readyFlag && !this.closedFlag
  }
  get closed(): boolean {
    return this.closedFlag
  }
  /** Number of open circuits (dialed and hosted). */
  get circuitCount(): number {
    return this.circuits.size + this.dialing.size + this.accepting.size
  }

  /** Connects, verifies the router and exchanges HELLO. Rejects with ERR_ROUTER_*. */
  connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false
      const fail = (err: Error): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        this.shutdown(err)
        reject(err)
      }
      const timer = setTimeout(
        () =>
          fail(
            new SdkError(
              'ERR_ROUTER_UNREACHABLE',
              `router ${this.routerName} at ${this.address} did not complete TLS and HELLO within ${this.opts.connectTimeoutMs} ms`,
              { routerId: this.routerId },
            ),
          ),
        this.opts.connectTimeoutMs,
      )
      let hp: HostPort
      try {
        hp = routerAddress(this.address)
      } catch (err) {
        fail(err as Error)
        return
      }
      const { credentials } = this.opts
      const expected = makeSpiffeId(credentials.trustDomain, 'router', this.routerId)
      let verifyError: Error | null = null
      const socket = tls.connect({
        host: hp.host,
        port: hp.port,
        cert: credentials.cert,
        key: credentials.key,
        ca: credentials.ca,
        ...(isIP(hp.host) ? {} : { servername: hp.host }),
        // The chain is verified against the network CA by TLS (rejectUnauthorized); the name we
        // check is the router's SPIFFE id, not a DNS name.
        checkServerIdentity: (_host, cert) => {
          const uris = uriSans(cert.subjectaltname)
          if (uris.includes(expected)) return undefined
          verifyError = new SdkError(
            'ERR_ROUTER_VERIFY_FAILED',
            `router at ${this.address} presented a certificate for ${uris.map((u) => `URI:${u}`).join(' ') || 'no SPIFFE id'}, expected ${expected}`,
            { routerId: this.routerId },
          )
          return verifyError
        },
      })
      this.socket = socket
      socket.setNoDelay(true)
      socket.once('error', (err) => {
        const e =
          verifyError ??
          (err instanceof SdkError
            ? err
            : new SdkError(
                (err as NodeJS.ErrnoException).code?.startsWith('ERR_TLS') ||
                  /certificate|self.signed|verify/i.test(err.message)
                  ? 'ERR_ROUTER_VERIFY_FAILED'
                  : 'ERR_ROUTER_UNREACHABLE',
                `cannot connect to router ${this.routerName} at ${this.address}: ${err.message}`,
                { routerId: this.routerId },
                { cause: err },
              ))
        fail(e)
      })
      socket.once('secureConnect', () => {
        if (settled) return
        // DATA payloads assembled from several TLS chunks land in one reused buffer: e2e circuits
        // decrypt them at once, plain ones copy them (OverlaySocket asks isTransient()).
        const conn = new FrameConnection(socket, { reuseAssembly: true })
        this.conn = conn
        conn.on('error', (err: Error) => {
          this.opts.logger.debug?.({ err, routerId: this.routerId }, 'router connection error')
          if (!settled)
            fail(
              new SdkError(
                'ERR_ROUTER_HANDSHAKE',
                `router ${this.routerName}: ${err.message}`,
                {},
                { cause: err },
              ),
            )
          else
            this.closeError ??= new SdkError(
              'ERR_ROUTER_CONNECTION_LOST',
              `router ${this.routerName}: ${err.message}`,
              {},
              { cause: err },
            )
        })
        conn.on('close', () => {
          if (!settled) {
            fail(
              this.closeError ??
                new SdkError(
                  'ERR_ROUTER_HANDSHAKE',
                  `router ${this.routerName} closed the connection during HELLO`,
                  {
                    routerId: this.routerId,
                  },
                ),
            )
            return
          }
          this.shutdown(
            this.closeError ??
              new SdkError(
                'ERR_ROUTER_CONNECTION_LOST',
                `the connection to router ${this.routerName} closed`,
                {
                  routerId: this.routerId,
                },
              ),
          )
        })
        conn.on('drain', this.onDrain)
        const onHelloFrame = (f: Frame): void => {
          if (f.type === FrameType.GOAWAY) {
            this.closeError = remoteError(f.payload.code, f.payload.message, 'ERR_ROUTER_HANDSHAKE', {
              routerId: this.routerId,
            })
            return
          }
          if (f.type !== FrameType.HELLO_ACK) {
            fail(
              new SdkError(
                'ERR_ROUTER_HANDSHAKE',
                `router ${this.routerName} sent frame ${f.type} before HELLO_ACK`,
              ),
            )
            return
          }
          if (f.payload.routerId !== this.routerId) {
            fail(
              new SdkError(
                'ERR_ROUTER_VERIFY_FAILED',
                `router at ${this.address} says it is ${f.payload.routerId}, expected ${this.routerId}`,
              ),
            )
            return
          }
          conn.removeListener('frame', onHelloFrame)
          conn.on('frame', this.onFrame)
          settled = true
          clearTimeout(timer)
          this.readyFlag = true
          this.startPing()
          this.emit('ready')
          resolve()
        }
        conn.on('frame', onHelloFrame)
        conn.send({
          type: FrameType.HELLO,
          circuitId: 0,
          flags: 0,
          payload: { version: PROTOCOL_VERSION, role: 'sdk', agent: this.opts.agent.slice(0, 256) },
        })
      })
    })
  }

  // ---------------------------------------------------------------------------------------------
  // CircuitLink

  sendData(circuitId: number, flags: number, payload: Uint8Array, type?: number): boolean {
    const c = this.conn
    if (!c || this.closedFlag) return false
    return c.sendData(circuitId, flags, payload, type)
  }

  isTransient(payload: Uint8Array): boolean {
    return this.conn?.isTransient(payload) === true
  }

  sendDataParts(circuitId: number, flags: number, parts: readonly Uint8Array[]): boolean {
    const c = this.conn
    if (!c || this.closedFlag) return false
    return c.sendDataParts(circuitId, flags, parts)
  }

  send(frame: Frame): boolean {
    const c = this.conn
    if (!c || this.closedFlag) return false
    return c.send(frame)
  }

  get writableNeedDrain(): boolean {
    return this.socket !== null && !this.closedFlag && this.socket.writableNeedDrain
  }

  onceDrain(cb: () => void): void {
    if (this.closedFlag) {
      queueMicrotask(cb)
      return
    }
    this.drainWaiters.push(cb)
  }

  release(circuitId: number): void {
    this.circuits.delete(circuitId)
    this.emit('circuit-released', circuitId)
  }

  private readonly onDrain = (): void => {
    const waiters = this.drainWaiters
    if (waiters.length === 0) return
    this.drainWaiters = []
    for (const w of waiters) w()
  }

  // ---------------------------------------------------------------------------------------------
  // dialing and hosting: this connection owns each circuit from its first frame on

  /**
   * Sends DIAL on a new circuit. On DIAL_SUCCESS the answer is checked (`req.verify`) and the
   * circuit's OverlaySocket made in the same frame dispatch, so DATA that arrives with the answer
   * reaches it. Rejects with the router's or host's refusal (ERR_DIAL_FAILED for unknown codes),
   * ERR_ROUTER_CONNECTION_LOST, the verification error, or `signal.reason` after an abort.
   */
  dial(req: DialRequest): Promise<OverlaySocket> {
    if (!this.ready) {
      return Promise.reject(
        new SdkError(
          'ERR_ROUTER_CONNECTION_LOST',
          `the connection to router ${this.routerName} is not ready`,
        ),
      )
    }
    const circuitId = this.ids.next()
    const { signal } = req
    let early: Error | null = null
    const onEarlyError = (err: Error): void => {
      early = err
    }
    return new Promise<OverlaySocket>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.dialing.get(circuitId) !== pending) return
        this.dialing.delete(circuitId)
        // Tell the router we gave up; a late DIAL_SUCCESS is answered by this CLOSE.
        this.send({ type: FrameType.CLOSE, circuitId, flags: 0, payload: { code: 'ERR_DIAL_TIMEOUT' } })
        reject(signal.reason)
      }
      const pending: PendingDial = {
        req,
        resolve: (socket) => {
          signal.removeEventListener('abort', onAbort)
          // Until the dialer has it, an error of the socket (a CLOSE {code} in the same read)
          // fails the dial instead of going unheard.
          socket.once('error', onEarlyError)
          resolve(socket)
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort)
          reject(err)
        },
      }
      this.dialing.set(circuitId, pending)
      signal.addEventListener('abort', onAbort, { once: true })
      this.send({ type: FrameType.DIAL, circuitId, flags: 0, payload: req.payload })
    }).then((socket) => {
      socket.removeListener('error', onEarlyError)
      if (early !== null) throw early
      if (socket.destroyed) {
        throw new SdkError('ERR_CIRCUIT_CLOSED', 'the circuit closed before the dial completed', {
          service: req.payload.service,
          routerId: this.routerId,
        })
      }
      return socket
    })
  }

  /** DIAL_SUCCESS for a pending dial: verify, make the socket, own the circuit. */
  private openDialed(circuitId: number, pending: PendingDial, answer: DialSuccessPayload): void {
    const { req } = pending
    let verified: { e2e: E2ESession | null; remoteIdentity: PeerIdentity }
    try {
      verified = req.verify(answer)
    } catch (err) {
      this.send({
        type: FrameType.CLOSE,
        circuitId,
        flags: 0,
        payload: { code: wireCode(err, 'ERR_E2E_VERIFY_FAILED'), message: wireMessage(err) },
      })
      pending.reject(err as Error)
      return
    }
    const socket = new OverlaySocket({
      link: this,
      circuitId,
      e2e: verified.e2e,
      remoteIdentity: verified.remoteIdentity,
      localIdentity: req.localIdentity,
      service: req.payload.service,
      circuitTag: answer.circuitTag,
      routerId: this.routerId,
      allowHalfOpen: req.allowHalfOpen,
    })
    this.circuits.set(circuitId, socket)
    pending.resolve(socket)
  }

  /** A refusal (DIAL_FAILED, or CLOSE during setup) of a pending dial. */
  private failDial(pending: PendingDial, code: string, message: string): void {
    pending.reject(
      remoteError(code, message, 'ERR_DIAL_FAILED', {
        service: pending.req.payload.service,
        routerId: this.routerId,
      }),
    )
  }

  /**
   * Accepts a reserved incoming dial: makes the circuit's socket, owns it, and answers
   * DIAL_SUCCESS, in this order, so the dialer's first DATA finds the socket. Returns null when
   * the dial is no longer pending (the router closed the circuit, or this connection is gone).
   */
  accept(dial: PendingAccept, init: AcceptInit, answer: DialSuccessPayload): OverlaySocket | null {
    const { circuitId } = dial
    if (this.accepting.get(circuitId) !== dial || this.closedFlag) return null
    this.accepting.delete(circuitId)
    const socket = new OverlaySocket({ ...init, link: this, circuitId, routerId: this.routerId })
    this.circuits.set(circuitId, socket)
    this.send({ type: FrameType.DIAL_SUCCESS, circuitId, flags: 0, payload: answer })
    return socket
  }

  /** Refuses a reserved incoming dial with DIAL_FAILED (nothing is sent when it is no longer pending). */
  refuse(dial: PendingAccept, code: string, message: string): void {
    if (this.accepting.get(dial.circuitId) !== dial) return
    this.accepting.delete(dial.circuitId)
    this.send({
      type: FrameType.DIAL_FAILED,
      circuitId: dial.circuitId,
      flags: 0,
      payload: { code, message: message.slice(0, WIRE_MESSAGE_MAX) },
    })
  }

  /** Registers a bind and sends BIND; answers go to `handler`. Returns the bind id. */
  bind(
    service: string,
    o: { cost: number; precedence: TerminatorPrecedence; maxConnections: number },
    handler: BindHandler,
  ): number {
    const bindId = this.nextBindId++
    this.binds.set(bindId, handler)
    this.send({ type: FrameType.BIND, circuitId: 0, flags: 0, payload: { bindId, service, ...o } })
    return bindId
  }

  unbind(bindId: number): void {
    if (!this.binds.delete(bindId)) return
    this.send({ type: FrameType.UNBIND, circuitId: 0, flags: 0, payload: { bindId } })
  }

  private readonly onFrame = (f: Frame): void => {
    switch (f.type) {
      case FrameType.DATA:
      case FrameType.WINDOW_UPDATE:
      case FrameType.HALF_CLOSE: {
        // late frames for a circuit that is gone (or not open yet: a protocol violation) are dropped
        this.circuits.get(f.circuitId)?.handleFrame(f)
        return
      }
      case FrameType.CLOSE: {
        const c = this.circuits.get(f.circuitId)
        if (c !== undefined) {
          c.handleFrame(f)
          return
        }
        const d = this.dialing.get(f.circuitId)
        if (d !== undefined) {
          this.dialing.delete(f.circuitId)
          this.failDial(
            d,
            f.payload.code ?? 'ERR_DIAL_FAILED',
            f.payload.message ?? 'the circuit was closed during setup',
          )
          return
        }
        // The dialer gave up while the host was admitting it: the id is free, nothing to answer.
        this.accepting.delete(f.circuitId)
        return
      }
      case FrameType.DIAL_SUCCESS:
      case FrameType.DIAL_FAILED: {
        const d = this.dialing.get(f.circuitId)
        if (d === undefined) {
          // An answer for a dial we gave up on: close it.
          if (f.type === FrameType.DIAL_SUCCESS && !this.circuits.has(f.circuitId)) {
            this.send({
              type: FrameType.CLOSE,
              circuitId: f.circuitId,
              flags: 0,
              payload: { code: 'ERR_DIAL_TIMEOUT' },
            })
          }
          return
        }
        this.dialing.delete(f.circuitId)
        if (f.type === FrameType.DIAL_SUCCESS) this.openDialed(f.circuitId, d, f.payload)
        else this.failDial(d, f.payload.code, f.payload.message)
        return
      }
      case FrameType.DIAL: {
        if (
          this.ids.isLocal(f.circuitId) ||
          this.circuits.has(f.circuitId) ||
          this.accepting.has(f.circuitId)
        ) {
          this.send({
            type: FrameType.DIAL_FAILED,
            circuitId: f.circuitId,
            flags: 0,
            payload: {
              code: 'ERR_CIRCUIT_ID',
              message: `circuit id ${f.circuitId} is not the router's or is in use`,
            },
          })
          return
        }
        const dial: PendingAccept = { circuitId: f.circuitId, payload: f.payload }
        this.accepting.set(f.circuitId, dial)
        this.opts.onDial(this, dial)
        return
      }
      case FrameType.BIND_SUCCESS: {
        this.binds.get(f.payload.bindId)?.onBindSuccess(this, f.payload.bindId, f.payload.terminatorId)
        return
      }
      case FrameType.BIND_FAILED: {
        const h = this.binds.get(f.payload.bindId)
        this.binds.delete(f.payload.bindId)
        h?.onBindFailed(this, f.payload.bindId, f.payload.code, f.payload.message)
        return
      }
      case FrameType.UNBIND: {
        const h = this.binds.get(f.payload.bindId)
        this.binds.delete(f.payload.bindId)
        h?.onUnbind(this, f.payload.bindId, f.payload.code, f.payload.message)
        return
      }
      case FrameType.PING:
        this.send({ type: FrameType.PONG, circuitId: 0, flags: 0, payload: f.payload })
        return
      case FrameType.PONG: {
        const t = this.pingToken
        if (t && Buffer.compare(t, f.payload) === 0) {
          this.pingToken = null
          this.missedPongs = 0
          const rtt = Number(process.hrtime.bigint() - BigInt(this.pingSentAt)) / 1e6
          this.latencyMs = Number.isFinite(this.latencyMs) ? this.latencyMs * 0.7 + rtt * 0.3 : rtt
          this.emit('latency', this.latencyMs)
        }
        return
      }
      case FrameType.GOAWAY:
        // Circuits fail with ERR_ROUTER_CONNECTION_LOST; the router's reason is in details.remoteCode.
        this.closeError = new SdkError(
          'ERR_ROUTER_CONNECTION_LOST',
          `router ${this.routerName} closed the connection: ${f.payload.code}: ${f.payload.message}`,
          { routerId: this.routerId, remoteCode: f.payload.code },
        )
        return
      default:
        return
    }
  }

  private startPing(): void {
    const ping = (): void => {
      if (!this.ready) return
      if (this.pingToken !== null) {
        this.missedPongs++
        if (this.missedPongs >= 3) {
          this.closeError = new SdkError(
            'ERR_ROUTER_CONNECTION_LOST',
            `router ${this.routerName} stopped answering PING`,
          )
          this.conn?.destroy()
          return
        }
      }
      this.pingToken = randomBytes(PING_SIZE)
      this.pingSentAt = Number(process.hrtime.bigint())
      this.send({ type: FrameType.PING, circuitId: 0, flags: 0, payload: this.pingToken })
    }
    ping()
    this.pingTimer = setInterval(ping, this.opts.pingIntervalMs)
    this.pingTimer.unref()
  }

  /** Closes the connection; circuits fail with `err` (or, `quiet`, are destroyed without an error). */
  close(err?: Error, quiet = false): void {
    if (this.closedFlag) return
    this.shutdown(err ?? new SdkError('ERR_CONTEXT_CLOSED', 'the context was closed'), quiet)
  }

  private shutdown(err: Error, quiet = false): void {
    if (this.closedFlag) return
    this.closedFlag = true
    this.readyFlag = false
    if (this.pingTimer) clearInterval(this.pingTimer)
    this.pingTimer = null
    if (this.conn) this.conn.close()
    else this.socket?.destroy()
    const dials = [...this.dialing.values()]
    this.dialing.clear()
    for (const d of dials) this.failDial(d, 'ERR_ROUTER_CONNECTION_LOST', err.message)
    this.accepting.clear()
    const circuits = [...this.circuits.values()]
    this.circuits.clear()
    for (const c of circuits) c.linkLost(quiet ? null : err)
    const binds = [...this.binds.entries()]
    this.binds.clear()
    for (const [id, h] of binds) h.onUnbind(this, id, 'ERR_ROUTER_CONNECTION_LOST', err.message)
    this.onDrain()
    this.emit('close', err)
  }
}
