/**
 * `node --import @nullport/sdk/register app.js`: an unmodified app on the overlay.
 *
 * Environment:
 * - `NULLPORT_IDENTITY` (required): identity file path.
 * - `NULLPORT_BINDINGS`: `host:port=service` entries separated by commas, e.g.
 *   `127.0.0.1:18080=family.tools`: those listen() calls are served on the overlay, with no port
 *   (see zitify).
 * - `NULLPORT_INTERCEPT` (default `1`): `0` turns off the client side. When on, outgoing
 *   connections to intercepted names (intercept.v1 addresses, service names) go over the overlay:
 *   `net.connect`/`net.createConnection`, `tls.connect`, `http(s).request` through Node's agents,
 *   and `fetch` (global undici dispatcher). A failed overlay dial is an error, never a plain
 *   connection. Other destinations are untouched.
 *
 * Bad configuration (no identity, missing or malformed identity file, malformed bindings, a
 * controller that refuses the identity) stops the process at startup with `nullport: CODE: ...`
 * on stderr and exit code 1.
 *
 * When the app has nothing left to do but the overlay's own connections (no server bound, no
 * circuit in use, none of its own handles or timers), the context is closed so the process can
 * exit as it would without the hook.
 */
import http from 'node:http'
import { syncBuiltinESMExports } from 'node:module'
import net from 'node:net'
import tls from 'node:tls'
import { loadIdentityFileSync } from '@nullport/protocol'
import { setGlobalDispatcher } from 'undici'
import { type Context, loadContext } from './context.js'
import { overlayDispatcher } from './http/dispatcher.js'
import { isForeignDestination } from './http/intercept.js'
import { dialTarget, PendingOverlaySocket } from './http/overlay-connect.js'
import { parseRegisterEnv, type RegisterConfig } from './http/register-env.js'
import { type ZitifyBindings, zitify } from './zitify.js'

// ------------------------------------------------------------------------------------------------
// activity accounting (for exiting when the app is done)

let refdSockets = 0

/** Counts the socket while it is ref'd (undici and http.Agent unref idle keep-alive sockets). */
function track<
  T extends {
    ref(): unknown
    unref(): unknown
    once(ev: 'close', f: () => void): unknown
    destroyed: boolean
  },
>(s: T): T {
  let isRef = true
  refdSockets++
  const ref0 = s.ref.bind(s)
  const unref0 = s.unref.bind(s)
  const drop = (): void => {
    if (isRef) {
      isRef = false
      refdSockets--
    }
  }
  s.ref = () => {
    if (!isRef && !s.destroyed) {
      isRef = true
      refdSockets++
    }
    ref0()
    return s
  }
  s.unref = () => {
    drop()
    unref0()
    return s
  }
  s.once('close', drop)
  return s
}

let boundServers = 0
let dialsInFlight = 0

// ------------------------------------------------------------------------------------------------
// client-side patches

type AnyFn = (...args: unknown[]) => unknown

function installClientPatches(ctx: Context): void {
  // true: the overlay handles host:port (dialed, or refused if this identity may not dial it);
  // false: a destination no service intercepts, left to the network as usual
  const match = (host: unknown, port: unknown): boolean => {
    if (typeof host !== 'string' || host.length === 0) return false
    const p = Number(port)
    if (!Number.isInteger(p) || p <= 0 || p > 65535) return false
    return !isForeignDestination(ctx, host, p)
  }
  const pending = (host: string, port: number, allowHalfOpen: boolean | undefined): PendingOverlaySocket =>
    track(
      new PendingOverlaySocket(
        (signal) => dialTarget(ctx, host, port, { signal, allowHalfOpen: allowHalfOpen ?? false }),
        {
          allowHalfOpen: allowHalfOpen ?? false,
        },
      ),
    )

  // net.connect / net.createConnection
  const netConnect = net.connect as unknown as AnyFn
  const patchedNet = function connect(this: unknown, ...args: unknown[]): unknown {
    const { opts, cb } = normalizeNetArgs(args)
    if (!opts || typeof opts.path === 'string') return netConnect.apply(this, args)
    const host = (opts.host as string | undefined) ?? 'localhost'
    if (!match(host, opts.port)) return netConnect.apply(this, args)
    const s = pending(host, Number(opts.port), opts.allowHalfOpen as boolean | undefined)
    if (typeof opts.timeout === 'number') s.setTimeout(opts.timeout)
    if (cb) s.once('connect', cb as () => void)
    return s
  }
  ;(net as { connect: unknown }).connect = patchedNet
  ;(net as { createConnection: unknown }).createConnection = patchedNet

  // http.Agent#createConnection is net.createConnection captured at load time
  const agentCreate = http.Agent.prototype.createConnection as unknown as AnyFn
  ;(http.Agent.prototype as { createConnection: unknown }).createConnection = function createConnection(
    this: unknown,
    ...args: unknown[]
  ): unknown {
    const o = args[0] as { host?: string; hostname?: string; port?: number | string } | undefined
    const host = o?.hostname ?? o?.host ?? 'localhost'
    if (o && match(host, o.port ?? 80)) return pending(host, Number(o.port ?? 80), false)
    return agentCreate.apply(this, args)
  }

  // tls.connect (https.Agent calls it too)
  const tlsConnect = tls.connect as unknown as AnyFn
  ;(tls as { connect: unknown }).connect = function connect(this: unknown, ...args: unknown[]): unknown {
    const { opts, cb } = normalizeTlsArgs(args)
    if (!opts || opts.socket != null || typeof opts.path === 'string') return tlsConnect.apply(this, args)
    const host = (opts.host as string | undefined) ?? 'localhost'
    if (!match(host, opts.port)) return tlsConnect.apply(this, args)
    const socket = pending(host, Number(opts.port), false)
    const servername = (opts.servername as string | undefined) ?? (net.isIP(host) ? undefined : host)
    const t = tlsConnect.call(
      this,
      { ...opts, socket, ...(servername ? { servername } : {}) },
      cb,
    ) as tls.TLSSocket
    return t
  }
  syncBuiltinESMExports()

  // fetch: Node's global fetch and undici read the same global dispatcher
  setGlobalDispatcher(overlayDispatcher(ctx, { passthrough: true, onSocket: (s) => void track(s) }))
}

function normalizeNetArgs(args: unknown[]): { opts: Record<string, unknown> | null; cb: unknown } {
  const last = args[args.length - 1]
  const cb = typeof last === 'function' ? last : undefined
  const a0 = args[0]
  if (a0 !== null && typeof a0 === 'object') return { opts: a0 as Record<string, unknown>, cb }
  if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    return { opts: { port: Number(a0), host: typeof args[1] === 'string' ? args[1] : undefined }, cb }
  }
  if (typeof a0 === 'string') return { opts: { path: a0 }, cb }
  return { opts: null, cb }
}

function normalizeTlsArgs(args: unknown[]): { opts: Record<string, unknown> | null; cb: unknown } {
  const last = args[args.length - 1]
  const cb = typeof last === 'function' ? last : undefined
  const a0 = args[0]
  if (a0 !== null && typeof a0 === 'object') return { opts: a0 as Record<string, unknown>, cb }
  if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    let host: string | undefined
    let extra: Record<string, unknown> = {}
    if (typeof args[1] === 'string') {
      host = args[1]
      if (args[2] && typeof args[2] === 'object') extra = args[2] as Record<string, unknown>
    } else if (args[1] && typeof args[1] === 'object') extra = args[1] as Record<string, unknown>
    return { opts: { ...extra, port: Number(a0), ...(host ? { host } : {}) }, cb }
  }
  return { opts: null, cb }
}

// ------------------------------------------------------------------------------------------------

function watchIdle(ctx: Context): void {
  const base = process.getActiveResourcesInfo()
  const baseTimers = base.filter((r) => r === 'Timeout').length
  const baseOther = base.length - baseTimers
  let idleChecks = 0
  const timer = setInterval(() => {
    if (ctx.closed) {
      clearInterval(timer)
      return
    }
    const now = process.getActiveResourcesInfo()
    const timers = now.filter((r) => r === 'Timeout').length
    const other = now.length - timers
    const idle =
      refdSockets === 0 &&
      dialsInFlight === 0 &&
      boundServers === 0 &&
      timers <= baseTimers &&
      other <= baseOther
    idleChecks = idle ? idleChecks + 1 : 0
    if (idleChecks >= 2) {
      clearInterval(timer)
      void ctx.close()
    }
  }, 200)
  timer.unref()
}

function fail(err: unknown): never {
  const e = err as { code?: string; message?: string }
  process.stderr.write(`nullport: ${e.code ?? 'ERR_SDK_INTERNAL'}: ${e.message ?? String(err)}\n`)
  process.exit(1)
}

async function register(): Promise<void> {
  let cfg: RegisterConfig
  try {
    cfg = parseRegisterEnv(process.env)
    // fail at once, before anything is patched
    loadIdentityFileSync(cfg.identityPath, { label: `${cfg.identityPath} (NULLPORT_IDENTITY)` })
  } catch (err) {
    fail(err)
  }
  let ctx: Context
  try {
    ctx = await loadContext(cfg.identityPath)
  } catch (err) {
    fail(err)
  }
  if (cfg.bindings.length > 0) {
    const bindings: ZitifyBindings = {}
    for (const b of cfg.bindings) bindings[b.key] = { identity: ctx, service: b.service }
    try {
      zitify(bindings)
    } catch (err) {
      fail(err)
    }
    // Count bound servers so that a hosting app is never considered idle.
    const listen = ctx.listen.bind(ctx)
    ctx.listen = (service, opts) => {
      const server = listen(service, opts)
      boundServers++
      server.once('close', () => {
        boundServers--
      })
      return server
    }
  }
  // A dial in progress is work the app waits for (its socket is counted once connected).
  const dial = ctx.dial.bind(ctx)
  ctx.dial = (service, opts) => {
    dialsInFlight++
    return dial(service, opts).finally(() => {
      dialsInFlight--
    })
  }
  if (cfg.intercept) installClientPatches(ctx)
  watchIdle(ctx)
}

await register()
