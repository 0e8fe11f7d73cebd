import { Duplex } from 'node:stream'
import {
  E2E_OVERHEAD,
  type E2ESession,
  type Frame,
  FrameFlag,
  FrameType,
  INITIAL_WINDOW,
  MAX_DATA_PAYLOAD,
} from '@nullport/protocol'
import { SdkError } from './errors.js'
import { remoteError, wireCode, wireMessage } from './remote-error.js'

/** Who is at the other end of a circuit (verified from the e2e certificate when e2e is on). */
export interface PeerIdentity {
  id: string
  name: string
}

/**
 * What a circuit needs from the connection that carries it (a router connection, or an in-memory
 * pipe in tests). Frames written here go to the router in order.
 */
export interface CircuitLink {
  /** Writes a DATA or HALF_CLOSE frame; false when the connection's write buffer is full. */
  sendData(circuitId: number, flags: number, payload: Uint8Array, type?: number): boolean
  /**
   * Optional: writes one DATA frame whose payload is the concatenation of `parts` (e.g. the
   * `[ciphertext, tag]` of a sealed record) without joining them. Without it, records are joined.
   */
  sendDataParts?(circuitId: number, flags: number, parts: readonly Uint8Array[]): boolean
  /**
   * Optional: true when a DATA payload handed to `handleFrame` is only valid during that call
   * (a reused receive buffer): the circuit copies it before keeping it. Default: never.
   */
  isTransient?(payload: Uint8Array): boolean
  /** Writes a control frame (WINDOW_UPDATE, CLOSE). */
  send(frame: Frame): boolean
  /** True while the connection's write buffer is over its high-water mark. */
  readonly writableNeedDrain: boolean
  /** Calls `cb` once when the connection's write buffer has drained (or the connection closed). */
  onceDrain(cb: () => void): void
  /** The circuit is finished: forget its id. */
  release(circuitId: number): void
}

/** @internal Construction parameters of an OverlaySocket (made by dial() and listen()). */
export interface OverlaySocketInit {
  link: CircuitLink
  circuitId: number
  /** The e2e session, or null when the service does not require encryption. */
  e2e: E2ESession | null
  remoteIdentity: PeerIdentity
  localIdentity: PeerIdentity
  service: string
  circuitTag: string
  routerId: string
  allowHalfOpen?: boolean
  /** Per-circuit window in bytes of DATA payload (both directions). Default INITIAL_WINDOW. */
  window?: number
}

const EMPTY: Buffer[] = []
/** Readable/Writable high-water marks of an OverlaySocket. */
const STREAM_HWM = 64 * 1024

/**
 * One circuit through the overlay, as a Duplex that behaves like a `net.Socket`: `write()`
 * returns false when the circuit's send window (or the router connection) is full and 'drain'
 * follows; `end()` half-closes; `destroy()` closes the circuit. `remoteIdentity` names the
 * peer (verified from its e2e certificate when the service requires encryption). There are no
 * IP addresses on an overlay circuit, so `remoteAddress`/`remotePort` are `undefined`.
 *
 * Flow control is end to end: the peer may send at most one window of DATA payload ahead of what
 * this side's application has read; credit goes back as the application reads.
 *
 * @example
 * const socket = await ctx.dial('echo')
 * socket.on('data', (b) => console.log(socket.remoteIdentity.name, b.toString()))
 * socket.end('hello')
 */
export class OverlaySocket extends Duplex {
  /** The peer identity: the host for a dialer, the dialer for a host. */
  readonly remoteIdentity: PeerIdentity
  readonly localIdentity: PeerIdentity
  /** Service name this circuit belongs to. */
  readonly service: string
  /** Network-wide circuit tag (for logs and `nullport edge list circuits`). */
  readonly circuitTag: string
  /** Router this side is connected through. */
  readonly routerId: string
  /** True when DATA is end-to-end encrypted. */
  readonly encrypted: boolean
  /** Overlay circuits have no IP addresses. */
  readonly remoteAddress: undefined = undefined
  readonly remotePort: undefined = undefined
  readonly remoteFamily: undefined = undefined
  readonly localAddress: undefined = undefined
  readonly localPort: undefined = undefined
  /**
   * How the far side closed the circuit, once it did: `{}` for a plain CLOSE, `{ code, message }`
   * when the peer or a router gave a reason (e.g. ERR_PEER_GONE: the peer's connection went away
   * after it had ended its stream). `null` while the circuit is open or when this side closed it.
   * A close that lost nothing is 'end' + 'close' whatever the code; 'error' only when data was
   * lost or the circuit failed.
   */
  remoteClose: { code?: string; message?: string } | null = null
  /** A circuit exists before the socket is handed out: never "connecting". */
  readonly connecting = false
  readonly pending = false
  timeout: number | undefined = undefined

  private readonly link: CircuitLink
  private readonly circuitId: number
  private readonly e2e: E2ESession | null
  private readonly overhead: number
  private readonly maxPlain: number
  private readonly window: number
  private readonly creditThreshold: number
  private readonly flags: number

  // send side
  private sendWindow: number
  private wChunks: Buffer[] = EMPTY
  private wIndex = 0
  private wOffset = 0
  private wRemaining = 0
  private wCb: ((err?: Error | null) => void) | null = null
  private waitingDrain = false
  private finalCb: ((err?: Error | null) => void) | null = null
  private sentHalfClose = false

  // receive side
  private recvRemaining: number
  private creditPending = 0
  private rq: Array<Buffer | undefined> = []
  private rqHead = 0
  private readPaused = false
  private remoteEnded = false
  private pushedEof = false
  /** Plaintext bytes pushed to the Readable, and how many of them the application consumed. */
  private pushedBytes = 0
  private consumedBytes = 0
  /** Records in the Readable buffer (FIFO): plaintext size and window (wire) size. */
  private inBufPlain: number[] = []
  private inBufWire: number[] = []
  private inBufHead = 0

  // lifecycle
  private circuitOpen = true
  private bytesReadCount = 0
  private bytesWrittenCount = 0
  private activity = 0
  private idleTimer: NodeJS.Timeout | null = null

  /** @internal Made by `ctx.dial()` and `OverlayServer`; not constructed by applications. */
  constructor(init: OverlaySocketInit) {
    super({
      allowHalfOpen: init.allowHalfOpen ?? false,
      readableHighWaterMark: STREAM_HWM,
      writableHighWaterMark: STREAM_HWM,
      decodeStrings: true,
    })
    this.link = init.link
    this.circuitId = init.circuitId
    this.e2e = init.e2e
    this.encrypted = init.e2e !== null
    this.overhead = init.e2e ? E2E_OVERHEAD : 0
    this.flags = init.e2e ? FrameFlag.E2E : 0
    this.maxPlain = MAX_DATA_PAYLOAD - this.overhead
    this.window = init.window ?? INITIAL_WINDOW
    this.creditThreshold = Math.max(1, Math.floor(this.window / 4))
    this.sendWindow = this.window
    this.recvRemaining = this.window
    this.remoteIdentity = init.remoteIdentity
    this.localIdentity = init.localIdentity
    this.service = init.service
    this.circuitTag = init.circuitTag
    this.routerId = init.routerId
  }

  /** Plaintext bytes delivered to the application. */
  get bytesRead(): number {
    return this.bytesReadCount
  }
  /** Plaintext bytes sent into the circuit. */
  get bytesWritten(): number {
    return this.bytesWrittenCount
  }
  /** Like net.Socket: 'open', 'readOnly', 'writeOnly' or 'closed'. */
  get readyState(): 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.destroyed) return 'closed'
    const r = !this.readableEnded && !this.remoteEnded
    const w = !this.writableEnded
    if (r && w) return 'open'
    if (r) return 'readOnly'
    if (w) return 'writeOnly'
    return 'closed'
  }
  /** Bytes waiting to be sent (window or connection full). */
  get bufferSize(): number {
    return this.writableLength
  }
  /** Send credit currently available, in bytes of DATA payload (for diagnostics and tests). */
  get sendCredit(): number {
    return this.sendWindow
  }
  /** Bytes received and not yet handed to the application (for diagnostics and tests). */
  get receiveQueued(): number {
    let n = 0
    for (let i = this.rqHead; i < this.rq.length; i++) n += this.rq[i]!.length
    return n
  }

  /** An overlay circuit has no socket address; answers `{}` like an unconnected net.Socket. */
  address(): Record<string, never> {
    return {}
  }
  /** Circuits send each write at once (no Nagle delay): a no-op kept for net.Socket compatibility. */
  setNoDelay(_noDelay?: boolean): this {
    return this
  }
  /** Routers keep their connections alive: a no-op kept for net.Socket compatibility. */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this
  }
  ref(): this {
    return this
  }
  unref(): this {
    return this
  }

  /** Emits 'timeout' after `ms` without activity (like net.Socket); 0 disables. */
  setTimeout(ms: number, cb?: () => void): this {
    if (this.idleTimer) {
      clearInterval(this.idleTimer)
      this.idleTimer = null
    }
    if (cb) this.once('timeout', cb)
    if (!Number.isFinite(ms) || ms <= 0) {
      this.timeout = undefined
      return this
    }
    this.timeout = ms
    let seen = this.activity
    this.idleTimer = setInterval(() => {
      if (this.activity === seen) {
        if (this.idleTimer) clearInterval(this.idleTimer)
        this.idleTimer = null
        this.emit('timeout')
        return
      }
      seen = this.activity
    }, ms)
    this.idleTimer.unref()
    return this
  }

  // ---------------------------------------------------------------------------------------------
  // writing

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.wChunks = [chunk]
    this.wIndex = 0
    this.wOffset = 0
    this.wRemaining = chunk.length
    this.wCb = cb
    this.flushWrites()
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    cb: (err?: Error | null) => void,
  ): void {
    const list = new Array<Buffer>(chunks.length)
    let total = 0
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!.chunk
      list[i] = c
      total += c.length
    }
    this.wChunks = list
    this.wIndex = 0
    this.wOffset = 0
    this.wRemaining = total
    this.wCb = cb
    this.flushWrites()
  }

  private readonly onLinkDrain = (): void => {
    this.waitingDrain = false
    this.flushWrites()
  }

  /** Sends as much of the pending write as window and connection allow; completes it when all is sent. */
  private flushWrites(): void {
    while (this.wCb !== null) {
      if (!this.circuitOpen) {
        const cb = this.wCb
        this.wCb = null
        this.wChunks = EMPTY
        cb(new SdkError('ERR_CIRCUIT_CLOSED', 'the circuit is closed: the peer or a router closed it'))
        return
      }
      if (this.wRemaining === 0) {
        const cb = this.wCb
        this.wCb = null
        this.wChunks = EMPTY
        cb()
        return
      }
      if (this.link.writableNeedDrain) {
        if (!this.waitingDrain) {
          this.waitingDrain = true
          this.link.onceDrain(this.onLinkDrain)
        }
        return
      }
      const room = this.sendWindow - this.overhead
      if (room <= 0) return // wait for WINDOW_UPDATE
      const max = Math.min(room, this.maxPlain)
      const chunk = this.wChunks[this.wIndex]!
      const avail = chunk.length - this.wOffset
      let rec: Buffer
      let owned = false
      if (avail >= max || avail === this.wRemaining) {
        const n = Math.min(avail, max)
        rec =
          this.wOffset === 0 && n === chunk.length ? chunk : chunk.subarray(this.wOffset, this.wOffset + n)
        this.wOffset += n
        if (this.wOffset === chunk.length) {
          this.wIndex++
          this.wOffset = 0
        }
      } else {
        // Coalesce several small writes (cork()/_writev) into one record.
        const n = Math.min(this.wRemaining, max)
        rec = Buffer.allocUnsafe(n)
        owned = true
        let pos = 0
        while (pos < n) {
          const c = this.wChunks[this.wIndex]!
          const take = Math.min(c.length - this.wOffset, n - pos)
          c.copy(rec, pos, this.wOffset, this.wOffset + take)
          pos += take
          this.wOffset += take
          if (this.wOffset === c.length) {
            this.wIndex++
            this.wOffset = 0
          }
        }
      }
      this.wRemaining -= rec.length
      this.sendRecord(rec, owned)
    }
  }

  /**
   * Seals (e2e) and sends one record. The connection may keep a reference to the payload until
   * the TLS socket has taken it, while the write callback is called now: a plaintext payload
   * that is the application's buffer (`owned` false) is copied so the application may reuse it.
   */
  private sendRecord(rec: Buffer, owned: boolean): void {
    if (rec.length === 0) return
    let payload: Uint8Array
    if (this.e2e) {
      try {
        const sealer = this.e2e.sealer
        if (this.link.sendDataParts !== undefined && sealer.sealParts !== undefined) {
          // [ciphertext, tag] go out as they are: no copy into one record buffer
          const parts = sealer.sealParts(rec)
          const len = parts[0].byteLength + parts[1].byteLength
          this.sendWindow -= len
          this.bytesWrittenCount += rec.length
          this.activity++
          this.link.sendDataParts(this.circuitId, this.flags, parts)
          return
        }
        payload = sealer.seal(rec)
      } catch (err) {
        this.destroy(
          new SdkError(
            'ERR_E2E_HANDSHAKE',
            `sealing a record failed: ${(err as Error).message}`,
            {},
            { cause: err },
          ),
        )
        return
      }
    } else {
      payload = owned ? rec : Buffer.from(rec)
    }
    this.sendWindow -= payload.byteLength
    this.bytesWrittenCount += rec.length
    this.activity++
    this.link.sendData(this.circuitId, this.flags, payload)
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.circuitOpen) {
      cb()
      return
    }
    this.finalCb = cb
    this.sendHalfClose()
  }

  private sendHalfClose(): void {
    if (this.link.writableNeedDrain) {
      if (!this.waitingDrain) {
        this.waitingDrain = true
        this.link.onceDrain(() => {
          this.waitingDrain = false
          if (this.finalCb && this.circuitOpen) this.sendHalfClose()
        })
      }
      return
    }
    let end: Uint8Array = Buffer.alloc(0)
    if (this.e2e) {
      try {
        end = this.e2e.sealer.sealEnd()
      } catch (err) {
        this.destroy(
          new SdkError(
            'ERR_E2E_HANDSHAKE',
            `sealing the end of stream failed: ${(err as Error).message}`,
            {},
            { cause: err },
          ),
        )
        return
      }
    }
    this.sentHalfClose = true
    this.link.sendData(this.circuitId, this.flags, end, FrameType.HALF_CLOSE)
    const cb = this.finalCb
    this.finalCb = null
    this.maybeComplete()
    cb?.()
  }

  // ---------------------------------------------------------------------------------------------
  // reading

  override _read(): void {
    this.readPaused = false
    this.drainQueue()
    // read() calls _read before it takes the bytes out of the buffer: count them once it has.
    if (!this.creditCheckScheduled) {
      this.creditCheckScheduled = true
      process.nextTick(this.deferredCredit)
    }
  }

  private creditCheckScheduled = false
  private readonly deferredCredit = (): void => {
    this.creditCheckScheduled = false
    this.creditConsumed()
    this.maybeCredit()
  }

  /** Pushes one record's plaintext to the application; false when the Readable buffer is full. */
  private pushRecord(plain: Buffer, wire: number): boolean {
    this.bytesReadCount += plain.length
    this.pushedBytes += plain.length
    this.inBufPlain.push(plain.length)
    this.inBufWire.push(wire)
    return this.push(plain)
  }

  /**
   * Returns credit for the records the application has consumed: those whose bytes have left
   * the Readable buffer. So the peer is never more than one window ahead of the application.
   */
  private creditConsumed(): void {
    const consumed = this.pushedBytes - this.readableLength
    let head = this.inBufHead
    const plain = this.inBufPlain
    while (head < plain.length && this.consumedBytes + plain[head]! <= consumed) {
      this.consumedBytes += plain[head]!
      this.creditPending += this.inBufWire[head]!
      head++
    }
    if (head === plain.length) {
      plain.length = 0
      this.inBufWire.length = 0
      head = 0
    } else if (head > 4096 && head * 2 > plain.length) {
      this.inBufPlain = plain.slice(head)
      this.inBufWire = this.inBufWire.slice(head)
      head = 0
    }
    this.inBufHead = head
  }

  private drainQueue(): void {
    this.creditConsumed()
    while (this.rqHead < this.rq.length) {
      const b = this.rq[this.rqHead]!
      this.rq[this.rqHead++] = undefined
      if (!this.pushRecord(b, b.length + this.overhead)) {
        this.readPaused = true
        break
      }
    }
    if (this.rqHead === this.rq.length) {
      this.rq.length = 0
      this.rqHead = 0
      if (this.remoteEnded && !this.pushedEof) {
        this.pushedEof = true
        this.push(null)
      }
    } else if (this.rqHead > 1024 && this.rqHead * 2 > this.rq.length) {
      this.rq = this.rq.slice(this.rqHead)
      this.rqHead = 0
    }
    this.maybeCredit()
  }

  private maybeCredit(): void {
    if (this.creditPending >= this.creditThreshold && this.circuitOpen && !this.remoteEnded) {
      const credit = this.creditPending
      this.creditPending = 0
      this.recvRemaining += credit
      this.link.send({
        type: FrameType.WINDOW_UPDATE,
        circuitId: this.circuitId,
        flags: 0,
        payload: { credit },
      })
    }
  }

  /** @internal A frame for this circuit arrived (DATA, HALF_CLOSE, CLOSE, WINDOW_UPDATE). */
  handleFrame(f: Frame): void {
    if (!this.circuitOpen) return
    switch (f.type) {
      case FrameType.DATA:
        this.onData(f.payload, f.flags)
        return
      case FrameType.WINDOW_UPDATE: {
        this.sendWindow += f.payload.credit
        if (this.sendWindow > this.window) {
          this.abort(
            new SdkError(
              'ERR_FLOW_CONTROL',
              `the peer granted more credit than it was owed (window ${this.window} bytes)`,
              {
                circuitTag: this.circuitTag,
              },
            ),
          )
          return
        }
        this.flushWrites()
        return
      }
      case FrameType.HALF_CLOSE:
        this.onHalfClose(f.payload, f.flags)
        return
      case FrameType.CLOSE:
        this.onClose(f.payload.code, f.payload.message)
        return
      default:
        this.abort(new SdkError('ERR_PROTOCOL', `unexpected frame type ${f.type} on an open circuit`))
    }
  }

  private onData(payload: Uint8Array, flags: number): void {
    if (this.remoteEnded) {
      this.abort(new SdkError('ERR_PROTOCOL', 'the peer sent DATA after ending its stream'))
      return
    }
    if ((flags & FrameFlag.E2E) !== this.flags) {
      this.abort(
        this.e2e
          ? new SdkError(
              'ERR_E2E_DECRYPT_FAILED',
              'received a DATA frame that is not end-to-end encrypted on an encrypted circuit',
            )
          : new SdkError(
              'ERR_PROTOCOL',
              'received an encrypted DATA frame on a circuit without end-to-end encryption',
            ),
      )
      return
    }
    const len = payload.byteLength
    if (len > this.recvRemaining) {
      this.abort(
        new SdkError(
          'ERR_FLOW_CONTROL',
          `the peer sent ${len} bytes with only ${this.recvRemaining} bytes of window left`,
          {
            circuitTag: this.circuitTag,
          },
        ),
      )
      return
    }
    this.recvRemaining -= len
    this.activity++
    let plain: Buffer
    if (this.e2e) {
      try {
        plain = this.e2e.opener.open(payload)
      } catch (err) {
        this.abort(
          e2eError(
            err,
            'ERR_E2E_DECRYPT_FAILED',
            'a DATA record failed to decrypt (altered, reordered or replayed)',
          ),
        )
        return
      }
    } else if (this.link.isTransient?.(payload)) {
      plain = Buffer.from(payload) // a reused receive buffer: keep a copy
    } else {
      plain = Buffer.isBuffer(payload)
        ? payload
        : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    }
    if (plain.length === 0) {
      this.creditPending += len
      this.maybeCredit()
      return
    }
    if (!this.readPaused && this.rqHead === this.rq.length) {
      if (!this.pushRecord(plain, len)) this.readPaused = true
      this.creditConsumed()
      this.maybeCredit()
    } else {
      this.rq.push(plain)
    }
  }

  private onHalfClose(payload: Uint8Array, flags: number): void {
    if (this.remoteEnded) {
      this.abort(new SdkError('ERR_PROTOCOL', 'the peer ended its stream twice'))
      return
    }
    if (this.e2e) {
      if ((flags & FrameFlag.E2E) === 0) {
        this.abort(
          new SdkError(
            'ERR_E2E_TRUNCATED',
            'the end of stream is not authenticated: the stream may be truncated',
          ),
        )
        return
      }
      try {
        this.e2e.opener.openEnd(payload)
      } catch (err) {
        this.abort(e2eError(err, 'ERR_E2E_TRUNCATED', 'the end-of-stream record failed to verify'))
        return
      }
    }
    this.remoteEnded = true
    if (this.rqHead === this.rq.length && !this.pushedEof) {
      this.pushedEof = true
      this.push(null)
    }
    this.maybeComplete()
  }

  private onClose(code: string | undefined, message: string | undefined): void {
    // The peer (or a router) closed the circuit: nothing more is sent on it.
    this.releaseCircuit(false)
    this.remoteClose = code === undefined ? {} : { code, ...(message !== undefined ? { message } : {}) }
    if (this.remoteEnded && this.wCb === null) {
      // The peer had ended its stream (all of its data arrived, its end authenticated with e2e)
      // and nothing of ours waits to be sent: nothing was lost, whatever the code (a dialer that
      // destroy()s and exits reaches the host as HALF_CLOSE then CLOSE ERR_PEER_GONE). As TCP
      // reports a FIN: 'end' once the data is read, then 'close'; `remoteClose` tells how.
      return
    }
    if (code !== undefined) {
      this.destroy(remoteError(code, message, 'ERR_CIRCUIT_CLOSED', { circuitTag: this.circuitTag }))
      return
    }
    if (!this.remoteEnded) {
      this.destroy(
        new SdkError(
          'ERR_CIRCUIT_RESET',
          'the peer closed the circuit before ending its stream (it called destroy())',
          {
            circuitTag: this.circuitTag,
          },
        ),
      )
      return
    }
    // Graceful: the peer ended its stream before; writes still pending cannot be delivered.
    if (this.wCb) this.flushWrites()
  }

  /** Both directions ended: the circuit is done. */
  private maybeComplete(): void {
    if (this.sentHalfClose && this.remoteEnded && this.circuitOpen) this.releaseCircuit(true)
  }

  private releaseCircuit(sendClose: boolean, err?: Error): void {
    if (!this.circuitOpen) return
    this.circuitOpen = false
    if (sendClose) {
      const payload = err ? { code: wireCode(err, 'ERR_CIRCUIT_CLOSED'), message: wireMessage(err) } : {}
      try {
        this.link.send({ type: FrameType.CLOSE, circuitId: this.circuitId, flags: 0, payload })
      } catch {
        // the link is gone: nothing to tell
      }
    }
    this.link.release(this.circuitId)
  }

  /** Closes the circuit with an error on both ends (CLOSE {code}). */
  private abort(err: SdkError): void {
    this.destroy(err)
  }

  /** @internal The router connection is gone: fail without sending anything. */
  linkLost(err: Error | null): void {
    this.releaseCircuit(false)
    this.destroy(err ?? undefined)
  }

  /**
   * destroy() without an error is a close, like a TCP FIN: what was sent so far ends with an
   * (authenticated) HALF_CLOSE, then CLOSE; writes still waiting for credit are dropped and their
   * callbacks fail. destroy(err) aborts: CLOSE {code} and the peer sees the error.
   */
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!err && this.circuitOpen && !this.sentHalfClose) {
      try {
        const end = this.e2e ? this.e2e.sealer.sealEnd() : Buffer.alloc(0)
        this.sentHalfClose = true
        this.link.sendData(this.circuitId, this.flags, end, FrameType.HALF_CLOSE)
      } catch {
        // cannot seal: the CLOSE alone tells the peer
      }
    }
    this.releaseCircuit(true, err ?? undefined)
    if (this.idleTimer) {
      clearInterval(this.idleTimer)
      this.idleTimer = null
    }
    const w = this.wCb
    this.wCb = null
    this.wChunks = EMPTY
    const f = this.finalCb
    this.finalCb = null
    this.rq = []
    this.rqHead = 0
    if (w || f) {
      // Only a pending write or end() needs an error object (a normal close builds no stack).
      const failure = err ?? new SdkError('ERR_SOCKET_DESTROYED', 'the socket was destroyed')
      if (w) w(failure)
      if (f) f(failure)
    }
    cb(err)
  }
}

function e2eError(
  err: unknown,
  fallback: 'ERR_E2E_DECRYPT_FAILED' | 'ERR_E2E_TRUNCATED',
  message: string,
): SdkError {
  const c = (err as { code?: unknown } | null)?.code
  const code =
    c === 'ERR_E2E_DECRYPT_FAILED' || c === 'ERR_E2E_TRUNCATED' || c === 'ERR_E2E_VERIFY_FAILED'
      ? c
      : fallback
  return new SdkError(code, `${message}: the circuit is closed`, {}, { cause: err })
}
