/**
 * Keepalive: PINGs on every connection (links every `linkPingIntervalMs`, SDK connections every
 * `sdkPingIntervalMs`); a connection that leaves PINGs unanswered for a while is dropped. On
 * links the PONGs also measure the latency (smoothed) the link reports carry.
 */
import { performance } from 'node:perf_hooks'
import { FrameType } from '@nullport/protocol'
import type { Peer } from '../connections/peer.js'
import type { RouterState } from '../state.js'
import type { Links } from './links.js'

export class Keepalive {
  private sdkTimer: NodeJS.Timeout | null = null

  constructor(
    private readonly state: RouterState,
    private readonly links: Links,
  ) {}

  /** Starts PINGing the SDK connections. */
  start(): void {
    this.sdkTimer = setInterval(() => {
      for (const p of this.state.peers) if (p.kind === 'sdk') this.ping(p)
    }, this.state.limits.sdkPingIntervalMs)
    this.sdkTimer.unref()
  }

  stop(): void {
    if (this.sdkTimer) clearInterval(this.sdkTimer)
    for (const p of this.state.peers) if (p.pingTimer) clearInterval(p.pingTimer)
  }

  /** A link is up: PING it now and every `linkPingIntervalMs`. */
  watchLink(peer: Peer): void {
    peer.pingTimer = setInterval(() => this.ping(peer), this.state.limits.linkPingIntervalMs)
    peer.pingTimer.unref()
    this.ping(peer)
  }

  /** PINGs a link or an SDK connection; one that leaves PINGs unanswered for a while is dropped. */
  ping(peer: Peer): void {
    if (peer.state !== 'ready') return
    if (peer.pingSent.size >= 3) {
      peer.missedPings++
      if (peer.missedPings >= 3) {
        this.state.log.warn({ ...peer.describe() }, 'peer unresponsive to PING; dropping the connection')
        peer.conn.destroy()
        return
      }
    }
    const seq = ++peer.pingSeq >>> 0
    const payload = Buffer.alloc(8)
    payload.writeUInt32BE(seq, 0)
    peer.pingSent.set(seq, performance.now())
    if (peer.pingSent.size > 8) {
      const first = peer.pingSent.keys().next().value
      if (first !== undefined) peer.pingSent.delete(first)
    }
    peer.send({ type: FrameType.PING, circuitId: 0, flags: 0, payload })
  }

  /** PING from the peer: PONG with the same payload. */
  onPing(peer: Peer, payload: Uint8Array): void {
    peer.send({ type: FrameType.PONG, circuitId: 0, flags: 0, payload })
  }

  onPong(peer: Peer, payload: Uint8Array): void {
    if (payload.byteLength !== 8) return
    const seq = Buffer.from(payload.buffer, payload.byteOffset, 8).readUInt32BE(0)
    const sent = peer.pingSent.get(seq)
    if (sent === undefined) return
    peer.pingSent.delete(seq)
    for (const k of [...peer.pingSent.keys()]) if (k < seq) peer.pingSent.delete(k)
    peer.missedPings = 0
    if (peer.kind !== 'router') return
    const rtt = performance.now() - sent
    peer.latencyMs = peer.latencyMs === null ? rtt : peer.latencyMs * 0.7 + rtt * 0.3
    const prev = peer.reportedLatencyMs
    if (prev === null || Math.abs(peer.latencyMs - prev) > Math.max(1, prev * 0.25))
      this.links.scheduleReport()
  }
}
