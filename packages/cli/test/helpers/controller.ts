/**
 * Test harness: runs the REAL controller (`node packages/cli/bin/nullport.js controller run`) on
 * 127.0.0.1:0 with a fresh data directory, waits for `{"msg":"controller listening","url":...}`,
 * and gives an authenticated HTTPS helper that trusts the network CA.
 *
 *   const c = await spawnController()
 *   const r = await c.api('POST', 'identities', { name: 'alice' })   // -> /edge/management/v1/identities
 *   assert.equal(r.status, 201)
 *   await c.stop()
 *
 * OWNER: controller core. The signature is stable; other packages' tests depend on it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CLI_BIN = fileURLToPath(new URL('../../../bin/nullport.js', import.meta.url))

export interface SpawnControllerOptions {
  /** Reuse a data directory (e.g. to restart); default: a fresh temp dir, removed by stop(). */
  dataDir?: string
  /** Admin credentials given through NULLPORT_ADMIN_USER / NULLPORT_ADMIN_PASSWORD (default admin / random). Pass `null` to give none. */
  adminUser?: string | null
  adminPassword?: string
  /** Extra CLI args after `controller run` (e.g. ['--config', file]). */
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

// biome-ignore lint/suspicious/noExplicitAny: test convenience: bodies are JSON of any shape
export interface ApiResponse<T = any> {
  status: number
  body: T
  headers: Record<string, string | string[] | undefined>
  /** The raw response text. */
  text: string
}

export interface ApiOptions {
  /** Session token to use instead of the admin's; `null` sends no credentials. */
  token?: string | null
  headers?: Record<string, string>
  /** Send this raw string as the body (e.g. malformed JSON). */
  raw?: string | Buffer
}

export interface RunningTestController {
  url: string
  dataDir: string
  adminUser: string
  adminPassword: string
  /** The network CA bundle (root, then intermediate) the controller's TLS cert chains to. */
  caPem: string
  proc: ChildProcess
  /** Every stdout line so far (JSON logs). */
  logs: string[]
  /**
   * HTTPS request trusting `caPem`, authenticated as the admin (session created on first use).
   * A `path` without a leading `/` is relative to `/edge/management/v1/`.
   */
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  api<T = any>(method: string, path: string, body?: unknown, opts?: ApiOptions): Promise<ApiResponse<T>>
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

export async function httpsJson(
  url: string,
  method: string,
  o: { ca: string; headers?: Record<string, string>; body?: string | Buffer; cert?: string; key?: string },
): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: o.ca,
        cert: o.cert,
        key: o.key,
        headers: {
          accept: 'application/json',
          ...(o.body !== undefined
            ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(o.body)) }
            : {}),
          ...o.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let body: unknown = text
          try {
            body = text ? JSON.parse(text) : null
          } catch {}
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers, text })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    if (o.body !== undefined) req.end(o.body)
    else req.end()
  })
}

export async function spawnController(opts: SpawnControllerOptions = {}): Promise<RunningTestController> {
  const ownDir = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'nullport-ctrl-'))
  const adminUser = opts.adminUser === undefined ? 'admin' : opts.adminUser
  const adminPassword = opts.adminPassword ?? `pw-${randomBytes(12).toString('hex')}`
  const args = [CLI_BIN, 'controller', 'run', '--data', dataDir, '--listen', opts.listen ?? '127.0.0.1:0']
  if (opts.database) args.push('--database', opts.database)
  args.push(...(opts.args ?? []))
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...opts.env }
  delete env.NULLPORT_ADMIN_USER
  delete env.NULLPORT_ADMIN_PASSWORD
  if (adminUser !== null) {
    env.NULLPORT_ADMIN_USER = adminUser
    env.NULLPORT_ADMIN_PASSWORD = adminPassword
  }
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const logs: string[] = []
  let stderr = ''
  proc.stderr!.setEncoding('utf8')
  proc.stderr!.on('data', (d: string) => {
    stderr += d
    if (stderr.length > 64 * 1024) stderr = stderr.slice(-32 * 1024)
  })
  let buf = ''
  let onLine: ((line: string) => void) | undefined
  proc.stdout!.setEncoding('utf8')
  proc.stdout!.on('data', (d: string) => {
    buf += d
    let i = buf.indexOf('\n')
    while (i >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      if (logs.length < 100_000) logs.push(line)
      onLine?.(line)
      i = buf.indexOf('\n')
    }
  })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(
        new Error(
          `controller did not start within ${opts.startTimeoutMs ?? 30000} ms\nstderr: ${stderr}\nstdout: ${logs.join('\n')}`,
        ),
      )
    }, opts.startTimeoutMs ?? 30_000)
    onLine = (line) => {
      try {
        const j = JSON.parse(line)
        if (j.msg === 'controller listening' && typeof j.url === 'string') {
          clearTimeout(timer)
          resolve(j.url)
        }
      } catch {}
    }
    exited.then((code) => {
      clearTimeout(timer)
      reject(
        Object.assign(
          new Error(
            `controller exited with code ${code} before listening\nstderr: ${stderr}\nstdout: ${logs.join('\n')}`,
          ),
          { exitCode: code, stderr },
        ),
      )
    })
  }).catch((err) => {
    if (ownDir) rmSync(dataDir, { recursive: true, force: true })
    throw err
  })
  onLine = undefined

  const caPem = findCa(dataDir)
  if (!caPem) {
    proc.kill('SIGKILL')
    throw new Error(`no CA bundle found in ${dataDir}`)
  }
  let token: string | null = null
  const c: RunningTestController = {
    url,
    dataDir,
    adminUser: adminUser ?? '',
    adminPassword,
    caPem,
    proc,
    logs,
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
      return httpsJson(full, method, { ca: caPem, headers, body: raw })
    },
    async stop(so = {}) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM')
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(t)
      }
      if (ownDir && !so.keepData) rmSync(dataDir, { recursive: true, force: true })
      return proc.exitCode
    },
  }
  return c
}
