/** Errors of @nullport/router: a stable `code` callers match on, structured fields, and `cause`. */
export type RouterErrorCode =
  | 'ERR_ROUTER_INTERNAL'
  /** The router config (file or options) is invalid; the message names the field. */
  | 'ERR_ROUTER_CONFIG'
  /** The identity file is not a router identity or its certificate is unusable. */
  | 'ERR_ROUTER_IDENTITY'
  /** The controller could not be reached or answered with an error. */
  | 'ERR_CONTROLLER_UNAVAILABLE'
  | 'ERR_CONTROLLER_RESPONSE'
  /** Server-sent events: a line or an event exceeded its size limit. */
  | 'ERR_SSE_LINE_TOO_LONG'
  | 'ERR_SSE_EVENT_TOO_LARGE'
  /** The router is stopped. */
  | 'ERR_ROUTER_STOPPED'
  /** Certificate renewal: the controller's answer is unusable (chain, SPIFFE id or key mismatch). */
  | 'ERR_ROUTER_CERT_RENEWAL'

export class RouterError extends Error {
  readonly code: RouterErrorCode
  readonly details: Record<string, unknown>
  constructor(
    code: RouterErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'RouterError'
    this.code = code
    this.details = details
  }
}

/**
 * Codes the router puts on the wire (DIAL_FAILED, BIND_FAILED, CLOSE, UNBIND, GOAWAY). Policy
 * refusals carry the PolicyIndex codes (`ERR_NO_DIAL_PERMISSION`, `ERR_NO_EDGE_ROUTER_POLICY`, ...).
 */
export type RouterWireCode =
  | 'ERR_IDENTITY_NOT_FOUND'
  | 'ERR_IDENTITY_DISABLED'
  | 'ERR_SERVICE_NOT_FOUND'
  | 'ERR_NO_DIAL_PERMISSION'
  | 'ERR_NO_BIND_PERMISSION'
  | 'ERR_ROUTER_NOT_FOUND'
  | 'ERR_ROUTER_DISABLED'
  | 'ERR_NO_EDGE_ROUTER_POLICY'
  | 'ERR_NO_SERVICE_EDGE_ROUTER_POLICY'
  /** Connection level (GOAWAY). */
  | 'ERR_CERT_REVOKED'
  | 'ERR_CERT_INVALID'
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_HELLO'
  | 'ERR_PROTOCOL'
  | 'ERR_NOT_READY'
  | 'ERR_TOO_MANY_CONNECTIONS'
  | 'ERR_ROUTER_SHUTDOWN'
  | 'ERR_LINK_REPLACED'
  /** Circuit setup (DIAL_FAILED). */
  | 'ERR_NO_TERMINATORS'
  | 'ERR_INVALID_TERMINATOR'
  | 'ERR_TERMINATOR_AT_CAPACITY'
  | 'ERR_NO_ROUTE'
  | 'ERR_DIAL_TIMEOUT'
  | 'ERR_TOO_MANY_CIRCUITS'
  | 'ERR_CIRCUIT_ID'
  /** Circuit teardown (CLOSE) and revocation (CLOSE, UNBIND). */
  | 'ERR_PEER_GONE'
  | 'ERR_FLOW_CONTROL'
  | 'ERR_REVOKED'
  /** Binding (BIND_FAILED). */
  | 'ERR_CONTROLLER_UNAVAILABLE'
  | 'ERR_BIND_FAILED'
