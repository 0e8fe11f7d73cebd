/**
 * An in-memory pair of circuit links for OverlaySocket unit tests: frames one socket sends reach
 * the other asynchronously and in order (like a router relaying them), DATA payloads copied as a
 * real connection would. `tap` sees (and may change or drop) every frame in flight; `congested`
 * simulates a full router connection (writableNeedDrain) until `drain()`.
 */
import { E2E_OVERHEAD, type E2ESession, type Frame, FrameType } from '@nullport/protocol'
import { type CircuitLink, OverlaySocket } from '../../src/overlay-socket.js'

export class PipeLink implements CircuitLink {
  peer: PipeLink | null = null
  /** The socket that owns this link (receives what the peer link sends). */
  socket: OverlaySocket | null = null
  congested = false
  released = false
  /** Every frame this side sent. */
  readonly sent: Frame[] = []
  tap: ((f: Frame) => Frame | null) | null = null
  private waiters: Array<() => void> = []
  private queue: Frame[] = []
  private scheduled = false

  sendData(circuitId: number, flags: number, payload: Uint8Array, type: number = FrameType.DATA): boolean {
    this.deliver({ type, circuitId, flags, payload: Buffer.from(payload) } as Frame)
    return !this.congested
  }
  send(frame: Frame): boolean {
    this.deliver(frame)
    return !this.congested
  }
  get writableNeedDrain(): boolean {
    return this.congested
  }
  onceDrain(cb: () => void): void {
    this.waiters.push(cb)
  }
  release(): void {
    this.released = true
  }
  /** Ends the simulated congestion and wakes the waiting circuits. */
  drain(): void {
    this.congested = false
    const w = this.waiters
    this.waiters = []
    for (const cb of w) cb()
  }

  private deliver(f0: Frame): void {
    this.sent.push(f0)
    const f = this.tap ? this.tap(f0) : f0
    if (f === null) return
    const peer = this.peer!
    peer.queue.push(f)
    if (!peer.scheduled) {
      peer.scheduled = true
      setImmediate(() => peer.flush())
    }
  }

  private flush(): void {
    this.scheduled = false
    const q = this.queue
    this.queue = []
    for (const f of q) this.socket?.handleFrame(f)
  }
}

/** Two OverlaySockets connected through a PipeLink pair. */
export function socketPair(
  o: { window?: number; e2e?: [E2ESession, E2ESession] | null; allowHalfOpen?: boolean } = {},
): { a: OverlaySocket; b: OverlaySocket; la: PipeLink; lb: PipeLink } {
  const la = new PipeLink()
  const lb = new PipeLink()
  la.peer = lb
  lb.peer = la
  const common = {
    service: 'svc',
    circuitTag: '0123456789abcdef0123456789abcdef',
    routerId: 'r1',
    allowHalfOpen: o.allowHalfOpen ?? false,
    ...(o.window ? { window: o.window } : {}),
  }
  const a = new OverlaySocket({
    ...common,
    link: la,
    circuitId: 1,
    e2e: o.e2e?.[0] ?? null,
    localIdentity: { id: 'ia', name: 'alice' },
    remoteIdentity: { id: 'ib', name: 'bob' },
  })
  const b = new OverlaySocket({
    ...common,
    link: lb,
    circuitId: 1,
    e2e: o.e2e?.[1] ?? null,
    localIdentity: { id: 'ib', name: 'bob' },
    remoteIdentity: { id: 'ia', name: 'alice' },
  })
  la.socket = a
  lb.socket = b
  return { a, b, la, lb }
}

/**
 * A stand-in e2e session for unit tests (NOT cryptography): XOR with a key byte and a 16-byte
 * trailer holding a counter and a checksum, so that altered or reordered records fail to open
 * exactly like real ones do.
 */
export function fakeE2EPair(): [E2ESession, E2ESession] {
  const mk = (): E2ESession['sealer'] & E2ESession['opener'] & { sn: number; rn: number } => {
    const s = {
      sn: 0,
      rn: 0,
      seal(p: Uint8Array): Buffer {
        const out = Buffer.allocUnsafe(p.byteLength + E2E_OVERHEAD)
        let sum = 0
        for (let i = 0; i < p.byteLength; i++) {
          out[i] = p[i]! ^ 0x5a
          sum = (sum + p[i]!) >>> 0
        }
        out.fill(0, p.byteLength)
        out.writeUInt32BE(s.sn++, p.byteLength)
        out.writeUInt32BE(sum, p.byteLength + 4)
        return out
      },
      sealEnd(): Buffer {
        const out = Buffer.alloc(E2E_OVERHEAD)
        out.writeUInt32BE(s.sn++, 0)
        out.write('END', 8)
        return out
      },
      open(r: Uint8Array): Buffer {
        const n = r.byteLength - E2E_OVERHEAD
        if (n < 0) throw Object.assign(new Error('short record'), { code: 'ERR_E2E_DECRYPT_FAILED' })
        const b = Buffer.from(r.buffer, r.byteOffset, r.byteLength)
        if (b.readUInt32BE(n) !== s.rn)
          throw Object.assign(new Error('counter'), { code: 'ERR_E2E_DECRYPT_FAILED' })
        const out = Buffer.allocUnsafe(n)
        let sum = 0
        for (let i = 0; i < n; i++) {
          out[i] = b[i]! ^ 0x5a
          sum = (sum + out[i]!) >>> 0
        }
        if (b.readUInt32BE(n + 4) !== sum)
          throw Object.assign(new Error('checksum'), { code: 'ERR_E2E_DECRYPT_FAILED' })
        s.rn++
        return out
      },
      openEnd(r: Uint8Array): void {
        const b = Buffer.from(r.buffer, r.byteOffset, r.byteLength)
        if (
          b.length !== E2E_OVERHEAD ||
          b.readUInt32BE(0) !== s.rn ||
          b.toString('latin1', 8, 11) !== 'END'
        ) {
          throw Object.assign(new Error('bad end'), { code: 'ERR_E2E_TRUNCATED' })
        }
      },
    }
    return s
  }
  const ab = mk()
  const ba = mk()
  const peerA = { spiffeId: 'spiffe://t/identity/ia', identityId: 'ia', commonName: 'alice' }
  const peerB = { spiffeId: 'spiffe://t/identity/ib', identityId: 'ib', commonName: 'bob' }
  // a seals with ab, b opens with ab; b seals with ba, a opens with ba.
  return [
    { peer: peerB, sealer: ab, opener: ba },
    { peer: peerA, sealer: ba, opener: ab },
  ]
}
