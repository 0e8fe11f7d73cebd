/**
 * `http.Agent` / `https.Agent` whose connections are overlay circuits, for `http.request`,
 * axios, got, `ws` and anything else that takes an agent. Keep-alive pools circuits per origin.
 */
import http from 'node:http'
import https from 'node:https'
import type { Duplex } from 'node:stream'
import type { Context } from '../context.js'
import { SdkError } from '../errors.js'
import { dialTarget, type OverlayTlsOptions, startTls } from './overlay-connect.js'

/** Options of `overlayHttpAgent()` / `ctx.httpAgent()`. */
export interface OverlayAgentOptions extends http.AgentOptions {
  /** Dial timeout in ms. Default: intercept.v1 `dialOptions.connectTimeoutSeconds`, else the context's. */
  dialTimeoutMs?: number
}

/** Options of `overlayHttpsAgent()` / `ctx.httpsAgent()`. */
export interface OverlayHttpsAgentOptions extends OverlayAgentOptions, OverlayTlsOptions {}

type CreateCb = (err: Error | null, socket: Duplex) => void
interface ConnOpts {
  host?: string | null
  hostname?: string | null
  port?: number | string | null
  servername?: string
  ca?: OverlayTlsOptions['ca']
  cert?: string | Buffer
  key?: string | Buffer
  rejectUnauthorized?: boolean
}

function hostOf(o: ConnOpts): string {
  return String(o.hostname ?? o.host ?? 'localhost')
}

/**
 * An http.Agent for the overlay: `createConnection` resolves the request's host and port to a
 * service (intercept.v1 or the service name) and dials it; anything else fails with
 * ERR_NOT_INTERCEPTED (never a plain TCP connection). Keep-alive is on by default.
 *
 * @example
 * http.get('http://family.tools.ziti/', { agent: overlayHttpAgent(ctx) }, (res) => res.pipe(process.stdout))
 */
export class OverlayHttpAgent extends http.Agent {
  private readonly ctx: Context
  private readonly dialTimeoutMs: number | undefined

  constructor(ctx: Context, opts: OverlayAgentOptions = {}) {
    const { dialTimeoutMs, ...agentOpts } = checkAgentOptions(opts)
    super({ keepAlive: true, ...agentOpts })
    this.ctx = ctx
    this.dialTimeoutMs = dialTimeoutMs
  }

  override createConnection(options: ConnOpts, cb?: CreateCb): Duplex | undefined {
    const port = Number(options.port || 80)
    connectOverlay(this.ctx, hostOf(options), port, this.dialTimeoutMs, null, cb)
    return undefined
  }
}

/**
 * An https.Agent for the overlay: TLS to the service's own certificate inside the circuit.
 *
 * @example
 * https.get('https://family.tools.ziti/', { agent: overlayHttpsAgent(ctx, { ca }) })
 */
export class OverlayHttpsAgent extends https.Agent {
  private readonly ctx: Context
  private readonly dialTimeoutMs: number | undefined

  constructor(ctx: Context, opts: OverlayHttpsAgentOptions = {}) {
    const { dialTimeoutMs, ...agentOpts } = checkAgentOptions(opts)
    super({ keepAlive: true, ...agentOpts })
    this.ctx = ctx
    this.dialTimeoutMs = dialTimeoutMs
  }

  override createConnection(options: ConnOpts, cb?: CreateCb): Duplex | undefined {
    const port = Number(options.port || 443)
    const host = hostOf(options)
    const tlsOpts: OverlayTlsOptions = {
      servername: options.servername || host,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.cert !== undefined ? { cert: options.cert } : {}),
      ...(options.key !== undefined ? { key: options.key } : {}),
      ...(options.rejectUnauthorized !== undefined ? { rejectUnauthorized: options.rejectUnauthorized } : {}),
    }
    connectOverlay(this.ctx, host, port, this.dialTimeoutMs, tlsOpts, cb)
    return undefined
  }
}

function connectOverlay(
  ctx: Context,
  host: string,
  port: number,
  timeoutMs: number | undefined,
  tlsOpts: OverlayTlsOptions | null,
  cb: CreateCb | undefined,
): void {
  const done = (err: Error | null, s?: Duplex): void => cb?.(err, s as Duplex)
  let dialing: ReturnType<typeof dialTarget>
  try {
    dialing = dialTarget(ctx, host, port, timeoutMs !== undefined ? { timeoutMs } : {})
  } catch (err) {
    process.nextTick(done, err as Error)
    return
  }
  dialing
    .then((socket): Duplex | Promise<Duplex> => (tlsOpts ? startTls(socket, host, tlsOpts) : socket))
    .then(
      (s) => done(null, s),
      (err: Error) => done(err),
    )
}

function checkAgentOptions<T extends OverlayAgentOptions>(o: T): T {
  if (o === null || typeof o !== 'object')
    throw new SdkError('ERR_INVALID_OPTION', 'agent options must be an object')
  if (o.dialTimeoutMs !== undefined && (!Number.isInteger(o.dialTimeoutMs) || o.dialTimeoutMs <= 0)) {
    throw new SdkError(
      'ERR_INVALID_OPTION',
      `agent option dialTimeoutMs must be a positive integer (ms), got ${o.dialTimeoutMs}`,
    )
  }
  return o
}
