import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { DEFAULT_TRUST_DOMAIN, tryParseHostPort } from '@nullport/protocol'
import { validateJson } from './core/json-schema.js'
import { ControllerError } from './errors.js'

/** The controller's configuration (file `--config FILE`, JSON), after defaults and flags. */
export interface ControllerConfig {
  /** `HOST:PORT` to listen on (HTTPS). Default `127.0.0.1:1280`; port 0 lets the OS choose. */
  listen: string
  /** Base URL clients use to reach this controller (put in enrollment tokens and the server cert). Default `https://<listen>` with the actual port. */
  advertise: string | null
  /** Data directory (database, PKI). Default `~/.nullport/controller`. */
  dataDir: string
  /** SPIFFE trust domain. Default `nullport`. */
  trustDomain: string
  /** `sqlite` (DIR/controller.db, default) or a `postgres://` URL (`?schema=NAME` selects a schema). */
  database: string
  /** Lifetime of identity and router certificates. Default 720h. */
  identityCertLifetimeMs: number
  /** Management/client API session lifetime. Default 30m. */
  sessionLifetimeMs: number
  /** Enrollment token lifetime. Default 24h. */
  enrollmentLifetimeMs: number
  /** Maximum request body in bytes, enforced before authentication. Default 1 MiB. */
  bodyLimit: number
  /**
   * Time a client has to send a whole request (headers and body), so a slow sender cannot hold
   * a connection and a body buffer forever. Default 30s. Server-sent event streams are not
   * affected: their request is complete at once.
   */
  requestTimeoutMs: number
  /** Most concurrent connections the HTTPS server accepts. Default 10000. */
  maxConnections: number
  /**
   * Time from TCP accept until a connection has finished TLS and sent one complete request head;
   * the connection is destroyed at it. Default 10s.
   */
  preAuthTimeoutMs: number
  /** Connections one source address may hold before they are authenticated. Default 64. */
  maxPreAuthPerAddress: number
  /** Time a client has to send the head of each request (later requests on a kept-alive connection too). Default 10s. */
  headersTimeoutMs: number
  /** `HOST:PORT` of a plain-HTTP Prometheus endpoint (`GET /metrics`); null: none (default). */
  metricsListen: string | null
  /** Log level (pino). Default `info`. */
  logLevel: string
}

/** The JSON config file, as written by users (durations as strings). */
export interface ControllerConfigFile {
  listen?: string
  advertise?: string
  dataDir?: string
  trustDomain?: string
  database?: string
  identityCertLifetime?: string
  sessionLifetime?: string
  enrollmentLifetime?: string
  bodyLimit?: number
  requestTimeout?: string
  maxConnections?: number
  preAuthTimeout?: string
  maxPreAuthPerAddress?: number
  headersTimeout?: string
  metricsListen?: string
  logLevel?: string
}

const DURATION = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$'
export const CONFIG_FILE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: { type: 'string', pattern: '^.+:[0-9]{1,5}$' },
    advertise: { type: 'string', pattern: '^https://' },
    dataDir: { type: 'string', minLength: 1 },
    trustDomain: { type: 'string', pattern: '^[a-z0-9.-]+$' },
    database: { type: 'string', pattern: '^(sqlite|postgres(ql)?://.+)$' },
    identityCertLifetime: { type: 'string', pattern: DURATION },
    sessionLifetime: { type: 'string', pattern: DURATION },
    enrollmentLifetime: { type: 'string', pattern: DURATION },
    bodyLimit: { type: 'integer', minimum: 1024, maximum: 1073741824 },
    requestTimeout: { type: 'string', pattern: DURATION },
    maxConnections: { type: 'integer', minimum: 1, maximum: 1000000 },
    preAuthTimeout: { type: 'string', pattern: DURATION },
    maxPreAuthPerAddress: { type: 'integer', minimum: 1, maximum: 1000000 },
    headersTimeout: { type: 'string', pattern: DURATION },
    metricsListen: { type: 'string', pattern: '^.+:[0-9]{1,5}$' },
    logLevel: { type: 'string', enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] },
  },
} as const

/** Parses `90s`, `30m`, `720h`, `1d`, `250ms` into milliseconds. */
export function parseDuration(s: string, field = 'duration'): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$/.exec(s.trim())
  if (!m)
    throw new ControllerError(
      'ERR_CONFIG_FILE',
      `${field}: "${s}" is not a duration such as 30m, 720h or 90s`,
      { field },
    )
  const n = Number(m[1])
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    m[2] as 'ms' | 's' | 'm' | 'h' | 'd'
  ]
  return Math.round(n * unit)
}

function positiveDuration(s: string, field: string): number {
  const ms = parseDuration(s, field)
  if (ms < 1) throw new ControllerError('ERR_CONFIG_FILE', `${field}: "${s}" must be at least 1ms`, { field })
  return ms
}

export interface ConfigOverrides {
  configFile?: string
  dataDir?: string
  listen?: string
  advertise?: string
  database?: string
  logLevel?: string
}

/** Builds the config from defaults, the optional file, then flags. Errors name the field. */
export function loadConfig(o: ConfigOverrides = {}): ControllerConfig {
  let file: ControllerConfigFile = {}
  if (o.configFile) {
    let text: string
    try {
      text = readFileSync(o.configFile, 'utf8')
    } catch (err) {
      throw new ControllerError(
        'ERR_CONFIG_FILE',
        `cannot read config file ${o.configFile}: ${(err as Error).message}`,
        {
          file: o.configFile,
        },
      )
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new ControllerError(
        'ERR_CONFIG_FILE',
        `config file ${o.configFile} is not valid JSON: ${(err as Error).message}`,
        {
          file: o.configFile,
        },
      )
    }
    file = checkConfigFile(parsed, o.configFile)
  }
  const merged: ControllerConfigFile = { ...file }
  if (o.dataDir !== undefined) merged.dataDir = o.dataDir
  if (o.listen !== undefined) merged.listen = o.listen
  if (o.advertise !== undefined) merged.advertise = o.advertise
  if (o.database !== undefined) merged.database = o.database
  if (o.logLevel !== undefined) merged.logLevel = o.logLevel
  checkConfigFile(merged, 'flags')
  return {
    listen: merged.listen ?? '127.0.0.1:1280',
    advertise: merged.advertise ? merged.advertise.replace(/\/+$/, '') : null,
    dataDir: resolve(merged.dataDir ?? join(homedir(), '.nullport', 'controller')),
    trustDomain: merged.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    database: merged.database ?? 'sqlite',
    identityCertLifetimeMs: parseDuration(merged.identityCertLifetime ?? '720h', 'identityCertLifetime'),
    sessionLifetimeMs: parseDuration(merged.sessionLifetime ?? '30m', 'sessionLifetime'),
    enrollmentLifetimeMs: parseDuration(merged.enrollmentLifetime ?? '24h', 'enrollmentLifetime'),
    bodyLimit: merged.bodyLimit ?? 1024 * 1024,
    requestTimeoutMs: parseDuration(merged.requestTimeout ?? '30s', 'requestTimeout'),
    maxConnections: merged.maxConnections ?? 10000,
    preAuthTimeoutMs: positiveDuration(merged.preAuthTimeout ?? '10s', 'preAuthTimeout'),
    maxPreAuthPerAddress: merged.maxPreAuthPerAddress ?? 64,
    headersTimeoutMs: positiveDuration(merged.headersTimeout ?? '10s', 'headersTimeout'),
    metricsListen: merged.metricsListen ?? null,
    logLevel: merged.logLevel ?? 'info',
  }
}

function checkConfigFile(value: unknown, source: string): ControllerConfigFile {
  const errors = validateJson(CONFIG_FILE_SCHEMA, value)
  if (errors.length > 0) {
    const e = errors[0]!
    const field = e.path.replace(/^\$\.?/, '') || '(root)'
    throw new ControllerError('ERR_CONFIG_FILE', `${source}: ${field}: ${e.message}`, { field, source })
  }
  return value as ControllerConfigFile
}

/** `HOST:PORT` to listen on (protocol parser; IPv6 in brackets, port 0 and an empty host allowed). */
export function splitHostPort(listen: string): { host: string; port: number } {
  const r = tryParseHostPort(listen, { allowPortZero: true, allowEmptyHost: true })
  if (!r.ok)
    throw new ControllerError('ERR_CONFIG_FILE', `listen: "${listen}" is not HOST:PORT`, { field: 'listen' })
  return { host: r.host, port: r.port }
}
