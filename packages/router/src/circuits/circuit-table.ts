/**
 * The circuit table of one router: each circuit has two legs, (connection, circuit id) toward the
 * dialer and toward the host; a frame arriving on one leg leaves on the other with the id
 * rewritten. Each leg also keeps the flow-control account of its sender: the bytes the peer on
 * that leg may still send (its window), reduced by DATA and raised by the WINDOW_UPDATE credit
 * the far end returns, so a sender that exceeds its window is caught at the first router.
 */
import { INITIAL_WINDOW } from '@nullport/protocol'

export type CircuitState = 'dialing' | 'open' | 'closed'

export class Leg<P> {
  readonly peer: P
  readonly id: number
  readonly circuit: Circuit<P>
  /** DATA bytes the peer on this leg may still send before it exceeds its window. */
  inWindow: number
  /** Bytes written toward this leg's peer while its socket waited for 'drain'. */
  queued = 0

  constructor(peer: P, id: number, circuit: Circuit<P>, window: number) {
    this.peer = peer
    this.id = id
    this.circuit = circuit
    this.inWindow = window
  }

  /** The other leg, or null while the circuit is still being dialed out. */
  other(): Leg<P> | null {
    const c = this.circuit
    return c.a === this ? c.b : c.a
  }

  /** Accounts `n` DATA bytes sent by this leg's peer; false when that exceeds its window. */
  consume(n: number): boolean {
    this.inWindow -= n
    return this.inWindow >= 0
  }
}

export interface CircuitMeta {
  /** 32 lower-case hex characters, assigned by the first router. */
  tag: string
  serviceId: string
  serviceName: string
  dialerId: string
  dialerName: string
  terminatorId: string
  terminatorRouterId: string
  hostIdentityId: string
}

export class Circuit<P> {
  readonly meta: CircuitMeta
  /** Leg toward the dialer. */
  readonly a: Leg<P>
  /** Leg toward the host (null until dialed out). */
  b: Leg<P> | null = null
  state: CircuitState = 'dialing'
  readonly createdAt = Date.now()
  timer: NodeJS.Timeout | null = null
  bytesUp = 0
  bytesDown = 0

  constructor(meta: CircuitMeta, peer: P, id: number, window: number) {
    this.meta = meta
    this.a = new Leg(peer, id, this, window)
  }
}

export class CircuitTable<P> {
  private readonly byPeer = new Map<P, Map<number, Leg<P>>>()
  private readonly circuits = new Set<Circuit<P>>()
  /** Circuit tags in the table (count), to refuse a DIAL that comes back in a loop. */
  private readonly tags = new Map<string, number>()
  readonly window: number

  constructor(opts: { window?: number } = {}) {
    this.window = opts.window ?? INITIAL_WINDOW
  }

  get size(): number {
    return this.circuits.size
  }

  private legsMap(peer: P): Map<number, Leg<P>> {
    let m = this.byPeer.get(peer)
    if (!m) {
      m = new Map()
      this.byPeer.set(peer, m)
    }
    return m
  }

  /** Opens a circuit with its dialer-side leg. Throws if (peer, id) is taken. */
  open(meta: CircuitMeta, peer: P, id: number): Circuit<P> {
    const m = this.legsMap(peer)
    if (m.has(id)) throw new Error(`circuit id ${id} is already in use on this connection`)
    const c = new Circuit(meta, peer, id, this.window)
    m.set(id, c.a)
    this.circuits.add(c)
    this.tags.set(meta.tag, (this.tags.get(meta.tag) ?? 0) + 1)
    return c
  }

  /** Adds the host-side leg. */
  attach(c: Circuit<P>, peer: P, id: number): Leg<P> {
    const m = this.legsMap(peer)
    if (m.has(id)) throw new Error(`circuit id ${id} is already in use on this connection`)
    if (c.b) throw new Error('circuit already has a host-side leg')
    const leg = new Leg(peer, id, c, this.window)
    c.b = leg
    m.set(id, leg)
    return leg
  }

  lookup(peer: P, id: number): Leg<P> | undefined {
    return this.byPeer.get(peer)?.get(id)
  }

  has(peer: P, id: number): boolean {
    return this.byPeer.get(peer)?.has(id) ?? false
  }

  /** True while a circuit with this tag passes through the table. */
  hasTag(tag: string): boolean {
    return this.tags.has(tag)
  }

  /** Circuits with a leg on `peer`. */
  circuitsOf(peer: P): Circuit<P>[] {
    const m = this.byPeer.get(peer)
    if (!m) return []
    return [...new Set([...m.values()].map((l) => l.circuit))]
  }

  countOn(peer: P): number {
    return this.byPeer.get(peer)?.size ?? 0
  }

  all(): IterableIterator<Circuit<P>> {
    return this.circuits.values()
  }

  /** Removes a circuit and both legs. Idempotent. */
  remove(c: Circuit<P>): void {
    if (!this.circuits.delete(c)) return
    c.state = 'closed'
    const n = (this.tags.get(c.meta.tag) ?? 1) - 1
    if (n <= 0) this.tags.delete(c.meta.tag)
    else this.tags.set(c.meta.tag, n)
    if (c.timer) {
      clearTimeout(c.timer)
      c.timer = null
    }
    for (const leg of [c.a, c.b]) {
      if (!leg) continue
      const m = this.byPeer.get(leg.peer)
      if (m?.get(leg.id) === leg) {
        m.delete(leg.id)
        if (m.size === 0) this.byPeer.delete(leg.peer)
      }
    }
  }

  /** Forgets a peer entirely (after its circuits were removed). */
  dropPeer(peer: P): void {
    this.byPeer.delete(peer)
  }
}
