import type { WireCodeSentBy } from '@nullport/protocol'

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
 * Codes the router puts on the wire (DIAL_FAILED, BIND_FAILED, CLOSE, UNBIND, GOAWAY): the rows of
 * the protocol's wire-code table the router sends (category and fix hint there). Policy refusals
 * carry the PolicyIndex codes (`ERR_NO_DIAL_PERMISSION`, `ERR_NO_EDGE_ROUTER_POLICY`, ...).
 */
export type RouterWireCode = WireCodeSentBy<'router'>
