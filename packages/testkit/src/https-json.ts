/**
 * One HTTPS JSON request as the tests make it, on protocol's httpsRequest (TLS verified against
 * a given CA, optionally with a client certificate): resolves with status, parsed body, headers
 * and the raw text for every HTTP status, so a test asserts on error answers too.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { httpsRequest } from '@nullport/protocol'

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
}

/** Every request has a connection of its own (no keep-alive pool). */
export async function httpsJson(url: string, method: string, o: HttpsJsonOptions): Promise<ApiResponse> {
  const r = await httpsRequest({
    method,
    url,
    tls: { ca: o.ca, ...(o.cert ? { cert: o.cert, key: o.key } : {}) },
    headers: {
      accept: 'application/json',
      ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...o.headers,
    },
    ...(o.body !== undefined ? { body: o.body } : {}),
  })
  let body: unknown = r.text
  try {
    body = r.text ? JSON.parse(r.text) : null
  } catch {}
  return { status: r.status, body, headers: r.headers, text: r.text }
}
