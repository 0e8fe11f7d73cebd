/**
 * The client side of the controller's event streams (`GET /fabric/v1/stream` for routers,
 * `GET /edge/client/v1/events` for SDKs): one long-lived HTTPS request on its own connection,
 * parsed with the bounded SseParser, dropped when silent for `idleTimeoutMs`. It never
 * reconnects by itself: `onEnd` is called exactly once and the caller decides (with its Backoff).
 *
 * Errors given to `onEnd` (ProtocolError, with `method`, `origin`, `path`):
 * ERR_HTTPS_URL; ERR_HTTPS_UNREACHABLE (`tls`); ERR_HTTPS_STATUS (an answer other than 200:
 * `status`, `text` (first 64 KiB), `json`); ERR_HTTPS_TIMEOUT (silent for `idleTimeoutMs`);
 * ERR_HTTPS_STREAM_ENDED (the controller closed the stream); ERR_SSE_LINE_TOO_LONG /
 * ERR_SSE_EVENT_TOO_LARGE; or whatever `onEvent` threw. close() ends it without calling `onEnd`.
 *
 * @example
 * const stream = openEventStream({ url, tls, idleTimeoutMs: 60_000,
 *   onOpen: () => backoff.reset(),
 *   onEvent: (ev) => apply(JSON.parse(ev.data)),
 *   onEnd: (err) => setTimeout(reopen, backoff.next()) })
 */
import https from 'node:https'
import { ProtocolError } from '../errors.js'
import { type HttpsTls, httpsUrl, isTlsVerifyError, parseJsonBody, tlsRequestOptions } from './https-json.js'
import { type SseEvent, SseParser } from './sse.js'

export interface EventStreamOptions {
  url: string | URL
  tls: HttpsTls
  /** Extra request headers (e.g. a session token). `accept: text/event-stream` is always sent. */
  headers?: Record<string, string>
  /** No byte (not even a keep-alive comment) for this long ends the stream. */
  idleTimeoutMs: number
  /** SseParser limits (defaults 64 MiB each). */
  maxLineBytes?: number
  maxEventBytes?: number
  /** The answer is 200: events follow. */
  onOpen?: () => void
  /** One event. A throw ends the stream with that error. */
  onEvent: (ev: SseEvent) => void
  /** Called once when the stream ends or cannot be opened (not after close()). */
  onEnd: (err: Error) => void
}

export interface EventStream {
  /** Ends the stream now; `onEnd` is not called. */
  close(): void
  /** True once the stream has ended (by any cause). */
  readonly ended: boolean
}

const MAX_REFUSAL_BODY = 64 * 1024

/** Opens an event stream. Never throws: every failure goes to `onEnd`, asynchronously. */
export function openEventStream(o: EventStreamOptions): EventStream {
  let ended = false
  let idle: NodeJS.Timeout | null = null
  let req: ReturnType<typeof https.request> | null = null
  const handle: EventStream = {
    close: () => stop(null),
    get ended() {
      return ended
    },
  }
  const stop = (err: Error | null): void => {
    if (ended) return
    ended = true
    if (idle) clearTimeout(idle)
    idle = null
    req?.destroy()
    if (err) o.onEnd(err)
  }
  let url: URL
  try {
    url = httpsUrl(o.url)
  } catch (err) {
    queueMicrotask(() => stop(err as Error))
    return handle
  }
  const where = { method: 'GET', origin: url.origin, path: url.pathname }
  const armIdle = (): void => {
    if (idle) clearTimeout(idle)
    idle = setTimeout(
      () =>
        stop(
          new ProtocolError(
            'ERR_HTTPS_TIMEOUT',
            `GET ${url.pathname}: the event stream was silent for ${o.idleTimeoutMs} ms`,
            { ...where, timeoutMs: o.idleTimeoutMs },
          ),
        ),
      o.idleTimeoutMs,
    )
    idle.unref()
  }
  req = https.request(url, {
    method: 'GET',
    // A dedicated connection (not a keep-alive pool's): the stream is long-lived.
    agent: false,
    ...tlsRequestOptions(o.tls),
    headers: { ...o.headers, accept: 'text/event-stream', 'cache-control': 'no-cache' },
  })
  armIdle()
  req.on('error', (err) =>
    stop(
      err instanceof ProtocolError
        ? err
        : new ProtocolError(
            'ERR_HTTPS_UNREACHABLE',
            `cannot reach ${url.origin}: ${err.message}`,
            { ...where, tls: isTlsVerifyError(err) },
            { cause: err },
          ),
    ),
  )
  req.on('response', (res) => {
    armIdle()
    const status = res.statusCode ?? 0
    if (status !== 200) {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        armIdle()
        if (size < MAX_REFUSAL_BODY) chunks.push(c.subarray(0, MAX_REFUSAL_BODY - size))
        size += c.length
      })
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        stop(
          new ProtocolError(
            'ERR_HTTPS_STATUS',
            `GET ${url.pathname} failed with HTTP ${status}: ${text.slice(0, 300)}`,
            { ...where, status, text, json: parseJsonBody(text) },
          ),
        )
      })
      return
    }
    const parser = new SseParser({
      ...(o.maxLineBytes !== undefined ? { maxLineBytes: o.maxLineBytes } : {}),
      ...(o.maxEventBytes !== undefined ? { maxEventBytes: o.maxEventBytes } : {}),
    })
    o.onOpen?.()
    res.on('data', (chunk: Buffer) => {
      if (ended) return
      armIdle()
      let events: SseEvent[]
      try {
        events = parser.push(chunk)
        for (const ev of events) {
          if (ended) return
          o.onEvent(ev)
        }
      } catch (err) {
        stop(err as Error)
      }
    })
    const endedByServer = (): void =>
      stop(
        new ProtocolError(
          'ERR_HTTPS_STREAM_ENDED',
          `GET ${url.pathname}: the controller ended the event stream`,
          where,
        ),
      )
    res.on('end', endedByServer)
    res.on('close', endedByServer)
    res.on('error', (err) => stop(err))
  })
  req.end()
  return handle
}
