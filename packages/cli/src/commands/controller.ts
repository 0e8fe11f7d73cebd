/**
 * `nullport controller run [--config FILE] [--data DIR] [--listen HOST:PORT] [--advertise URL]`
 * and `nullport controller init --admin-user NAME --admin-password-file FILE`.
 *
 * The first admin comes from `--admin-user` + `--admin-password-file`, or the environment
 * (`NULLPORT_ADMIN_USER`, `NULLPORT_ADMIN_PASSWORD`), or `controller init`. There is no built-in
 * password; with no admin at all `run` refuses to start (ERR_NO_ADMIN).
 */
import { readFileSync } from 'node:fs'
import { createContext, loadConfig, startController } from '@nullport/controller'
import type { Command } from 'commander'
import { CliError } from '../errors.js'

interface CommonOpts {
  config?: string
  data?: string
  database?: string
  adminUser?: string
  adminPasswordFile?: string
  logLevel?: string
}

function adminCreds(o: CommonOpts): { username?: string; password?: string } {
  let username = o.adminUser
  let password: string | undefined
  if (o.adminPasswordFile !== undefined) {
    if (!username)
      throw new CliError('ERR_CLI_USAGE', '--admin-password-file needs --admin-user NAME', {
        flag: '--admin-user',
      })
    try {
      password = readFileSync(o.adminPasswordFile, 'utf8').replace(/\r?\n$/, '')
    } catch (err) {
      throw new CliError(
        'ERR_CLI_FILE',
        `cannot read --admin-password-file ${o.adminPasswordFile}: ${(err as Error).message}`,
        {
          file: o.adminPasswordFile,
        },
      )
    }
  } else if (username) {
    throw new CliError(
      'ERR_CLI_USAGE',
      '--admin-user needs --admin-password-file FILE (the password is never a flag)',
      {
        flag: '--admin-password-file',
      },
    )
  }
  if (!username && process.env.NULLPORT_ADMIN_USER) {
    username = process.env.NULLPORT_ADMIN_USER
    password = process.env.NULLPORT_ADMIN_PASSWORD
    if (password === undefined)
      throw new CliError('ERR_CLI_USAGE', 'NULLPORT_ADMIN_USER is set but NULLPORT_ADMIN_PASSWORD is not', {
        env: 'NULLPORT_ADMIN_PASSWORD',
      })
  }
  return { username, password }
}

function common(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'controller config file (JSON)')
    .option('--data <dir>', 'data directory (default ~/.nullport/controller)')
    .option('--database <url>', '"sqlite" (default) or a postgres:// URL')
    .option('--admin-user <name>', 'first admin user name (only used when no admin exists)')
    .option('--admin-password-file <file>', "file holding the first admin's password")
    .option('--log-level <level>', 'trace|debug|info|warn|error', undefined)
}

export function register(program: Command): void {
  const controller = program.command('controller').description('run and initialize the Nullport controller')

  common(
    controller
      .command('run')
      .description('run the controller (HTTPS: management, client and fabric APIs)')
      .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:1280; port 0 = any free port)')
      .option(
        '--advertise <url>',
        'base URL clients use to reach this controller (default https://<listen>)',
      ),
  ).action(async (o: CommonOpts & { listen?: string; advertise?: string }) => {
    const config = loadConfig({
      configFile: o.config,
      dataDir: o.data,
      listen: o.listen,
      advertise: o.advertise,
      database: o.database,
      logLevel: o.logLevel,
    })
    const running = await startController({ config, admin: adminCreds(o) })
    await new Promise<void>((resolve) => {
      let stopping = false
      const stop = (signal: string) => {
        if (stopping) return
        stopping = true
        running.ctx.log('server').info({ signal }, 'signal received')
        const force = setTimeout(() => {
          running.ctx.log('server').error('shutdown took longer than 10 s: exiting')
          process.exit(1)
        }, 10_000)
        force.unref()
        running.close().then(resolve, (err) => {
          running.ctx.log('server').error({ err }, 'shutdown failed')
          process.exitCode = 1
          resolve()
        })
      }
      process.once('SIGINT', () => stop('SIGINT'))
      process.once('SIGTERM', () => stop('SIGTERM'))
    })
  })

  common(
    controller.command('init').description('prepare the data directory and create the first admin'),
  ).action(async (o: CommonOpts) => {
    const creds = adminCreds(o)
    const config = loadConfig({
      configFile: o.config,
      dataDir: o.data,
      database: o.database,
      logLevel: o.logLevel ?? 'warn',
    })
    const ctx = await createContext(config)
    try {
      const r = await ctx.core.ensureAdmin(creds)
      process.stdout.write(
        r.created
          ? `created admin ${r.name} in ${config.database === 'sqlite' ? config.dataDir : 'the database'}\n`
          : `an admin already exists (${r.name}): nothing to do\n`,
      )
    } finally {
      await ctx.store.close()
    }
  })
}
