import { formatIp } from './ip.js'

/** SOCKS5 reply codes (RFC 1928 section 6). */
export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const
export type SocksReplyCode = (typeof SocksReply)[keyof typeof SocksReply]

export const SocksCommand = { CONNECT: 0x01, BIND: 0x02, UDP_ASSOCIATE: 0x03 } as const
/** "no authentication required" and "no acceptable methods". */
export const SOCKS_NO_AUTH = 0x00
export const SOCKS_NO_ACCEPTABLE = 0xff

export type ParseResult<T> =
  | { status: 'incomplete' }
  | { status: 'error'; reason: string; reply?: SocksReplyCode }
  | ({ status: 'ok'; length: number } & T)

/** Parses the client greeting: VER(5) NMETHODS METHODS... */
export function parseSocksGreeting(buf: Uint8Array): ParseResult<{ methods: number[] }> {
  if (buf.length < 1) return { status: 'incomplete' }
  if (buf[0] !== 0x05) return { status: 'error', reason: `not SOCKS5 (version byte ${buf[0]})` }
  if (buf.length < 2) return { status: 'incomplete' }
  const n = buf[1]!
  if (n === 0) return { status: 'error', reason: 'greeting lists no authentication method' }
  if (buf.length < 2 + n) return { status: 'incomplete' }
  return { status: 'ok', length: 2 + n, methods: Array.from(buf.subarray(2, 2 + n)) }
}

export interface SocksRequest {
  command: number
  /** 1 IPv4, 3 domain name, 4 IPv6 */
  addressType: number
  host: string
  port: number
}

/** Parses a request: VER(5) CMD RSV(0) ATYP DST.ADDR DST.PORT. Unsupported commands parse (the caller replies 0x07). */
export function parseSocksRequest(buf: Uint8Array): ParseResult<SocksRequest> {
  if (buf.length < 4) {
    if (buf.length >= 1 && buf[0] !== 0x05)
      return { status: 'error', reason: `request version byte ${buf[0]}` }
    return { status: 'incomplete' }
  }
  if (buf[0] !== 0x05) return { status: 'error', reason: `request version byte ${buf[0]}` }
  if (buf[2] !== 0x00)
    return { status: 'error', reason: 'reserved byte is not zero', reply: SocksReply.GENERAL_FAILURE }
  const command = buf[1]!
  const atyp = buf[3]!
  let host: string
  let end: number
  if (atyp === 0x01) {
    end = 4 + 4
    if (buf.length < end + 2) return { status: 'incomplete' }
    host = formatIp(buf.subarray(4, 8))
  } else if (atyp === 0x04) {
    end = 4 + 16
    if (buf.length < end + 2) return { status: 'incomplete' }
    host = formatIp(buf.subarray(4, 20))
  } else if (atyp === 0x03) {
    if (buf.length < 5) return { status: 'incomplete' }
    const len = buf[4]!
    if (len === 0) return { status: 'error', reason: 'empty domain name', reply: SocksReply.GENERAL_FAILURE }
    end = 5 + len
    if (buf.length < end + 2) return { status: 'incomplete' }
    const raw = buf.subarray(5, end)
    for (const c of raw) {
      if (c <= 0x20 || c >= 0x7f) {
        return {
          status: 'error',
          reason: 'domain name has non-printable bytes',
          reply: SocksReply.GENERAL_FAILURE,
        }
      }
    }
    host = Buffer.from(raw).toString('latin1')
  } else {
    return {
      status: 'error',
      reason: `address type ${atyp} is not supported`,
      reply: SocksReply.ADDRESS_TYPE_NOT_SUPPORTED,
    }
  }
  const port = (buf[end]! << 8) | buf[end + 1]!
  return { status: 'ok', length: end + 2, command, addressType: atyp, host, port }
}

/** A reply with BND.ADDR 0.0.0.0 and BND.PORT 0 (the overlay has no local address to report). */
export function socksReply(code: SocksReplyCode): Buffer {
  return Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0])
}

/** Longest possible greeting + request (for bounding the handshake buffer). */
export const SOCKS_MAX_HANDSHAKE = 2 + 255 + 4 + 1 + 255 + 2
