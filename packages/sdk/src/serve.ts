/**
 * Serving an ordinary Node server (http, https, http2, net, or a framework's) on the overlay
 * with no listening socket: the overlay circuits are handed to the server as connections.
 *
 * The server looks listening as usual: `listening` is true, `address()` answers the address it
 * was bound as, 'listening' fires, `getConnections()` counts circuits, and `close()` unbinds the
 * service and emits 'close' once the open connections have ended (http servers also close their
 * idle keep-alive connections, as Node does). The caller's identity is `socket.remoteIdentity`
 * (`req.socket.remoteIdentity` in Express, Koa's `ctx.req.socket`, Fastify's `request.raw.socket`;
 * https and http2 too).
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { AddressInfo, Server } from 'node:net'
import type { Context } from './context.js'
import { SdkError } from './errors.js'
import type { ListenOptions, OverlayServer } from './overlay-server.js'
import type { OverlaySocket, PeerIdentity } from './overlay-socket.js'

/** Options of `serve()`. */
export interface ServeOptions extends ListenOptions {
  /**
   * What `server.address()` answers. Default `{ address: <service>, family: 'overlay', port: 0 }`
   * (zitify passes the bound host and port).
   */
  address?: AddressInfo
}

/** What serve() resolves with. */
export interface ServeHandle {
  /** The overlay listener (terminators, getConnections). */
  overlay: OverlayServer
  /** Unbinds and resolves once open connections have ended (same as `server.close()`). */
  close(): Promise<void>
}

/** The fields of net.Server this module drives (Node's own mechanism for listening servers). */
interface ServerInternals {
  _handle: unknown
  _connectionKey?: string
  _connections: number
  _emitCloseIfDrained(): void
}

const identityScope = new AsyncLocalStorage<PeerIdentity>()
const hooked = new WeakSet<Server>()

/**
 * Feeds one circuit to the server, as if its listening socket had accepted it. TLS servers get
 * `remoteIdentity` on their TLSSocket too (set in the handshake's async context).
 */
function inject(server: Server, socket: OverlaySocket): void {
  const s = server as unknown as ServerInternals
  s._connections++
  socket.once('close', () => {
    s._connections--
    s._emitCloseIfDrained()
  })
  if (!hooked.has(server)) {
    hooked.add(server)
    // TLS servers wrap the circuit in a TLSSocket (created in emit('connection'), secured later
    // in the async context of that call); http2 servers in a session socket. Tag them.
    server.prependListener('secureConnection', (t: { remoteIdentity?: PeerIdentity }) => {
      const who = identityScope.getStore()
      if (who && t.remoteIdentity === undefined) t.remoteIdentity = who
    })
    server.prependListener('session', (session: { socket?: Tagged & { stream?: Tagged } }) => {
      try {
        const sock = session.socket
        const who = sock?.stream?.remoteIdentity
        if (sock && who && sock.remoteIdentity === undefined) sock.remoteIdentity = who
      } catch {
        // a session without a socket: nothing to tag
      }
    })
  }
  // AsyncLocalStorage costs every promise of the process something: only TLS servers need it.
  if (isTlsServer(server)) identityScope.run(socket.remoteIdentity, () => server.emit('connection', socket))
  else server.emit('connection', socket)
}

/** Whether the server wraps connections in TLS (https, http2 secure, tls). */
function isTlsServer(server: Server): boolean {
  return typeof (server as { setSecureContext?: unknown }).setSecureContext === 'function'
}

interface Tagged {
  remoteIdentity?: PeerIdentity
}

/**
 * Makes `server` listening through `overlay`: once the service is bound, the server gets a
 * stand-in handle (so `listening`, `address()`, `close()` and `getConnections()` work as for a
 * TCP server) and 'listening' fires. Resolves once bound; rejects (and emits 'error' on the
 * server) when the bind fails.
 * @internal Used by serve() and zitify().
 */
export function attachOverlay(
  server: Server,
  overlay: OverlayServer,
  address: AddressInfo,
  onClosed?: () => void,
): Promise<void> {
  const s = server as unknown as ServerInternals
  overlay.on('connection', (socket: OverlaySocket) => {
    if (s._handle !== handle) {
      socket.destroy()
      return
    }
    inject(server, socket)
  })
  const handle = {
    getsockname(out: Record<string, unknown>): number {
      Object.assign(out, address)
      return 0
    },
    close(): void {
      closedByServer = true
      overlay.close().then(onClosed, onClosed)
    },
    ref(): void {},
    unref(): void {},
    fd: -1,
    overlay,
  }
  let closedByServer = false
  // The overlay listener closed under the server (context closed, identity revoked): the server
  // is no longer listening; say so, and let close() semantics follow ('close' once drained).
  overlay.once('close', () => {
    if (closedByServer || s._handle !== handle) return
    s._handle = null
    onClosed?.()
    const err = new SdkError(
      'ERR_CONTEXT_CLOSED',
      `the overlay listener of service ${overlay.service} closed (its context was closed or revoked): the server no longer receives connections`,
      { service: overlay.service },
    )
    if (server.listenerCount('error') > 0) server.emit('error', err)
    else process.emitWarning(`${err.code}: ${err.message}`, 'NullportWarning')
    s._emitCloseIfDrained()
  })
  return new Promise<void>((resolve, reject) => {
    let bound = false
    overlay.once('listening', () => {
      bound = true
      s._handle = handle
      s._connectionKey = `${address.family === 'IPv6' ? 6 : 4}:${address.address}:${address.port}`
      server.emit('listening')
      resolve()
    })
    overlay.on('error', (err: Error) => {
      if (!bound) {
        overlay.close().then(onClosed, onClosed)
        reject(err)
        server.emit('error', err)
        return
      }
      // Lost the bind later (policy removed, all routers gone): tell the app if it listens.
      if (server.listenerCount('error') > 0) server.emit('error', err)
      else process.emitWarning(`${(err as SdkError).code ?? 'ERR'}: ${err.message}`, 'NullportWarning')
    })
  })
}

/**
 * Serves an existing server (not listening) on a service, with no listening socket. Resolves
 * once the service is bound on a router; rejects with the bind's error (ERR_NO_BIND_PERMISSION,
 * ERR_NO_EDGE_ROUTERS, ...).
 *
 * @example
 * const server = http.createServer(app)
 * await serve(ctx, server, 'family.tools')
 * // later: server.close()
 */
export async function serve(
  ctx: Context,
  server: Server,
  service: string,
  opts: ServeOptions = {},
): Promise<ServeHandle> {
  if (!server || typeof (server as Server).listen !== 'function' || typeof server.emit !== 'function') {
    throw new SdkError('ERR_INVALID_OPTION', 'serve: server must be a net.Server (http, https, http2, net)')
  }
  if (server.listening) {
    throw new SdkError(
      'ERR_INVALID_OPTION',
      'serve: the server is already listening: close it first, or do not call listen()',
    )
  }
  const { address, ...listenOpts } = opts
  const overlay = ctx.listen(service, listenOpts)
  const addr: AddressInfo = address ?? { address: service, family: 'overlay', port: 0 }
  const p = attachOverlay(server, overlay, addr)
  // serve() reports the failure through its promise; an 'error' on the server needs no listener.
  const swallow = (): void => undefined
  server.once('error', swallow)
  try {
    await p
  } finally {
    server.off('error', swallow)
  }
  return {
    overlay,
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) {
          resolve()
          return
        }
        server.close(() => resolve())
      }),
  }
}
