/**
 * `nullport quickstart`: a controller (SQLite in HOME/controller) and an edge router
 * (HOME/router) in this one process, the first admin (password generated, printed once, kept in
 * HOME/admin.password, 0600), and the CLI logged in (the CLI's own session store, cli.json), so
 * `nullport edge ...` works at once from another terminal. `--demo` then builds the seed's story
 * (see demo.ts). Everything is reused on the next start.
 *
 * Layout of HOME (default `$NULLPORT_HOME/quickstart`, i.e. `~/.nullport/quickstart`):
 *
 *   controller/              the controller's data directory (controller.db, pki/)
 *   router/quickstart-router.json   the router's identity file (0600)
 *   admin.password           the admin's password (0600)
 *   demo/                    the demo identities (family.tools.host.json, family.tools.client.json)
 *
 * The CLI session goes to `$NULLPORT_HOME/cli.json` (default `~/.nullport/cli.json`) when HOME is
 * the default; with `--home DIR` it goes to `DIR/cli.json` and the quickstart prints
 * `export NULLPORT_HOME=DIR` for other terminals.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { loadConfig, type RunningController, SYSTEM_ACTOR, startController } from '@nullport/controller'
import {
  type IdentityFile,
  loadIdentityFile,
  ProtocolError,
  saveIdentityFile,
  writeSecretFile,
} from '@nullport/protocol'
import { type RouterHandle, startRouter } from '@nullport/router'
import { enroll } from '@nullport/sdk'
import { CliError } from '../errors.js'
import { type CliSession, loadCliConfig, nullportHome, saveCliConfig } from '../lib/config.js'
import { ApiError, httpRequest, ManagementClient, MGMT, parseEnvelope } from '../lib/rest.js'

export const ADMIN_USER = 'admin'
export const ROUTER_NAME = 'quickstart-router'
export const DEFAULT_CONTROLLER_PORT = 1280
export const DEFAULT_ROUTER_PORT = 3022

export interface QuickstartOptions {
  /** The quickstart's directory. Default `$NULLPORT_HOME/quickstart` (`~/.nullport/quickstart`). */
  home?: string
  /** Controller HTTPS port on 127.0.0.1. Default 1280; 0 picks a free port. */
  controllerPort?: number
  /** Router TLS port on 127.0.0.1. Default 3022; 0 picks a free port. */
  routerPort?: number
  /** pino level of the controller and router logs (JSON lines on stdout). Default `warn`. */
  logLevel?: string
  /** Where the human-readable lines go. Default process.stdout. */
  out?: (line: string) => void
}

export interface Quickstart {
  home: string
  /** The directory whose cli.json holds the session (what NULLPORT_HOME must be for the CLI). */
  cliHome: string
  url: string
  controller: RunningController
  router: RouterHandle
  admin: { name: string; passwordFile: string }
  /** A management client with the quickstart's admin session. */
  client: ManagementClient
  /** Rewrites an identity file of HOME to point at the current controller URL if it moved (port 0). */
  currentIdentity(path: string): Promise<IdentityFile>
  stop(): Promise<void>
}

function portInUse(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; i++) {
    if (e.code === 'EADDRINUSE') return true
    e = e.cause as typeof e
  }
  return /EADDRINUSE/.test(String((err as Error)?.message ?? ''))
}

function inUseError(what: 'controller' | 'router', port: number, flag: string, err: unknown): CliError {
  return new CliError(
    'ERR_CLI_PORT_IN_USE',
    `port ${port} (${what}) is already in use on 127.0.0.1: stop the program using it (is another quickstart running?) or choose another port with ${flag} PORT (0 picks a free one)`,
    { port, flag, component: what },
    { cause: err },
  )
}

/** Logs in over HTTPS with the CA bundle of the controller's data dir, like `nullport edge login --ca`. */
async function login(url: string, ca: string, username: string, password: string): Promise<CliSession> {
  const r = await httpRequest({
    method: 'POST',
    url: `${url}${MGMT}/authenticate`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
    ca,
  })
  const env = parseEnvelope<{ token: string; expiresAt: string }>(r, 'login')
  return { url, token: env.data.token, expiresAt: env.data.expiresAt, ca, username }
}

/** Starts the quickstart network (without the demo). */
export async function startQuickstart(o: QuickstartOptions = {}): Promise<Quickstart> {
  const out = o.out ?? ((l: string) => process.stdout.write(`${l}\n`))
  const explicitHome = o.home !== undefined
  const home = resolve(o.home ?? join(nullportHome(), 'quickstart'))
  // With --home the CLI state lives in that directory too (isolated); by default in NULLPORT_HOME.
  const cliHome = explicitHome ? home : nullportHome()
  if (explicitHome) process.env.NULLPORT_HOME = home
  const controllerPort = o.controllerPort ?? DEFAULT_CONTROLLER_PORT
  const routerPort = o.routerPort ?? DEFAULT_ROUTER_PORT
  const logLevel = o.logLevel ?? 'warn'
  await mkdir(home, { recursive: true, mode: 0o700 })
  const dataDir = join(home, 'controller')
  const passwordFile = join(home, 'admin.password')

  let savedPassword: string | undefined
  try {
    savedPassword = (await readFile(passwordFile, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const newPassword = savedPassword ? undefined : randomBytes(18).toString('base64url')

  // 1. controller
  const config = loadConfig({ dataDir, listen: `127.0.0.1:${controllerPort}`, logLevel })
  let controller: RunningController
  try {
    controller = await startController({
      config,
      admin: { username: ADMIN_USER, password: savedPassword ?? newPassword },
    })
  } catch (err) {
    if (portInUse(err)) throw inUseError('controller', controllerPort, '--controller-port', err)
    throw err
  }
  const cleanup: Array<() => Promise<void>> = [() => controller.close()]
  const undo = async () => {
    for (const f of cleanup.reverse()) await f().catch(() => undefined)
  }
  try {
    const url = controller.url
    const ca = await readFile(join(dataDir, 'pki', 'ca-bundle.pem'), 'utf8')

    // 2. the admin: created now (password new), or existing (saved password, or a new one set)
    let adminName = ADMIN_USER
    let password = savedPassword ?? newPassword!
    let printedPassword: string | undefined
    let session: CliSession
    try {
      session = await login(url, ca, adminName, password)
      if (newPassword) printedPassword = newPassword
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      // the admin exists but the saved password is gone or does not work
      if (savedPassword !== undefined)
        throw new CliError(
          'ERR_CLI_CONFIG',
          `the admin password saved in ${passwordFile} is refused by the controller (${err.code}): remove that file and start the quickstart again to set a new one`,
          { file: passwordFile },
          { cause: err },
        )
      const existing = await controller.ctx.core.ensureAdmin({})
      adminName = existing.name ?? ADMIN_USER
      password = newPassword!
      await controller.ctx.core.updateIdentity(
        adminName,
        { name: adminName, password } as Parameters<typeof controller.ctx.core.updateIdentity>[1],
        SYSTEM_ACTOR,
      )
      session = await login(url, ca, adminName, password)
      printedPassword = password
    }
    if (printedPassword) await writeSecretFile(passwordFile, `${printedPassword}\n`)
    const cfg = await loadCliConfig()
    cfg.session = session
    await saveCliConfig(cfg)
    const client = new ManagementClient(session)

    const currentIdentity = async (path: string): Promise<IdentityFile> => {
      const f = await loadIdentityFile(path)
      if (f.controller === url) return f
      const moved = { ...f, controller: url }
      await saveIdentityFile(path, moved)
      return moved
    }

    // 3. the edge router: created and enrolled once, its identity file reused
    const routerFile = join(home, 'router', `${ROUTER_NAME}.json`)
    await mkdir(join(home, 'router'), { recursive: true, mode: 0o700 })
    try {
      await currentIdentity(routerFile)
    } catch (err) {
      if (!(err instanceof ProtocolError) || err.code !== 'ERR_IDENTITY_FILE_MISSING') throw err
      let jwt: string
      try {
        const r = await client.request<{ enrollment?: { jwt?: string } }>('POST', '/edge-routers', {
          body: { name: ROUTER_NAME, roleAttributes: ['quickstart'] },
        })
        jwt = r.data.enrollment?.jwt ?? ''
      } catch (e) {
        if (!(e instanceof ApiError) || e.code !== 'ERR_NAME_IN_USE') throw e
        const r = await client.request<{ enrollment?: { jwt?: string }; jwt?: string }>(
          'POST',
          `/edge-routers/${ROUTER_NAME}/re-enroll`,
          { body: {} },
        )
        jwt = r.data.enrollment?.jwt ?? r.data.jwt ?? ''
      }
      await enroll({
        jwt,
        output: routerFile,
        overwrite: true,
        // the host is what matters (a SAN of the router certificate); the port is reported at each start
        advertise: `127.0.0.1:${routerPort || DEFAULT_ROUTER_PORT}`,
      })
    }
    let router: RouterHandle
    try {
      router = await startRouter({
        // by path: the router rewrites the file when it renews its certificate
        identity: routerFile,
        listen: `127.0.0.1:${routerPort}`,
        advertise: '127.0.0.1',
        logLevel,
      })
    } catch (err) {
      if (portInUse(err)) throw inUseError('router', routerPort, '--router-port', err)
      throw err
    }
    cleanup.push(() => router.stop())
    await router.ready

    // keep the CLI session alive while the quickstart runs (the controller extends used sessions)
    const keepAlive = setInterval(() => {
      void (async () => {
        const c = await loadCliConfig()
        if (c.session?.url !== url || c.session.username !== adminName) return
        try {
          await new ManagementClient(c.session).request('GET', '/identities', {
            query: [['limit', '1']],
          })
        } catch {
          const s = await login(url, ca, adminName, password)
          const c2 = await loadCliConfig()
          if (c2.session?.url === url) {
            c2.session = s
            await saveCliConfig(c2)
          }
        }
      })().catch(() => undefined)
    }, 5 * 60_000)
    keepAlive.unref()
    cleanup.push(async () => clearInterval(keepAlive))

    out(`nullport quickstart (home ${home})`)
    out(`  controller  ${url}   data ${dataDir}`)
    out(`  router      ${ROUTER_NAME} listening on ${router.address}`)
    if (printedPassword) {
      out(`  admin       ${adminName}  password: ${printedPassword}`)
      out(`              (printed once; saved in ${passwordFile}, mode 0600)`)
    } else {
      out(`  admin       ${adminName}  (password in ${passwordFile})`)
    }
    out(`  CLI         logged in as ${adminName}: session in ${join(cliHome, 'cli.json')}`)
    return {
      home,
      cliHome,
      url,
      controller,
      router,
      admin: { name: adminName, passwordFile },
      client,
      currentIdentity,
      stop: undo,
    }
  } catch (err) {
    await undo()
    throw err
  }
}
