/** Errors of @nullport/cli: a stable `code` callers match on, structured fields, and `cause`. */
export type CliErrorCode =
  | 'ERR_CLI_INTERNAL'
  // nullport edge (commands/edge/, lib/)
  | 'ERR_CLI_USAGE'
  | 'ERR_CLI_UNKNOWN_KIND'
  | 'ERR_CLI_NOT_LOGGED_IN'
  | 'ERR_CLI_SESSION_EXPIRED'
  | 'ERR_CLI_UNTRUSTED_CA'
  | 'ERR_CLI_CONFIG'
  | 'ERR_CLI_UNREACHABLE'
  | 'ERR_CLI_BAD_RESPONSE'
  | 'ERR_CLI_INVALID_JSON'
  | 'ERR_CLI_FILE'
  // nullport quickstart (commands/quickstart.ts, quickstart/)
  | 'ERR_CLI_PORT_IN_USE'
  | 'ERR_CLI_DEMO_FAILED'

export class CliError extends Error {
  readonly code: CliErrorCode
  readonly details: Record<string, unknown>
  constructor(
    code: CliErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'CliError'
    this.code = code
    this.details = details
  }
}
