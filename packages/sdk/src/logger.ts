/**
 * The logging interface the SDK writes to: a subset of pino's (`logger.child({ name: 'sdk' })`
 * of a pino logger fits). The SDK does not depend on a logging library; without a logger it is
 * silent.
 */
export interface Logger {
  debug?(obj: Record<string, unknown>, msg?: string): void
  info?(obj: Record<string, unknown>, msg?: string): void
  warn?(obj: Record<string, unknown>, msg?: string): void
  error?(obj: Record<string, unknown>, msg?: string): void
}

/** A logger that drops everything. */
export const silentLogger: Logger = {}
