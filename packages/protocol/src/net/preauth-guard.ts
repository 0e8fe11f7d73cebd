/**
 * The pre-authentication guard: what an unauthenticated peer may hold on a listener.
 *
 * Every accepted TCP socket is admitted here first (the listener's raw 'connection' event,
 * before TLS). From then until the owner calls {@link PreAuthGuard.authenticated} (TLS done and
 * the first HELLO, or the first complete HTTP request head) the socket:
 * - counts against a per-source-address cap (`perAddress`): one address cannot take the
 *   listener's global `maxConnections` for itself;
 * - has a deadline (`deadlineMs`) measured from the TCP accept, covering the TLS handshake and
 *   whatever the protocol reads before it authenticates; at the deadline the socket is destroyed
 *   (not ended: a half-closed socket in CLOSE-WAIT would still count toward maxConnections).
 *
 * A socket leaves the guard when it is authenticated or closes, whichever comes first. The guard
 * keeps only counters and one timer per pending socket, so its own memory is bounded by the
 * listener's `maxConnections`.
 */
import type { Socket } from 'node:net'

/** The limits one listener applies before authentication (defaults in {@link PREAUTH_DEFAULTS}). */
export interface PreAuthLimits {
  /** Time from TCP accept until authenticated; the socket is destroyed at it. */
  deadlineMs: number
  /** Unauthenticated sockets one source address may hold at once; more are destroyed at accept. */
  perAddress: number
}

export const PREAUTH_DEFAULTS: Readonly<PreAuthLimits> = Object.freeze({
  deadlineMs: 10_000,
  perAddress: 64,
})

/** Why the guard dropped a socket (for logs and metrics). */
export type PreAuthDrop = 'per-address' | 'deadline'

/** Counters a listener exports as metrics. */
export interface PreAuthStats {
  /** Unauthenticated sockets held now. */
  pending: number
  /** Source addresses holding at least one unauthenticated socket now. */
  addresses: number
  /** Sockets destroyed at accept because their address was at `perAddress`, since start. */
  refusedPerAddress: number
  /** Sockets destroyed at the deadline, since start. */
  timedOut: number
  /** Sockets that authenticated in time, since start. */
  authenticated: number
}

interface Pending {
  address: string
  timer: NodeJS.Timeout
  socket: Socket
}

/** Key of one connection: its remote address and port (the same on the raw and the TLS socket). */
function keyOf(socket: Socket): string | undefined {
  const a = socket.remoteAddress
  const p = socket.remotePort
  return a === undefined || p === undefined ? undefined : `${a}|${p}`
}

/** Canonical source address: IPv4-mapped IPv6 counts as the IPv4 address it maps. */
function addressOf(socket: Socket): string {
  const a = socket.remoteAddress ?? 'unknown'
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a
}

export class PreAuthGuard {
  readonly limits: Readonly<PreAuthLimits>
  private readonly pending = new Map<string, Pending>()
  private readonly perAddress = new Map<string, number>()
  private refused = 0
  private timedOut = 0
  private authed = 0

  /**
   * @param limits the listener's limits (validated: positive integers)
   * @param onDrop called once for each socket the guard destroys (log it; the guard counts it)
   */
  constructor(
    limits: PreAuthLimits,
    private readonly onDrop?: (reason: PreAuthDrop, address: string) => void,
  ) {
    for (const k of ['deadlineMs', 'perAddress'] as const) {
      const v = limits[k]
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`pre-auth limit ${k} must be a positive integer, got ${String(v)}`)
      }
    }
    this.limits = Object.freeze({ ...limits })
  }

  /**
   * Admits a freshly accepted socket (call from the server's 'connection' event). Returns false
   * when the socket was refused and destroyed (its address is at the cap).
   */
  admit(socket: Socket): boolean {
    const key = keyOf(socket)
    const address = addressOf(socket)
    if (key === undefined) {
      // already gone (reset before we saw it): nothing to hold
      socket.destroy()
      return false
    }
    const held = this.perAddress.get(address) ?? 0
    if (held >= this.limits.perAddress) {
      this.refused++
      socket.destroy()
      this.onDrop?.('per-address', address)
      return false
    }
    this.perAddress.set(address, held + 1)
    const timer = setTimeout(() => {
      if (this.release(key) === undefined) return
      this.timedOut++
      socket.destroy()
      this.onDrop?.('deadline', address)
    }, this.limits.deadlineMs)
    timer.unref()
    this.pending.set(key, { address, timer, socket })
    socket.once('close', () => {
      // only this socket's own entry: its port may already serve a newer connection (the close
      // event of a destroyed socket comes later, and the client may reuse the port at once)
      if (this.pending.get(key)?.socket === socket) this.release(key)
    })
    return true
  }

  /**
   * Marks the connection of `socket` (raw or TLS) authenticated: its deadline and its place in
   * the per-address count are released. Calling it again, or for a socket never admitted, is a
   * no-op.
   */
  authenticated(socket: Socket): void {
    const key = keyOf(socket)
    if (key !== undefined && this.release(key) !== undefined) this.authed++
  }

  stats(): PreAuthStats {
    return {
      pending: this.pending.size,
      addresses: this.perAddress.size,
      refusedPerAddress: this.refused,
      timedOut: this.timedOut,
      authenticated: this.authed,
    }
  }

  /** Destroys every pending socket and clears the timers (listener shutdown). */
  close(): void {
    for (const [key, p] of [...this.pending]) {
      this.release(key)
      p.socket.destroy()
    }
  }

  private release(key: string): Pending | undefined {
    const p = this.pending.get(key)
    if (p === undefined) return undefined
    this.pending.delete(key)
    clearTimeout(p.timer)
    const n = (this.perAddress.get(p.address) ?? 1) - 1
    if (n <= 0) this.perAddress.delete(p.address)
    else this.perAddress.set(p.address, n)
    return p
  }
}
