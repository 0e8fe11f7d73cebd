/**
 * The router's links: the one connection in use to each other router (inbound or outbound; a
 * newer one replaces an older one), the route lookup that picks the link toward a router, and
 * the latency reports to the controller (`POST /fabric/v1/links`, on change and every
 * `linkReportIntervalMs`), from which it computes and pushes the routes.
 */
import type { Peer } from '../connections/peer.js'
import type { RouterState } from '../state.js'

export class Links {
  private reportTimer: NodeJS.Timeout | null = null
  private reportSoon: NodeJS.Timeout | null = null

  constructor(private readonly state: RouterState) {}

  start(): void {
    this.reportTimer = setInterval(() => this.report(), this.state.limits.linkReportIntervalMs)
    this.reportTimer.unref()
  }

  stop(): void {
    for (const t of [this.reportTimer, this.reportSoon]) if (t) clearInterval(t)
  }

  /** A router connection finished its handshake: it becomes the link to that router. */
  register(peer: Peer): void {
    const s = this.state
    const existing = s.links.get(peer.entityId)
    if (existing && existing !== peer) {
      s.log.info({ peerRouter: peer.entityId }, 'replacing an older link')
      s.links.delete(peer.entityId)
      existing.conn.close('ERR_LINK_REPLACED', 'a newer link to this router replaced this one')
    }
    s.links.set(peer.entityId, peer)
    peer.onReady?.()
    s.log.info(
      { peerRouter: peer.entityId, name: peer.name, direction: peer.inbound ? 'in' : 'out' },
      'link up',
    )
  }

  /** A router connection that had finished its handshake closed. */
  peerGone(peer: Peer): void {
    const s = this.state
    if (s.links.get(peer.entityId) === peer) {
      s.links.delete(peer.entityId)
      s.log.warn({ peerRouter: peer.entityId, name: peer.name }, 'link down')
      this.scheduleReport()
    }
    peer.onDown?.()
  }

  /** The link to send a circuit toward `routerId`: the route's next hop, else a direct link. */
  nextHop(routerId: string): Peer | null {
    const s = this.state
    const usable = (p: Peer | undefined): p is Peer => p !== undefined && p.state === 'ready' && !p.draining
    const hop = s.routes.nextHop[routerId]
    const viaRoute = hop === undefined ? undefined : s.links.get(hop)
    if (usable(viaRoute)) return viaRoute
    const direct = s.links.get(routerId)
    return usable(direct) ? direct : null
  }

  /** Link latency by peer router id (for metrics). */
  latencies(): Array<{ routerId: string; latencyMs: number }> {
    const out: Array<{ routerId: string; latencyMs: number }> = []
    for (const [id, p] of this.state.links)
      if (p.latencyMs !== null) out.push({ routerId: id, latencyMs: p.latencyMs })
    return out
  }

  /** Reports the links soon (coalesced): a link went down or its latency changed. */
  scheduleReport(): void {
    if (this.reportSoon || this.state.stopping) return
    this.reportSoon = setTimeout(() => {
      this.reportSoon = null
      this.report()
    }, 200)
    this.reportSoon.unref()
  }

  private report(): void {
    const s = this.state
    if (s.stopping) return
    const peers: Array<{ routerId: string; latencyMs: number }> = []
    for (const [id, p] of s.links) {
      if (p.state !== 'ready') continue
      const ms = p.latencyMs ?? 1
      p.reportedLatencyMs = ms
      peers.push({ routerId: id, latencyMs: Math.max(0, Math.round(ms * 100) / 100) })
    }
    s.fabric.request('POST', '/fabric/v1/links', { peers }).catch((err: Error) => {
      s.log.debug({ err: err.message }, 'link report failed')
    })
  }
}
