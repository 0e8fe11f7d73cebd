/**
 * The router's client of the controller's fabric API (`/fabric/v1`, mTLS with the router
 * certificate): JSON requests with bounded bodies and timeouts, and the policy event stream
 * (`GET /fabric/v1/stream`, server-sent events) with reconnect, exponential jittered backoff and
 * a fresh snapshot after each reconnect.
 */
import https from 'node:https'
import { Backoff, type RouterEvent, type SseEvent, SseParser } from '@nullport/protocol'
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
  private agent: https.Agent
  /** Agents replaced by setCredentials(), destroyed once their requests had time to finish. */
  private readonly retired = new Set<https.Agent>()
  private certPem: string
  private keyPem: string
  private caPem: string
  private readonly opts: FabricClientOptions
  private readonly log: Logger
  private stopped = false
  private streamReq: import('node:http').ClientRequest | null = null
  private reconnectTimer: NodeJS.Timeout | null = null
  private idleTimer: NodeJS.Timeout | null = null
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
    this.certPem = opts.certPem
    this.keyPem = opts.keyPem
    this.caPem = opts.caPem
    this.agent = this.makeAgent()
    this.backoff = new Backoff({
      initialMs: opts.reconnectBaseMs ?? 250,
      maxMs: opts.reconnectMaxMs ?? 10_000,
    })
  }

  private makeAgent(): https.Agent {
    return new https.Agent({
      keepAlive: true,
      maxSockets: 8,
      cert: this.certPem,
      key: this.keyPem,
      ca: this.caPem,
    })
  }

  /**
   * New connections (requests and the next stream) use these credentials from now on. Requests
   * under way finish on their connection; the previous pool is destroyed after the request timeout.
   */
  setCredentials(c: { certPem: string; keyPem: string; caPem: string }): void {
    this.certPem = c.certPem
    this.keyPem = c.keyPem
    this.caPem = c.caPem
    const old = this.agent
    this.agent = this.makeAgent()
    if (this.stopped) {
      old.destroy()
      return
    }
    this.retired.add(old)
    const t = setTimeout(
      () => {
        this.retired.delete(old)
        old.destroy()
      },
      (this.opts.requestTimeoutMs ?? 10_000) + 1000,
    )
    t.unref()
  }

  /** `POST /fabric/v1/renew {csr}`: a new certificate for the CSR's key (see renew.ts). */
  renew(csrPem: string): Promise<{ cert: string; ca: string; notAfter: string }> {
    return this.request('POST', '/fabric/v1/renew', { csr: csrPem })
  }

  private url(path: string): URL {
    return new URL(path, this.base)
  }

  /** JSON request; resolves to `data` of the envelope. Errors: ERR_CONTROLLER_UNAVAILABLE, ERR_CONTROLLER_RESPONSE. */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const timeout = this.opts.requestTimeoutMs ?? 10_000
    const maxBytes = this.opts.maxResponseBytes ?? 8 * 1024 * 1024
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    return new Promise<T>((resolve, reject) => {
      if (this.stopped) {
        reject(new RouterError('ERR_ROUTER_STOPPED', 'the router is stopped'))
        return
      }
      const u = this.url(path)
      const headers: Record<string, string | number> = { accept: 'application/json' }
      if (payload) {
        headers['content-type'] = 'application/json'
        headers['content-length'] = payload.length
      }
      const req = https.request(u, { method, agent: this.agent, headers, timeout }, (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > maxBytes) {
            req.destroy(
              new RouterError(
                'ERR_CONTROLLER_RESPONSE',
                `${method} ${path}: response larger than ${maxBytes} bytes`,
              ),
            )
            return
          }
          chunks.push(c)
        })
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json: unknown
          try {
            json = text.length > 0 ? JSON.parse(text) : {}
          } catch {
            json = undefined
          }
          const status = res.statusCode ?? 0
          if (status >= 200 && status < 300) {
            resolve(((json as { data?: unknown } | undefined)?.data ?? json) as T)
            // The controller answers again: do not wait out the stream's backoff.
            if (!this.connected) this.reconnectNow()
            return
          }
          const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error
          reject(
            new RouterError(
              'ERR_CONTROLLER_RESPONSE',
              `${method} ${path} failed with HTTP ${status}${e?.code ? ` ${e.code}` : ''}: ${e?.message ?? text.slice(0, 200)}`,
              { status, apiCode: e?.code },
            ),
          )
        })
      })
      req.on('timeout', () => req.destroy(new Error(`timed out after ${timeout} ms`)))
      req.on('error', (err) => {
        if (err instanceof RouterError) reject(err)
        else
          reject(
            new RouterError(
              'ERR_CONTROLLER_UNAVAILABLE',
              `${method} ${path}: controller ${this.base.origin} unreachable: ${err.message}`,
              {},
              { cause: err },
            ),
          )
      })
      req.end(payload)
    })
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
      const u = this.url('/fabric/v1/stream')
      const req = https.request(u, {
        method: 'GET',
        // A dedicated connection (not the keep-alive pool): the stream is long-lived.
        agent: false,
        cert: this.certPem,
        key: this.keyPem,
        ca: this.caPem,
        headers: { accept: 'text/event-stream', 'cache-control': 'no-cache' },
      })
      this.streamReq = req
      let opened = false
      let ended = false
      const finish = (err: Error | null): void => {
        if (ended) return
        ended = true
        if (this.idleTimer) clearTimeout(this.idleTimer)
        this.idleTimer = null
        if (this.streamReq === req) this.streamReq = null
        req.destroy()
        if (!opened) {
          reject(err ?? new Error('stream closed before opening'))
          return
        }
        this.connected = false
        h.onDisconnected?.(err)
        this.reconnect()
      }
      const armIdle = (): void => {
        if (this.idleTimer) clearTimeout(this.idleTimer)
        this.idleTimer = setTimeout(() => finish(new Error(`no event for ${idleMs} ms`)), idleMs)
        this.idleTimer.unref()
      }
      req.on('response', (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => {
            if (chunks.length < 16) chunks.push(c)
          })
          res.on('end', () =>
            finish(
              new RouterError(
                'ERR_CONTROLLER_RESPONSE',
                `GET /fabric/v1/stream failed with HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`,
                { status: res.statusCode },
              ),
            ),
          )
          return
        }
        const parser = new SseParser({
          ...(this.opts.maxSseLineBytes !== undefined ? { maxLineBytes: this.opts.maxSseLineBytes } : {}),
          ...(this.opts.maxSseEventBytes !== undefined ? { maxEventBytes: this.opts.maxSseEventBytes } : {}),
        })
        opened = true
        this.connected = true
        armIdle()
        resolve()
        h.onConnected?.()
        res.on('data', (chunk: Buffer) => {
          if (ended) return
          armIdle()
          let events: SseEvent[]
          try {
            events = parser.push(chunk)
          } catch (err) {
            finish(err as Error)
            return
          }
          for (const ev of events) {
            if (ended) return
            let parsed: RouterEvent
            try {
              parsed = JSON.parse(ev.data) as RouterEvent
              if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object')
              if ((parsed as { type?: unknown }).type === undefined)
                (parsed as { type: string }).type = ev.event
            } catch (err) {
              finish(
                new RouterError(
                  'ERR_CONTROLLER_RESPONSE',
                  `stream event "${ev.event}" is not valid JSON: ${(err as Error).message}`,
                ),
              )
              return
            }
            try {
              h.onEvent(parsed)
            } catch (err) {
              this.log.error({ err }, 'handling a controller event failed; resyncing')
              finish(err as Error)
              return
            }
          }
        })
        res.on('end', () => finish(new Error('controller closed the stream')))
        res.on('error', (err) => finish(err))
        res.on('close', () => finish(new Error('stream connection closed')))
      })
      req.on('error', (err) => finish(err))
      req.end()
    })
  }

  /** Drops the current stream and reconnects (fresh snapshot). */
  resync(): void {
    this.streamReq?.destroy(new Error('resync'))
  }

  stop(): void {
    this.stopped = true
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    if (this.idleTimer) clearTimeout(this.idleTimer)
    this.streamReq?.destroy()
    this.agent.destroy()
    for (const a of this.retired) a.destroy()
    this.retired.clear()
  }
}
