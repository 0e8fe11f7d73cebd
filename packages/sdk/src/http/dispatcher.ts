/**
 * An undici Dispatcher whose connections are overlay circuits: `fetch(url, { dispatcher })`
 * (Node's global fetch or undici's) reaches intercepted names over the overlay.
 */
import { Agent, buildConnector } from 'undici'
import type { Context } from '../context.js'
import { SdkError } from '../errors.js'
import { defaultPort, isForeignDestination } from './intercept.js'
import { dialTarget, type OverlayTlsOptions, startTls } from './overlay-connect.js'

/** Options of `overlayDispatcher()` / `ctx.dispatcher()`. */
export interface OverlayDispatcherOptions {
  /** TLS for https:// URLs (the service's own certificate). Default: Node's roots. */
  tls?: OverlayTlsOptions
  /** Dial timeout in ms. Default: intercept.v1 `dialOptions.connectTimeoutSeconds`, else the context's. */
  dialTimeoutMs?: number
  /**
   * Destinations that match no service go to the network as usual instead of being refused.
   * Only for the `register` hook (an unmodified app also talks to the internet). Default false:
   * refused with ERR_NOT_INTERCEPTED.
   */
  passthrough?: boolean
  /** Keep-alive: idle connections per origin are kept this long (ms). Default 4000 (undici's). */
  keepAliveTimeout?: number
  /** Most connections per origin. Default unlimited (undici's). */
  connections?: number
  /** Requests pipelined per connection. Default 1. */
  pipelining?: number
  /** undici body/headers timeouts (ms). Defaults are undici's (300 s). */
  bodyTimeout?: number
  headersTimeout?: number
  /** Offer HTTP/2 (ALPN h2) to https:// services; HTTP/1.1 otherwise. Default false. */
  allowH2?: boolean
  /** @internal Called with each connected socket (the register hook counts them). */
  onSocket?: (socket: import('node:stream').Duplex & { ref(): unknown; unref(): unknown }) => void
}

type ConnectOpts = Parameters<buildConnector.connector>[0]
type ConnectCb = Parameters<buildConnector.connector>[1]

/**
 * An undici Agent whose `connect` dials the overlay. Each origin (`http://family.tools.ziti`)
 * is resolved to a service once per connection; keep-alive reuses circuits.
 *
 * @example
 * const dispatcher = overlayDispatcher(ctx)
 * const res = await fetch('http://family.tools.ziti/', { dispatcher })
 */
export function overlayDispatcher(ctx: Context, opts: OverlayDispatcherOptions = {}): Agent {
  checkOptions(opts)
  const direct = opts.passthrough ? buildConnector({}) : null
  const connect = (o: ConnectOpts, cb: ConnectCb): void => {
    const protocol = o.protocol || 'http:'
    const port = o.port ? Number(o.port) : defaultPort(protocol)
    const host = o.hostname
    if (direct && isForeignDestination(ctx, host, port)) {
      // Passthrough (the register hook only): a destination no service intercepts goes to the
      // network as usual. Decided before dialing: an overlay name never falls back, whatever
      // happens to its dial (and one this identity may not dial is refused by dialTarget).
      direct(o, cb)
      return
    }
    const dialing = dialTarget(ctx, host, port, {
      ...(opts.dialTimeoutMs !== undefined ? { timeoutMs: opts.dialTimeoutMs } : {}),
    })
    dialing.then(
      (socket) => {
        if (protocol !== 'https:') {
          opts.onSocket?.(socket)
          cb(null, socket as never)
          return
        }
        const tlsOpts = opts.allowH2 ? { ALPNProtocols: ['h2', 'http/1.1'], ...opts.tls } : (opts.tls ?? {})
        startTls(socket, o.servername || host, tlsOpts).then(
          (t) => {
            opts.onSocket?.(t)
            cb(null, t)
          },
          (err: Error) => cb(err, null),
        )
      },
      (err: Error) => cb(err, null),
    )
  }
  return new Agent({
    connect: connect as never,
    ...(opts.allowH2 ? { allowH2: true } : {}),
    ...(opts.keepAliveTimeout !== undefined ? { keepAliveTimeout: opts.keepAliveTimeout } : {}),
    ...(opts.connections !== undefined ? { connections: opts.connections } : {}),
    ...(opts.pipelining !== undefined ? { pipelining: opts.pipelining } : {}),
    ...(opts.bodyTimeout !== undefined ? { bodyTimeout: opts.bodyTimeout } : {}),
    ...(opts.headersTimeout !== undefined ? { headersTimeout: opts.headersTimeout } : {}),
  })
}

function checkOptions(o: OverlayDispatcherOptions): void {
  if (o === null || typeof o !== 'object') {
    throw new SdkError('ERR_INVALID_OPTION', 'dispatcher options must be an object')
  }
  for (const k of [
    'dialTimeoutMs',
    'keepAliveTimeout',
    'connections',
    'pipelining',
    'bodyTimeout',
    'headersTimeout',
  ] as const) {
    const v = o[k]
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) {
      throw new SdkError('ERR_INVALID_OPTION', `dispatcher option ${k} must be an integer >= 0, got ${v}`)
    }
  }
}
