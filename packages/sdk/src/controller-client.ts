import https from 'node:https'
import type { ClientEdgeRouter, ClientEvent, ClientService } from '@nullport/protocol'
import { SseParser } from '@nullport/protocol'
import { SdkError } from './errors.js'
import type { TlsCredentials } from './router-connection.js'

const MAX_BODY = 16 * 1024 * 1024
const CLIENT_API = '/edge/client/v1'

interface Envelope<T> {
  data: T
  meta?: { pagination?: { limit: number; offset: number; totalCount: number } }
}

/** Codes of the controller that mean this identity may not use the network any more. */
const REVOKED_CODES = new Set([
  'ERR_CERT_REVOKED',
  'ERR_IDENTITY_DISABLED',
  'ERR_CERT_REQUIRED',
  'ERR_FORBIDDEN',
])

/**
 * The client API of the controller (`/edge/client/v1`), authenticated with the identity's
 * certificate (mTLS) and the session token that `POST /authenticate?method=cert` returns.
 */
export class ControllerClient {
  readonly baseUrl: URL
  private agent: https.Agent
  private token: string | null = null
  private closed = false
  private tlsOptions: { cert: string; key: string; ca: string }

  constructor(controller: string, creds: TlsCredentials) {
    this.baseUrl = new URL(controller)
    this.tlsOptions = { cert: creds.cert, key: creds.key, ca: creds.ca }
    this.agent = ControllerClient.agentFor(this.tlsOptions)
  }

  private static agentFor(o: { cert: string; key: string; ca: string }): https.Agent {
    return new https.Agent({ cert: o.cert, key: o.key, ca: o.ca, keepAlive: true, maxSockets: 4 })
  }

  /**
   * Uses a renewed certificate for every later request and event stream. Requests in flight finish
   * on the old agent, which is closed a minute later.
   */
  setCredentials(creds: { cert: string; key: string }): void {
    this.tlsOptions = { ...this.tlsOptions, cert: creds.cert, key: creds.key }
    const old = this.agent
    this.agent = ControllerClient.agentFor(this.tlsOptions)
    setTimeout(() => old.destroy(), 60_000).unref()
  }

  /** POST /current-identity/renew {csr} -> the new certificate chain. */
  async renew(csr: string): Promise<{ cert: string; ca: string; notAfter: string }> {
    const r = await this.request<{ cert?: unknown; ca?: unknown; notAfter?: unknown }>(
      'POST',
      `${CLIENT_API}/current-identity/renew`,
      { csr },
    )
    const d = r.data
    if (typeof d?.cert !== 'string' || typeof d.ca !== 'string' || typeof d.notAfter !== 'string') {
      throw new SdkError(
        'ERR_CONTROLLER_RESPONSE',
        'the controller answered renew without cert, ca and notAfter',
      )
    }
    return { cert: d.cert, ca: d.ca, notAfter: d.notAfter }
  }

  /** POST /authenticate?method=cert. */
  async authenticate(): Promise<{ id: string; name: string }> {
    const r = await this.raw<{ token: string; identity: { id: string; name: string } }>(
      'POST',
      `${CLIENT_API}/authenticate?method=cert`,
      {},
      false,
    )
    if (typeof r.data?.token !== 'string') {
      throw new SdkError('ERR_CONTROLLER_RESPONSE', 'the controller answered authenticate without a token')
    }
    this.token = r.data.token
    return r.data.identity
  }

  async services(): Promise<ClientService[]> {
    return this.list<ClientService>(`${CLIENT_API}/services`)
  }

  async edgeRouters(): Promise<ClientEdgeRouter[]> {
    return this.list<ClientEdgeRouter>(`${CLIENT_API}/edge-routers`)
  }

  private async list<T>(path: string): Promise<T[]> {
    const out: T[] = []
    for (let offset = 0; ; ) {
      const r = await this.request<T[]>('GET', `${path}?limit=1000&offset=${offset}`)
      if (!Array.isArray(r.data))
        throw new SdkError('ERR_CONTROLLER_RESPONSE', `GET ${path} did not answer a list`)
      out.push(...r.data)
      const total = r.meta?.pagination?.totalCount
      offset += r.data.length
      if (total === undefined || offset >= total || r.data.length === 0) return out
    }
  }

  /** A request with the session token; authenticates again once on 401. */
  private async request<T>(method: string, path: string, body?: unknown): Promise<Envelope<T>> {
    if (this.token === null) await this.authenticate()
    try {
      return await this.raw<T>(method, path, body, true)
    } catch (err) {
      if (
        (err as SdkError).details?.status === 401 &&
        !REVOKED_CODES.has(String((err as SdkError).details?.remoteCode))
      ) {
        await this.authenticate()
        return this.raw<T>(method, path, body, true)
      }
      throw err
    }
  }

  private headers(withToken: boolean, extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra }
    if (withToken && this.token) {
      h.authorization = `Bearer ${this.token}`
      h['zt-session'] = this.token
    }
    return h
  }

  private raw<T>(method: string, path: string, body: unknown, withToken: boolean): Promise<Envelope<T>> {
    if (this.closed) return Promise.reject(new SdkError('ERR_CONTEXT_CLOSED', 'the context is closed'))
    const url = new URL(path, this.baseUrl)
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          agent: this.agent,
          headers: this.headers(
            withToken,
            payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {},
          ),
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (c: Buffer) => {
            size += c.length
            if (size > MAX_BODY) {
              req.destroy(
                new SdkError(
                  'ERR_CONTROLLER_RESPONSE',
                  `${method} ${path}: response larger than ${MAX_BODY} bytes`,
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
            } catch (err) {
              reject(
                new SdkError(
                  'ERR_CONTROLLER_RESPONSE',
                  `${method} ${path}: the controller answered invalid JSON`,
                  {},
                  { cause: err },
                ),
              )
              return
            }
            const status = res.statusCode ?? 0
            if (status >= 200 && status < 300) {
              resolve(json as Envelope<T>)
              return
            }
            reject(controllerError(method, path, status, json))
          })
        },
      )
      req.on('timeout', () =>
        req.destroy(new SdkError('ERR_CONTROLLER_UNREACHABLE', `${method} ${path}: no answer in 30 s`)),
      )
      req.on('error', (err) => {
        reject(
          err instanceof SdkError
            ? err
            : new SdkError(
                'ERR_CONTROLLER_UNREACHABLE',
                `cannot reach the controller at ${this.baseUrl.origin}: ${err.message}`,
                {},
                { cause: err },
              ),
        )
      })
      req.end(payload)
    })
  }

  /**
   * Opens the event stream. `onEvent` gets each event; `onEnd` is called once when the stream
   * ends or fails (with the error). Returns a function that closes the stream.
   */
  events(
    onOpen: () => void,
    onEvent: (ev: ClientEvent) => void,
    onEnd: (err: Error) => void,
    idleTimeoutMs: number,
  ): () => void {
    let ended = false
    let req: ReturnType<typeof https.request> | null = null
    const end = (err: Error): void => {
      if (ended) return
      ended = true
      req?.destroy()
      onEnd(err)
    }
    const start = async (): Promise<void> => {
      if (this.token === null) await this.authenticate()
      if (ended) return
      req = https.request(new URL(`${CLIENT_API}/events`, this.baseUrl), {
        method: 'GET',
        // A long-lived stream gets its own TLS connection, not one of the pool's.
        agent: false,
        headers: this.headers(true, { accept: 'text/event-stream' }),
        ...this.tlsOptions,
      })
      req.setTimeout(idleTimeoutMs, () =>
        end(
          new SdkError('ERR_CONTROLLER_UNREACHABLE', `the event stream was silent for ${idleTimeoutMs} ms`),
        ),
      )
      req.on('error', (err) =>
        end(
          err instanceof SdkError
            ? err
            : new SdkError('ERR_CONTROLLER_UNREACHABLE', `event stream: ${err.message}`, {}, { cause: err }),
        ),
      )
      req.on('response', (res) => {
        const status = res.statusCode ?? 0
        if (status !== 200) {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (c: Buffer) => {
            size += c.length
            if (size <= 64 * 1024) chunks.push(c)
          })
          res.on('end', () => {
            let json: unknown = {}
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8'))
            } catch {
              // not JSON
            }
            if (status === 401) this.token = null
            end(controllerError('GET', `${CLIENT_API}/events`, status, json))
          })
          return
        }
        onOpen()
        // client events are small: tighter bounds than the router's snapshot stream
        const parser = new SseParser({ maxLineBytes: 64 * 1024, maxEventBytes: 1024 * 1024 })
        res.on('data', (c: Buffer) => {
          let evs: ReturnType<SseParser['push']>
          try {
            evs = parser.push(c)
          } catch (err) {
            end(err as Error)
            return
          }
          for (const e of evs) {
            if (ended) return
            let v: unknown
            try {
              v = JSON.parse(e.data)
            } catch {
              continue
            }
            if (typeof v === 'object' && v !== null) {
              const type = (v as { type?: unknown }).type ?? e.event
              onEvent({ ...(v as object), type } as ClientEvent)
            }
          }
        })
        res.on('end', () =>
          end(new SdkError('ERR_CONTROLLER_UNREACHABLE', 'the controller ended the event stream')),
        )
        res.on('error', (err) => end(err))
      })
      req.end()
    }
    start().catch((err) => end(err as Error))
    return () => end(new SdkError('ERR_CONTEXT_CLOSED', 'closed'))
  }

  close(): void {
    this.closed = true
    this.agent.destroy()
  }
}

/** Maps an error answer of the controller to an SdkError with `details.status` and `details.remoteCode`. */
function controllerError(method: string, path: string, status: number, json: unknown): SdkError {
  const e = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error
  const remoteCode = typeof e?.code === 'string' ? e.code : `HTTP_${status}`
  const msg = typeof e?.message === 'string' ? e.message : `HTTP ${status}`
  const details = { status, remoteCode, method, path }
  if (REVOKED_CODES.has(remoteCode) || status === 401 || status === 403) {
    const revoked = REVOKED_CODES.has(remoteCode)
    return new SdkError(
      revoked ? 'ERR_IDENTITY_REVOKED' : 'ERR_AUTHENTICATION_FAILED',
      `${method} ${path}: the controller refused this identity (${remoteCode}: ${msg})${revoked ? ': the identity was revoked, disabled or deleted; re-enroll it with `nullport edge re-enroll`' : ''}`,
      details,
    )
  }
  return new SdkError('ERR_CONTROLLER_RESPONSE', `${method} ${path}: ${remoteCode}: ${msg}`, details)
}
