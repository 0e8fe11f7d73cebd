/** Errors of @nullport/tunnel: a stable `code` callers match on, structured fields, and `cause`. */
export type TunnelErrorCode =
  | 'ERR_TUNNEL_INTERNAL'
  /** An option is invalid (the message names the field). */
  | 'ERR_TUNNEL_OPTION'
  /** A local listener (SOCKS, HTTP proxy, DNS, local port, status) could not be opened. */
  | 'ERR_TUNNEL_LISTEN'
  /** No intercepted service matches the requested name/address. */
  | 'ERR_NO_INTERCEPT'
  /** A service intercepts the address, but not this port or protocol. */
  | 'ERR_PORT_NOT_INTERCEPTED'
  /** A malformed SOCKS5 / HTTP proxy / DNS request. */
  | 'ERR_MALFORMED_REQUEST'
  /** A request kind the tunneler does not support (SOCKS BIND, UDP ASSOCIATE, https absolute URIs). */
  | 'ERR_UNSUPPORTED'
  /** The HTTP proxy request head is larger than the limit. */
  | 'ERR_HEADER_TOO_LARGE'
  /** Host side: the dialer's appData asks for a target outside host.v1's allowed lists. */
  | 'ERR_HOST_TARGET_NOT_ALLOWED'
  /** Host side: the host.v1 config is incomplete (no address/port, nothing to forward). */
  | 'ERR_HOST_CONFIG'
  /** Host side: the underlay target refused or did not answer. */
  | 'ERR_UNDERLAY_UNREACHABLE'
  /** Host side: the underlay target did not connect in time. */
  | 'ERR_UNDERLAY_TIMEOUT'

export class TunnelError extends Error {
  readonly code: TunnelErrorCode
  readonly details: Record<string, unknown>
  constructor(
    code: TunnelErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'TunnelError'
    this.code = code
    this.details = details
  }
}
