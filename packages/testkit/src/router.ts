/**
 * Edge routers for tests: creates the edge router through the management API, enrolls it and
 * runs it as a real process (`nullport router enroll`, then `nullport router run --config ...`)
 * or in this process (`startRouter`, needed for `testHooks`). Optionally creates `#all`
 * edge-router-policy and service-edge-router-policy so every identity and service may use every
 * router.
 *
 * @example
 * const ctl = await spawnController()
 * const r = await startTestRouter(ctl, { name: 'r1', allPolicies: true })
 * // ... r.address is 127.0.0.1:PORT
 * await r.stop()
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type RouterTestHooks, startRouter } from '@nullport/router'
import { enroll } from '@nullport/sdk'
import { runCli } from './cli.js'
import type { TestController } from './controller.js'
import { spawnLogged } from './logged-process.js'
import { CLI_BIN } from './paths.js'

export interface TestRouterOptions {
  name: string
  /** Run in this process (required for testHooks). Default false: a real `nullport router run` process. */
  inProcess?: boolean
  testHooks?: RouterTestHooks
  /** Create `#all` edge-router-policy and service-edge-router-policy (idempotent). Default false. */
  allPolicies?: boolean
  /** Role attributes of the edge router. */
  roleAttributes?: string[]
  /** Extra startRouter options for in-process routers (limits, timeouts). */
  routerOptions?: Record<string, unknown>
  /** Log level of the router. Default `warn` (in-process) / `info` (process). */
  logLevel?: string
  /** Serve Prometheus metrics on 127.0.0.1:0 (see `metricsAddress`). */
  metrics?: boolean
}

export interface TestRouter {
  id: string
  name: string
  /** 127.0.0.1:PORT */
  address: string
  /** 127.0.0.1:PORT of GET /metrics when `metrics` was asked for. */
  metricsAddress: string | null
  /** Directory with router.json and router.identity.json. */
  dir: string
  /** Path of the router identity file (its cert/key can be used to open links in tests). */
  identityPath: string
  /** stdout lines (process mode). */
  logs: string[]
  /** The child process (process mode). */
  process: ChildProcess | null
  stop(): Promise<void>
}

/** Creates `#all` -> `#all` edge-router-policy and service-edge-router-policy (an existing one is kept). */
export async function ensureAllRouterPolicies(c: TestController): Promise<void> {
  const create = async (path: string, body: Record<string, unknown>): Promise<void> => {
    const r = await c.api('POST', path, body)
    if (r.status >= 200 && r.status < 300) return
    const code = (r.body as { error?: { code?: string } })?.error?.code ?? ''
    if (r.status !== 409 && !/IN_USE|EXISTS/.test(code))
      throw new Error(`POST ${path}: HTTP ${r.status} ${code} ${r.text.slice(0, 300)}`)
  }
  await create('edge-router-policies', {
    name: 'test-all-edge-routers',
    semantic: 'AnyOf',
    identityRoles: ['#all'],
    edgeRouterRoles: ['#all'],
  })
  await create('service-edge-router-policies', {
    name: 'test-all-service-edge-routers',
    semantic: 'AnyOf',
    serviceRoles: ['#all'],
    edgeRouterRoles: ['#all'],
  })
}

/** Creates, enrolls and starts an edge router against `controller`. */
export async function startTestRouter(
  controller: TestController,
  opts: TestRouterOptions,
): Promise<TestRouter> {
  if (opts.testHooks && opts.inProcess === false) throw new Error('startTestRouter: testHooks need inProcess')
  const inProcess = opts.inProcess ?? opts.testHooks !== undefined
  if (opts.allPolicies) await ensureAllRouterPolicies(controller)
  const created = await controller.data<{ id: string; name: string; enrollment?: { jwt?: string } }>(
    'POST',
    'edge-routers',
    { name: opts.name, ...(opts.roleAttributes ? { roleAttributes: opts.roleAttributes } : {}) },
  )
  const jwt =
    created.enrollment?.jwt ??
    (await controller.data<{ enrollment?: { jwt?: string } }>('GET', `edge-routers/${created.id}`)).enrollment
      ?.jwt
  if (!jwt) throw new Error(`the controller returned no enrollment token for edge router ${opts.name}`)
  const dir = await mkdtemp(join(tmpdir(), `nullport-router-${opts.name}-`))
  const jwtPath = join(dir, 'router.jwt')
  const configPath = join(dir, 'router.json')
  const identityPath = join(dir, 'router.identity.json')
  await writeFile(jwtPath, jwt)
  try {
    if (inProcess) {
      await enroll({ jwt, output: identityPath, advertise: '127.0.0.1:3022' })
      const handle = await startRouter({
        identity: identityPath,
        listen: '127.0.0.1:0',
        advertise: '127.0.0.1',
        logLevel: opts.logLevel ?? 'warn',
        ...(opts.testHooks ? { testHooks: opts.testHooks } : {}),
        ...(opts.metrics ? { metricsListen: '127.0.0.1:0' } : {}),
        ...(opts.routerOptions ?? {}),
      })
      await handle.ready
      return {
        id: handle.id,
        name: handle.name,
        address: handle.address,
        metricsAddress: handle.metricsAddress,
        dir,
        identityPath,
        logs: [],
        process: null,
        async stop() {
          await handle.stop()
          await rm(dir, { recursive: true, force: true })
        },
      }
    }
    const r = await runCli(
      [
        'router',
        'enroll',
        jwtPath,
        '--advertise',
        '127.0.0.1',
        '--listen',
        '127.0.0.1:0',
        ...(opts.metrics ? ['--metrics', '127.0.0.1:0'] : []),
        '-o',
        configPath,
      ],
      { timeoutMs: 30_000 },
    )
    if (r.code !== 0) throw new Error(`nullport router enroll failed (${r.code}): ${r.stderr}${r.stdout}`)
    if (opts.logLevel) {
      const cfg = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
      cfg.logLevel = opts.logLevel
      await writeFile(configPath, JSON.stringify(cfg))
    }
    const proc = spawnLogged(process.execPath, [CLI_BIN, 'router', 'run', '--config', configPath], {
      name: `router ${opts.name}`,
      maxLines: 5000,
    })
    let listening: { address: string; metrics?: string | null }
    try {
      listening = (await proc.waitJson(
        (j) => j.msg === 'router listening' && typeof j.address === 'string' && j.address !== '',
        30_000,
        '"router listening"',
      )) as { address: string; metrics?: string | null }
    } catch (err) {
      proc.child.kill('SIGKILL')
      throw err
    }
    return {
      id: created.id,
      name: created.name,
      address: listening.address,
      metricsAddress: listening.metrics ?? null,
      dir,
      identityPath,
      logs: proc.lines,
      process: proc.child,
      async stop() {
        await proc.stop('SIGTERM', 8000)
        await rm(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}
