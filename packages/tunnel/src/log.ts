import { pino } from 'pino'

/** The subset of a pino logger the tunneler uses. */
export interface TunnelLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  child(bindings: Record<string, unknown>): TunnelLogger
}

/** pino JSON to stdout (or `fd`), named `tunnel`. */
export function createTunnelLogger(level = 'info', fd = 1): TunnelLogger {
  return pino(
    { name: 'tunnel', level, timestamp: pino.stdTimeFunctions.isoTime, base: { pid: process.pid } },
    pino.destination({ fd, sync: false }),
  ) as unknown as TunnelLogger
}

/** A logger that drops everything. */
export const silentTunnelLogger: TunnelLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentTunnelLogger,
}
