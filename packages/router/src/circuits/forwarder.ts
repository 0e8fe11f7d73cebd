/**
 * The forwarding hot path: a frame arriving on one leg of a circuit leaves on the other with the
 * circuit id rewritten. DATA and HALF_CLOSE go out in place (`forwardData`, no copy), checked
 * against the sender's flow-control window and bounded by the bytes queued toward the next hop;
 * WINDOW_UPDATE credit raises the far sender's window; CLOSE ends the circuit. Circuits the
 * router itself ends (flow control, timeouts, revocation, a lost connection) close here too.
 */
import { type Frame, FrameType } from '@nullport/protocol'
import type { Logger } from 'pino'
import type { Peer } from '../connections/peer.js'
import type { RouterWireCode } from '../errors.js'
import type { RouterMetrics } from '../metrics.js'
import type { ForwardEnd, RouterTestHooks } from '../options.js'
import type { RouterState } from '../state.js'
import type { Terminators } from '../terminators/terminators.js'
import type { Circuit, CircuitTable, Leg } from './circuit-table.js'
import type { CircuitReports } from './reports.js'

/** True for circuits that entered the overlay here (an SDK dialed this router). */
export function isIngress(c: Circuit<Peer>): boolean {
  return c.a.peer.kind === 'sdk'
}

export class Forwarder {
  /** DATA payload bytes forwarded (metrics). */
  bytesForwarded = 0
  // The hot path reads these directly (no lookups through the shared state per frame).
  private readonly table: CircuitTable<Peer>
  private readonly hooks: RouterTestHooks | null
  private readonly maxQueued: number
  private readonly log: Logger
  private readonly metrics: RouterMetrics

  constructor(
    state: RouterState,
    private readonly terminators: Terminators,
    private readonly reports: CircuitReports,
  ) {
    this.table = state.table
    this.hooks = state.hooks
    this.maxQueued = state.limits.maxQueuedBytesPerCircuit
    this.log = state.log
    this.metrics = state.metrics
  }

  /** Hot path: DATA and HALF_CLOSE. */
  onData(peer: Peer, circuitId: number, flags: number, payload: Uint8Array, type: number): void {
    const leg = this.table.lookup(peer, circuitId)
    if (!leg) return
    const c = leg.circuit
    const out = leg.other()
    if (!out) return
    const n = payload.byteLength
    if (type === FrameType.DATA) {
      if (!leg.consume(n)) {
        this.abort(
          c,
          'ERR_FLOW_CONTROL',
          `the sender exceeded its flow-control window of ${this.table.window} bytes`,
        )
        return
      }
      if (leg === c.a) c.bytesUp += n
      else c.bytesDown += n
      this.bytesForwarded += n
    }
    if (this.hooks?.onForward) {
      const frame = { type, circuitId: out.id, flags, payload } as Frame
      const f2 = this.hooks.onForward(frame, endOf(leg), endOf(out))
      if (!f2) return
      out.peer.send(f2)
      return
    }
    // Bound what this circuit has queued toward the next hop: bytes written and not yet flushed by
    // that socket (released in write order by the peer's flush callback). Bytes already sent do
    // not count, however long the connection stays backed up by other circuits.
    const size = n + 12
    if (out.queued + size > this.maxQueued) {
      this.abort(
        c,
        'ERR_FLOW_CONTROL',
        `more than ${this.maxQueued} bytes queued toward a slow receiver: it granted credit it could not take`,
      )
      return
    }
    const p = out.peer
    out.queued += size
    p.pushUnflushed(out, size)
    p.conn.forwardData(out.id, flags, payload, type, p.onFlushed)
  }

  onWindowUpdate(peer: Peer, circuitId: number, credit: number): void {
    const leg = this.table.lookup(peer, circuitId)
    if (!leg) return
    const out = leg.other()
    if (!out) return
    out.inWindow += credit
    if (out.inWindow > 0xffff_ffff) {
      this.abort(leg.circuit, 'ERR_FLOW_CONTROL', 'WINDOW_UPDATE raised the window above 2^32-1 bytes')
      return
    }
    const frame: Frame = { type: FrameType.WINDOW_UPDATE, circuitId: out.id, flags: 0, payload: { credit } }
    if (this.hooks?.onForward) this.forward(frame, leg, out)
    else out.peer.send(frame)
  }

  onClose(peer: Peer, f: Extract<Frame, { type: typeof FrameType.CLOSE }>): void {
    const leg = this.table.lookup(peer, f.circuitId)
    if (!leg) return
    const c = leg.circuit
    const out = leg.other()
    if (out) {
      if (c.state === 'dialing' && leg === c.b) {
        // The host closed instead of answering: the dialer learns it as a failed dial.
        this.forward(
          {
            type: FrameType.DIAL_FAILED,
            circuitId: out.id,
            flags: 0,
            payload: {
              code: f.payload.code ?? 'ERR_DIAL_REFUSED',
              message: f.payload.message ?? 'the host closed the circuit while it was being dialed',
            },
          },
          leg,
          out,
        )
        if (isIngress(c)) this.metrics.dial('failed')
      } else {
        this.forward(
          { type: FrameType.CLOSE, circuitId: out.id, flags: f.flags, payload: f.payload },
          leg,
          out,
        )
      }
    }
    this.remove(c)
  }

  /** Sends a control frame (already addressed to `to`), through the test hook if any. */
  forward(frame: Frame, from: Leg<Peer>, to: Leg<Peer>): boolean {
    if (this.hooks?.onForward) {
      const f2 = this.hooks.onForward(frame, endOf(from), endOf(to))
      if (!f2) return true
      return to.peer.send(f2)
    }
    return to.peer.send(frame)
  }

  /** Closes a circuit from this router: CLOSE {code} (or DIAL_FAILED while dialing) to both ends. */
  abort(c: Circuit<Peer>, code: RouterWireCode, message: string): void {
    if (c.state === 'closed') return
    this.log.info(
      { code, circuit: c.meta.tag, service: c.meta.serviceName, dialer: c.meta.dialerName, reason: message },
      'circuit closed by router',
    )
    const msg = message.slice(0, 1024)
    if (c.state === 'dialing') {
      c.a.peer.send({
        type: FrameType.DIAL_FAILED,
        circuitId: c.a.id,
        flags: 0,
        payload: { code, message: msg },
      })
      if (isIngress(c)) this.metrics.dial(code === 'ERR_DIAL_TIMEOUT' ? 'timeout' : 'failed')
    } else {
      c.a.peer.send({
        type: FrameType.CLOSE,
        circuitId: c.a.id,
        flags: 0,
        payload: { code, message: msg },
      })
    }
    if (c.b)
      c.b.peer.send({
        type: FrameType.CLOSE,
        circuitId: c.b.id,
        flags: 0,
        payload: { code, message: msg },
      })
    this.remove(c)
  }

  /** Forgets a circuit: table, terminator load, circuit report. */
  remove(c: Circuit<Peer>): void {
    if (c.state === 'closed') return
    const wasOpen = c.state === 'open'
    this.table.remove(c)
    this.terminators.circuitClosed(c)
    if (isIngress(c) && wasOpen) this.reports.closed(c)
  }

  /** A connection closed: the far end of each of its circuits learns it (CLOSE, or DIAL_FAILED while dialing). */
  peerGone(peer: Peer): void {
    for (const c of this.table.circuitsOf(peer)) {
      const mine = c.a.peer === peer ? c.a : c.b!
      const other = mine.other()
      if (other && other.peer !== peer) {
        if (c.state === 'dialing' && mine === c.b) {
          other.peer.send({
            type: FrameType.DIAL_FAILED,
            circuitId: other.id,
            flags: 0,
            payload: {
              code: 'ERR_PEER_GONE',
              message: 'the connection toward the host was lost while dialing',
            },
          })
          this.metrics.dial('failed')
        } else {
          other.peer.send({
            type: FrameType.CLOSE,
            circuitId: other.id,
            flags: 0,
            payload: {
              code: 'ERR_PEER_GONE',
              message: `the connection of ${peer.kind === 'router' ? 'a router on the path' : 'the other end'} was lost`,
            },
          })
        }
      }
      this.remove(c)
    }
    this.table.dropPeer(peer)
  }
}

function endOf(leg: Leg<Peer>): ForwardEnd {
  return { kind: leg.peer.kind, id: leg.peer.entityId, name: leg.peer.name, circuitId: leg.id }
}
