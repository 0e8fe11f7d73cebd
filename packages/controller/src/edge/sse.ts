/**
 * Server-sent events over a raw Node response, with bounded buffering. `send` never ignores
 * backpressure: bytes that the socket has not taken yet count against `maxBuffered`; past it the
 * stream is closed (`overflow`) and the peer reconnects (routers then get a fresh snapshot).
 */
import type { ServerResponse } from 'node:http'

export interface SseStreamOptions {
  /** Bytes allowed to wait in the socket's write buffer before the stream is dropped. Default 8 MiB. */
  maxBuffered?: number
  /** Interval of `ping` events, ms (default 15000). 0 disables. */
  pingIntervalMs?: number
  /** Makes the ping event's payload. */
  ping?: () => unknown
}

export type SseCloseReason = 'client' | 'overflow' | 'server' | 'error'

export class SseStream {
  private closedFlag = false
  private readonly maxBuffered: number
  private timer: NodeJS.Timeout | undefined
  private readonly closeHandlers: Array<(reason: SseCloseReason) => void> = []
  private readonly drainHandlers: Array<() => void> = []
  /** Bytes of exempt events (a snapshot) still counted in the socket buffer until it drains. */
  private exemptBytes = 0

  constructor(
    private readonly res: ServerResponse,
    opts: SseStreamOptions = {},
  ) {
    this.maxBuffered = opts.maxBuffered ?? 8 * 1024 * 1024
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    })
    res.flushHeaders()
    res.socket?.setNoDelay(true)
    res.socket?.setKeepAlive(true, 30_000)
    // Long-lived: no request/socket timeouts for this connection.
    res.socket?.setTimeout(0)
    res.on('close', () => this.finish('client'))
    res.on('error', () => this.finish('error'))
    res.on('drain', () => {
      this.exemptBytes = 0
      for (const h of this.drainHandlers.splice(0)) h()
    })
    const interval = opts.pingIntervalMs ?? 15_000
    if (interval > 0) {
      const ping = opts.ping ?? (() => ({ type: 'ping', at: new Date().toISOString() }))
      this.timer = setInterval(() => this.send('ping', ping()), interval)
      this.timer.unref()
    }
    // A comment line so clients see the stream open at once.
    res.write(': nullport\n\n')
  }

  get closed(): boolean {
    return this.closedFlag
  }

  /** Bytes queued in the socket. */
  get buffered(): number {
    return this.res.writableLength
  }

  /** Whether the socket buffer is past its high-water mark (callers may coalesce instead of send). */
  get congested(): boolean {
    return this.res.writableNeedDrain
  }

  onClose(h: (reason: SseCloseReason) => void): void {
    if (this.closedFlag) h('server')
    else this.closeHandlers.push(h)
  }

  /** Runs `h` once the socket drains (at once if it is not congested). */
  onDrain(h: () => void): void {
    if (!this.res.writableNeedDrain) h()
    else this.drainHandlers.push(h)
  }

  /**
   * Writes one event. Returns false when the stream is closed or was dropped because the peer
   * could not keep up (more than `maxBuffered` bytes waiting).
   */
  send(event: string, data: unknown): boolean {
    return this.sendJson(event, JSON.stringify(data))
  }

  /**
   * Writes one event whose data is already JSON (no newlines). With `exempt`, its bytes do not
   * count against `maxBuffered` until the socket drains once (a large snapshot followed at once by
   * a small change must not drop the stream).
   */
  sendJson(event: string, json: string, opts: { exempt?: boolean } = {}): boolean {
    if (this.closedFlag) return false
    if (this.res.writableLength - this.exemptBytes > this.maxBuffered) {
      this.close('overflow')
      return false
    }
    const frame = `event: ${event}\ndata: ${json}\n\n`
    const ok = this.res.write(frame)
    if (opts.exempt && !ok) this.exemptBytes += Buffer.byteLength(frame)
    return true
  }

  /** Ends the stream. */
  close(reason: SseCloseReason = 'server'): void {
    if (this.closedFlag) return
    if (reason === 'overflow') {
      // The peer is not reading: do not wait for the buffered bytes.
      this.finish(reason)
      this.res.destroy()
      return
    }
    this.finish(reason)
    this.res.end()
  }

  private finish(reason: SseCloseReason): void {
    if (this.closedFlag) return
    this.closedFlag = true
    if (this.timer) clearInterval(this.timer)
    this.drainHandlers.length = 0
    for (const h of this.closeHandlers.splice(0)) {
      try {
        h(reason)
      } catch {
        // handlers must not throw; ignore to keep closing the others
      }
    }
  }
}
