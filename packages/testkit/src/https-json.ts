/**
 * One HTTPS JSON request as the tests make it: trusting a given CA, optionally with a client
 * certificate, resolving with status, parsed body, headers and the raw text (never rejecting on
 * an HTTP error status).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { request } from 'node:https'

// biome-ignore lint/suspicious/noExplicitAny: test convenience: bodies are JSON of any shape
export interface ApiResponse<T = any> {
  status: number
  /** The parsed JSON body; the raw text when it is not JSON; `null` when empty. */
  body: T
  headers: IncomingHttpHeaders
  /** The raw response text. */
  text: string
}

export interface HttpsJsonOptions {
  /** PEM bundle to trust. */
  ca: string
  /** Client certificate chain and key (mTLS). */
  cert?: string
  key?: string
  headers?: Record<string, string>
  /** Sent as is, with `content-type: application/json`. */
  body?: string | Buffer
  /** `false`: a connection of its own instead of the keep-alive pool. */
  agent?: false
}

export function httpsJson(url: string, method: string, o: HttpsJsonOptions): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: o.ca,
        ...(o.cert ? { cert: o.cert, key: o.key } : {}),
        ...(o.agent === false ? { agent: false } : {}),
        headers: {
          accept: 'application/json',
          ...(o.body !== undefined
            ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(o.body)) }
            : {}),
          ...o.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let body: unknown = text
          try {
            body = text ? JSON.parse(text) : null
          } catch {}
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers, text })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    if (o.body !== undefined) req.end(o.body)
    else req.end()
  })
}
