/**
 * Not imported: the process `spawnController({ runner: 'library' })` starts. It runs the
 * controller package's own startController() without the CLI (the controller's tests must not
 * need the CLI): node controller-runner.js --data DIR [--listen H:P] [--config F]
 * [--database URL] [--advertise H:P]; the first admin from NULLPORT_ADMIN_USER /
 * NULLPORT_ADMIN_PASSWORD.
 */
import { parseArgs } from 'node:util'
import { loadConfig, startController } from '@nullport/controller'

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
