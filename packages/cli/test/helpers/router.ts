/**
 * Test harness for edge routers: creates the edge-router through the management API, enrolls it
 * (`nullport router enroll`), and runs it as a real process (`nullport router run --config ...`)
 * or in-process (`startRouter`, needed for `testHooks`). Optionally creates `#all`
 * edge-router-policy and service-edge-router-policy so every identity and service may use every
 * router.
 *
 * @example
 * const ctl = await spawnController()
 * const r = await startTestRouter(ctl, { name: 'r1', allPolicies: true })
 * // ... r.address is 127.0.0.1:PORT
 * await r.stop()
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import tls from 'node:tls'
import { type Frame, FrameConnection, FrameType } from '@nullport/protocol'
import { type RouterTestHooks, startRouter } from '@nullport/router'
import { enroll } from '@nullport/sdk'

const REPO = resolve(import.meta.dirname, '../../../../..')
export const NULLPORT_BIN = join(REPO, 'packages/cli/bin/nullport.js')

/** What the harness needs from a controller handle (spawnController() returns more). */
export interface ControllerHandle {
  /** https://127.0.0.1:PORT */
  url: string
  /** PEM bundle the controller's TLS certificate chains to (fetched if absent). */
  caPem?: string
  ca?: string
  /** A management session token, or admin credentials to get one. */
  token?: string
  adminToken?: string
  adminUser?: string
  adminPassword?: string
  username?: string
  password?: string
}

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

// ------------------------------------------------------------------ management API

const caCache = new Map<string, string>()
const tokenCache = new Map<string, string>()

function rawRequest(
  url: string,
  method: string,
  opts: { ca?: string; insecure?: boolean; token?: string; body?: unknown },
): Promise<{ status: number; json: unknown; text: string }> {
  return new Promise((res, rej) => {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body))
    const headers: Record<string, string | number> = { accept: 'application/json' }
    if (payload) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = payload.length
    }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`
    const req = https.request(
      url,
      {
        method,
        headers,
        ...(opts.ca ? { ca: opts.ca } : {}),
        rejectUnauthorized: !opts.insecure,
        timeout: 15_000,
      },
      (r) => {
        const chunks: Buffer[] = []
        r.on('data', (c: Buffer) => chunks.push(c))
        r.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          res({ status: r.statusCode ?? 0, json, text })
        })
        r.on('error', rej)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)))
    req.on('error', rej)
    req.end(payload)
  })
}

async function controllerCa(c: ControllerHandle): Promise<string> {
  const given = c.caPem ?? c.ca
  if (given) return given
  const cached = caCache.get(c.url)
  if (cached) return cached
  const r = await rawRequest(`${c.url}/.well-known/est/cacerts`, 'GET', { insecure: true })
  if (r.status !== 200) throw new Error(`GET /.well-known/est/cacerts: HTTP ${r.status}`)
  caCache.set(c.url, r.text)
  return r.text
}

async function adminToken(c: ControllerHandle): Promise<string> {
  const given = c.token ?? c.adminToken
  if (given) return given
  const cached = tokenCache.get(c.url)
  if (cached) return cached
  const username = c.adminUser ?? c.username ?? process.env.NULLPORT_ADMIN_USER ?? 'admin'
  const password = c.adminPassword ?? c.password ?? process.env.NULLPORT_ADMIN_PASSWORD
  if (!password) throw new Error('startTestRouter: the controller handle has no token and no admin password')
  const r = await rawRequest(`${c.url}/edge/management/v1/authenticate`, 'POST', {
    ca: await controllerCa(c),
    body: { username, password },
  })
  const token = (r.json as { data?: { token?: string } })?.data?.token
  if (r.status !== 200 || !token)
    throw new Error(`admin login failed: HTTP ${r.status} ${r.text.slice(0, 200)}`)
  tokenCache.set(c.url, token)
  return token
}

/** Management API call; resolves to `data`, throws with the API error code on failure. */
export async function mgmt<T = Record<string, unknown>>(
  c: ControllerHandle,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const r = await rawRequest(`${c.url}/edge/management/v1${path}`, method, {
    ca: await controllerCa(c),
    token: await adminToken(c),
    body,
  })
  if (r.status < 200 || r.status >= 300) {
    const e = (r.json as { error?: { code?: string; message?: string } })?.error
    const err = new Error(
      `${method} ${path}: HTTP ${r.status} ${e?.code ?? ''} ${e?.message ?? r.text.slice(0, 300)}`,
    ) as Error & {
      code?: string
      status?: number
    }
    err.code = e?.code
    err.status = r.status
    throw err
  }
  return ((r.json as { data?: T })?.data ?? r.json) as T
}

/** Creates `#all` -> `#all` edge-router-policy and service-edge-router-policy (ignores "name in use"). */
export async function ensureAllRouterPolicies(c: ControllerHandle): Promise<void> {
  const create = async (path: string, body: Record<string, unknown>): Promise<void> => {
    try {
      await mgmt(c, 'POST', path, body)
    } catch (err) {
      const e = err as { status?: number; code?: string }
      if (e.status !== 409 && !/IN_USE|EXISTS/.test(e.code ?? '')) throw err
    }
  }
  await create('/edge-router-policies', {
    name: 'test-all-edge-routers',
    semantic: 'AnyOf',
    identityRoles: ['#all'],
    edgeRouterRoles: ['#all'],
  })
  await create('/service-edge-router-policies', {
    name: 'test-all-service-edge-routers',
    semantic: 'AnyOf',
    serviceRoles: ['#all'],
    edgeRouterRoles: ['#all'],
  })
}

// ------------------------------------------------------------------ router

function waitForListening(
  child: ChildProcess,
  logs: string[],
  timeoutMs: number,
): Promise<{ address: string; metrics?: string | null }> {
  return new Promise((res, rej) => {
    let buf = ''
    let stderr = ''
    const timer = setTimeout(() => {
      cleanup()
      rej(
        new Error(
          `router did not log "router listening" within ${timeoutMs} ms\nstdout:\n${logs.join('\n')}\nstderr:\n${stderr}`,
        ),
      )
    }, timeoutMs)
    const onData = (c: Buffer): void => {
      buf += c.toString('utf8')
      let nl = buf.indexOf('\n')
      while (nl >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        nl = buf.indexOf('\n')
        logs.push(line)
        try {
          const j = JSON.parse(line) as { msg?: string; address?: string; metrics?: string | null }
          if (j.msg === 'router listening' && j.address) {
            cleanup()
            res({ address: j.address, metrics: j.metrics ?? null })
            return
          }
        } catch {
          // not JSON
        }
      }
    }
    const onErr = (c: Buffer): void => {
      stderr += c.toString('utf8')
    }
    const onExit = (code: number | null): void => {
      cleanup()
      rej(
        new Error(
          `router exited with ${code} before listening\nstdout:\n${logs.join('\n')}\nstderr:\n${stderr}`,
        ),
      )
    }
    const cleanup = (): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onErr)
      child.off('exit', onExit)
      // keep collecting logs
      child.stdout?.on('data', (c: Buffer) => {
        for (const l of c.toString('utf8').split('\n')) if (l) logs.push(l)
        if (logs.length > 5000) logs.splice(0, logs.length - 5000)
      })
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onErr)
    child.once('exit', onExit)
  })
}

export function runCli(
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [NULLPORT_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8')
    })
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8')
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      rej(new Error(`nullport ${args.join(' ')} timed out\n${stdout}\n${stderr}`))
    }, opts.timeoutMs ?? 30_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      res({ code, stdout, stderr })
    })
  })
}

/** Creates, enrolls and starts an edge router against `controller`. */
export async function startTestRouter(
  controller: ControllerHandle,
  opts: TestRouterOptions,
): Promise<TestRouter> {
  if (opts.testHooks && opts.inProcess === false) throw new Error('startTestRouter: testHooks need inProcess')
  const inProcess = opts.inProcess ?? opts.testHooks !== undefined
  if (opts.allPolicies) await ensureAllRouterPolicies(controller)
  const created = await mgmt<{ id: string; name: string; enrollment?: { jwt?: string } }>(
    controller,
    'POST',
    '/edge-routers',
    {
      name: opts.name,
      ...(opts.roleAttributes ? { roleAttributes: opts.roleAttributes } : {}),
    },
  )
  let jwt = created.enrollment?.jwt
  if (!jwt) {
    const again = await mgmt<{ enrollment?: { jwt?: string } }>(
      controller,
      'GET',
      `/edge-routers/${created.id}`,
    )
    jwt = again.enrollment?.jwt
  }
  if (!jwt) throw new Error(`the controller returned no enrollment token for edge router ${opts.name}`)
  const dir = await mkdtemp(join(tmpdir(), `nullport-router-${opts.name}-`))
  const jwtPath = join(dir, 'router.jwt')
  const configPath = join(dir, 'router.json')
  const identityPath = join(dir, 'router.identity.json')
  await writeFile(jwtPath, jwt)
  const logs: string[] = []
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
        logs,
        process: null,
        async stop() {
          await handle.stop()
          await rm(dir, { recursive: true, force: true })
        },
      }
    }
    const r = await runCli([
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
    ])
    if (r.code !== 0) throw new Error(`nullport router enroll failed (${r.code}): ${r.stderr}${r.stdout}`)
    if (opts.logLevel) {
      const { readFile } = await import('node:fs/promises')
      const cfg = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
      cfg.logLevel = opts.logLevel
      await writeFile(configPath, JSON.stringify(cfg))
    }
    const child = spawn(process.execPath, [NULLPORT_BIN, 'router', 'run', '--config', configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let listening: { address: string; metrics?: string | null }
    try {
      listening = await waitForListening(child, logs, 30_000)
    } catch (err) {
      child.kill('SIGKILL')
      throw err
    }
    return {
      id: created.id,
      name: created.name,
      address: listening.address,
      metricsAddress: listening.metrics ?? null,
      dir,
      identityPath,
      logs,
      process: child,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((r) => child.once('exit', () => r()))
          child.kill('SIGTERM')
          const t = setTimeout(() => child.kill('SIGKILL'), 8000)
          await exited
          clearTimeout(t)
        }
        await rm(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

// ------------------------------------------------------------------ raw data-plane client

/**
 * An SDK-less data-plane client for tests: a TLS socket with an enrolled identity's certificate
 * speaking frames through FrameConnection. Frames are queued; `next(pred)` takes the first match.
 */
export class RawClient {
  readonly conn: FrameConnection
  readonly socket: tls.TLSSocket
  readonly frames: Frame[] = []
  closed = false
  private waiters: Array<() => void> = []
  nextId = 1

  constructor(socket: tls.TLSSocket) {
    this.socket = socket
    this.conn = new FrameConnection(socket)
    this.conn.on('frame', (f: Frame) => {
      this.frames.push(f)
      this.wake()
    })
    this.conn.on('error', () => {})
    this.conn.on('close', () => {
      this.closed = true
      this.wake()
    })
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Connects with `cert` (PEM chain) and `key`, trusting `ca`; sends HELLO and waits for HELLO_ACK unless `hello` is false. */
  static async connect(
    address: string,
    c: { cert: string; key: string },
    ca: string,
    hello = true,
  ): Promise<RawClient> {
    const i = address.lastIndexOf(':')
    const socket = tls.connect({
      host: address.slice(0, i),
      port: Number(address.slice(i + 1)),
      cert: c.cert,
      key: c.key,
      ca,
      checkServerIdentity: () => undefined,
    })
    await once(socket, 'secureConnect')
    const client = new RawClient(socket)
    if (hello) {
      client.conn.send({
        type: FrameType.HELLO,
        circuitId: 0,
        flags: 0,
        payload: { version: 1, role: 'sdk', agent: 'raw-test' },
      })
      await client.next((f) => f.type === FrameType.HELLO_ACK)
    }
    return client
  }

  /** Waits for (and removes) the first frame matching `pred`. */
  async next(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.frames.findIndex(pred)
      if (i >= 0) return this.frames.splice(i, 1)[0]!
      if (this.closed) {
        const g = this.frames.find((f) => f.type === FrameType.GOAWAY)
        throw new Error(`connection closed${g ? ` with GOAWAY ${JSON.stringify(g.payload)}` : ''}`)
      }
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new Error(
          `timed out waiting for a frame; have ${JSON.stringify(this.frames.map((f) => [f.type, f.circuitId]))}`,
        )
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
  }

  /** Waits until the connection closes; returns the GOAWAY payload it got, if any. */
  async closedWith(timeoutMs = 5000): Promise<{ code: string; message: string } | null> {
    const deadline = Date.now() + timeoutMs
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection did not close')
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50)
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
    const g = this.frames.find((f) => f.type === FrameType.GOAWAY)
    return g && g.type === FrameType.GOAWAY ? g.payload : null
  }

  /** Sends DIAL {service} on the next odd circuit id; returns the id. */
  dial(service: string): number {
    const id = this.nextId
    this.nextId += 2
    this.conn.send({ type: FrameType.DIAL, circuitId: id, flags: 0, payload: { service } })
    return id
  }

  bind(bindId: number, service: string): void {
    this.conn.send({
      type: FrameType.BIND,
      circuitId: 0,
      flags: 0,
      payload: { bindId, service, cost: 0, precedence: 'default', maxConnections: 0 },
    })
  }

  /** Answers a DIAL the host received with DIAL_SUCCESS. */
  accept(dial: Frame): void {
    const p = dial.payload as { circuitTag: string }
    this.conn.send({
      type: FrameType.DIAL_SUCCESS,
      circuitId: dial.circuitId,
      flags: 0,
      payload: { hostIdentity: { id: 'set-by-router', name: 'set-by-router' }, circuitTag: p.circuitTag },
    })
  }

  close(): void {
    this.socket.destroy()
  }
}
