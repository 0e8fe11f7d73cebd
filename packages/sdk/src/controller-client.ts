import {
  type ClientEdgeRouter,
  type ClientEvent,
  type ClientService,
  type EventStream,
  HttpsJsonClient,
  isProtocolError,
  openEventStream,
} from '@nullport/protocol'
import { SdkError } from './errors.js'
import type { TlsCredentials } from './router-connection.js'

const MAX_BODY = 16 * 1024 * 1024
const TIMEOUT_MS = 30_000
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
  private readonly http: HttpsJsonClient
  private token: string | null = null
  private closed = false

  /** `controller` must be an https:// URL (checked by the context's options). */
  constructor(controller: string, creds: TlsCredentials) {
    this.baseUrl = new URL(controller)
    this.http = new HttpsJsonClient({
      baseUrl: this.baseUrl,
      tls: { cert: creds.cert, key: creds.key, ca: creds.ca },
      timeoutMs: TIMEOUT_MS,
      maxBytes: MAX_BODY,
      maxSockets: 4,
      retireAfterMs: 60_000,
    })
  }

  /**
   * Uses a renewed certificate for every later request and event stream. Requests in flight finish
   * on the old connections, which are closed a minute later.
   */
  setCredentials(creds: { cert: string; key: string }): void {
    this.http.setTls({ cert: creds.cert, key: creds.key })
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

  private headers(withToken: boolean): Record<string, string> {
    const h: Record<string, string> = {}
    if (withToken && this.token) {
      h.authorization = `Bearer ${this.token}`
      h['zt-session'] = this.token
    }
    return h
  }

  private async raw<T>(
    method: string,
    path: string,
    body: unknown,
    withToken: boolean,
  ): Promise<Envelope<T>> {
    if (this.closed) throw new SdkError('ERR_CONTEXT_CLOSED', 'the context is closed')
    let r: Awaited<ReturnType<HttpsJsonClient['request']>>
    try {
      r = await this.http.request(method, path, {
        headers: this.headers(withToken),
        ...(body === undefined ? {} : { body }),
      })
    } catch (err) {
      throw this.transportError(method, path, err)
    }
    if (r.json === undefined) {
      throw new SdkError('ERR_CONTROLLER_RESPONSE', `${method} ${path}: the controller answered invalid JSON`)
    }
    if (r.status >= 200 && r.status < 300) return r.json as Envelope<T>
    throw controllerError(method, path, r.status, r.json)
  }

  /** The SDK's code for a failed request (protocol's ERR_HTTPS_* codes). */
  private transportError(method: string, path: string, err: unknown): SdkError {
    if (isProtocolError(err, 'ERR_HTTPS_BODY_TOO_LARGE')) {
      return new SdkError(
        'ERR_CONTROLLER_RESPONSE',
        `${method} ${path}: response larger than ${MAX_BODY} bytes`,
        {},
        { cause: err },
      )
    }
    if (isProtocolError(err, 'ERR_HTTPS_TIMEOUT')) {
      return new SdkError(
        'ERR_CONTROLLER_UNREACHABLE',
        `${method} ${path}: no answer in ${TIMEOUT_MS / 1000} s`,
        {},
        { cause: err },
      )
    }
    const cause = (err as { cause?: unknown }).cause
    const why = (cause instanceof Error ? cause : (err as Error)).message
    return new SdkError(
      'ERR_CONTROLLER_UNREACHABLE',
      `cannot reach the controller at ${this.baseUrl.origin}: ${why}`,
      {},
      { cause: err },
    )
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
    let stream: EventStream | null = null
    const path = `${CLIENT_API}/events`
    const end = (err: Error): void => {
      if (ended) return
      ended = true
      stream?.close()
      onEnd(err)
    }
    const start = async (): Promise<void> => {
      if (this.token === null) await this.authenticate()
      if (ended) return
      stream = openEventStream({
        url: new URL(path, this.baseUrl),
        // a long-lived stream gets its own TLS connection, not one of the pool's
        tls: this.http.tls,
        headers: this.headers(true),
        idleTimeoutMs,
        // client events are small: tighter bounds than the router's snapshot stream
        maxLineBytes: 64 * 1024,
        maxEventBytes: 1024 * 1024,
        onOpen,
        onEvent: (e) => {
          let v: unknown
          try {
            v = JSON.parse(e.data)
          } catch {
            return
          }
          if (typeof v === 'object' && v !== null) {
            const type = (v as { type?: unknown }).type ?? e.event
            onEvent({ ...(v as object), type } as ClientEvent)
          }
        },
        onEnd: (err) => end(this.streamError(path, err, idleTimeoutMs)),
      })
    }
    start().catch((err) => end(err as Error))
    return () => end(new SdkError('ERR_CONTEXT_CLOSED', 'closed'))
  }

  /** The SDK's error for the end of the event stream. */
  private streamError(path: string, err: Error, idleTimeoutMs: number): Error {
    if (isProtocolError(err, 'ERR_HTTPS_STATUS')) {
      const status = Number(err.details.status)
      if (status === 401) this.token = null
      return controllerError('GET', path, status, err.details.json ?? {})
    }
    if (isProtocolError(err, 'ERR_HTTPS_TIMEOUT')) {
      return new SdkError(
        'ERR_CONTROLLER_UNREACHABLE',
        `the event stream was silent for ${idleTimeoutMs} ms`,
        {},
        { cause: err },
      )
    }
    if (isProtocolError(err, 'ERR_HTTPS_STREAM_ENDED')) {
      return new SdkError(
        'ERR_CONTROLLER_UNREACHABLE',
        'the controller ended the event stream',
        {},
        { cause: err },
      )
    }
    if (isProtocolError(err, 'ERR_HTTPS_UNREACHABLE')) {
      const cause = err.cause instanceof Error ? err.cause : err
      return new SdkError('ERR_CONTROLLER_UNREACHABLE', `event stream: ${cause.message}`, {}, { cause: err })
    }
    return err
  }

  close(): void {
    this.closed = true
    this.http.close()
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
