/**
 * Errors of @nullport/protocol. Every error carries a stable `code` that callers match on,
 * structured fields, and an optional `cause`.
 */
export type ProtocolErrorCode =
  // server-sent events (controller pushes)
  | 'ERR_SSE_LINE_TOO_LONG'
  | 'ERR_SSE_EVENT_TOO_LARGE'
  // framing
  | 'ERR_FRAME_VERSION'
  | 'ERR_FRAME_TYPE'
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_FRAME_MALFORMED'
  | 'ERR_FRAME_PAYLOAD'
  // end-to-end encryption
  | 'ERR_E2E_VERIFY_FAILED'
  | 'ERR_E2E_DECRYPT_FAILED'
  | 'ERR_E2E_HANDSHAKE'
  | 'ERR_E2E_IDENTITY_MISMATCH'
  | 'ERR_E2E_TRUNCATED'
  // pki
  | 'ERR_PKI_INVALID_CSR'
  | 'ERR_PKI_CSR_SIGNATURE'
  | 'ERR_PKI_CHAIN'
  | 'ERR_PKI_EXPIRED'
  | 'ERR_PKI_NOT_YET_VALID'
  | 'ERR_PKI_INVALID_INPUT'
  | 'ERR_PKI_SPIFFE_ID'
  // identity files
  | 'ERR_IDENTITY_FILE_MISSING'
  | 'ERR_IDENTITY_FILE_MALFORMED'
  // policy
  | 'ERR_POLICY_ROLE'
  | 'ERR_POLICY_CHANGE'
  // pki files (`nullport pki create ...`)
  | 'ERR_PKI_FILE_EXISTS'
  | 'ERR_PKI_CA_NOT_FOUND'
  // data plane: a circuit's sender exceeded its credit window (CLOSE code, docs/protocol.md)
  | 'ERR_FLOW_CONTROL'
  // `HOST:PORT` text (net/host-port.ts); details.reason says why
  | 'ERR_HOST_PORT'
  // HTTPS to the controller (control/https-json.ts, control/event-stream.ts)
  | 'ERR_HTTPS_URL'
  | 'ERR_HTTPS_UNREACHABLE'
  | 'ERR_HTTPS_TIMEOUT'
  | 'ERR_HTTPS_BODY_TOO_LARGE'
  | 'ERR_HTTPS_INCOMPLETE'
  | 'ERR_HTTPS_STATUS'
  | 'ERR_HTTPS_STREAM_ENDED'

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode
  readonly details: Record<string, unknown>
  constructor(
    code: ProtocolErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'ProtocolError'
    this.code = code
    this.details = details
  }
}

export function isProtocolError(err: unknown, code?: ProtocolErrorCode): err is ProtocolError {
  return err instanceof ProtocolError && (code === undefined || err.code === code)
}
