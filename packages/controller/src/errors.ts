/**
 * Errors of @nullport/controller: a stable `code` callers match on, structured fields, and `cause`.
 *
 * `ERRORS` is THE registry of REST error codes: every error the HTTP API answers has one of these
 * codes, with this HTTP status. docs/api-errors.md documents each one (a test checks it).
 */
export const ERRORS = {
  // request shape
  ERR_MALFORMED_JSON: { status: 400, message: 'the request body is not valid JSON' },
  ERR_VALIDATION: { status: 400, message: 'a field has an invalid value' },
  ERR_UNKNOWN_FIELD: { status: 400, message: 'the request has a field this endpoint does not accept' },
  ERR_BODY_TOO_LARGE: { status: 413, message: 'the request body is larger than the configured bodyLimit' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'the request body must be application/json' },
  ERR_BAD_REQUEST: { status: 400, message: 'the request is malformed' },
  ERR_INVALID_FILTER: { status: 400, message: 'the filter expression is not understood' },
  // auth
  ERR_UNAUTHORIZED: { status: 401, message: 'authentication required: send Authorization: Bearer TOKEN' },
  ERR_SESSION_EXPIRED: { status: 401, message: 'the session has expired: authenticate again' },
  ERR_INVALID_CREDENTIALS: { status: 401, message: 'invalid username or password' },
  ERR_FORBIDDEN: { status: 403, message: 'this identity is not allowed to use this API' },
  ERR_RATE_LIMITED: { status: 429, message: 'too many failed attempts: wait and retry' },
  // entities
  ERR_NOT_FOUND: { status: 404, message: 'no such entity' },
  ERR_NAME_IN_USE: { status: 409, message: 'the name is already used by another entity of this type' },
  ERR_ROLE_NOT_FOUND: { status: 400, message: 'a role @reference names no existing entity' },
  ERR_CONFIG_TYPE_NOT_FOUND: { status: 400, message: 'the config type does not exist' },
  ERR_CONFIG_NOT_FOUND: { status: 400, message: 'a referenced config does not exist' },
  ERR_CONFIG_INVALID: { status: 400, message: "the config data does not match its config type's schema" },
  ERR_CONFIG_IN_USE: { status: 409, message: 'the config is used by services: remove it from them first' },
  ERR_CONFIG_TYPE_IN_USE: { status: 409, message: 'the config type is used by configs: delete them first' },
  ERR_SCHEMA_INVALID: { status: 400, message: 'the JSON Schema is not supported or is invalid' },
  ERR_DUPLICATE_CONFIG_TYPE: { status: 400, message: 'a service may have at most one config of each type' },
  ERR_BUILTIN_READONLY: { status: 409, message: 'built-in entities cannot be changed or deleted' },
  ERR_LAST_ADMIN: { status: 409, message: 'this would leave the network without an admin' },
  // enrollment (used by the edge module)
  ERR_ENROLLMENT_NOT_FOUND: { status: 401, message: 'the enrollment token is unknown or was replaced' },
  ERR_ENROLLMENT_EXPIRED: { status: 401, message: 'the enrollment token has expired: re-enroll the entity' },
  ERR_ENROLLMENT_USED: {
    status: 401,
    message: 'the enrollment token was already used: re-enroll the entity',
  },
  ERR_ENROLLMENT_INVALID: { status: 401, message: 'the enrollment token is not valid for this network' },
  ERR_CSR_INVALID: { status: 400, message: 'the certificate signing request is invalid' },
  ERR_CSR_SIGNATURE: { status: 400, message: 'the CSR is not signed by the key it carries' },
  ERR_CERT_REQUIRED: { status: 401, message: 'a client certificate issued by this network is required' },
  ERR_CERT_INVALID: {
    status: 401,
    message: 'the client certificate was not issued by this network or is not valid now',
  },
  ERR_CERT_WRONG_KIND: {
    status: 403,
    message: 'the client certificate belongs to the wrong kind of entity for this API',
  },
  ERR_CERT_REVOKED: { status: 401, message: 'the client certificate is no longer valid for this entity' },
  ERR_IDENTITY_DISABLED: { status: 403, message: 'the identity is disabled' },
  ERR_ROUTER_DISABLED: { status: 403, message: 'the edge router is disabled' },
  ERR_NOT_ENROLLED: { status: 409, message: 'the entity has no pending enrollment' },
  ERR_BIND_NOT_AUTHORIZED: {
    status: 403,
    message: 'the identity may not host (Bind) this service at this router',
  },
  // process / server
  ERR_NO_ADMIN: {
    status: 500,
    message:
      'no admin exists: start with --admin-user NAME --admin-password-file FILE, set NULLPORT_ADMIN_USER and NULLPORT_ADMIN_PASSWORD, or run `nullport controller init`',
  },
  ERR_CONFIG_FILE: { status: 500, message: 'the controller configuration is invalid' },
  ERR_KEY_PERMISSIONS: {
    status: 500,
    message: 'a private key file is readable by group or others: chmod 600 it',
  },
  ERR_DATA_PERMISSIONS: {
    status: 500,
    message: 'the data directory or the database is accessible by group or others: chmod it (700 / 600)',
  },
  ERR_PKI_INCOMPLETE: { status: 500, message: 'the network PKI directory is incomplete' },
  ERR_DATABASE: { status: 500, message: 'the database failed' },
  ERR_UNAVAILABLE: { status: 503, message: 'the controller is shutting down' },
  ERR_CONTROLLER_INTERNAL: {
    status: 500,
    message: 'internal error (see the controller log with the request id)',
  },
} as const satisfies Record<string, { status: number; message: string }>

export type ControllerErrorCode = keyof typeof ERRORS

export class ControllerError extends Error {
  readonly code: ControllerErrorCode
  readonly details: Record<string, unknown>
  constructor(
    code: ControllerErrorCode,
    message?: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message ?? ERRORS[code].message, options)
    this.name = 'ControllerError'
    this.code = code
    this.details = details
  }
  get status(): number {
    return ERRORS[this.code].status
  }
}

export function isControllerError(err: unknown, code?: ControllerErrorCode): err is ControllerError {
  return err instanceof ControllerError && (code === undefined || err.code === code)
}
