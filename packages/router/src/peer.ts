/**
 * One TLS connection of the router: an SDK (identity certificate) or another router (link), in
 * either direction. Holds the verified identity, the circuit id allocator of this side, the
 * binds of an SDK, and the write-backpressure state used to bound queued bytes per circuit.
 */
import { createHash, type X509Certificate } from 'node:crypto'
import { CircuitIdAllocator, type Frame, type FrameConnection } from '@nullport/protocol'
import type { Leg } from './circuit-table.js'

export type PeerKind = 'sdk' | 'router'
export type PeerState = 'auth' | 'hello' | 'ready' | 'closed'

/** One BIND of an SDK connection. */
export interface Binding {
  peer: Peer
  bindId: number
  serviceId: string
  serviceName: string
  cost: number
  precedence: 'default' | 'required' | 'failed'
  maxConnections: number
  /** Set once the terminator exists. */
  terminator: LocalTerminator | null
  /** Circuits currently open through this binding. */
  circuits: number
  removed: boolean
}

/** A terminator hosted on this router; one or more bindings (connections of the same identity) serve it. */
export interface LocalTerminator {
  id: string
  serviceId: string
  identityId: string
  cost: number
  precedence: 'default' | 'required' | 'failed'
  bindings: Binding[]
  /** Round-robin cursor over bindings. */
  next: number
  circuits: number
}

let peerSeq = 0

export class Peer {
  readonly seq = ++peerSeq
  readonly conn: FrameConnection
  /** True when this router accepted the TLS connection (it then allocates even circuit ids). */
  readonly inbound: boolean
  readonly remote: string
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

  constructor(conn: FrameConnection, inbound: boolean, inUse: (id: number) => boolean) {
    this.conn = conn
    this.inbound = inbound
    const s = conn.socket as { remoteAddress?: string; remotePort?: number }
    this.remote = `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`
    this.alloc = new CircuitIdAllocator(!inbound, inUse)
  }

  /** For logs. */
  describe(): Record<string, unknown> {
    return { peer: this.seq, kind: this.kind, entityId: this.entityId, name: this.name, remote: this.remote }
  }
}

/** Lower-case hex SHA-256 of a certificate's DER. */
export function certFingerprint(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex')
}

/** URI SANs of a certificate, from Node's `subjectAltName` text (`URI:spiffe://..., IP Address:...`). */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return []
  const out: string[] = []
  for (const part of subjectAltName.split(/,\s*/)) {
    if (!part.startsWith('URI:')) continue
    let v = part.slice(4)
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1)
    out.push(v)
  }
  return out
}

/** The (kind, id) of the first `spiffe://<trustDomain>/<kind>/<id>` URI SAN, or null. */
export function spiffeOf(
  subjectAltName: string | undefined,
  trustDomain: string,
): { kind: string; id: string } | null {
  const prefix = `spiffe://${trustDomain}/`
  for (const uri of uriSans(subjectAltName)) {
    if (!uri.startsWith(prefix)) continue
    const rest = uri.slice(prefix.length).split('/')
    if (rest.length !== 2 || !rest[0] || !rest[1]) continue
    return { kind: rest[0], id: decodeURIComponent(rest[1]) }
  }
  return null
}
