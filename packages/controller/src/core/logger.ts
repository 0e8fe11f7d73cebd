/** pino JSON logs to stdout, one named child logger per component (`{"component":"store",...}`). */
import { type Logger, pino } from 'pino'

export type { Logger }

export function createLogger(level = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid, name: 'nullport-controller' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers["zt-session"]',
          'password',
          '*.password',
          'token',
          '*.token',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  )
}

export function componentLogger(root: Logger, component: string): Logger {
  return root.child({ component })
}
