/**
 * `nullport router ...`: `enroll` (router enrollment: key + CSR locally, identity file 0600, and a
 * router config file) and `run` (runs an edge router from its config file until SIGINT/SIGTERM).
 */
import { readFile } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { formatHostPort, writeFileAtomic } from '@nullport/protocol'
import {
  loadRouterConfig,
  parseHostPort,
  type RouterConfig,
  startRouter,
  validateRouterConfig,
} from '@nullport/router'
import { enroll } from '@nullport/sdk'
import type { Command } from 'commander'
import { CliError } from '../errors.js'
import { readEnrollmentToken } from '../lib/args.js'

/** Identity file path next to the config: `router.json` -> `router.identity.json`. */
function identityPathFor(configPath: string): string {
  const base = configPath.endsWith('.json') ? configPath.slice(0, -5) : configPath
  return `${base}.identity.json`
}

/** Registers the `nullport router ...` commands. */
export function register(program: Command): void {
  const router = program.command('router').description('run and enroll edge routers')

  router
    .command('enroll')
    .description(
      'enroll an edge router with its one-time token: writes its identity file (0600) and a router config',
    )
    .argument(
      '<jwt-file>',
      'the enrollment token file (from `nullport edge create edge-router NAME -o r.jwt`)',
    )
    .requiredOption('--advertise <host[:port]>', 'address SDKs and other routers reach this router at')
    .option(
      '--listen <host:port>',
      'address the router listens on (default 0.0.0.0 and the advertised port, or 3022)',
    )
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
    .requiredOption('-o, --output <file>', 'router config file to write (the identity file goes next to it)')
    .option('--identity-output <file>', 'where to write the identity file (default: <output>.identity.json)')
    .option('--overwrite', 'replace existing files', false)
    .action(
      async (
        jwtFile: string,
        o: {
          advertise: string
          listen?: string
          metrics?: string
          output: string
          identityOutput?: string
          overwrite: boolean
        },
      ) => {
        const adv = parseHostPort(o.advertise, 'advertise', {
          portOptional: true,
          allowPortZero: true,
          source: '--advertise',
        })
        const listen = o.listen ?? `0.0.0.0:${adv.port || 3022}`
        const lp = parseHostPort(listen, 'listen', { allowPortZero: true, source: '--listen' })
        if (o.metrics !== undefined)
          parseHostPort(o.metrics, 'metricsListen', { allowPortZero: true, source: '--metrics' })
        const configPath = resolve(o.output)
        const identityPath = resolve(o.identityOutput ?? identityPathFor(configPath))
        const jwt = await readEnrollmentToken(jwtFile)
        if (!o.overwrite) {
          try {
            await readFile(configPath)
            throw new CliError(
              'ERR_CLI_FILE',
              `${configPath} already exists: choose another --output or pass --overwrite`,
              { path: configPath },
            )
          } catch (err) {
            if (err instanceof CliError) throw err
          }
        }
        const enrollAdvertise = formatHostPort(adv.host, adv.port || lp.port || 3022)
        const r = await enroll({
          jwt,
          output: identityPath,
          overwrite: o.overwrite,
          advertise: enrollAdvertise,
        })
        const identityFile =
          dirname(identityPath) === dirname(configPath) ? basename(identityPath) : identityPath
        const config: RouterConfig = { identityFile, listen, advertise: o.advertise }
        if (o.metrics !== undefined) config.metricsListen = o.metrics
        validateRouterConfig(config, { source: configPath })
        await writeFileAtomic(configPath, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 })
        process.stdout.write(
          `enrolled router ${r.file.name} (${r.file.id}): identity file ${identityPath} (0600), config ${configPath}\n` +
            `run it with: nullport router run --config ${o.output}\n`,
        )
      },
    )

  router
    .command('run')
    .description('run an edge router (JSON logs to stdout) until SIGINT or SIGTERM')
    .requiredOption('-c, --config <file>', 'router config file (from `nullport router enroll`)')
    .action(async (o: { config: string }) => {
      const config = await loadRouterConfig(o.config)
      const handle = await startRouter({
        identity: config.identityFile,
        listen: config.listen,
        advertise: config.advertise,
        ...(config.metricsListen !== undefined ? { metricsListen: config.metricsListen } : {}),
        ...(config.logLevel !== undefined ? { logLevel: config.logLevel } : {}),
        ...(config.renew !== undefined ? { renew: config.renew } : {}),
        ...(config.maxConnections !== undefined ? { maxConnections: config.maxConnections } : {}),
        ...(config.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: config.handshakeTimeoutMs } : {}),
        ...(config.maxPreAuthPerAddress !== undefined
          ? { maxPreAuthPerAddress: config.maxPreAuthPerAddress }
          : {}),
      })
      await new Promise<void>((resolveStop) => {
        let stopping = false
        const onSignal = (): void => {
          if (stopping) return
          stopping = true
          handle.stop().then(resolveStop, resolveStop)
        }
        process.once('SIGINT', onSignal)
        process.once('SIGTERM', onSignal)
      })
    })
}
