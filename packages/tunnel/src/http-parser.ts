/** HTTP/1.x proxy request parsing: request heads, proxy targets, and request body framing. */
import { tryParseHostPort } from '@nullport/protocol'

export interface HttpRequestHead {
  method: string
  target: string
  version: '1.0' | '1.1'
  /** Header lines in order, names as sent. */
  headers: Array<[string, string]>
  /** Bytes of the head including the final CRLFCRLF. */
  length: number
}

export type HeadResult =
  | { status: 'incomplete' }
  | { status: 'error'; httpStatus: 400 | 431 | 505; reason: string }
  | ({ status: 'ok' } & HttpRequestHead)

/** True when `s` has a control character (or a space when `space` is false); tab is allowed in values. */
function hasControl(s: string, allowSpaceAndTab: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x7f) return true
    if (c < 0x20 && !(allowSpaceAndTab && c === 0x09)) return true
    if (c === 0x20 && !allowSpaceAndTab) return true
  }
  return false
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const MAX_HEADERS = 100

/** Finds CRLFCRLF; returns the index after it or -1. */
function findHeadEnd(buf: Uint8Array, limit: number): number {
  const n = Math.min(buf.length, limit)
  for (let i = 3; i < n; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1
  }
  return -1
}

/**
 * Parses a request head from the start of `buf`. A head longer than `maxHeadBytes` is an error
 * (431) as soon as that many bytes arrived without its end: the caller never buffers more.
 */
export function parseHttpRequestHead(buf: Uint8Array, maxHeadBytes: number): HeadResult {
  // leading empty lines are tolerated (RFC 9112 2.2)
  let start = 0
  while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10) start += 2
  const endAbs = findHeadEnd(buf.subarray(start), maxHeadBytes)
  if (endAbs < 0) {
    if (buf.length - start >= maxHeadBytes) {
      return { status: 'error', httpStatus: 431, reason: `request head exceeds ${maxHeadBytes} bytes` }
    }
    return { status: 'incomplete' }
  }
  const text = Buffer.from(buf.subarray(start, start + endAbs - 4)).toString('latin1')
  const lines = text.split('\r\n')
  const reqLine = lines[0]!
  const parts = reqLine.split(' ')
  if (parts.length !== 3) return { status: 'error', httpStatus: 400, reason: 'malformed request line' }
  const [method, target, proto] = parts as [string, string, string]
  if (!TOKEN_RE.test(method)) return { status: 'error', httpStatus: 400, reason: 'malformed method' }
  if (target.length === 0 || hasControl(target, false)) {
    return { status: 'error', httpStatus: 400, reason: 'malformed request target' }
  }
  let version: '1.0' | '1.1'
  if (proto === 'HTTP/1.1') version = '1.1'
  else if (proto === 'HTTP/1.0') version = '1.0'
  else if (/^HTTP\/\d\.\d$/.test(proto))
    return { status: 'error', httpStatus: 505, reason: `${proto} is not supported` }
  else return { status: 'error', httpStatus: 400, reason: 'malformed HTTP version' }
  const headers: Array<[string, string]> = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    if (line.startsWith(' ') || line.startsWith('\t')) {
      return { status: 'error', httpStatus: 400, reason: 'obsolete header line folding' }
    }
    const c = line.indexOf(':')
    if (c <= 0) return { status: 'error', httpStatus: 400, reason: 'malformed header line' }
    const name = line.slice(0, c)
    if (!TOKEN_RE.test(name)) return { status: 'error', httpStatus: 400, reason: 'malformed header name' }
    const value = line.slice(c + 1).trim()
    if (hasControl(value, true)) {
      return { status: 'error', httpStatus: 400, reason: 'control character in a header value' }
    }
    headers.push([name, value])
    if (headers.length > MAX_HEADERS) {
      return { status: 'error', httpStatus: 431, reason: `more than ${MAX_HEADERS} header lines` }
    }
  }
  return { status: 'ok', method, target, version, headers, length: start + endAbs }
}

/** All values of a header (case-insensitive name). */
export function headerValues(head: Pick<HttpRequestHead, 'headers'>, name: string): string[] {
  const n = name.toLowerCase()
  return head.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v)
}

/** Where a proxy request goes. */
export type ProxyTarget =
  | { kind: 'connect'; host: string; port: number }
  | { kind: 'forward'; host: string; port: number; path: string; hostHeader: string }

/**
 * Parses an authority `host:port`, `[v6]:port` (protocol's HOST:PORT, any host without whitespace
 * or `/ \\ ? # @`, port 1-65535); `defaultPort` when the port is absent (null: required).
 */
export function parseAuthority(a: string, defaultPort: number | null): { host: string; port: number } | null {
  const r = tryParseHostPort(a, defaultPort === null ? { host: 'any' } : { host: 'any', defaultPort })
  return r.ok ? { host: r.host, port: r.port } : null
}

export type TargetResult =
  | { status: 'ok'; target: ProxyTarget }
  | { status: 'error'; httpStatus: 400 | 501; reason: string }

/** The destination of a proxy request: CONNECT authority, or an absolute `http://` URI. */
export function proxyTarget(head: HttpRequestHead): TargetResult {
  if (head.method === 'CONNECT') {
    const a = parseAuthority(head.target, null)
    if (!a) return { status: 'error', httpStatus: 400, reason: 'CONNECT needs host:port' }
    return { status: 'ok', target: { kind: 'connect', ...a } }
  }
  const t = head.target
  const lower = t.slice(0, 8).toLowerCase()
  if (lower.startsWith('https://')) {
    return {
      status: 'error',
      httpStatus: 501,
      reason: 'https:// URIs are not proxied in plain form: use CONNECT (curl does with -x for https URLs)',
    }
  }
  if (!lower.startsWith('http://')) {
    return {
      status: 'error',
      httpStatus: 400,
      reason: 'not a proxy request: the target must be an absolute http:// URI or CONNECT host:port',
    }
  }
  const rest = t.slice(7)
  let slash = rest.search(/[/?#]/)
  if (slash < 0) slash = rest.length
  const authority = rest.slice(0, slash)
  if (authority.includes('@'))
    return { status: 'error', httpStatus: 400, reason: 'userinfo in the URI is not allowed' }
  const a = parseAuthority(authority, 80)
  if (!a) return { status: 'error', httpStatus: 400, reason: 'malformed host in the URI' }
  let path = rest.slice(slash)
  const hash = path.indexOf('#')
  if (hash >= 0) path = path.slice(0, hash)
  if (path === '' || path.startsWith('?')) path = `/${path}`
  return { status: 'ok', target: { kind: 'forward', ...a, path, hostHeader: authority } }
}

/** Body framing of a request. */
export type BodyKind = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' }

export function requestBodyKind(head: HttpRequestHead): BodyKind | { kind: 'error'; reason: string } {
  const te = headerValues(head, 'transfer-encoding')
  const cl = headerValues(head, 'content-length')
  if (te.length > 0) {
    if (cl.length > 0) return { kind: 'error', reason: 'both Transfer-Encoding and Content-Length' }
    const codings = te
      .join(',')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== '')
    if (codings[codings.length - 1] !== 'chunked') {
      return { kind: 'error', reason: 'Transfer-Encoding without final chunked' }
    }
    return { kind: 'chunked' }
  }
  if (cl.length > 0) {
    const vals = new Set(cl.flatMap((v) => v.split(',').map((s) => s.trim())))
    if (vals.size !== 1) return { kind: 'error', reason: 'conflicting Content-Length values' }
    const v = [...vals][0]!
    if (!/^\d{1,15}$/.test(v)) return { kind: 'error', reason: 'malformed Content-Length' }
    const length = Number(v)
    return length === 0 ? { kind: 'none' } : { kind: 'length', length }
  }
  return { kind: 'none' }
}

const HOP_BY_HOP = new Set(['proxy-connection', 'proxy-authorization', 'proxy-authenticate'])

/** The head to send to the origin: origin-form target, proxy-only headers removed, Host set. */
export function forwardHead(head: HttpRequestHead, t: Extract<ProxyTarget, { kind: 'forward' }>): Buffer {
  const lines = [`${head.method} ${t.path} HTTP/${head.version}`]
  let hasHost = false
  for (const [k, v] of head.headers) {
    const l = k.toLowerCase()
    if (HOP_BY_HOP.has(l)) continue
    if (l === 'host') {
      if (hasHost) continue
      hasHost = true
      lines.push(`Host: ${t.hostHeader}`)
      continue
    }
    lines.push(`${k}: ${v}`)
  }
  if (!hasHost) lines.splice(1, 0, `Host: ${t.hostHeader}`)
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
}

/**
 * Finds where a request body ends in a byte stream (Content-Length or chunked), so the next
 * request on a keep-alive connection can be parsed. Bytes are passed through unchanged; only
 * bounded state is kept (chunk-size lines up to 4 KiB).
 */
export class BodyFramer {
  private remaining: number
  private state: 'length' | 'size' | 'data' | 'data-cr' | 'data-lf' | 'trailer' | 'done'
  private line = ''
  private trailerLineEmpty = true

  constructor(kind: BodyKind) {
    if (kind.kind === 'none') {
      this.state = 'done'
      this.remaining = 0
    } else if (kind.kind === 'length') {
      this.state = 'length'
      this.remaining = kind.length
    } else {
      this.state = 'size'
      this.remaining = 0
    }
  }

  get done(): boolean {
    return this.state === 'done'
  }

  /**
   * Consumes bytes from `buf`; returns how many belong to the body (the rest follows the body),
   * or an error for malformed chunked framing.
   */
  consume(buf: Uint8Array): { used: number } | { error: string } {
    let i = 0
    while (i < buf.length && this.state !== 'done') {
      switch (this.state) {
        case 'length': {
          const n = Math.min(this.remaining, buf.length - i)
          i += n
          this.remaining -= n
          if (this.remaining === 0) this.state = 'done'
          break
        }
        case 'size': {
          const c = buf[i++]!
          if (c === 10) {
            const l = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line
            const sizeText = l.split(';')[0]!.trim()
            if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) return { error: 'malformed chunk size' }
            this.remaining = Number.parseInt(sizeText, 16)
            this.line = ''
            if (this.remaining === 0) {
              this.state = 'trailer'
              this.trailerLineEmpty = true
            } else this.state = 'data'
          } else {
            this.line += String.fromCharCode(c)
            if (this.line.length > 4096) return { error: 'chunk size line too long' }
          }
          break
        }
        case 'data': {
          const n = Math.min(this.remaining, buf.length - i)
          i += n
          this.remaining -= n
          if (this.remaining === 0) this.state = 'data-cr'
          break
        }
        case 'data-cr': {
          if (buf[i++] !== 13) return { error: 'chunk data not followed by CRLF' }
          this.state = 'data-lf'
          break
        }
        case 'data-lf': {
          if (buf[i++] !== 10) return { error: 'chunk data not followed by CRLF' }
          this.state = 'size'
          break
        }
        case 'trailer': {
          const c = buf[i++]!
          if (c === 10) {
            if (this.trailerLineEmpty) this.state = 'done'
            this.trailerLineEmpty = true
            this.line = ''
          } else if (c !== 13) {
            this.trailerLineEmpty = false
            this.line += 'x'
            if (this.line.length > 4096) return { error: 'trailer line too long' }
          }
          break
        }
      }
    }
    return { used: i }
  }
}

/** A complete small HTTP response (errors from the proxy itself). */
export function httpResponse(
  status: number,
  reason: string,
  body: string,
  extra: Record<string, string> = {},
): Buffer {
  const b = Buffer.from(body, 'utf8')
  const head = [
    `HTTP/1.1 ${status} ${reason}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${b.length}`,
    ...Object.entries(extra).map(([k, v]) => `${k}: ${v}`),
  ]
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), b])
}
