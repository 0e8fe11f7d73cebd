import { Backoff, type BackoffOptions } from '@nullport/protocol'
import { SdkError } from './errors.js'
import type { Logger } from './logger.js'
import type { RenewOption } from './renew.js'

/** Options of `loadContext()`. */
export interface ContextOptions {
  /** pino-compatible logger. Default: silent. */
  logger?: Logger
  /** Controller URL; default: the one in the identity file. */
  controller?: string
  /** TLS connect + HELLO timeout for routers, in ms. Default 10000. */
  connectTimeoutMs?: number
  /** Interval of router latency pings, in ms. Default 15000. */
  pingIntervalMs?: number
  /** Default dial timeout, in ms. Default 15000. */
  dialTimeoutMs?: number
  /** Backoff of reconnects to the controller event stream and to routers. Default 250 ms .. 30 s. */
  reconnect?: BackoffOptions
  /** If the event stream is silent this long (ms), it is reconnected. Default 90000. */
  eventsIdleTimeoutMs?: number
  /** Agent string sent in HELLO. Default `nullport-sdk-node/<version>`. */
  agent?: string
  /**
   * Automatic renewal of the identity certificate: `{ fraction }` renews once that share of its
   * lifetime has passed (default 2/3); `false` disables it. A context loaded from a file rewrites
   * the file (atomically, 0600) with the renewed certificate and key.
   */
  renew?: RenewOption
  /**
   * An event loop blocked this long (ms) is reported: the context emits 'stall' ({ lagMs, at })
   * and logs a warning once the loop runs again. `false` disables the check. Default 2000.
   */
  stallWarningMs?: number | false
}

/** The timing options of a context, validated, with their defaults. */
export interface ContextTimings {
  connectTimeoutMs: number
  pingIntervalMs: number
  dialTimeoutMs: number
  eventsIdleTimeoutMs: number
  reconnect: BackoffOptions
  agent: string
  /** null: the stall check is off. */
  stallWarningMs: number | null
}

/** A positive integer option (ms), or its default; ERR_INVALID_OPTION names the field. */
export function checkPositiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v <= 0)
    throw new SdkError('ERR_INVALID_OPTION', `option ${name} must be a positive integer (ms), got ${v}`)
  return v
}

/**
 * The reconnect backoff: `initialMs` defaults to 250 ms but never above `maxMs` (so `{ maxMs: 100 }`
 * means 100 ms steps); ERR_INVALID_OPTION names the field that is out of range.
 */
function checkReconnect(o: BackoffOptions | undefined): BackoffOptions {
  if (o === undefined) return {}
  if (typeof o !== 'object' || o === null)
    throw new SdkError('ERR_INVALID_OPTION', 'option reconnect must be an object { initialMs, maxMs }')
  const maxMs = o.maxMs ?? 30_000
  const r: BackoffOptions = { ...o, initialMs: o.initialMs ?? Math.min(250, maxMs), maxMs }
  try {
    new Backoff(r)
  } catch (err) {
    throw new SdkError(
      'ERR_INVALID_OPTION',
      `option reconnect: ${(err as Error).message}`,
      {},
      { cause: err },
    )
  }
  return r
}

/** Validates the timing options once (messages name the field) and fills in the defaults. */
export function contextTimings(opts: ContextOptions): ContextTimings {
  return {
    connectTimeoutMs: checkPositiveInt('connectTimeoutMs', opts.connectTimeoutMs, 10_000),
    pingIntervalMs: checkPositiveInt('pingIntervalMs', opts.pingIntervalMs, 15_000),
    dialTimeoutMs: checkPositiveInt('dialTimeoutMs', opts.dialTimeoutMs, 15_000),
    eventsIdleTimeoutMs: checkPositiveInt('eventsIdleTimeoutMs', opts.eventsIdleTimeoutMs, 90_000),
    reconnect: checkReconnect(opts.reconnect),
    stallWarningMs:
      opts.stallWarningMs === false ? null : checkPositiveInt('stallWarningMs', opts.stallWarningMs, 2000),
    agent: opts.agent ?? 'nullport-sdk-node/0.1.0',
  }
}

/** The controller URL: option `controller`, else the identity file's. */
export function controllerUrl(opts: ContextOptions, fromFile: string): string {
  let u: URL
  try {
    u = new URL(opts.controller ?? fromFile)
  } catch (err) {
    throw new SdkError('ERR_INVALID_OPTION', `option controller must be an https:// URL`, {}, { cause: err })
  }
  if (u.protocol !== 'https:')
    throw new SdkError('ERR_INVALID_OPTION', `option controller must be an https:// URL`)
  return u.toString()
}
