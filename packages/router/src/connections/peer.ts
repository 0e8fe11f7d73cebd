/**
 * One TLS connection of the router: an SDK (identity certificate) or another router (link), in
 * either direction. Holds the verified identity, the circuit id allocator of this side, the
 * binds of an SDK, and the write-backpressure state used to bound queued bytes per circuit.
 */
import { CircuitIdAllocator, type Frame, type FrameConnection } from '@nullport/protocol'
import type { Logger } from 'pino'
import type { CircuitTable, Leg } from '../circuits/circuit-table.js'
import type { RouterWireCode } from '../errors.js'
import type { Binding } from '../terminators/terminators.js'

export type PeerKind = 'sdk' | 'router'
export type PeerState = 'auth' | 'hello' | 'ready' | 'closed'

let peerSeq = 0

export class Peer {
  readonly seq = ++peerSeq
  readonly conn: FrameConnection
  /** True when this router accepted the TLS connection (it then allocates even circuit ids). */
  readonly inbound: boolean
  readonly remote: string
  /** The router's logger (send failures, refusals). */
  private readonly log: Logger
  kind: PeerKind = 'sdk'
  entityId = ''
  name = ''
  fingerprint = ''
  state: PeerState = 'auth'
  readonly alloc: CircuitIdAllocator
  readonly binds = new Map<number, Binding>()
  /** Frames that arrived before authentication finished (bounded). */
  early: Frame[] = []
  /**
   * DATA/HALF_CLOSE frames written to this connection and not yet flushed, in write order (the
   * socket calls write callbacks in that order): each one's leg and size, released by `onFlushed`.
   */
  private unflushedLegs: Array<Leg<Peer> | undefined> = []
  private unflushedSizes: number[] = []
  private unflushedHead = 0
  timer: NodeJS.Timeout | null = null
  /** DIALs on invalid circuit ids so far (a repeated offender is disconnected). */
  idViolations = 0
  /** Peer sent GOAWAY: no new circuits toward it. */
  draining = false
  /** Links: ping bookkeeping. */
  pingTimer: NodeJS.Timeout | null = null
  pingSeq = 0
  pingSent = new Map<number, number>()
  latencyMs: number | null = null
  reportedLatencyMs: number | null = null
  missedPings = 0
  /** Outbound links: called once HELLO_ACK arrived. */
  onReady: (() => void) | null = null
  /** Outbound links: called when the link, once up, closes. */
  onDown: (() => void) | null = null

  /** Counts `size` bytes as queued for `leg` until the frame just written is flushed. */
  pushUnflushed(leg: Leg<Peer>, size: number): void {
    this.unflushedLegs.push(leg)
    this.unflushedSizes.push(size)
  }

  /** The write callback of every forwarded frame: releases the oldest unflushed one. */
  readonly onFlushed = (): void => {
    const i = this.unflushedHead
    const leg = this.unflushedLegs[i]
    if (leg === undefined) return
    leg.queued -= this.unflushedSizes[i]!
    this.unflushedLegs[i] = undefined
    this.unflushedHead = i + 1
    if (this.unflushedHead === this.unflushedLegs.length) {
      this.unflushedLegs.length = 0
      this.unflushedSizes.length = 0
      this.unflushedHead = 0
    } else if (this.unflushedHead >= 4096 && this.unflushedHead * 2 >= this.unflushedLegs.length) {
      this.unflushedLegs.splice(0, this.unflushedHead)
      this.unflushedSizes.splice(0, this.unflushedHead)
      this.unflushedHead = 0
    }
  }

  /** `table`: the router's circuit table (circuit ids in use on this connection are not allocated again). */
  constructor(conn: FrameConnection, inbound: boolean, table: CircuitTable<Peer>, log: Logger) {
    this.conn = conn
    this.inbound = inbound
    this.log = log
    const s = conn.socket as { remoteAddress?: string; remotePort?: number }
    this.remote = `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`
    this.alloc = new CircuitIdAllocator(!inbound, (id: number): boolean => table.has(this, id))
  }

  /** Sends a control frame; false (logged) when it cannot be encoded or the socket is backed up. */
  send(frame: Frame): boolean {
    try {
      return this.conn.send(frame)
    } catch (err) {
      this.log.error({ err, type: frame.type, ...this.describe() }, 'frame could not be encoded')
      return false
    }
  }

  /** Closes the connection with GOAWAY {code, message} (once), logging the refusal. */
  refuse(code: RouterWireCode, message: string): void {
    if (this.state === 'closed') return
    this.log.info({ code, ...this.describe(), reason: message }, 'connection refused')
    this.state = 'closed'
    if (this.timer) clearTimeout(this.timer)
    this.conn.close(code, message.slice(0, 1024))
  }

  /** For logs. */
  describe(): Record<string, unknown> {
    return { peer: this.seq, kind: this.kind, entityId: this.entityId, name: this.name, remote: this.remote }
  }
}
