/** How a failed overlay dial is reported to the client: the SOCKS reply and the HTTP status. */
import { SocksReply, type SocksReplyCode } from './socks-parser.js'

const POLICY_CODES = new Set([
  'ERR_SERVICE_NOT_FOUND',
  'ERR_NO_DIAL_PERMISSION',
  'ERR_IDENTITY_NOT_FOUND',
  'ERR_IDENTITY_DISABLED',
  'ERR_IDENTITY_REVOKED',
  'ERR_NO_EDGE_ROUTER_POLICY',
  'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
  'ERR_REVOKED',
  'ERR_CERT_REVOKED',
  'ERR_HOST_TARGET_NOT_ALLOWED',
])
const UNREACHABLE_CODES = new Set([
  'ERR_NO_TERMINATORS',
  'ERR_SERVICE_NOT_LISTENING',
  'ERR_NO_EDGE_ROUTERS',
  'ERR_NO_ROUTE',
  'ERR_DIAL_TIMEOUT',
  'ERR_ROUTER_UNREACHABLE',
  'ERR_ROUTER_CONNECTION_LOST',
  'ERR_UNDERLAY_TIMEOUT',
  'ERR_MAX_CONNECTIONS',
  'ERR_TERMINATOR_AT_CAPACITY',
  'ERR_PEER_GONE',
])

/** The code that explains a dial failure: a peer's own code (carried in details.remoteCode) wins. */
export function dialErrorCode(err: unknown): string {
  const e = err as { code?: unknown; details?: { remoteCode?: unknown } } | null
  const remote = e?.details?.remoteCode
  if (typeof remote === 'string' && remote.length > 0) return remote
  return typeof e?.code === 'string' ? e.code : 'ERR_DIAL_FAILED'
}

/** SOCKS reply and HTTP status for a dial failure code. */
export function classifyDialError(code: string): {
  socks: SocksReplyCode
  http: 403 | 502 | 504
  kind: string
} {
  if (POLICY_CODES.has(code)) return { socks: SocksReply.NOT_ALLOWED, http: 403, kind: 'refused by policy' }
  if (code === 'ERR_UNDERLAY_UNREACHABLE')
    return {
      socks: SocksReply.CONNECTION_REFUSED,
      http: 502,
      kind: 'the server behind the service refused the connection',
    }
  if (code === 'ERR_DIAL_TIMEOUT' || code === 'ERR_UNDERLAY_TIMEOUT')
    return { socks: SocksReply.HOST_UNREACHABLE, http: 504, kind: 'timed out' }
  if (UNREACHABLE_CODES.has(code))
    return { socks: SocksReply.HOST_UNREACHABLE, http: 502, kind: 'the service is unreachable' }
  return { socks: SocksReply.GENERAL_FAILURE, http: 502, kind: 'the dial failed' }
}
