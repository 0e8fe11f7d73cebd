/**
 * One HTTPS client for the controller's APIs (fabric API for routers, client API for SDKs,
 * management API for the CLI, enrollment): TLS verified against the network CA (mTLS when a
 * certificate is given), bounded response bodies, a timeout, and coded errors (ProtocolError):
 *
 * | code | when | details |
 * |---|---|---|
 * | ERR_HTTPS_URL | the URL is not an https:// URL | url |
 * | ERR_HTTPS_UNREACHABLE | connect, TLS or socket error (`details.tls` for certificate errors) | origin, tls, cause |
 * | ERR_HTTPS_TIMEOUT | the connection was silent for `timeoutMs` | timeoutMs |
 * | ERR_HTTPS_BODY_TOO_LARGE | the answer is longer than `maxBytes` | limit |
 * | ERR_HTTPS_INCOMPLETE | the connection closed (or failed) before the answer was complete | |
 *
 * Every error also carries `method`, `origin` and `path`, and the underlying error as `cause`.
 * Callers turn these into their own codes (ERR_CONTROLLER_UNAVAILABLE, ERR_CLI_UNREACHABLE ...).
 * Any HTTP status resolves; controllerError() reads the `{error: {code, message}}` envelope.
 *
 * @example
 * const client = new HttpsJsonClient({ baseUrl: 'https://ctrl:1280', tls: { cert, key, ca } })
 * const r = await client.request('POST', '/fabric/v1/renew', { body: { csr } })
 * if (r.status !== 200) throw new Error(controllerError(r).message ?? `HTTP ${r.status}`)
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import https from 'node:https'
import { ProtocolError, type ProtocolErrorCode } from '../errors.js'

/** TLS material of a request: the CA to verify the server against and, for mTLS, a certificate. */
export interface HttpsTls {
  /** PEM CA bundle. */
  ca?: string
  /** PEM certificate chain (mTLS). */
  cert?: string
  /** PEM private key of `cert`. */
  key?: string
  /**
   * Skip server verification: only for fetching a CA bundle that is then checked another way
   * (a fingerprint pinned in an enrollment token, or shown to the user). Default false.
   */
  insecure?: boolean
}

export interface HttpsRequestOptions {
  method: string
  url: string | URL
  headers?: Record<string, string | number>
  /** Sent as is; `content-length` is set. */
  body?: string | Uint8Array
  /** A connection pool to use; without it the request has its own connection with `tls`. */
  agent?: https.Agent
  tls?: HttpsTls
  /** Largest answer in bytes. Default 16 MiB. */
  maxBytes?: number
  /** The connection may be silent this long (ms) before the request fails. Default 30000. */
  timeoutMs?: number
}

export interface HttpsResponse {
  status: number
  headers: IncomingHttpHeaders
  contentType: string | undefined
  /** The answer as UTF-8 text. */
  text: string
}

export interface JsonResponse extends HttpsResponse {
  /** The parsed body; `{}` for an empty body, undefined when the body is not JSON. */
  json: unknown
}

export const DEFAULT_HTTPS_MAX_BYTES = 16 * 1024 * 1024
export const DEFAULT_HTTPS_TIMEOUT_MS = 30_000

/** True for an error of TLS server verification (unknown CA, self-signed, name mismatch ...). */
export function isTlsVerifyError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | null
  return (
    /certificate|self.signed|unable to verify|altnames/i.test(String(e?.message ?? '')) ||
    String(e?.code ?? '').includes('CERT')
  )
}

function httpsError(
  code: ProtocolErrorCode,
  message: string,
  details: Record<string, unknown>,
  cause?: unknown,
): ProtocolError {
  return new ProtocolError(code, message, details, cause === undefined ? undefined : { cause })
}

/** Parses and checks an https:// URL; ERR_HTTPS_URL otherwise. */
export function httpsUrl(url: string | URL): URL {
  let u: URL
  try {
    u = typeof url === 'string' ? new URL(url) : url
  } catch (err) {
    throw httpsError('ERR_HTTPS_URL', `"${String(url)}" is not a URL: use https://HOST:PORT`, { url }, err)
  }
  if (u.protocol !== 'https:')
    throw httpsError('ERR_HTTPS_URL', `"${String(url)}" is not an https:// URL`, { url: String(url) })
  return u
}

interface TlsRequestOptions {
  rejectUnauthorized: boolean
  ca?: string
  cert?: string
  key?: string
}

/** The node:tls options of `tls`. */
export function tlsRequestOptions(tls: HttpsTls | undefined): TlsRequestOptions {
  const o: TlsRequestOptions = { rejectUnauthorized: tls?.insecure !== true }
  if (tls?.ca !== undefined && !tls.insecure) o.ca = tls.ca
  if (tls?.cert !== undefined) o.cert = tls.cert
  if (tls?.key !== undefined) o.key = tls.key
  return o
}

/** One HTTPS request with a bounded answer. Resolves for every HTTP status. */
export function httpsRequest(o: HttpsRequestOptions): Promise<HttpsResponse> {
  const maxBytes = o.maxBytes ?? DEFAULT_HTTPS_MAX_BYTES
  const timeoutMs = o.timeoutMs ?? DEFAULT_HTTPS_TIMEOUT_MS
  return new Promise<HttpsResponse>((resolve, reject) => {
    let url: URL
    try {
      url = httpsUrl(o.url)
    } catch (err) {
      reject(err)
      return
    }
    const where = { method: o.method, origin: url.origin, path: url.pathname }
    const headers: Record<string, string | number> = { ...o.headers }
    if (o.body !== undefined) headers['content-length'] = Buffer.byteLength(o.body)
    let settled = false
    const settle = (err: ProtocolError | null, v?: HttpsResponse): void => {
      if (settled) return
      settled = true
      if (err) {
        req.destroy()
        reject(err)
      } else resolve(v!)
    }
    const req = https.request(
      url,
      {
        method: o.method,
        headers,
        timeout: timeoutMs,
        ...(o.agent ? { agent: o.agent } : { agent: false, ...tlsRequestOptions(o.tls) }),
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > maxBytes) {
            settle(
              httpsError(
                'ERR_HTTPS_BODY_TOO_LARGE',
                `${o.method} ${url.origin}${url.pathname}: the answer is larger than ${maxBytes} bytes`,
                { ...where, limit: maxBytes },
              ),
            )
            return
          }
          chunks.push(c)
        })
        res.on('end', () =>
          settle(null, {
            status: res.statusCode ?? 0,
            headers: res.headers,
            contentType: res.headers['content-type'],
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        )
        const incomplete = (cause?: Error): void =>
          settle(
            httpsError(
              'ERR_HTTPS_INCOMPLETE',
              `${o.method} ${url.origin}${url.pathname}: the connection closed before the answer was complete`,
              where,
              cause,
            ),
          )
        res.on('error', (err) => incomplete(err))
        res.on('close', () => incomplete())
      },
    )
    const unreachable = (err: Error): ProtocolError =>
      httpsError(
        'ERR_HTTPS_UNREACHABLE',
        `cannot reach ${url.origin}: ${err.message}`,
        { ...where, tls: isTlsVerifyError(err) },
        err,
      )
    req.on('timeout', () =>
      settle(
        httpsError(
          'ERR_HTTPS_TIMEOUT',
          `${o.method} ${url.origin}${url.pathname}: no answer within ${timeoutMs} ms`,
          { ...where, timeoutMs },
        ),
      ),
    )
    req.on('error', (err) => settle(unreachable(err)))
    req.end(o.body)
  })
}

/** Parses a body as JSON: `{}` when empty, undefined when it is not JSON. */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) return {}
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** A JSON request: `body` is serialised (content-type set), `accept: application/json`. */
export async function httpsJson(
  o: Omit<HttpsRequestOptions, 'body'> & { body?: unknown },
): Promise<JsonResponse> {
  const { body: value, ...rest } = o
  const headers: Record<string, string | number> = { accept: 'application/json', ...o.headers }
  let body: string | undefined
  if (value !== undefined) {
    body = JSON.stringify(value)
    headers['content-type'] = 'application/json'
  }
  const r = await httpsRequest({ ...rest, headers, ...(body === undefined ? {} : { body }) })
  return { ...r, json: parseJsonBody(r.text) }
}

/** The controller's error envelope `{error: {code, message, ...}}` of an answer, if it has one. */
export function controllerError(r: { json: unknown }): {
  code: string | undefined
  message: string | undefined
  /** The other fields of `error`. */
  fields: Record<string, unknown>
} {
  const e = (r.json as { error?: unknown } | null | undefined)?.error
  if (typeof e !== 'object' || e === null) return { code: undefined, message: undefined, fields: {} }
  const { code, message, ...fields } = e as Record<string, unknown>
  return {
    code: typeof code === 'string' ? code : undefined,
    message: typeof message === 'string' ? message : undefined,
    fields,
  }
}

export interface HttpsJsonClientOptions {
  /** Controller base URL (https://host:port); request paths are resolved against it. */
  baseUrl: string | URL
  tls: HttpsTls
  /** Default 30000. */
  timeoutMs?: number
  /** Default 16 MiB. */
  maxBytes?: number
  /** Keep-alive pool size. Default 8. */
  maxSockets?: number
  /** How long a pool replaced by setTls() lives on for requests under way. Default timeoutMs + 1000. */
  retireAfterMs?: number
}

/**
 * JSON requests to one controller over a keep-alive pool. setTls() switches credentials (a
 * renewed certificate) for new connections while requests under way finish on the old pool.
 */
export class HttpsJsonClient {
  readonly baseUrl: URL
  private tlsNow: HttpsTls
  private agent: https.Agent
  private readonly retired = new Set<https.Agent>()
  private readonly opts: HttpsJsonClientOptions
  private closed = false

  /** Throws ERR_HTTPS_URL for a base URL that is not https://. */
  constructor(opts: HttpsJsonClientOptions) {
    this.opts = opts
    this.baseUrl = httpsUrl(opts.baseUrl)
    this.tlsNow = { ...opts.tls }
    this.agent = this.makeAgent()
  }

  /** The TLS material new connections use. */
  get tls(): Readonly<HttpsTls> {
    return this.tlsNow
  }

  private makeAgent(): https.Agent {
    return new https.Agent({
      keepAlive: true,
      maxSockets: this.opts.maxSockets ?? 8,
      ...tlsRequestOptions(this.tlsNow),
    })
  }

  /** New connections use `tls` (merged over the current material) from now on. */
  setTls(tls: HttpsTls): void {
    this.tlsNow = { ...this.tlsNow, ...tls }
    const old = this.agent
    this.agent = this.makeAgent()
    if (this.closed) {
      old.destroy()
      return
    }
    this.retired.add(old)
    const t = setTimeout(
      () => {
        this.retired.delete(old)
        old.destroy()
      },
      this.opts.retireAfterMs ?? (this.opts.timeoutMs ?? DEFAULT_HTTPS_TIMEOUT_MS) + 1000,
    )
    t.unref()
  }

  /** A JSON request to `path` (resolved against the base URL). Resolves for every HTTP status. */
  request(
    method: string,
    path: string,
    o: {
      body?: unknown
      headers?: Record<string, string | number>
      timeoutMs?: number
      maxBytes?: number
    } = {},
  ): Promise<JsonResponse> {
    return httpsJson({
      method,
      url: new URL(path, this.baseUrl),
      agent: this.agent,
      timeoutMs: o.timeoutMs ?? this.opts.timeoutMs ?? DEFAULT_HTTPS_TIMEOUT_MS,
      maxBytes: o.maxBytes ?? this.opts.maxBytes ?? DEFAULT_HTTPS_MAX_BYTES,
      ...(o.headers ? { headers: o.headers } : {}),
      ...(o.body === undefined ? {} : { body: o.body }),
    })
  }

  /** Closes every pooled connection (callers refuse requests after their own close). */
  close(): void {
    this.closed = true
    this.agent.destroy()
    for (const a of this.retired) a.destroy()
    this.retired.clear()
  }
}
