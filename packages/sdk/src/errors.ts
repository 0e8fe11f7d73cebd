/** Errors of @nullport/sdk: a stable `code` callers match on, structured fields, and `cause`. */
export type SdkErrorCode =
  | 'ERR_SDK_INTERNAL'
  // options and identity
  | 'ERR_INVALID_OPTION'
  | 'ERR_IDENTITY_FILE'
  // controller (client API)
  | 'ERR_CONTROLLER_UNREACHABLE'
  | 'ERR_CONTROLLER_RESPONSE'
  | 'ERR_AUTHENTICATION_FAILED'
  | 'ERR_IDENTITY_REVOKED'
  | 'ERR_CONTEXT_CLOSED'
  // dialing
  | 'ERR_SERVICE_NOT_FOUND'
  | 'ERR_NO_DIAL_PERMISSION'
  | 'ERR_NO_BIND_PERMISSION'
  | 'ERR_NO_EDGE_ROUTERS'
  | 'ERR_NO_TERMINATORS'
  | 'ERR_DIAL_TIMEOUT'
  | 'ERR_DIAL_ABORTED'
  | 'ERR_DIAL_FAILED'
  | 'ERR_MAX_CONNECTIONS'
  | 'ERR_SERVICE_NOT_LISTENING'
  | 'ERR_BIND_FAILED'
  // policy refusals a router passes through (same codes as protocol's AuthzDenyCode)
  | 'ERR_IDENTITY_NOT_FOUND'
  | 'ERR_IDENTITY_DISABLED'
  | 'ERR_ROUTER_NOT_FOUND'
  | 'ERR_ROUTER_DISABLED'
  | 'ERR_NO_EDGE_ROUTER_POLICY'
  | 'ERR_NO_SERVICE_EDGE_ROUTER_POLICY'
  // other codes routers put on the wire (router RouterWireCode)
  | 'ERR_INVALID_TERMINATOR'
  | 'ERR_TERMINATOR_AT_CAPACITY'
  | 'ERR_NO_ROUTE'
  | 'ERR_TOO_MANY_CIRCUITS'
  | 'ERR_CIRCUIT_ID'
  | 'ERR_PEER_GONE'
  | 'ERR_REVOKED'
  | 'ERR_CERT_REVOKED'
  | 'ERR_CERT_INVALID'
  | 'ERR_CONTROLLER_UNAVAILABLE'
  | 'ERR_ROUTER_SHUTDOWN'
  | 'ERR_TOO_MANY_CONNECTIONS'
  // routers
  | 'ERR_ROUTER_UNREACHABLE'
  | 'ERR_ROUTER_VERIFY_FAILED'
  | 'ERR_ROUTER_HANDSHAKE'
  | 'ERR_ROUTER_CONNECTION_LOST'
  | 'ERR_PROTOCOL'
  // circuits
  | 'ERR_FLOW_CONTROL'
  | 'ERR_CIRCUIT_RESET'
  | 'ERR_CIRCUIT_CLOSED'
  | 'ERR_SOCKET_DESTROYED'
  // end-to-end encryption (same codes as protocol's e2e errors)
  | 'ERR_E2E_REQUIRED'
  | 'ERR_E2E_VERIFY_FAILED'
  | 'ERR_E2E_DECRYPT_FAILED'
  | 'ERR_E2E_HANDSHAKE'
  | 'ERR_E2E_IDENTITY_MISMATCH'
  | 'ERR_E2E_TRUNCATED'
  // enrollment (enroll.ts)
  | 'ERR_ENROLL_INVALID_OPTIONS'
  | 'ERR_ENROLL_TOKEN_MALFORMED'
  | 'ERR_ENROLL_TOKEN_INVALID'
  | 'ERR_ENROLL_TOKEN_EXPIRED'
  | 'ERR_ENROLL_TOKEN_USED'
  | 'ERR_ENROLL_CA_MISMATCH'
  | 'ERR_ENROLL_UNREACHABLE'
  | 'ERR_ENROLL_RESPONSE'
  | 'ERR_ENROLL_REFUSED'
  | 'ERR_ENROLL_OUTPUT_EXISTS'
  | 'ERR_ENROLL_OUTPUT_WRITE'
  // certificate renewal (renew.ts)
  | 'ERR_RENEW_FAILED'
  // HTTP clients, zitify, register (src/http, zitify.ts, register.ts)
  | 'ERR_NOT_INTERCEPTED'
  | 'ERR_INVALID_BINDINGS'

/** Every code above, for mapping codes received from peers and routers. */
export const SDK_ERROR_CODES: ReadonlySet<string> = new Set<SdkErrorCode>([
  'ERR_SDK_INTERNAL',
  'ERR_INVALID_OPTION',
  'ERR_IDENTITY_FILE',
  'ERR_CONTROLLER_UNREACHABLE',
  'ERR_CONTROLLER_RESPONSE',
  'ERR_RENEW_FAILED',
  'ERR_AUTHENTICATION_FAILED',
  'ERR_IDENTITY_REVOKED',
  'ERR_CONTEXT_CLOSED',
  'ERR_SERVICE_NOT_FOUND',
  'ERR_NO_DIAL_PERMISSION',
  'ERR_NO_BIND_PERMISSION',
  'ERR_NO_EDGE_ROUTERS',
  'ERR_NO_TERMINATORS',
  'ERR_DIAL_TIMEOUT',
  'ERR_DIAL_ABORTED',
  'ERR_DIAL_FAILED',
  'ERR_MAX_CONNECTIONS',
  'ERR_SERVICE_NOT_LISTENING',
  'ERR_BIND_FAILED',
  'ERR_IDENTITY_NOT_FOUND',
  'ERR_IDENTITY_DISABLED',
  'ERR_ROUTER_NOT_FOUND',
  'ERR_ROUTER_DISABLED',
  'ERR_NO_EDGE_ROUTER_POLICY',
  'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
  'ERR_INVALID_TERMINATOR',
  'ERR_TERMINATOR_AT_CAPACITY',
  'ERR_NO_ROUTE',
  'ERR_TOO_MANY_CIRCUITS',
  'ERR_CIRCUIT_ID',
  'ERR_PEER_GONE',
  'ERR_REVOKED',
  'ERR_CERT_REVOKED',
  'ERR_CERT_INVALID',
  'ERR_CONTROLLER_UNAVAILABLE',
  'ERR_ROUTER_SHUTDOWN',
  'ERR_TOO_MANY_CONNECTIONS',
  'ERR_ROUTER_UNREACHABLE',
  'ERR_ROUTER_VERIFY_FAILED',
  'ERR_ROUTER_HANDSHAKE',
  'ERR_ROUTER_CONNECTION_LOST',
  'ERR_PROTOCOL',
  'ERR_FLOW_CONTROL',
  'ERR_CIRCUIT_RESET',
  'ERR_CIRCUIT_CLOSED',
  'ERR_SOCKET_DESTROYED',
  'ERR_E2E_REQUIRED',
  'ERR_E2E_VERIFY_FAILED',
  'ERR_E2E_DECRYPT_FAILED',
  'ERR_E2E_HANDSHAKE',
  'ERR_E2E_IDENTITY_MISMATCH',
  'ERR_E2E_TRUNCATED',
  'ERR_ENROLL_INVALID_OPTIONS',
  'ERR_ENROLL_TOKEN_MALFORMED',
  'ERR_ENROLL_TOKEN_INVALID',
  'ERR_ENROLL_TOKEN_EXPIRED',
  'ERR_ENROLL_TOKEN_USED',
  'ERR_ENROLL_CA_MISMATCH',
  'ERR_ENROLL_UNREACHABLE',
  'ERR_ENROLL_RESPONSE',
  'ERR_ENROLL_REFUSED',
  'ERR_ENROLL_OUTPUT_EXISTS',
  'ERR_ENROLL_OUTPUT_WRITE',
  'ERR_NOT_INTERCEPTED',
  'ERR_INVALID_BINDINGS',
])

/**
 * Every error the SDK reports. Match on `code` (stable); `message` names the fix; `details` holds
 * structured fields (service, identity, `remoteCode` when a router or peer sent the code).
 *
 * @example
 * try {
 *   await ctx.dial('db')
 * } catch (err) {
 *   if (isSdkError(err, 'ERR_NO_DIAL_PERMISSION')) console.error(err.message) // names policy-advisor
 *   else throw err
 * }
 */
export class SdkError extends Error {
  readonly code: SdkErrorCode
  readonly details: Record<string, unknown>
  constructor(
    code: SdkErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'SdkError'
    this.code = code
    this.details = details
  }
}

/**
 * True when `err` is an SdkError (with `code`, when given).
 *
 * @example
 * socket.on('error', (err) => { if (isSdkError(err, 'ERR_IDENTITY_REVOKED')) process.exit(1) })
 */
export function isSdkError(err: unknown, code?: SdkErrorCode): err is SdkError {
  return err instanceof SdkError && (code === undefined || err.code === code)
}
