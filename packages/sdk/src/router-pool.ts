import { Backoff, type BackoffOptions, type ClientEdgeRouter } from '@nullport/protocol'
import { SdkError } from './errors.js'
import type { Logger } from './logger.js'
import { type PendingAccept, RouterConnection, type TlsCredentials } from './router-connection.js'

export interface RouterPoolOptions {
  credentials: TlsCredentials
  agent: string
  logger: Logger
  connectTimeoutMs: number
  pingIntervalMs: number
  reconnect: BackoffOptions
  /** Incoming DIALs for hosted services (hosting.ts `Hosting.route`). */
  onDial: (conn: RouterConnection, dial: PendingAccept) => void
  /** A router connection became ready (hosted services bind on it). */
  onConnected: (conn: RouterConnection) => void
  /** A router refused this identity's certificate: the controller may have revoked it. */
  onCertificateRefused: () => void
}

/** One edge router the identity may use, and its connection. */
interface RouterSlot {
  info: ClientEdgeRouter
  conn: RouterConnection | null
  connecting: Promise<RouterConnection> | null
  backoff: Backoff
  timer: NodeJS.Timeout | null
  lastError: Error | null
}

/** A router as `ctx.edgeRouters()` reports it. */
export type EdgeRouterState = ClientEdgeRouter & { connected: boolean; latencyMs: number | null }

/**
 * The router connections of a context: one per edge router the identity may use (connected when
 * the router is online), reconnected with backoff, dropped when the router is no longer allowed
 * or moves, and chosen for a dial by lowest measured latency.
 */
export class RouterPool {
  private readonly o: RouterPoolOptions
  private list: ClientEdgeRouter[] = []
  private readonly slots = new Map<string, RouterSlot>()
  private closed = false

  constructor(o: RouterPoolOptions) {
    this.o = o
  }

  /** Number of routers this identity may use (with an advertised address). */
  get size(): number {
    return this.slots.size
  }

  /** Applies the controller's router list: connects new online routers, drops removed ones. */
  apply(list: ClientEdgeRouter[]): void {
    this.list = list
    const seen = new Set<string>()
    for (const r of list) {
      if (!r.advertise) continue
      seen.add(r.id)
      const slot = this.slots.get(r.id)
      if (slot) {
        const moved = slot.info.advertise !== r.advertise
        slot.info = r
        if (moved && slot.conn) slot.conn.close()
        if (!slot.conn && !slot.connecting && r.isOnline) this.connect(slot)
        continue
      }
      const s: RouterSlot = {
        info: r,
        conn: null,
        connecting: null,
        backoff: new Backoff(this.o.reconnect),
        timer: null,
        lastError: null,
      }
      this.slots.set(r.id, s)
      if (r.isOnline) this.connect(s)
    }
    for (const [id, slot] of this.slots) {
      if (seen.has(id)) continue
      this.slots.delete(id)
      if (slot.timer) clearTimeout(slot.timer)
      slot.conn?.close(
        new SdkError(
          'ERR_NO_EDGE_ROUTERS',
          `router ${slot.info.name} may no longer be used by this identity`,
        ),
      )
    }
  }

  /** The router list with `connected` and measured `latencyMs`. */
  edgeRouters(): EdgeRouterState[] {
    return this.list.map((r) => {
      const c = this.slots.get(r.id)?.conn
      const ok = c?.ready ?? false
      return { ...r, connected: ok, latencyMs: ok && Number.isFinite(c!.latencyMs) ? c!.latencyMs : null }
    })
  }

  /** The controller's router list as last applied. */
  routers(): ClientEdgeRouter[] {
    return this.list.slice()
  }

  /** Waits (at most `ms`) for the first of the connections under way, if any. */
  async firstConnection(ms: number): Promise<void> {
    const pending = [...this.slots.values()]
      .map((s) => s.connecting)
      .filter((p): p is Promise<RouterConnection> => p !== null)
    if (pending.length === 0) return
    await Promise.race([
      Promise.any(pending).catch(() => undefined),
      new Promise((r) => setTimeout(r, ms).unref()),
    ])
  }

  private connect(slot: RouterSlot): Promise<RouterConnection> {
    if (slot.connecting) return slot.connecting
    if (slot.timer) {
      clearTimeout(slot.timer)
      slot.timer = null
    }
    const { logger } = this.o
    const conn = new RouterConnection({
      routerId: slot.info.id,
      routerName: slot.info.name,
      address: slot.info.advertise,
      credentials: this.o.credentials,
      agent: this.o.agent,
      logger,
      connectTimeoutMs: this.o.connectTimeoutMs,
      pingIntervalMs: this.o.pingIntervalMs,
      onDial: this.o.onDial,
    })
    const p = conn.connect().then(
      () => {
        slot.connecting = null
        if (this.closed || this.slots.get(slot.info.id) !== slot) {
          conn.close()
          throw new SdkError('ERR_CONTEXT_CLOSED', 'the context is closed')
        }
        slot.conn = conn
        slot.lastError = null
        slot.backoff.reset()
        logger.debug?.({ routerId: slot.info.id }, 'router connected')
        conn.once('close', (err: Error) => {
          if (slot.conn === conn) slot.conn = null
          logger.info?.({ err, routerId: slot.info.id }, 'router connection closed')
          this.scheduleReconnect(slot, err)
        })
        conn.on('latency', () => undefined)
        this.o.onConnected(conn)
        return conn
      },
      (err: Error) => {
        slot.connecting = null
        slot.lastError = err
        logger.info?.({ err, routerId: slot.info.id }, 'router connect failed')
        this.scheduleReconnect(slot, err)
        throw err
      },
    )
    p.catch(() => undefined)
    slot.connecting = p
    return p
  }

  private scheduleReconnect(slot: RouterSlot, err: Error): void {
    if (this.closed || this.slots.get(slot.info.id) !== slot || slot.timer) return
    const reason = (err as SdkError).details?.remoteCode ?? (err as SdkError).code
    if (reason === 'ERR_CERT_REVOKED') this.o.onCertificateRefused()
    const delay = slot.backoff.next()
    slot.timer = setTimeout(() => {
      slot.timer = null
      if (!this.closed && this.slots.get(slot.info.id) === slot && !slot.conn) this.connect(slot)
    }, delay)
    slot.timer.unref()
  }

  /** The ready connections, in router-list order. */
  ready(): RouterConnection[] {
    const out: RouterConnection[] = []
    for (const s of this.slots.values()) if (s.conn?.ready) out.push(s.conn)
    return out
  }

  /**
   * Ready connections to the given routers, lowest latency first; when none is ready, connects
   * to them and waits for the first to succeed (ERR_NO_EDGE_ROUTERS when none does).
   */
  async routersFor(ids: string[], signal: AbortSignal): Promise<RouterConnection[]> {
    const slots = ids.map((id) => this.slots.get(id)).filter((s): s is RouterSlot => s !== undefined)
    const ready = slots
      .map((s) => s.conn)
      .filter((c): c is RouterConnection => c?.ready === true)
      .sort((a, b) => a.latencyMs - b.latencyMs)
    if (ready.length > 0 || slots.length === 0) return ready
    const attempts = slots.map((s) => (s.conn?.ready ? Promise.resolve(s.conn) : this.connect(s)))
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason)
      signal.addEventListener('abort', () => reject(signal.reason), { once: true })
    })
    aborted.catch(() => undefined)
    try {
      const first = await Promise.race([Promise.any(attempts), aborted])
      return [first]
    } catch (err) {
      if (signal.aborted) throw signal.reason
      const errors = (err as AggregateError).errors ?? [err]
      throw new SdkError(
        'ERR_NO_EDGE_ROUTERS',
        `no edge router for this service is reachable: ${errors.map((e: Error) => e.message).join('; ')}`,
        { routers: slots.map((s) => s.info.name) },
        { cause: err },
      )
    }
  }

  /** Closes every connection: circuits fail with `err`, or (`quiet`) are destroyed without one. */
  close(err: Error, quiet: boolean): void {
    this.closed = true
    for (const slot of this.slots.values()) {
      if (slot.timer) clearTimeout(slot.timer)
      slot.conn?.close(err, quiet)
      slot.connecting?.then((c) => c.close(err, quiet)).catch(() => undefined)
    }
    this.slots.clear()
  }
}
