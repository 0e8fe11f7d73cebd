/**
 * Fabric streams to routers (`GET /fabric/v1/stream`): a `snapshot`, then every committed
 * `change` batch in order, and `routes` when the router's route table changes. One stream per
 * router (a new one replaces the old). A router that cannot keep up is dropped (SseStream bound)
 * and gets a fresh snapshot when it reconnects, so no change is ever silently skipped.
 */
import type { DataChange, PolicySnapshot, RouterEvent, RouteTable } from '@nullport/protocol'
import type { SseCloseReason, SseStream } from './sse.js'

interface RouterStream {
  routerId: string
  /** Fingerprint of the certificate the stream was opened with (closed when it is revoked). */
  fingerprint: string
  stream: SseStream
  /** Changes at or below this version are already in the snapshot it got. */
  version: number
}

export class RouterHub {
  private readonly streams = new Map<string, RouterStream>()
  /** The last serialized snapshot: routers (re)connecting at the same version share it. */
  private cached: { snapshot: PolicySnapshot; json: string } | null = null

  private snapshotJson(snapshot: PolicySnapshot): string {
    if (this.cached?.snapshot === snapshot) return this.cached.json
    const ev: RouterEvent = { type: 'snapshot', snapshot }
    this.cached = { snapshot, json: JSON.stringify(ev) }
    return this.cached.json
  }

  get size(): number {
    return this.streams.size
  }

  isConnected(routerId: string): boolean {
    return this.streams.has(routerId)
  }

  connected(): string[] {
    return [...this.streams.keys()]
  }

  /**
   * Starts a router's stream: sends the snapshot (and its routes, if any) at once. Must be called
   * in the same tick the snapshot was taken, so no change batch falls between them. `onGone` runs
   * when this stream ends, unless a newer stream for the router replaced it.
   */
  attach(
    routerId: string,
    fingerprint: string,
    stream: SseStream,
    snapshot: PolicySnapshot,
    routes: RouteTable | undefined,
    onGone: (reason: SseCloseReason) => void,
  ): void {
    const old = this.streams.get(routerId)
    const entry: RouterStream = { routerId, fingerprint, stream, version: snapshot.version }
    this.streams.set(routerId, entry)
    if (old) old.stream.close('server')
    stream.onClose((reason) => {
      if (this.streams.get(routerId) === entry) {
        this.streams.delete(routerId)
        onGone(reason)
      }
    })
    stream.sendJson('snapshot', this.snapshotJson(snapshot), { exempt: true })
    if (routes) this.sendRoutes(routerId, routes)
  }

  /** Sends a committed change batch to every router, in order. */
  broadcast(changes: DataChange[]): void {
    if (changes.length === 0) return
    for (const entry of [...this.streams.values()]) {
      const fresh = changes.filter((c) => c.version > entry.version)
      if (fresh.length === 0) continue
      const ev: RouterEvent = { type: 'change', changes: fresh }
      // send() drops a stream that is too far behind; the router reconnects for a new snapshot.
      entry.stream.send('change', ev)
    }
  }

  sendRoutes(routerId: string, routes: RouteTable): void {
    const entry = this.streams.get(routerId)
    if (!entry) return
    const ev: RouterEvent = { type: 'routes', routes }
    entry.stream.send('routes', ev)
  }

  /** Closes a router's stream (router deleted, disabled or re-enrolled). */
  disconnect(routerId: string): void {
    this.streams.get(routerId)?.stream.close('server')
  }

  /** Closes the streams for which `revoked(routerId, fingerprint)` is true. */
  disconnectWhere(revoked: (routerId: string, fingerprint: string) => boolean): string[] {
    const out: string[] = []
    for (const e of [...this.streams.values()]) {
      if (revoked(e.routerId, e.fingerprint)) {
        out.push(e.routerId)
        e.stream.close('server')
      }
    }
    return out
  }

  closeAll(): void {
    for (const e of [...this.streams.values()]) e.stream.close('server')
  }
}
