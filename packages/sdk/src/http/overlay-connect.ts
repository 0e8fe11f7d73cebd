/**
 * Dialing by destination: `host:port` is resolved to a service through the intercept table and
 * dialed on the overlay. Never a plain connection: a name that matches nothing is refused
 * (ERR_NOT_INTERCEPTED) and a failed dial is an error.
 */
import { Duplex } from 'node:stream'
import tls from 'node:tls'
import type { Context } from '../context.js'
import { SdkError } from '../errors.js'
import type { OverlaySocket, PeerIdentity } from '../overlay-socket.js'
import { resolveIntercept } from './intercept.js'

/** Options of dialing a destination. */
export interface DialTargetOptions {
  /** Dial timeout in ms. Default: intercept.v1 `dialOptions.connectTimeoutSeconds`, else the context's. */
  timeoutMs?: number
  signal?: AbortSignal
  allowHalfOpen?: boolean
}

/** Resolves `host:port` and dials its service. Throws ERR_NOT_INTERCEPTED or the dial's error. */
export async function dialTarget(
  ctx: Context,
  host: string,
  port: number,
  opts: DialTargetOptions = {},
): Promise<OverlaySocket> {
  const t = resolveIntercept(ctx, host, port)
  const timeoutMs = opts.timeoutMs ?? t.timeoutMs
  return ctx.dial(t.service, {
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.allowHalfOpen !== undefined ? { allowHalfOpen: opts.allowHalfOpen } : {}),
    appData: { protocol: 'tcp', address: host.slice(0, 256), port },
  })
}

/** TLS options for https:// over the overlay (the service's own certificate, checked as usual). */
export interface OverlayTlsOptions {
  /** CA certificates the service's TLS certificate must chain to. Default: Node's roots. */
  ca?: string | Buffer | Array<string | Buffer>
  /** Default true. Do not turn off outside tests. */
  rejectUnauthorized?: boolean
  /** SNI and certificate name to check. Default: the URL's host name. */
  servername?: string
  /** Client certificate and key (mutual TLS inside the overlay). */
  cert?: string | Buffer
  key?: string | Buffer
  /** ALPN protocols to offer. Default ['http/1.1']. */
  ALPNProtocols?: string[]
}

/** Starts TLS over a connected overlay circuit; resolves once the handshake completed. */
export function startTls(
  socket: Duplex,
  host: string,
  opts: OverlayTlsOptions,
): Promise<tls.TLSSocket & { remoteIdentity?: PeerIdentity }> {
  return new Promise((resolve, reject) => {
    const servername = opts.servername ?? host
    const t = tls.connect({
      socket,
      ...(tlsServername(servername) ? { servername } : {}),
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
      ...(opts.key !== undefined ? { key: opts.key } : {}),
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
      ALPNProtocols: opts.ALPNProtocols ?? ['http/1.1'],
      checkServerIdentity: (name, cert) => tls.checkServerIdentity(servername || name, cert),
    }) as tls.TLSSocket & { remoteIdentity?: PeerIdentity }
    t.remoteIdentity = (socket as { remoteIdentity?: PeerIdentity }).remoteIdentity
    const onError = (err: Error): void => {
      socket.destroy()
      reject(err)
    }
    t.once('error', onError)
    t.once('secureConnect', () => {
      t.off('error', onError)
      resolve(t)
    })
  })
}

/** SNI must be a host name (not an IP). */
function tlsServername(name: string): boolean {
  return name.length > 0 && !/^[\d.]+$/.test(name) && !name.includes(':')
}

/**
 * A socket handed out synchronously (net.connect, tls.connect, http.Agent#createConnection)
 * while its overlay dial is still running: writes wait for the circuit (bounded by the Writable
 * high-water mark: write() returns false), reads follow the circuit with backpressure, and a
 * failed dial destroys it with the dial's error. It never connects anywhere else.
 */
export class PendingOverlaySocket extends Duplex {
  connecting = true
  pending = true
  readonly remoteAddress: undefined = undefined
  readonly remotePort: undefined = undefined
  readonly localAddress: undefined = undefined
  readonly localPort: undefined = undefined
  private inner: OverlaySocket | null = null
  private waiting: (() => void) | null = null
  private readonly ac = new AbortController()
  private timeoutMs = 0
  private idleTimer: NodeJS.Timeout | null = null

  constructor(dial: (signal: AbortSignal) => Promise<OverlaySocket>, opts: { allowHalfOpen?: boolean } = {}) {
    super({ allowHalfOpen: opts.allowHalfOpen ?? false })
    dial(this.ac.signal).then(
      (s) => this.attach(s),
      (err: Error) => this.destroy(err),
    )
  }

  /** The host's identity, once connected. */
  get remoteIdentity(): PeerIdentity | undefined {
    return this.inner?.remoteIdentity
  }

  /** The circuit, once connected. */
  get overlaySocket(): OverlaySocket | null {
    return this.inner
  }

  private attach(s: OverlaySocket): void {
    if (this.destroyed) {
      s.destroy()
      return
    }
    this.inner = s
    this.connecting = false
    this.pending = false
    s.on('data', (d: Buffer) => {
      this.touch()
      if (!this.push(d)) s.pause()
    })
    s.on('end', () => this.push(null))
    s.on('error', (err) => this.destroy(err))
    s.on('close', () => {
      if (!this.destroyed && !(this.writableFinished && this.readableEnded)) {
        if (!this.readableEnded) this.destroy(new SdkError('ERR_CIRCUIT_CLOSED', 'the circuit closed'))
      }
    })
    this.emit('connect')
    this.emit('ready')
    const w = this.waiting
    this.waiting = null
    w?.()
  }

  override _write(chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const s = this.inner
    if (!s) {
      this.waiting = () => this._write(chunk, enc, cb)
      return
    }
    this.touch()
    if (s.write(chunk)) cb()
    else s.once('drain', () => cb())
  }

  override _final(cb: (err?: Error | null) => void): void {
    const s = this.inner
    if (!s) {
      this.waiting = () => this._final(cb)
      return
    }
    s.end(() => cb())
  }

  override _read(): void {
    this.inner?.resume()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.idleTimer) clearTimeout(this.idleTimer)
    if (!this.inner) this.ac.abort(err ?? new SdkError('ERR_DIAL_ABORTED', 'the socket was destroyed'))
    this.inner?.destroy(err ?? undefined)
    this.waiting = null
    cb(err)
  }

  private touch(): void {
    if (this.idleTimer) this.idleTimer.refresh()
  }

  setTimeout(ms: number, cb?: () => void): this {
    if (cb) this.once('timeout', cb)
    if (this.idleTimer) clearTimeout(this.idleTimer)
    this.idleTimer = null
    this.timeoutMs = ms
    if (ms > 0) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms)
      this.idleTimer.unref()
    }
    return this
  }
  get timeout(): number {
    return this.timeoutMs
  }
  setNoDelay(_v?: boolean): this {
    return this
  }
  setKeepAlive(_v?: boolean, _d?: number): this {
    return this
  }
  ref(): this {
    return this
  }
  unref(): this {
    return this
  }
  address(): Record<string, never> {
    return {}
  }
}
