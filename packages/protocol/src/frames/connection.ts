import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { ProtocolError } from '../errors.js'
import {
  encodeDataFrame,
  encodeFrame,
  encodeHeader,
  FrameDecoder,
  frameBytesOf,
  rewriteHeader,
} from './codec.js'
import { type Frame, FrameType } from './types.js'

/** A GOAWAY code as the wire accepts it (1..64 of A-Z a-z 0-9 _ . : -): never makes close() throw. */
function wireCode(code: string): string {
  const c = String(code)
    .replace(/[^A-Za-z0-9_.:-]/g, '_')
    .slice(0, 64)
  return c.length > 0 ? c : 'ERR_CLOSED'
}

/** Nothing was written: the flush callback still runs once (on a later tick), and the result is false. */
function notWritten(onFlushed: (() => void) | undefined): false {
  if (onFlushed) process.nextTick(onFlushed)
  return false
}

/** sendData copies payloads smaller than this into one buffer; larger ones go out as two corked writes. */
export const SEND_DATA_COPY_BELOW = 1024

export interface FrameConnectionOptions {
  /** Largest payload accepted from the peer. Default MAX_PAYLOAD (128 KiB). */
  maxPayload?: number
  /**
   * After a protocol error (or `close()`), how long the GOAWAY may take to flush before the
   * socket is destroyed, in ms. Default 2000.
   */
  flushTimeoutMs?: number
  /**
   * Reuse one scratch buffer for DATA payloads assembled from several socket chunks (see
   * FrameDecoder `reuseAssembly`): such a payload is valid only during the 'frame' event that
   * delivers it; `isTransient(payload)` tells. Default false.
   */
  reuseAssembly?: boolean
}

/**
 * A framed connection over a TLS socket (or any Duplex): decodes incoming frames and emits them
 * as 'frame'; `send()` encodes and writes, returning the socket's write() result so callers can
 * honour backpressure ('drain' is re-emitted). A decode error emits 'error' with the ProtocolError,
 * sends GOAWAY and destroys the socket. Emits 'close' once.
 *
 * Events: 'frame' (Frame), 'drain', 'error' (Error), 'close' ().
 *
 * Reading starts at construction: attach the 'frame', 'error' and 'close' listeners in the same
 * tick (frames arriving before a 'frame' listener exists are lost). `pause()`/`resume()` give
 * read-side backpressure.
 *
 * 'error' is emitted at most once (the first of: a decode error, a socket error); as with any
 * EventEmitter, listen to it. After a decode error, 'close', `close()` or `destroy()`, no more
 * frames are emitted and `send()` writes nothing and returns false.
 *
 * @example
 * const conn = new FrameConnection(tlsSocket)
 * conn.on('frame', (f) => { if (f.type === FrameType.PING) conn.send({ ...f, type: FrameType.PONG }) })
 * conn.on('error', (err) => log.warn({ err }, 'connection failed'))
 * conn.on('close', () => cleanup())
 * if (!conn.sendData(circuitId, 0, chunk)) await once(conn, 'drain')
 */
export class FrameConnection extends EventEmitter {
  readonly socket: Duplex
  private readonly decoder: FrameDecoder
  private readonly flushTimeoutMs: number
  /** No more frames are read or written. */
  private stopped = false
  private errorEmitted = false
  private closeEmitted = false
  private flushTimer: NodeJS.Timeout | null = null

  constructor(socket: Duplex, opts: FrameConnectionOptions = {}) {
    super()
    this.socket = socket
    this.decoder = new FrameDecoder({
      ...(opts.maxPayload === undefined ? {} : { maxPayload: opts.maxPayload }),
      reuseAssembly: opts.reuseAssembly === true,
    })
    const flush = opts.flushTimeoutMs ?? 2000
    if (!Number.isInteger(flush) || flush < 0) {
      throw new RangeError(`FrameConnection flushTimeoutMs must be a non-negative integer, got ${flush}`)
    }
    this.flushTimeoutMs = flush
    socket.on('data', this.onData)
    socket.on('drain', this.onDrain)
    socket.on('error', this.onError)
    socket.on('close', this.onClose)
    if (socket.destroyed) queueMicrotask(this.onClose)
  }

  private readonly onData = (chunk: Buffer | string): void => {
    if (this.stopped) return
    const frames: Frame[] = []
    let failure: unknown = null
    try {
      this.decoder.decode(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk, frames)
    } catch (err) {
      failure = err
    }
    for (const f of frames) {
      if (this.stopped) return
      this.emit('frame', f)
    }
    if (failure !== null) this.protocolFailure(failure)
  }

  private readonly onDrain = (): void => {
    if (!this.stopped) this.emit('drain')
  }

  private readonly onError = (err: Error): void => {
    this.emitErrorOnce(err)
  }

  private readonly onClose = (): void => {
    this.stopped = true
    if (this.flushTimer) {
      clearTimeout(this.flushTimer)
      this.flushTimer = null
    }
    if (this.closeEmitted) return
    this.closeEmitted = true
    this.emit('close')
  }

  private emitErrorOnce(err: Error): void {
    if (this.errorEmitted) return
    this.errorEmitted = true
    this.emit('error', err)
  }

  /** Ends the socket after flushing, destroying it if the flush takes longer than the timeout. */
  private endAndFlush(last?: Buffer): void {
    const s = this.socket
    this.socket.removeListener('data', this.onData)
    if (!s.destroyed && !s.writableEnded) {
      if (last) s.end(last)
      else s.end()
    }
    // Keep reading (and discarding) so the peer's close reaches us and 'finish' can happen.
    s.resume()
    if (!s.destroyed && this.flushTimer === null) {
      this.flushTimer = setTimeout(() => s.destroy(), this.flushTimeoutMs)
      this.flushTimer.unref()
      s.once('finish', () => {
        // Our side is flushed; give the peer a moment to read, then tear down.
        setImmediate(() => s.destroy())
      })
    }
  }

  private protocolFailure(err: unknown): void {
    if (this.stopped) return
    this.stopped = true
    const e =
      err instanceof ProtocolError
        ? err
        : new ProtocolError(
            'ERR_FRAME_MALFORMED',
            `frame decoding failed: ${String(err)}`,
            {},
            { cause: err },
          )
    let goaway: Buffer | undefined
    try {
      goaway = encodeFrame({
        type: FrameType.GOAWAY,
        circuitId: 0,
        flags: 0,
        payload: { code: e.code, message: e.message.slice(0, 1024) },
      })
    } catch {
      goaway = undefined
    }
    this.endAndFlush(goaway)
    this.emitErrorOnce(e)
  }

  /**
   * Encodes and writes one frame. Returns the socket's write() result: false means wait for
   * 'drain'. Throws ProtocolError (ERR_FRAME_*) for a frame the peer would refuse. After the
   * connection stopped, writes nothing and returns false.
   */
  send(frame: Frame): boolean {
    const buf = encodeFrame(frame)
    if (this.stopped || this.socket.destroyed || this.socket.writableEnded) return false
    return this.socket.write(buf)
  }

  /**
   * Writes a DATA (or HALF_CLOSE) frame without JSON: header + the payload bytes as given. Same
   * return value as `send()`. Payloads of SEND_DATA_COPY_BELOW bytes or more are written without
   * copying (cork, header, payload, uncork: measured faster over TLS than one copied buffer), so
   * the caller must not modify `payload` afterwards; smaller ones are copied into one buffer.
   * `onFlushed`, if given, is called exactly once: when the frame's bytes left the socket's write
   * queue (the socket's write callback), or on a later tick when nothing was written (stopped
   * connection). Callers use it to count bytes still queued per circuit.
   */
  sendData(
    circuitId: number,
    flags: number,
    payload: Uint8Array,
    type: number = FrameType.DATA,
    onFlushed?: () => void,
  ): boolean {
    const s = this.socket
    if (payload.byteLength < SEND_DATA_COPY_BELOW) {
      const buf = encodeDataFrame(circuitId, flags, payload, type)
      if (this.stopped || s.destroyed || s.writableEnded) return notWritten(onFlushed)
      return s.write(buf, onFlushed)
    }
    if (type !== FrameType.DATA && type !== FrameType.HALF_CLOSE) {
      throw new ProtocolError(
        'ERR_FRAME_TYPE',
        `sendData sends DATA or HALF_CLOSE frames, not type ${type}`,
        { type },
      )
    }
    const header = encodeHeader(type, flags, circuitId, payload.byteLength)
    if (this.stopped || s.destroyed || s.writableEnded) return notWritten(onFlushed)
    s.cork()
    s.write(header)
    const ok = s.write(payload, onFlushed)
    s.uncork()
    return ok
  }

  /**
   * Forwards a DATA (or HALF_CLOSE) payload received from another FrameConnection under a new
   * circuit id and flags: when the payload still sits behind its received header (always, for
   * payloads from FrameDecoder: see frameBytesOf), the header is rewritten in place and the frame
   * goes out as one buffer, without a copy. Otherwise it behaves as sendData(). The payload's
   * memory (including the 12 bytes before it) belongs to this call afterwards. Same return value
   * and `onFlushed` contract as sendData().
   */
  forwardData(
    circuitId: number,
    flags: number,
    payload: Uint8Array,
    type: number = FrameType.DATA,
    onFlushed?: () => void,
  ): boolean {
    const raw = frameBytesOf(payload, type)
    if (raw === null) return this.sendData(circuitId, flags, payload, type, onFlushed)
    // validate exactly as an encoder would (circuit id, flags, length)
    rewriteHeader(raw, type, flags, circuitId)
    const s = this.socket
    if (this.stopped || s.destroyed || s.writableEnded) return notWritten(onFlushed)
    return s.write(raw, onFlushed)
  }

  /**
   * Writes one DATA (or HALF_CLOSE) frame whose payload is the concatenation of `parts` (e.g. the
   * `[ciphertext, tag]` of `RecordSealer.sealParts()`), without joining them: header and parts
   * go out as corked writes. The parts must not be modified afterwards. Same return value as `send()`;
   * `onFlushed` as in `sendData()`.
   */
  sendDataParts(
    circuitId: number,
    flags: number,
    parts: readonly Uint8Array[],
    type: number = FrameType.DATA,
    onFlushed?: () => void,
  ): boolean {
    if (type !== FrameType.DATA && type !== FrameType.HALF_CLOSE) {
      throw new ProtocolError(
        'ERR_FRAME_TYPE',
        `sendDataParts sends DATA or HALF_CLOSE frames, not type ${type}`,
        { type },
      )
    }
    let len = 0
    for (const p of parts) len += p.byteLength
    const header = encodeHeader(type, flags, circuitId, len)
    const s = this.socket
    if (this.stopped || s.destroyed || s.writableEnded) return notWritten(onFlushed)
    s.cork()
    let last = parts.length - 1
    while (last >= 0 && parts[last]!.byteLength === 0) last--
    let ok = s.write(header, last < 0 ? onFlushed : undefined)
    for (let i = 0; i < last; i++) if (parts[i]!.byteLength > 0) ok = s.write(parts[i]!)
    if (last >= 0) ok = s.write(parts[last]!, onFlushed)
    s.uncork()
    return ok
  }

  /** Writes pre-encoded frame bytes as they are (routers forwarding frames). Same return value as `send()`. */
  sendRaw(bytes: Uint8Array): boolean {
    if (this.stopped || this.socket.destroyed || this.socket.writableEnded) return false
    return this.socket.write(bytes)
  }

  get writableNeedDrain(): boolean {
    return this.socket.writableNeedDrain
  }

  /** True when a DATA payload this connection emitted lives in the decoder's reused scratch buffer. */
  isTransient(payload: Uint8Array): boolean {
    return this.decoder.isTransient(payload)
  }

  /** True once the connection stopped (closed, failed or being closed). */
  get stoppedOrClosed(): boolean {
    return this.stopped
  }

  /** Stops reading from the socket (read-side backpressure); `resume()` restarts. */
  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    if (!this.stopped) this.socket.resume()
  }

  /**
   * Graceful close: sends GOAWAY {code, message} when a code is given (characters the wire does
   * not allow in a code become `_`; the message is cut to 1024), ends the socket and destroys it
   * once flushed (or after `flushTimeoutMs`). No more frames are emitted. Never throws.
   */
  close(code?: string, message?: string): void {
    if (this.stopped) return
    let goaway: Buffer | undefined
    if (code !== undefined) {
      goaway = encodeFrame({
        type: FrameType.GOAWAY,
        circuitId: 0,
        flags: 0,
        payload: { code: wireCode(code), message: String(message ?? '').slice(0, 1024) },
      })
    }
    this.stopped = true
    this.endAndFlush(goaway)
  }

  /** Destroys the socket at once; with `err`, 'error' is emitted (once) with it. */
  destroy(err?: Error): void {
    this.stopped = true
    if (err) this.emitErrorOnce(err)
    this.socket.destroy()
  }
}
