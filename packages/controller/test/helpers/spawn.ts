/**
 * Spawns a real controller process (run-controller.js) on 127.0.0.1:0 with a temp data dir and
 * gives an HTTPS JSON helper trusting its CA. Same surface as packages/cli/test/helpers/controller.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const RUNNER = fileURLToPath(new URL('./run-controller.js', import.meta.url))

export interface ApiResponse {
  status: number
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies of any shape
  body: any
  headers: Record<string, string | string[] | undefined>
  text: string
}

export interface Ctl {
  url: string
  dataDir: string
  adminUser: string
  adminPassword: string
  caPem: string
  proc: ChildProcess
  logs: string[]
  stderr: () => string
  api(
    method: string,
    path: string,
    body?: unknown,
    o?: { token?: string | null; raw?: string | Buffer; headers?: Record<string, string> },
  ): Promise<ApiResponse>
  login(username?: string, password?: string): Promise<string>
  stop(o?: { keepData?: boolean }): Promise<number | null>
}

export function httpsJson(
  url: string,
  method: string,
  o: { ca: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: o.ca,
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
      },
    )
    req.on('error', reject)
    if (o.body !== undefined) req.end(o.body)
    else req.end()
  })
}

export interface SpawnOpts {
  dataDir?: string
  adminUser?: string | null
  adminPassword?: string
  configFile?: string
  database?: string
  env?: Record<string, string>
}

/** Runs the controller until it exits (for start-up failures); returns code and stderr. */
export async function runToExit(
  o: SpawnOpts & { dataDir: string },
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const { proc } = launch(o)
  let stderr = ''
  let stdout = ''
  proc.stderr!.on('data', (d) => {
    stderr += d
  })
  proc.stdout!.on('data', (d) => {
    stdout += d
  })
  const t = setTimeout(() => proc.kill('SIGKILL'), 30_000)
  const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)))
  clearTimeout(t)
  return { code, stderr, stdout }
}

function launch(o: SpawnOpts & { dataDir: string }) {
  const args = [RUNNER, '--data', o.dataDir, '--listen', '127.0.0.1:0']
  if (o.configFile) args.push('--config', o.configFile)
  if (o.database) args.push('--database', o.database)
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...o.env }
  delete env.NULLPORT_ADMIN_USER
  delete env.NULLPORT_ADMIN_PASSWORD
  const adminUser = o.adminUser === undefined ? 'admin' : o.adminUser
  const adminPassword = o.adminPassword ?? `pw-${randomBytes(8).toString('hex')}`
  if (adminUser !== null) {
    env.NULLPORT_ADMIN_USER = adminUser
    env.NULLPORT_ADMIN_PASSWORD = adminPassword
  }
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  return { proc, adminUser: adminUser ?? '', adminPassword }
}

export async function spawnCtl(o: SpawnOpts = {}): Promise<Ctl> {
  const ownDir = o.dataDir === undefined
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'np-ctl-test-'))
  const { proc, adminUser, adminPassword } = launch({ ...o, dataDir })
  const logs: string[] = []
  let stderr = ''
  proc.stderr!.setEncoding('utf8')
  proc.stderr!.on('data', (d: string) => {
    stderr += d
  })
  let buf = ''
  let onLine: ((l: string) => void) | undefined
  proc.stdout!.setEncoding('utf8')
  proc.stdout!.on('data', (d: string) => {
    buf += d
    let i = buf.indexOf('\n')
    while (i >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      logs.push(line)
      onLine?.(line)
      i = buf.indexOf('\n')
    }
  })
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)))
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`controller did not start: ${stderr}`))
    }, 30_000)
    onLine = (line) => {
      try {
        const j = JSON.parse(line)
        if (j.msg === 'controller listening') {
          clearTimeout(t)
          resolve(j.url)
        }
      } catch {}
    }
    exited.then((code) => {
      clearTimeout(t)
      reject(new Error(`controller exited (${code}): ${stderr}`))
    })
  })
  const caFile = [join(dataDir, 'pki', 'ca-bundle.pem'), join(dataDir, 'pki-temp', 'ca.crt')].find((f) =>
    existsSync(f),
  )
  const caPem = readFileSync(caFile!, 'utf8')
  let token: string | undefined
  const ctl: Ctl = {
    url,
    dataDir,
    adminUser,
    adminPassword,
    caPem,
    proc,
    logs,
    stderr: () => stderr,
    async login(username = adminUser, password = adminPassword) {
      const r = await httpsJson(`${url}/edge/management/v1/authenticate`, 'POST', {
        ca: caPem,
        body: JSON.stringify({ username, password }),
      })
      if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`)
      return r.body.data.token
    },
    async api(method, path, body, opt = {}) {
      const full = path.startsWith('/') ? `${url}${path}` : `${url}/edge/management/v1/${path}`
      const headers: Record<string, string> = { ...opt.headers }
      if (opt.token !== null) {
        if (opt.token === undefined) token ??= await ctl.login()
        headers.authorization = `Bearer ${opt.token ?? token}`
      }
      return httpsJson(full, method, {
        ca: caPem,
        headers,
        body: opt.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      })
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
  return ctl
}
