/**
 * A bounded parser for server-sent events (the controller's pushes: `GET /fabric/v1/stream` for
 * routers, `GET /edge/client/v1/events` for SDKs). Lines end with LF or CRLF. A line longer than
 * `maxLineBytes` or an event whose data exceeds `maxEventBytes` throws ProtocolError
 * (ERR_SSE_LINE_TOO_LONG / ERR_SSE_EVENT_TOO_LARGE) before more is buffered; the caller drops
 * the stream and reconnects. Scans each byte once.
 */
import { ProtocolError } from '../errors.js'

export interface SseEvent {
  /** `event:` field, default `message`. */
  event: string
  /** `data:` lines joined by `\n`. */
  data: string
  id?: string
}

export interface SseParserOptions {
  /** Longest line in bytes. Default 64 MiB (a policy snapshot is one line). */
  maxLineBytes?: number
  /** Largest event data in bytes. Default 64 MiB. */
  maxEventBytes?: number
}

const LF = 0x0a
const CR = 0x0d

export class SseParser {
  readonly maxLineBytes: number
  readonly maxEventBytes: number
  private lineParts: Buffer[] = []
  private lineBytes = 0
  private eventType = ''
  private dataParts: string[] = []
  private dataBytes = 0
  private hasData = false
  private lastId: string | undefined
  private failed: ProtocolError | null = null

  constructor(opts: SseParserOptions = {}) {
    const line = opts.maxLineBytes ?? 64 * 1024 * 1024
    const event = opts.maxEventBytes ?? 64 * 1024 * 1024
    if (!Number.isInteger(line) || line < 16)
      throw new RangeError(`SseParser maxLineBytes must be an integer >= 16, got ${line}`)
    if (!Number.isInteger(event) || event < 16)
      throw new RangeError(`SseParser maxEventBytes must be an integer >= 16, got ${event}`)
    this.maxLineBytes = line
    this.maxEventBytes = event
  }

  /** Feeds bytes; returns the events completed by them. Throws ProtocolError on a limit. */
  push(chunk: Buffer): SseEvent[] {
    if (this.failed) throw this.failed
    const out: SseEvent[] = []
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(LF, start)
      if (nl < 0) {
        const rest = chunk.length - start
        if (rest > 0) {
          this.grow(rest)
          this.lineParts.push(chunk.subarray(start))
        }
        break
      }
      this.grow(nl - start)
      let line: Buffer
      if (this.lineParts.length === 0) line = chunk.subarray(start, nl)
      else {
        this.lineParts.push(chunk.subarray(start, nl))
        line = Buffer.concat(this.lineParts, this.lineBytes)
        this.lineParts = []
      }
      this.lineBytes = 0
      start = nl + 1
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1)
      const ev = this.onLine(line)
      if (ev) out.push(ev)
    }
    return out
  }

  private grow(n: number): void {
    this.lineBytes += n
    if (this.lineBytes > this.maxLineBytes) {
      this.fail(
        new ProtocolError(
          'ERR_SSE_LINE_TOO_LONG',
          `server-sent event line exceeds ${this.maxLineBytes} bytes`,
          { limit: this.maxLineBytes },
        ),
      )
    }
  }

  private fail(err: ProtocolError): never {
    this.failed = err
    this.lineParts = []
    this.dataParts = []
    throw err
  }

  private onLine(line: Buffer): SseEvent | null {
    if (line.length === 0) {
      if (!this.hasData) {
        this.eventType = ''
        return null
      }
      const ev: SseEvent = { event: this.eventType || 'message', data: this.dataParts.join('\n') }
      if (this.lastId !== undefined) ev.id = this.lastId
      this.eventType = ''
      this.dataParts = []
      this.dataBytes = 0
      this.hasData = false
      return ev
    }
    if (line[0] === 0x3a) return null // ':' comment (keep-alive)
    const colon = line.indexOf(0x3a)
    let field: string
    let value: Buffer
    if (colon < 0) {
      field = line.toString('utf8')
      value = Buffer.alloc(0)
    } else {
      field = line.subarray(0, colon).toString('utf8')
      value = line.subarray(line[colon + 1] === 0x20 ? colon + 2 : colon + 1)
    }
    switch (field) {
      case 'event':
        this.eventType = value.toString('utf8')
        break
      case 'data': {
        this.dataBytes += value.length + (this.hasData ? 1 : 0)
        if (this.dataBytes > this.maxEventBytes) {
          this.fail(
            new ProtocolError(
              'ERR_SSE_EVENT_TOO_LARGE',
              `server-sent event data exceeds ${this.maxEventBytes} bytes`,
              {
                limit: this.maxEventBytes,
              },
            ),
          )
        }
        this.dataParts.push(value.toString('utf8'))
        this.hasData = true
        break
      }
      case 'id':
        if (!value.includes(0)) this.lastId = value.toString('utf8')
        break
      default:
        // `retry:` and unknown fields are ignored (callers have their own backoff).
        break
    }
    return null
  }
}
