/**
 * A controller process for the controller's own tests (the CLI's `controller run` without the
 * CLI package): node dist/test/helpers/run-controller.js --data DIR [--listen H:P] [--config F]
 * [--database URL]; first admin from NULLPORT_ADMIN_USER / NULLPORT_ADMIN_PASSWORD.
 */
import { parseArgs } from 'node:util'
import { loadConfig, startController } from '../../src/index.js'

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    listen: { type: 'string' },
    config: { type: 'string' },
    database: { type: 'string' },
    advertise: { type: 'string' },
  },
})

try {
  const config = loadConfig({
    configFile: values.config,
    dataDir: values.data,
    listen: values.listen,
    database: values.database,
    advertise: values.advertise,
  })
  const running = await startController({
    config,
    admin: { username: process.env.NULLPORT_ADMIN_USER, password: process.env.NULLPORT_ADMIN_PASSWORD },
  })
  const stop = () => {
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
} catch (err) {
  const e = err as Error & { code?: string }
  process.stderr.write(`nullport: ${e.code ? `${e.code}: ` : ''}${e.message}\n`)
  process.exit(1)
}
