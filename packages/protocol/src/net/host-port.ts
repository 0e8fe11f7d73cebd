/**
 * `HOST:PORT` parsing and formatting, shared by config files, CLI flags, router addresses,
 * zitify bindings and HTTP proxy authorities. IPv6 addresses are written in brackets
 * (`[::1]:8080`); an IPv6 address without brackets is refused with a message that says so.
 *
 * tryParseHostPort() returns the failure as a value (`reason` to match on, `why` in words) so
 * each caller can raise its own coded error; parseHostPort() throws ProtocolError ERR_HOST_PORT.
 *
 * @example
 * parseHostPort('[::1]:3022') // { host: '::1', port: 3022 }
 * formatHostPort('::1', 3022) // '[::1]:3022'
 */
import { isIP } from 'node:net'
import { ProtocolError } from '../errors.js'

export interface HostPort {
  /** Without brackets (`::1`, `127.0.0.1`, `db.internal`); '' only with `allowEmptyHost`. */
  host: string
  port: number
}

export interface HostPortOptions {
  /** The port when the text has none; without it a missing port is `missing-port`. */
  defaultPort?: number
  /** Accept port 0 (an OS-chosen listening port). Default false. */
  allowPortZero?: boolean
  /**
   * How the host is checked: `name` (default) an IP address or a DNS host name, and brackets
   * hold an IPv6 address; `any` (HTTP authorities) 1..255 characters without whitespace or
   * `/ \ ? # @`.
   */
  host?: 'name' | 'any'
  /** Accept `:PORT` (host ''). Default false. */
  allowEmptyHost?: boolean
}

/** Why a text is not HOST:PORT. */
export type HostPortErrorReason =
  | 'empty'
  | 'unterminated-bracket'
  | 'bracket-suffix'
  | 'not-ipv6'
  | 'unbracketed-ipv6'
  | 'bad-host'
  | 'missing-port'
  | 'bad-port'
  | 'port-zero'

export type HostPortResult =
  | ({ ok: true } & HostPort)
  | {
      ok: false
      reason: HostPortErrorReason
      /** The cause in words, to follow a field name: `needs a port: HOST:PORT, got "db"`. */
      why: string
    }

const MAX_TEXT = 300
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$/
const ANY_HOST_FORBIDDEN = /[\s/\\?#@]/
const PORT = /^[0-9]{1,5}$/

function fail(reason: HostPortErrorReason, why: string): HostPortResult {
  return { ok: false, reason, why }
}

/** Parses `HOST:PORT`, `[IPv6]:PORT`, and (with `defaultPort`) a bare `HOST` / `[IPv6]`. */
export function tryParseHostPort(value: unknown, opts: HostPortOptions = {}): HostPortResult {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT)
    return fail('empty', 'must be a non-empty string HOST:PORT')
  const mode = opts.host ?? 'name'
  let host: string
  let portText: string | undefined
  if (value.startsWith('[')) {
    const end = value.indexOf(']')
    if (end < 0) return fail('unterminated-bracket', `has an unterminated IPv6 bracket: "${value}"`)
    host = value.slice(1, end)
    const rest = value.slice(end + 1)
    if (rest !== '') {
      if (!rest.startsWith(':')) return fail('bracket-suffix', `must be [IPv6]:PORT, got "${value}"`)
      portText = rest.slice(1)
    }
    if (mode === 'name' && isIP(host) !== 6)
      return fail('not-ipv6', `holds "${host}", which is not an IPv6 address`)
  } else {
    const i = value.lastIndexOf(':')
    if (i >= 0) {
      if (value.indexOf(':') !== i)
        return fail('unbracketed-ipv6', `holds an IPv6 address without brackets: write [${value}]`)
      host = value.slice(0, i)
      portText = value.slice(i + 1)
    } else {
      host = value
    }
    if (mode === 'name' && !(host === '' && opts.allowEmptyHost) && isIP(host) === 0 && !HOSTNAME.test(host))
      return fail('bad-host', `holds "${host}", which is neither an IP address nor a host name`)
  }
  if (host === '' && !opts.allowEmptyHost) return fail('bad-host', `has no host: HOST:PORT, got "${value}"`)
  if (mode === 'any' && (host.length > 255 || ANY_HOST_FORBIDDEN.test(host)))
    return fail('bad-host', `holds "${host}", which is not a host`)
  let port: number
  if (portText === undefined || (portText === '' && mode === 'any')) {
    if (opts.defaultPort === undefined) return fail('missing-port', `needs a port: HOST:PORT, got "${value}"`)
    port = opts.defaultPort
  } else {
    if (!PORT.test(portText)) return fail('bad-port', `has an invalid port "${portText}" (0-65535)`)
    port = Number(portText)
    if (port > 65535) return fail('bad-port', `has an invalid port ${port} (0-65535)`)
    if (port === 0 && !opts.allowPortZero) return fail('port-zero', 'may not use port 0 here')
  }
  return { ok: true, host, port }
}

/**
 * Like tryParseHostPort(), throwing ProtocolError ERR_HOST_PORT (`details`: value, reason, field)
 * with the message `FIELD WHY` (field default `address`).
 */
export function parseHostPort(value: unknown, opts: HostPortOptions & { field?: string } = {}): HostPort {
  const r = tryParseHostPort(value, opts)
  if (r.ok) return { host: r.host, port: r.port }
  const field = opts.field ?? 'address'
  throw new ProtocolError('ERR_HOST_PORT', `${field} ${r.why}`, { value, reason: r.reason, field })
}

/** `host:port`, with brackets around an IPv6 address (one already in brackets is kept as is). */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** A host without IPv6 brackets (`[::1]` -> `::1`); other hosts unchanged. */
export function stripBrackets(host: string): string {
  return host.length >= 2 && host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}
