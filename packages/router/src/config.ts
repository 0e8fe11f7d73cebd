/**
 * Router configuration: the JSON file `nullport router run --config FILE` reads, and address
 * parsing shared with `startRouter()`. Validation is strict: unknown fields and malformed
 * addresses are refused with a message naming the field.
 */
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { type HostPort, tryParseHostPort } from '@nullport/protocol'
import { RouterError } from './errors.js'

/** The router config file. */
export interface RouterConfig {
  /** Path of the router identity file (written by `nullport router enroll`), relative to the config file. */
  identityFile: string
  /** `HOST:PORT` the TLS listener binds (port 0: chosen by the OS). */
  listen: string
  /**
   * `HOST[:PORT]` SDKs and other routers connect to. Without a port (or with port 0) the
   * listener's actual port is advertised.
   */
  advertise: string
  /** Optional `HOST:PORT` of a Prometheus metrics endpoint (`GET /metrics`, plain HTTP). */
  metricsListen?: string
  /** pino level. Default `info`. */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /**
   * Automatic certificate renewal: `false` disables it, `{ "fraction": F }` renews once that
   * share of the certificate's lifetime has passed (0 < F < 1). Default: on, 2/3.
   */
  renew?: false | { fraction?: number }
  /** Most concurrent TLS connections. Default 10000. */
  maxConnections?: number
  /** Milliseconds from TCP accept until TLS is done (socket destroyed), then again for HELLO (GOAWAY). Default 10000. */
  handshakeTimeoutMs?: number
  /** Connections one source address may hold before TLS is done. Default 64. */
  maxPreAuthPerAddress?: number
}

/** Connection limits a config file may set (positive integers; defaults in options.ts). */
const LIMIT_KEYS = ['maxConnections', 'handshakeTimeoutMs', 'maxPreAuthPerAddress'] as const

const MAX_CONFIG_BYTES = 64 * 1024
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

function configError(field: string, why: string, source: string): RouterError {
  return new RouterError('ERR_ROUTER_CONFIG', `router config ${source}: "${field}" ${why}`, { field, source })
}

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT`, or (with `portOptional`, port 0) a bare `HOST` / `[IPv6]`
 * (the protocol's host-port parser). HOST is an IPv4/IPv6 address or a DNS name. Throws
 * ERR_ROUTER_CONFIG naming `field`.
 */
export function parseHostPort(
  value: unknown,
  field: string,
  opts: { portOptional?: boolean; allowPortZero?: boolean; source?: string } = {},
): HostPort {
  const r = tryParseHostPort(value, {
    ...(opts.portOptional ? { defaultPort: 0 } : {}),
    ...(opts.allowPortZero ? { allowPortZero: true } : {}),
  })
  if (!r.ok) throw configError(field, r.why, opts.source ?? '<options>')
  return { host: r.host, port: r.port }
}

/**
 * Validates a parsed config object. Relative `identityFile` paths are resolved against
 * `baseDir`. Throws ERR_ROUTER_CONFIG naming the field.
 */
export function validateRouterConfig(
  value: unknown,
  opts: { source?: string; baseDir?: string } = {},
): RouterConfig {
  const source = opts.source ?? '<memory>'
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RouterError('ERR_ROUTER_CONFIG', `router config ${source} must be a JSON object`, { source })
  }
  const v = value as Record<string, unknown>
  const allowed = new Set([
    'identityFile',
    'listen',
    'advertise',
    'metricsListen',
    'logLevel',
    'renew',
    ...LIMIT_KEYS,
  ])
  for (const k of Object.keys(v)) {
    if (!allowed.has(k))
      throw configError(k, `is not a known field (known: ${[...allowed].join(', ')})`, source)
  }
  if (typeof v.identityFile !== 'string' || v.identityFile.length === 0) {
    throw configError('identityFile', 'must be the path of the router identity file', source)
  }
  parseHostPort(v.listen, 'listen', { allowPortZero: true, source })
  parseHostPort(v.advertise, 'advertise', { portOptional: true, allowPortZero: true, source })
  if (v.metricsListen !== undefined)
    parseHostPort(v.metricsListen, 'metricsListen', { allowPortZero: true, source })
  if (v.logLevel !== undefined && !(LOG_LEVELS as readonly unknown[]).includes(v.logLevel)) {
    throw configError('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`, source)
  }
  if (v.renew !== undefined && v.renew !== false) {
    const r = v.renew as Record<string, unknown>
    if (
      typeof r !== 'object' ||
      r === null ||
      Array.isArray(r) ||
      Object.keys(r).some((k) => k !== 'fraction')
    )
      throw configError('renew', 'must be false or { "fraction": F } with 0 < F < 1', source)
    if (r.fraction !== undefined && !(typeof r.fraction === 'number' && r.fraction > 0 && r.fraction < 1))
      throw configError(
        'renew',
        `fraction must be a number between 0 and 1, got ${JSON.stringify(r.fraction)}`,
        source,
      )
  }
  for (const k of LIMIT_KEYS) {
    const x = v[k]
    if (x !== undefined && !(typeof x === 'number' && Number.isSafeInteger(x) && x > 0))
      throw configError(k, `must be a positive integer, got ${JSON.stringify(x)}`, source)
  }
  const identityFile =
    isAbsolute(v.identityFile) || !opts.baseDir ? v.identityFile : resolve(opts.baseDir, v.identityFile)
  const out: RouterConfig = { identityFile, listen: v.listen as string, advertise: v.advertise as string }
  if (v.metricsListen !== undefined) out.metricsListen = v.metricsListen as string
  if (v.logLevel !== undefined) out.logLevel = v.logLevel as RouterConfig['logLevel'] & string
  if (v.renew !== undefined) out.renew = v.renew as false | { fraction?: number }
  for (const k of LIMIT_KEYS) if (v[k] !== undefined) out[k] = v[k] as number
  return out
}

/** Reads and validates a router config file. */
export async function loadRouterConfig(path: string): Promise<RouterConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new RouterError(
      'ERR_ROUTER_CONFIG',
      `router config ${path} cannot be read: ${(err as Error).message}`,
      { source: path },
      { cause: err },
    )
  }
  if (text.length > MAX_CONFIG_BYTES) {
    throw new RouterError(
      'ERR_ROUTER_CONFIG',
      `router config ${path} is larger than ${MAX_CONFIG_BYTES} bytes`,
      { source: path },
    )
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new RouterError(
      'ERR_ROUTER_CONFIG',
      `router config ${path} is not valid JSON: ${(err as Error).message}`,
      { source: path },
      { cause: err },
    )
  }
  return validateRouterConfig(json, { source: path, baseDir: dirname(resolve(path)) })
}
