/**
 * The router's client of the controller's fabric API (`/fabric/v1`, mTLS with the router
 * certificate), over the protocol's HTTPS JSON client and event stream: JSON requests with
 * bounded bodies and timeouts, and the policy event stream (`GET /fabric/v1/stream`,
 * server-sent events) with reconnect, exponential jittered backoff and a fresh snapshot after
 * each reconnect. Failures carry the router's codes (ERR_CONTROLLER_UNAVAILABLE,
 * ERR_CONTROLLER_RESPONSE).
 */
import {
  Backoff,
  controllerError,
  type EventStream,
  HttpsJsonClient,
  isProtocolError,
  type JsonResponse,
  openEventStream,
  type RouterEvent,
  type SseEvent,
} from '@nullport/protocol'
import type { Logger } from 'pino'
import { RouterError } from '../errors.js'

export interface FabricClientOptions {
  /** Controller base URL (https://host:port). */
  controller: string
  certPem: string
  keyPem: string
  caPem: string
  logger: Logger
  /** Request timeout in ms. Default 10000. */
  requestTimeoutMs?: number
  /** Largest JSON response body. Default 8 MiB. */
  maxResponseBytes?: number
  /** SSE limits. Defaults 64 MiB each. */
  maxSseLineBytes?: number
  maxSseEventBytes?: number
  /** No event (not even a ping) for this long: the stream is dropped and reopened. Default 60000. */
  streamIdleTimeoutMs?: number
  /** Reconnect backoff. Defaults 250 ms .. 10 s. */
  reconnectBaseMs?: number
  reconnectMaxMs?: number
}

export interface StreamHandlers {
  /** Called before each (re)connect of the stream; a rejection counts as a failed attempt. */
  beforeConnect?(): Promise<void>
  onEvent(ev: RouterEvent): void
  onConnected?(): void
  onDisconnected?(err: Error | null): void
}

export class FabricClient {
  private readonly base: URL
  private readonly client: HttpsJsonClient
  private readonly opts: FabricClientOptions
  private readonly timeoutMs: number
  private readonly maxBytes: number
  private readonly log: Logger
  private stopped = false
  /** The open (or opening) event stream and how it ends. */
  private stream: { events: EventStream; end: (err: Error) => void } | null = null
  private reconnectTimer: NodeJS.Timeout | null = null
  readonly backoff: Backoff
  /** True while the event stream is open. */
  connected = false

  constructor(opts: FabricClientOptions) {
    this.opts = opts
    this.base = new URL(opts.controller)
    if (this.base.protocol !== 'https:') {
      throw new RouterError('ERR_ROUTER_CONFIG', `controller URL must be https://, got ${opts.controller}`, {
        field: 'controller',
      })
    }
    this.log = opts.logger
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000
    this.maxBytes = opts.maxResponseBytes ?? 8 * 1024 * 1024
    this.client = new HttpsJsonClient({
      baseUrl: this.base,
      tls: { cert: opts.certPem, key: opts.keyPem, ca: opts.caPem },
      timeoutMs: this.timeoutMs,
      maxBytes: this.maxBytes,
      maxSockets: 8,
    })
    this.backoff = new Backoff({
      initialMs: opts.reconnectBaseMs ?? 250,
      maxMs: opts.reconnectMaxMs ?? 10_000,
    })
  }

  /**
   * New connections (requests and the next stream) use these credentials from now on. Requests
   * under way finish on their connection; the previous pool is destroyed after the request timeout.
   */
  setCredentials(c: { certPem: string; keyPem: string; caPem: string }): void {
    this.client.setTls({ cert: c.certPem, key: c.keyPem, ca: c.caPem })
  }

  /** `POST /fabric/v1/renew {csr}`: a new certificate for the CSR's key (see renew.ts). */
  renew(csrPem: string): Promise<{ cert: string; ca: string; notAfter: string }> {
    return this.request('POST', '/fabric/v1/renew', { csr: csrPem })
  }

  /** JSON request; resolves to `data` of the envelope. Errors: ERR_CONTROLLER_UNAVAILABLE, ERR_CONTROLLER_RESPONSE. */
  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    if (this.stopped) throw new RouterError('ERR_ROUTER_STOPPED', 'the router is stopped')
    let r: JsonResponse
    try {
      r = await this.client.request(method, path, body === undefined ? {} : { body })
    } catch (err) {
      throw this.requestError(method, path, err)
    }
    if (r.status >= 200 && r.status < 300) {
      // The controller answers again: do not wait out the stream's backoff.
      if (!this.connected) this.reconnectNow()
      return ((r.json as { data?: unknown } | undefined)?.data ?? r.json) as T
    }
    const e = controllerError(r)
    throw new RouterError(
      'ERR_CONTROLLER_RESPONSE',
      `${method} ${path} failed with HTTP ${r.status}${e.code ? ` ${e.code}` : ''}: ${e.message ?? r.text.slice(0, 200)}`,
      { status: r.status, apiCode: e.code },
    )
  }

  private requestError(method: string, path: string, err: unknown): RouterError {
    if (isProtocolError(err) && err.code === 'ERR_HTTPS_BODY_TOO_LARGE') {
      return new RouterError(
        'ERR_CONTROLLER_RESPONSE',
        `${method} ${path}: response larger than ${this.maxBytes} bytes`,
        {},
        { cause: err },
      )
    }
    const why =
      isProtocolError(err) && err.code === 'ERR_HTTPS_TIMEOUT'
        ? `timed out after ${this.timeoutMs} ms`
        : (((err as Error).cause as Error | undefined)?.message ?? (err as Error).message)
    return new RouterError(
      'ERR_CONTROLLER_UNAVAILABLE',
      `${method} ${path}: controller ${this.base.origin} unreachable: ${why}`,
      {},
      { cause: err },
    )
  }

  /** Opens the event stream and keeps it open (reconnecting) until `stop()`. */
  startStream(h: StreamHandlers): void {
    const connect = async (): Promise<void> => {
      this.reconnectTimer = null
      if (this.stopped) return
      try {
        if (h.beforeConnect) await h.beforeConnect()
        await this.openStream(h)
      } catch (err) {
        if (this.stopped) return
        const delay = this.backoff.next()
        this.log.warn({ err: (err as Error).message, retryInMs: delay }, 'controller stream unavailable')
        this.reconnectTimer = setTimeout(() => void connect(), delay)
      }
    }
    void connect()
    this.reconnect = () => {
      if (this.stopped || this.reconnectTimer) return
      const delay = this.backoff.next()
      this.reconnectTimer = setTimeout(() => void connect(), delay)
    }
    this.reconnectNow = () => {
      if (this.stopped || !this.reconnectTimer) return
      clearTimeout(this.reconnectTimer)
      this.reconnectTimer = null
      void connect()
    }
  }

  private reconnect: () => void = () => {}
  /** Cuts a pending reconnect delay short (the controller is reachable again). */
  private reconnectNow: () => void = () => {}

  /** Resolves once the stream is open (HTTP 200); rejects if that fails. Later failures reconnect. */
  private openStream(h: StreamHandlers): Promise<void> {
    const idleMs = this.opts.streamIdleTimeoutMs ?? 60_000
    return new Promise<void>((resolve, reject) => {
      let opened = false
      const end = (err: Error): void => {
        if (this.stream?.events !== events) return
        this.stream = null
        if (!opened) {
          reject(err)
          return
        }
        this.connected = false
        h.onDisconnected?.(err)
        this.reconnect()
      }
      const events = openEventStream({
        url: new URL('/fabric/v1/stream', this.base),
        tls: this.client.tls,
        idleTimeoutMs: idleMs,
        ...(this.opts.maxSseLineBytes !== undefined ? { maxLineBytes: this.opts.maxSseLineBytes } : {}),
        ...(this.opts.maxSseEventBytes !== undefined ? { maxEventBytes: this.opts.maxSseEventBytes } : {}),
        onOpen: () => {
          opened = true
          this.connected = true
          resolve()
          h.onConnected?.()
        },
        onEvent: (ev) => this.onStreamEvent(ev, h),
        onEnd: (err) => end(streamError(err, idleMs)),
      })
      this.stream = { events, end }
    })
  }

  /** One server-sent event: a RouterEvent in JSON (`type` defaults to the event name). A throw ends the stream. */
  private onStreamEvent(ev: SseEvent, h: StreamHandlers): void {
    let parsed: RouterEvent
    try {
      parsed = JSON.parse(ev.data) as RouterEvent
      if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object')
      if ((parsed as { type?: unknown }).type === undefined) (parsed as { type: string }).type = ev.event
    } catch (err) {
      throw new RouterError(
        'ERR_CONTROLLER_RESPONSE',
        `stream event "${ev.event}" is not valid JSON: ${(err as Error).message}`,
      )
    }
    try {
      h.onEvent(parsed)
    } catch (err) {
      this.log.error({ err }, 'handling a controller event failed; resyncing')
      throw err
    }
  }

  /** Drops the current stream and reconnects (fresh snapshot). */
  resync(): void {
    const s = this.stream
    if (!s) return
    s.events.close()
    s.end(new Error('resync'))
  }

  stop(): void {
    this.stopped = true
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    this.stream?.events.close()
    this.stream = null
    this.connected = false
    this.client.close()
  }
}

/** The router's words for why an open stream ended (the protocol's errors keep their codes otherwise). */
function streamError(err: Error, idleMs: number): Error {
  if (!isProtocolError(err)) return err
  switch (err.code) {
    case 'ERR_HTTPS_STATUS': {
      const d = err.details as { status?: number; text?: string }
      return new RouterError(
        'ERR_CONTROLLER_RESPONSE',
        `GET /fabric/v1/stream failed with HTTP ${d.status}: ${(d.text ?? '').slice(0, 300)}`,
        { status: d.status },
      )
    }
    case 'ERR_HTTPS_TIMEOUT':
      return new Error(`no event for ${idleMs} ms`)
    case 'ERR_HTTPS_STREAM_ENDED':
      return new Error('controller closed the stream')
    case 'ERR_HTTPS_UNREACHABLE':
      return (err.cause as Error | undefined) ?? err
    default:
      return err
  }
}
