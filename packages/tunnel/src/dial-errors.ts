/**
 * How a failed overlay dial is reported to the client: the SOCKS reply and the HTTP status, from
 * the code's dial outcome in protocol's wire-code table.
 */
import { DIAL_OUTCOME_REPLIES, dialOutcome } from '@nullport/protocol'
import type { SocksReplyCode } from './socks-parser.js'

/** The code that explains a dial failure: a peer's own code (carried in details.remoteCode) wins. */
export function dialErrorCode(err: unknown): string {
  const e = err as { code?: unknown; details?: { remoteCode?: unknown } } | null
  const remote = e?.details?.remoteCode
  if (typeof remote === 'string' && remote.length > 0) return remote
  return typeof e?.code === 'string' ? e.code : 'ERR_DIAL_FAILED'
}

/** SOCKS reply and HTTP status for a dial failure code (unknown codes: general failure, 502). */
export function classifyDialError(code: string): {
  socks: SocksReplyCode
  http: 403 | 502 | 504
  kind: string
} {
  const r = DIAL_OUTCOME_REPLIES[dialOutcome(code)]
  return { socks: r.socks, http: r.http, kind: r.kind }
}
