/**
 * A real controller process on 127.0.0.1:0 with a fresh data directory: started through the CLI
 * (`nullport controller run`, the default) or through the controller package alone (runner
 * `library`, for the controller's own tests). Resolves once it logs
 * `{"msg":"controller listening","url":...}`, with an HTTPS helper that trusts the network CA
 * and signs in as the admin.
 *
 * @example
 * const c = await spawnController()
 * const r = await c.api('POST', 'identities', { name: 'alice' })   // -> /edge/management/v1/identities
 * assert.equal(r.status, 201)
 * const svc = await c.data('POST', 'services', { name: 'echo' })   // asserts 2xx, resolves to `data`
 * await c.stop()
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ApiResponse, httpsJson } from './https-json.js'
import { spawnLogged, trackChild } from './logged-process.js'
import { CLI_BIN } from './paths.js'

const LIBRARY_RUNNER = fileURLToPath(new URL('./controller-runner.js', import.meta.url))

export interface SpawnControllerOptions {
  /**
   * `cli` (default): `nullport controller run`. `library`: the controller package's
   * startController() in the test kit's runner, without the CLI.
   */
  runner?: 'cli' | 'library'
  /** Reuse a data directory (e.g. to restart); default: a fresh temp dir, removed by stop(). */
  dataDir?: string
  /** Admin credentials given through NULLPORT_ADMIN_USER / NULLPORT_ADMIN_PASSWORD (default admin / random). Pass `null` to give none. */
  adminUser?: string | null
  adminPassword?: string
  /** `--config FILE`. */
  configFile?: string
  /** Extra arguments (e.g. ['--config', file]). */
  args?: string[]
  /** Extra environment variables. */
  env?: Record<string, string>
  /** `--listen` (default 127.0.0.1:0). */
  listen?: string
  /** `--database` (default sqlite in dataDir). */
  database?: string
  /** Milliseconds to wait for "controller listening" (default 30000). */
  startTimeoutMs?: number
}

export interface ApiOptions {
  /** Session token to use instead of the admin's; `null` sends no credentials. */
  token?: string | null
  headers?: Record<string, string>
  /** Send this raw string as the body (e.g. malformed JSON). */
  raw?: string | Buffer
}

export interface TestController {
  url: string
  dataDir: string
  adminUser: string
  adminPassword: string
  /** The network CA bundle (root, then intermediate) the controller's TLS cert chains to. */
  caPem: string
  proc: ChildProcess
  /** Every stdout line so far (JSON logs). */
  logs: string[]
  /** The last 64 KiB of its stderr. */
  stderr(): string
  /**
   * HTTPS request trusting `caPem`, authenticated as the admin (session created on first use).
   * A `path` without a leading `/` is relative to `/edge/management/v1/`.
   */
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  api<T = any>(method: string, path: string, body?: unknown, opts?: ApiOptions): Promise<ApiResponse<T>>
  /** A management API call that must succeed (asserts a 2xx status); resolves to the body's `data`. */
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  data<T = any>(method: string, path: string, body?: unknown): Promise<T>
  /** Logs in (username/password) and returns the session token. */
  login(username?: string, password?: string): Promise<string>
  /** SIGTERM, wait for exit; removes the data dir unless it was given or `keepData` is set. */
  stop(opts?: { keepData?: boolean }): Promise<number | null>
}

function findCa(dataDir: string): string | null {
  for (const f of [join(dataDir, 'pki', 'ca-bundle.pem'), join(dataDir, 'pki-temp', 'ca.crt')]) {
    if (existsSync(f)) return readFileSync(f, 'utf8')
  }
  return null
}

/** The command line and environment of a controller process. */
function command(
  o: SpawnControllerOptions,
  dataDir: string,
): { args: string[]; env: Record<string, string>; adminUser: string | null; adminPassword: string } {
  const adminUser = o.adminUser === undefined ? 'admin' : o.adminUser
  const adminPassword = o.adminPassword ?? `pw-${randomBytes(12).toString('hex')}`
  const args = o.runner === 'library' ? [LIBRARY_RUNNER] : [CLI_BIN, 'controller', 'run']
  args.push('--data', dataDir, '--listen', o.listen ?? '127.0.0.1:0')
  if (o.configFile) args.push('--config', o.configFile)
  if (o.database) args.push('--database', o.database)
  args.push(...(o.args ?? []))
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...o.env }
  delete env.NULLPORT_ADMIN_USER
  delete env.NULLPORT_ADMIN_PASSWORD
  if (adminUser !== null) {
    env.NULLPORT_ADMIN_USER = adminUser
    env.NULLPORT_ADMIN_PASSWORD = adminPassword
  }
  return { args, env, adminUser, adminPassword }
}

export async function spawnController(opts: SpawnControllerOptions = {}): Promise<TestController> {
  const ownDir = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'nullport-ctrl-'))
  const { args, env, adminUser, adminPassword } = command(opts, dataDir)
  const proc = spawnLogged(process.execPath, args, { name: 'controller', env, maxLines: 100_000 })
  let url: string
  try {
    const listening = await proc.waitJson(
      (j) => j.msg === 'controller listening' && typeof j.url === 'string',
      opts.startTimeoutMs ?? 30_000,
      '"controller listening"',
    )
    url = listening.url as string
  } catch (err) {
    await proc.stop('SIGKILL')
    if (ownDir) rmSync(dataDir, { recursive: true, force: true })
    throw err
  }
  const caPem = findCa(dataDir)
  if (!caPem) {
    await proc.stop('SIGKILL')
    throw new Error(`no CA bundle found in ${dataDir}`)
  }
  let token: string | null = null
  const c: TestController = {
    url,
    dataDir,
    adminUser: adminUser ?? '',
    adminPassword,
    caPem,
    proc: proc.child,
    logs: proc.lines,
    stderr: proc.stderr,
    async login(username = adminUser ?? '', password = adminPassword) {
      const r = await httpsJson(`${url}/edge/management/v1/authenticate`, 'POST', {
        ca: caPem,
        body: JSON.stringify({ username, password }),
      })
      if (r.status !== 200) throw new Error(`login as ${username} failed: ${r.status} ${r.text}`)
      return r.body.data.token as string
    },
    async api(method, path, body, o = {}) {
      const full = path.startsWith('/') ? `${url}${path}` : `${url}/edge/management/v1/${path}`
      const headers: Record<string, string> = { ...o.headers }
      if (o.token !== null) {
        let t = o.token
        if (t === undefined) {
          token ??= await c.login()
          t = token
        }
        headers.authorization = `Bearer ${t}`
      }
      const raw = o.raw ?? (body === undefined ? undefined : JSON.stringify(body))
      return httpsJson(full, method, { ca: caPem, headers, ...(raw === undefined ? {} : { body: raw }) })
    },
    async data(method, path, body) {
      const r = await c.api(method, path, body)
      assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.text}`)
      return r.body?.data
    },
    async stop(so = {}) {
      const code = await proc.stop('SIGTERM', 10_000)
      if (ownDir && !so.keepData) rmSync(dataDir, { recursive: true, force: true })
      return code
    },
  }
  return c
}

/** Runs the controller until it exits on its own (start-up failures); kills it after 30 s. */
export function runControllerToExit(
  opts: SpawnControllerOptions & { dataDir: string },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { args, env } = command(opts, opts.dataDir)
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  trackChild(proc)
  let stdout = ''
  let stderr = ''
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
  })
  proc.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  const t = setTimeout(() => proc.kill('SIGKILL'), 30_000)
  return new Promise((resolve) =>
    proc.once('close', (code) => {
      clearTimeout(t)
      resolve({ code, stdout, stderr })
    }),
  )
}
