/**
 * zitify: make an existing server dark in two lines. Listed `host:port` bindings are served on
 * the overlay instead of a TCP port; every other `listen()` is left alone.
 *
 * Mechanism: `net.Server.prototype.listen` (which http, https, http2, tls, Express, Fastify and
 * Koa servers all use) is wrapped; a call whose host and port match a binding opens no socket:
 * the identity hosts the service on the overlay and each circuit is handed to the server as a
 * connection (see serve.ts).
 */
import { type AddressInfo, isIP, Server } from 'node:net'
import { resolve as resolvePath } from 'node:path'
import {
  type IdentityFile,
  loadIdentityFileSync,
  parseIdentityFile,
  tryParseHostPort,
} from '@nullport/protocol'
import { Context, loadContext } from './context.js'
import type { ContextOptions } from './context-options.js'
import { SdkError } from './errors.js'
import type { ListenOptions } from './overlay-server.js'
import { attachOverlay } from './serve.js'

/** One binding: who hosts which service in place of a `host:port`. */
export interface ZitifyBinding {
  /** Identity file path, parsed identity file, or a loaded Context (not closed by zitify). */
  identity: string | IdentityFile | Context
  /** Service to host (the identity needs a Bind policy for it). */
  service: string
  /** Terminator cost, precedence, maxConnections. */
  listenOptions?: ListenOptions
}

/**
 * Bindings by `host:port` (`'127.0.0.1:18080'`, `'[::1]:8443'`), or by port alone (`':18080'`,
 * `'0.0.0.0:18080'`) to match that port on any host. A `listen()` without a host matches any
 * binding of its port (the app asked for every interface: none is opened).
 */
export type ZitifyBindings = Record<string, ZitifyBinding>

/** Options of `zitify()`. */
export interface ZitifyOptions {
  /** Options for the contexts zitify loads from identity files. */
  contextOptions?: ContextOptions
}

interface CompiledBinding {
  key: string
  /** null: any host. */
  host: string | null
  port: number
  service: string
  listenOptions: ListenOptions
  identity:
    | { kind: 'path'; path: string; file: IdentityFile }
    | { kind: 'file'; file: IdentityFile }
    | { kind: 'ctx'; ctx: Context }
  contextOptions: ContextOptions
}

interface ContextEntry {
  promise: Promise<Context>
  users: number
  owned: boolean
}

const active: CompiledBinding[][] = []
const contexts = new Map<string, ContextEntry>()
let originalListen: Server['listen'] | null = null
let patchedListen: Server['listen'] | null = null

const ANY_HOSTS = new Set(['', '*', '0.0.0.0', '::', '[::]'])

function normHost(h: string): string {
  let x = h.trim().toLowerCase()
  if (x.startsWith('[') && x.endsWith(']')) x = x.slice(1, -1)
  if (x === 'localhost') return '127.0.0.1'
  return x
}

/** Loopback addresses match each other (a framework listening on "localhost" may bind 127.0.0.1 and ::1). */
function matchKey(h: string): string {
  return h === '127.0.0.1' || h === '::1' ? 'loopback' : h
}

function invalid(msg: string, details: Record<string, unknown> = {}): SdkError {
  return new SdkError('ERR_INVALID_BINDINGS', msg, details)
}

/** Parses `host:port` / `[v6]:port` / `:port` / `port` (protocol's HOST:PORT grammar, plus a bare port). */
export function parseBindingKey(key: string): { host: string | null; port: number } {
  const k = key.trim()
  const r = /^\d+$/.test(k)
    ? tryParseHostPort(`:${k}`, { host: 'any', allowEmptyHost: true })
    : tryParseHostPort(k, { host: 'any', allowEmptyHost: true })
  if (r.ok) return { host: ANY_HOSTS.has(r.host.trim()) ? null : normHost(r.host), port: r.port }
  const details = { binding: key }
  switch (r.reason) {
    case 'unterminated-bracket':
    case 'bracket-suffix':
      throw invalid(`binding "${key}": expected [ipv6]:port`, details)
    case 'unbracketed-ipv6':
      throw invalid(`binding "${key}": write IPv6 hosts in brackets ([::1]:8080)`, details)
    case 'missing-port':
      if (!k.endsWith(':')) break
      throw invalid(portMessage(key), details)
    case 'bad-port':
    case 'port-zero':
      throw invalid(portMessage(key), details)
  }
  throw invalid(`binding "${key}": expected host:port (e.g. 127.0.0.1:18080)`, details)
}

function portMessage(key: string): string {
  return `binding "${key}": the port must be 1..65535 (port 0 is chosen by the OS and cannot be bound)`
}

/** Reads and validates an identity file now, so a bad path fails at the call (not at listen()). */
function readIdentitySync(path: string): IdentityFile {
  const file = loadIdentityFileSync(path)
  if (file.kind !== 'identity') {
    throw new SdkError(
      'ERR_IDENTITY_FILE',
      `${path} is a ${file.kind} identity file: zitify needs an identity (not a router) file`,
      { path },
    )
  }
  return file
}

/** Validates bindings (throws ERR_INVALID_BINDINGS, ERR_IDENTITY_FILE_MISSING/MALFORMED). */
export function compileBindings(bindings: ZitifyBindings, opts: ZitifyOptions = {}): CompiledBinding[] {
  if (bindings === null || typeof bindings !== 'object' || Array.isArray(bindings)) {
    throw invalid(
      `zitify: bindings must be an object like { '127.0.0.1:18080': { identity: './host.json', service: 'family.tools' } }`,
    )
  }
  const keys = Object.keys(bindings)
  if (keys.length === 0) throw invalid('zitify: no bindings given')
  const out: CompiledBinding[] = []
  const seen = new Set<string>()
  // Every key first, so a malformed or duplicate key is reported before any file is read.
  const parsed = keys.map((key) => {
    const { host, port } = parseBindingKey(key)
    const norm = `${host ?? '*'}:${port}`
    if (seen.has(norm)) throw invalid(`binding "${key}" is listed twice`, { binding: key })
    seen.add(norm)
    return { key, host, port }
  })
  for (const { key, host, port } of parsed) {
    const b = bindings[key] as ZitifyBinding | undefined
    if (!b || typeof b !== 'object')
      throw invalid(`binding "${key}" must be { identity, service }`, { binding: key })
    if (typeof b.service !== 'string' || b.service.length === 0 || b.service.length > 256) {
      throw invalid(`binding "${key}": service must be a service name`, { binding: key })
    }
    let identity: CompiledBinding['identity']
    if (b.identity instanceof Context) identity = { kind: 'ctx', ctx: b.identity }
    else if (typeof b.identity === 'string' && b.identity.length > 0) {
      const path = resolvePath(b.identity)
      identity = { kind: 'path', path, file: readIdentitySync(path) }
    } else if (b.identity && typeof b.identity === 'object') {
      identity = { kind: 'file', file: parseIdentityFile(b.identity) }
    } else {
      throw invalid(
        `binding "${key}": identity must be an identity file path, its parsed content, or a Context`,
        {
          binding: key,
        },
      )
    }
    if (b.listenOptions !== undefined && (b.listenOptions === null || typeof b.listenOptions !== 'object')) {
      throw invalid(`binding "${key}": listenOptions must be an object`, { binding: key })
    }
    out.push({
      key,
      host,
      port,
      service: b.service,
      listenOptions: b.listenOptions ?? {},
      identity,
      contextOptions: opts.contextOptions ?? {},
    })
  }
  return out
}

interface ListenTarget {
  /** null: every interface. */
  host: string | null
  port: number
  cb: (() => void) | undefined
  /** The host as the app wrote it (for address()). */
  addr: string | null
}

/** The (host, port) of a listen() call, or null for pipes, handles and port 0. */
function parseListenArgs(args: unknown[]): ListenTarget | null {
  const a0 = args[0]
  const last = args[args.length - 1]
  const cb = typeof last === 'function' ? (last as () => void) : undefined
  let host: unknown
  let port: unknown
  if (a0 !== null && typeof a0 === 'object') {
    const o = a0 as {
      port?: unknown
      host?: unknown
      path?: unknown
      fd?: unknown
      _handle?: unknown
      handle?: unknown
    }
    if (o.path !== undefined || o.fd !== undefined || o._handle !== undefined || o.handle !== undefined)
      return null
    port = o.port
    host = o.host
  } else {
    port = a0
    host = typeof args[1] === 'string' ? args[1] : undefined
  }
  if (typeof port === 'string' && /^\d+$/.test(port)) port = Number(port)
  if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535) return null
  const h = typeof host === 'string' ? host.trim() : ''
  const any = ANY_HOSTS.has(h)
  return { host: any ? null : normHost(h), port, cb, addr: any ? null : h.replace(/^\[(.*)\]$/, '$1') }
}

function findBinding(t: ListenTarget): CompiledBinding | null {
  // Newest zitify() first; an exact host beats an any-host binding.
  for (let i = active.length - 1; i >= 0; i--) {
    const set = active[i]!
    const exact = set.find(
      (b) => b.port === t.port && b.host !== null && t.host !== null && matchKey(b.host) === matchKey(t.host),
    )
    if (exact) return exact
    const any = set.find((b) => b.port === t.port && (b.host === null || t.host === null))
    if (any) return any
  }
  return null
}

function contextKey(b: CompiledBinding): string | null {
  if (b.identity.kind === 'path') return `path:${b.identity.path}`
  if (b.identity.kind === 'file') return `file:${b.identity.file.id}`
  return null
}

function acquireContext(b: CompiledBinding): { promise: Promise<Context>; release: () => void } {
  if (b.identity.kind === 'ctx') {
    const ctx = b.identity.ctx
    return { promise: Promise.resolve(ctx), release: () => undefined }
  }
  const key = contextKey(b)!
  let e = contexts.get(key)
  if (!e) {
    const file = b.identity.file
    const created: ContextEntry = { promise: loadContext(file, b.contextOptions), users: 0, owned: true }
    const forget = (): void => {
      if (contexts.get(key) === created) contexts.delete(key)
    }
    // A context that failed to load, or closed (revoked), is not reused by the next listen().
    created.promise.then((ctx) => ctx.once('close', forget), forget)
    contexts.set(key, created)
    e = created
  }
  const entry = e
  entry.users++
  let released = false
  return {
    promise: entry.promise,
    release: () => {
      if (released) return
      released = true
      entry.users--
      if (entry.users === 0) {
        // The last server of this identity closed: close its context so the process can exit.
        if (contexts.get(key) === entry) contexts.delete(key)
        entry.promise.then((ctx) => ctx.close()).catch(() => undefined)
      }
    },
  }
}

function hostOverlay(server: Server, b: CompiledBinding, t: ListenTarget): void {
  const { promise, release } = acquireContext(b)
  const named = t.addr ?? b.host ?? '0.0.0.0'
  const host = named === 'localhost' ? '127.0.0.1' : named
  const address: AddressInfo = { address: host, family: isIP(host) === 6 ? 'IPv6' : 'IPv4', port: t.port }
  promise.then(
    (ctx) => {
      let overlay: ReturnType<Context['listen']>
      try {
        overlay = ctx.listen(b.service, b.listenOptions)
      } catch (err) {
        release()
        server.emit('error', err)
        return
      }
      attachOverlay(server, overlay, address, release).catch(() => undefined)
    },
    (err: unknown) => {
      release()
      server.emit('error', err)
    },
  )
}

function install(): void {
  if (originalListen) return
  const original = Server.prototype.listen
  originalListen = original
  const patched = function listen(this: Server, ...args: unknown[]): Server {
    const t = parseListenArgs(args)
    const b = t ? findBinding(t) : null
    if (!t || !b) return (original as (...a: unknown[]) => Server).apply(this, args)
    if (this.listening) {
      const err = new Error('Listen method has been called more than once without closing.') as Error & {
        code: string
      }
      err.code = 'ERR_SERVER_ALREADY_LISTEN'
      throw err
    }
    if (t.cb) this.once('listening', t.cb)
    hostOverlay(this, b, t)
    return this
  } as Server['listen']
  patchedListen = patched
  Server.prototype.listen = patched
}

function uninstall(): void {
  if (!originalListen) return
  if (Server.prototype.listen === patchedListen) Server.prototype.listen = originalListen
  originalListen = null
  patchedListen = null
}

/**
 * Serves the listed `host:port` bindings on the overlay: after `zitify(...)`, a server's
 * `listen(port, host)` matching a binding opens no port; the binding's identity hosts its
 * service and the server receives the overlay connections (`req.socket.remoteIdentity` is the
 * verified caller). Works for http, https, http2 (plain and secure), net, Express, Fastify and
 * Koa. Other listen() calls are untouched. Returns a function that undoes the patch (servers
 * already bound stay bound until closed; closing the last server of an identity closes its
 * context).
 *
 * Throws at once on bad input: ERR_INVALID_BINDINGS (malformed keys or entries),
 * ERR_IDENTITY_FILE_MISSING / ERR_IDENTITY_FILE_MALFORMED (identity file). Failures at
 * listen() time (ERR_NO_BIND_PERMISSION, controller unreachable, ...) are emitted as the
 * server's 'error' (Express 5 passes it to the listen callback).
 *
 * @example
 * import { zitify } from '@nullport/sdk'
 * zitify({ '127.0.0.1:18080': { identity: './host.json', service: 'family.tools' } })
 * app.listen(18080, '127.0.0.1')
 */
export function zitify(bindings: ZitifyBindings, opts: ZitifyOptions = {}): () => void {
  const compiled = compileBindings(bindings, opts)
  active.push(compiled)
  install()
  let undone = false
  return () => {
    if (undone) return
    undone = true
    const i = active.indexOf(compiled)
    if (i >= 0) active.splice(i, 1)
    if (active.length === 0) uninstall()
  }
}
