/**
 * A small client for the controller's management API over node:https: TLS verified against the
 * session's CA, bounded response bodies, the `{data, meta}` / `{error}` envelope.
 */
import { X509Certificate } from 'node:crypto'
import { request as httpsRequest } from 'node:https'
import { splitPem } from '@nullport/protocol'
import { CliError } from '../errors.js'
import type { CliSession } from './config.js'

/** An error the controller answered (its code from the controller's registry, e.g. ERR_NAME_IN_USE). */
export class ApiError extends Error {
  readonly code: string
  readonly status: number
  readonly details: Record<string, unknown>
  constructor(code: string, message: string, status: number, details: Record<string, unknown> = {}) {
    super(message)
    this.name = 'ApiError'
    this.code = code
    this.status = status
    this.details = details
  }
}

export interface HttpResult {
  status: number
  contentType: string | undefined
  body: string
}

export interface HttpOptions {
  method: string
  url: string
  headers?: Record<string, string>
  body?: string
  /** PEM CA certificates to verify the server against; `insecure` skips verification (only to fetch a CA bundle that is then shown to the user). */
  ca?: string
  insecure?: boolean
  maxBytes?: number
  timeoutMs?: number
}

const DEFAULT_MAX = 16 * 1024 * 1024

export function httpRequest(o: HttpOptions): Promise<HttpResult> {
  const maxBytes = o.maxBytes ?? DEFAULT_MAX
  const timeoutMs = o.timeoutMs ?? 30_000
  return new Promise<HttpResult>((resolve, reject) => {
    let url: URL
    try {
      url = new URL(o.url)
    } catch {
      reject(new CliError('ERR_CLI_USAGE', `"${o.url}" is not a URL: use https://HOST:PORT`))
      return
    }
    if (url.protocol !== 'https:') {
      reject(
        new CliError('ERR_CLI_USAGE', `"${o.url}" is not an https:// URL: the controller speaks HTTPS only`),
      )
      return
    }
    const headers: Record<string, string | number> = { accept: 'application/json', ...o.headers }
    if (o.body !== undefined) headers['content-length'] = Buffer.byteLength(o.body)
    const req = httpsRequest(
      url,
      {
        method: o.method,
        headers,
        ...(o.insecure ? { rejectUnauthorized: false } : { ca: o.ca, rejectUnauthorized: true }),
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > maxBytes) {
            fail(
              new CliError(
                'ERR_CLI_BAD_RESPONSE',
                `the answer from ${url.origin}${url.pathname} is larger than ${maxBytes} bytes`,
              ),
            )
            req.destroy()
            return
          }
          chunks.push(c)
        })
        res.on('end', () => {
          if (settled) return
          settled = true
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'],
            body: Buffer.concat(chunks).toString('utf8'),
          })
        })
        res.on('error', (err) => fail(err))
        res.on('close', () => fail(new Error('the connection closed before the answer was complete')))
      },
    )
    let settled = false
    function fail(err: NodeJS.ErrnoException): void {
      if (settled) return
      settled = true
      if (err instanceof CliError) {
        reject(err)
        return
      }
      const tls =
        /certificate|self.signed|unable to verify|altnames/i.test(err.message) ||
        String(err.code ?? '').includes('CERT')
      const hint = tls
        ? ': the controller is not the one whose CA you trusted at login (or its certificate does not name this address): log in again with `nullport edge login URL -u USER --ca FILE`'
        : ': is the controller running and the URL right?'
      reject(
        new CliError(
          'ERR_CLI_UNREACHABLE',
          `cannot reach ${url.origin}: ${err.message}${hint}`,
          { url: url.origin, cause: err.code },
          { cause: err },
        ),
      )
    }
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', (err) => fail(err))
    req.end(o.body)
  })
}

/** The certificates of a PEM bundle (protocol's splitPem); none for text that is not a PEM bundle. */
export function pemCerts(bundle: string): string[] {
  try {
    return splitPem(bundle)
  } catch {
    return []
  }
}

/** `AB:CD:...` form for people. */
export function colonFingerprint(hex: string): string {
  return hex.toUpperCase().match(/../g)!.join(':')
}

/** The self-signed root of a bundle (or the last certificate when none is self-signed). */
export function bundleRoot(bundle: string): string | undefined {
  const certs = pemCerts(bundle)
  for (const p of certs) {
    try {
      const c = new X509Certificate(p)
      if (c.checkIssued(c) && c.verify(c.publicKey)) return p
    } catch {
      // skip malformed
    }
  }
  return certs[certs.length - 1]
}

export interface Envelope<T = unknown> {
  data: T
  meta: {
    warnings?: string[]
    pagination?: { limit: number; offset: number; totalCount: number }
    [k: string]: unknown
  }
}

/** Parses an envelope or throws the controller's error as ApiError. */
export function parseEnvelope<T>(r: HttpResult, what: string): Envelope<T> {
  let json: unknown
  try {
    json = r.body.length ? JSON.parse(r.body) : {}
  } catch {
    throw new CliError(
      'ERR_CLI_BAD_RESPONSE',
      `${what}: the controller answered HTTP ${r.status} with something that is not JSON: is the URL a Nullport controller?`,
      {
        status: r.status,
      },
    )
  }
  const obj = (json ?? {}) as { data?: unknown; meta?: unknown; error?: Record<string, unknown> }
  if (r.status >= 400 || obj.error) {
    const e = obj.error ?? {}
    const code = typeof e.code === 'string' ? e.code : `HTTP_${r.status}`
    const message = typeof e.message === 'string' ? e.message : `HTTP ${r.status}`
    const { code: _c, message: _m, ...rest } = e
    throw new ApiError(code, message, r.status, rest)
  }
  return { data: obj.data as T, meta: (obj.meta ?? {}) as Envelope['meta'] }
}

export const MGMT = '/edge/management/v1'

export function loginHint(s: { url: string; username?: string }): string {
  return `nullport edge login ${s.url} -u ${s.username ?? 'USER'}`
}

/** Management API client bound to a stored session. */
export class ManagementClient {
  constructor(readonly session: CliSession) {}

  async request<T = unknown>(
    method: string,
    path: string,
    opts: { body?: unknown; query?: Array<[string, string]> } = {},
  ): Promise<Envelope<T>> {
    const s = this.session
    // The controller extends sessions while they are used, so the expiry stored at login is not
    // authoritative: the controller's answer (ERR_SESSION_EXPIRED / ERR_UNAUTHORIZED) is.
    const qs = opts.query?.length ? `?${new URLSearchParams(opts.query).toString()}` : ''
    const url = `${s.url.replace(/\/+$/, '')}${MGMT}${path}${qs}`
    const headers: Record<string, string> = { authorization: `Bearer ${s.token}` }
    let body: string | undefined
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body)
      headers['content-type'] = 'application/json'
    }
    const r = await httpRequest({ method, url, headers, body, ca: s.ca })
    try {
      return parseEnvelope<T>(r, `${method} ${path}`)
    } catch (err) {
      if (
        err instanceof ApiError &&
        (err.code === 'ERR_SESSION_EXPIRED' || err.code === 'ERR_UNAUTHORIZED')
      ) {
        throw new CliError('ERR_CLI_SESSION_EXPIRED', `session expired: run \`${loginHint(s)}\``, {
          url: s.url,
          serverCode: err.code,
        })
      }
      throw err
    }
  }
}
