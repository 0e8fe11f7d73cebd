/**
 * `nullport quickstart [--demo] [--home DIR] [--controller-port N] [--router-port N]`: a whole
 * network in one process (controller + edge router), the admin created and the CLI logged in;
 * `--demo` adds the seed's dark "Tool Pool" site. Runs until SIGINT/SIGTERM. See src/quickstart/.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { CliError } from '../errors.js'
import { nullportHome } from '../lib/config.js'
import { CLIENT_IDENTITY, type Demo, INTERCEPT_ADDRESS, runDemo, SERVICE } from '../quickstart/demo.js'
import { DEFAULT_CONTROLLER_PORT, DEFAULT_ROUTER_PORT, startQuickstart } from '../quickstart/run.js'

interface QuickstartOpts {
  home?: string
  controllerPort: string
  routerPort: string
  demo?: boolean
  logLevel: string
}

function port(value: string, flag: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535)
    throw new CliError(
      'ERR_CLI_USAGE',
      `${flag} "${value}" is not a port: use 0-65535 (0 picks a free one)`,
      {
        flag,
      },
    )
  return Number(value)
}

/** `npx nullport` inside the repository (the bin is not on PATH there), `nullport` elsewhere. */
function nullportCommand(): string {
  return existsSync(join(process.cwd(), 'node_modules', '.bin', 'nullport')) ? 'npx nullport' : 'nullport'
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

/** Registers the `nullport quickstart ...` commands. */
export function register(program: Command): void {
  program
    .command('quickstart')
    .description(
      'run a controller and an edge router in one process, create the admin and log the CLI in (--demo: a dark web app, end to end)',
    )
    .option('--demo', 'also build the Tool Pool demo: service, policies, a dark Express app, a client fetch')
    .option(
      '--home <dir>',
      'data directory (default ~/.nullport/quickstart); when given, the CLI session is kept there too (export NULLPORT_HOME=DIR)',
    )
    .option(
      '--controller-port <port>',
      'controller HTTPS port on 127.0.0.1 (0 = any free port)',
      String(DEFAULT_CONTROLLER_PORT),
    )
    .option(
      '--router-port <port>',
      'edge router port on 127.0.0.1 (0 = any free port)',
      String(DEFAULT_ROUTER_PORT),
    )
    .option('--log-level <level>', `controller and router logs (JSON lines): ${LOG_LEVELS.join('|')}`, 'warn')
    .action(async (o: QuickstartOpts) => {
      const controllerPort = port(o.controllerPort, '--controller-port')
      const routerPort = port(o.routerPort, '--router-port')
      if (!LOG_LEVELS.includes(o.logLevel))
        throw new CliError(
          'ERR_CLI_USAGE',
          `--log-level "${o.logLevel}": use one of ${LOG_LEVELS.join(', ')}`,
          {
            flag: '--log-level',
          },
        )
      const out = (l: string): void => {
        process.stdout.write(`${l}\n`)
      }
      const cmd = nullportCommand()
      const defaultCliHome = nullportHome()
      // a signal during the setup stops everything once the setup is done
      const signalled = new Promise<string>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'))
        process.once('SIGTERM', () => resolve('SIGTERM'))
      })
      const qs = await startQuickstart({
        ...(o.home !== undefined ? { home: o.home } : {}),
        controllerPort,
        routerPort,
        logLevel: o.logLevel,
        out,
      })
      let demo: Demo | undefined
      let stopping: Promise<void> | undefined
      const stopAll = (): Promise<void> => {
        stopping ??= (async () => {
          await demo?.stop()
          await qs.stop()
        })()
        return stopping
      }
      try {
        if (o.demo) demo = await runDemo(qs, out, cmd)
      } catch (err) {
        await stopAll()
        throw err
      }
      const envLine = qs.cliHome !== defaultCliHome ? `export NULLPORT_HOME=${qs.cliHome}` : undefined
      out('')
      out('next, in another terminal:')
      if (envLine) out(`  ${envLine}`)
      out(`  ${cmd} edge list services`)
      out(`  ${cmd} edge list identities`)
      if (demo) {
        out(`  ${cmd} edge policy-advisor identities ${CLIENT_IDENTITY} ${SERVICE}`)
        out(`  ${cmd} tunnel run -i ${demo.clientFile} --socks 127.0.0.1:1080`)
        out(`  curl --socks5-hostname 127.0.0.1:1080 http://${INTERCEPT_ADDRESS}/`)
      } else {
        out(`  ${cmd} edge create identity device web01 -a web.servers -o web01.jwt`)
      }
      out(`controller ${qs.url} is running; Ctrl-C stops everything (the data stays in ${qs.home})`)
      const signal = await signalled
      out(`${signal}: stopping`)
      const force = setTimeout(() => {
        process.stderr.write('nullport: quickstart shutdown took longer than 10 s: exiting\n')
        process.exit(1)
      }, 10_000)
      force.unref()
      await stopAll()
      clearTimeout(force)
      out('stopped')
    })
}
