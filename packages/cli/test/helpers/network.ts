/**
 * Test harness for data-plane tests: a real controller (spawnController), one or more edge routers
 * (startTestRouter, with `#all` edge router and service edge router policies), and helpers that
 * create identities through the management API and enroll them with the SDK's `enroll()`, and
 * create configs, services and service policies.
 *
 * @example
 * const net = await startNetwork({ routers: [{ name: 'r1' }] })
 * const host = await net.identity('host')
 * const svc = await net.service('echo')
 * await net.policy('Bind', ['@host'], ['@echo'])
 * const ctx = await loadContext(host.path)
 * ...
 * await net.close()
 */
import { createCipheriv } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { IdentityFile } from '@nullport/protocol'
import type { RouterTestHooks } from '@nullport/router'
import { enroll } from '@nullport/sdk'
import { type RunningTestController, spawnController } from './controller.js'
import { mgmt, startTestRouter, type TestRouter } from './router.js'

export interface NetworkRouterOptions {
  name: string
  /** Run in this process (needed for testHooks). Default: a separate process. */
  inProcess?: boolean
  testHooks?: RouterTestHooks
  roleAttributes?: string[]
}

export interface TestIdentity {
  id: string
  name: string
  /** Path of the enrolled identity file (0600). */
  path: string
  file: IdentityFile
}

export interface TestNetwork {
  controller: RunningTestController
  routers: TestRouter[]
  /** Temp dir holding identity files (removed by close()). */
  dir: string
  /** Management API call (path relative to /edge/management/v1, e.g. '/identities'); resolves to `data`. */
  api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T>
  /** Creates an identity and enrolls it with the SDK's enroll(). */
  identity(name: string, opts?: { roleAttributes?: string[] }): Promise<TestIdentity>
  /** Creates a service (encryptionRequired defaults to the controller's default: true). */
  service(
    name: string,
    opts?: { roleAttributes?: string[]; encryptionRequired?: boolean; configs?: string[] },
  ): Promise<{ id: string; name: string }>
  /** Creates a config of a config type (by name or id). */
  config(
    name: string,
    configType: string,
    data: Record<string, unknown>,
  ): Promise<{ id: string; name: string }>
  /** Creates a service policy (roles like `@name`, `#attr`, `#all`). */
  policy(
    type: 'Dial' | 'Bind',
    identityRoles: string[],
    serviceRoles: string[],
    name?: string,
  ): Promise<{ id: string; name: string }>
  /** Starts one more router (e.g. in-process with test hooks). */
  addRouter(o: NetworkRouterOptions): Promise<TestRouter>
  close(): Promise<void>
}

let seq = 0

export async function startNetwork(
  opts: { routers?: NetworkRouterOptions[]; allPolicies?: boolean; controllerArgs?: string[] } = {},
): Promise<TestNetwork> {
  const controller = await spawnController(opts.controllerArgs ? { args: opts.controllerArgs } : {})
  const dir = await mkdtemp(join(tmpdir(), 'nullport-net-'))
  const routers: TestRouter[] = []
  const api = <T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> =>
    mgmt<T>(controller, method, path, body)
  const addRouter = async (o: NetworkRouterOptions): Promise<TestRouter> => {
    const r = await startTestRouter(controller, {
      name: o.name,
      allPolicies: opts.allPolicies ?? true,
      ...(o.inProcess !== undefined ? { inProcess: o.inProcess } : {}),
      ...(o.testHooks ? { testHooks: o.testHooks } : {}),
      ...(o.roleAttributes ? { roleAttributes: o.roleAttributes } : {}),
    })
    routers.push(r)
    return r
  }
  const net: TestNetwork = {
    controller,
    routers,
    dir,
    api,
    async identity(name, o = {}) {
      const created = await api<{ id: string; name: string; enrollment?: { jwt?: string } }>(
        'POST',
        '/identities',
        {
          name,
          type: 'Device',
          isAdmin: false,
          roleAttributes: o.roleAttributes ?? [],
        },
      )
      const jwt = created.enrollment?.jwt
      if (!jwt) throw new Error(`no enrollment token for identity ${name}`)
      const path = join(dir, `${name}.json`)
      const r = await enroll({ jwt, output: path })
      return { id: created.id, name: created.name, path, file: r.file }
    },
    async service(name, o = {}) {
      return api<{ id: string; name: string }>('POST', '/services', {
        name,
        roleAttributes: o.roleAttributes ?? [],
        ...(o.encryptionRequired !== undefined ? { encryptionRequired: o.encryptionRequired } : {}),
        ...(o.configs ? { configs: o.configs } : {}),
      })
    },
    async config(name, configType, data) {
      return api<{ id: string; name: string }>('POST', '/configs', { name, configTypeId: configType, data })
    },
    async policy(type, identityRoles, serviceRoles, name) {
      return api<{ id: string; name: string }>('POST', '/service-policies', {
        name: name ?? `test-${type.toLowerCase()}-${++seq}-${process.pid}`,
        type,
        semantic: 'AnyOf',
        identityRoles,
        serviceRoles,
      })
    },
    addRouter,
    async close() {
      for (const r of routers.splice(0).reverse()) await r.stop().catch(() => undefined)
      await controller.stop().catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    },
  }
  try {
    for (const r of opts.routers ?? [{ name: 'r1' }]) await addRouter(r)
  } catch (err) {
    await net.close()
    throw err
  }
  return net
}

// ------------------------------------------------------------------ hosting process

/** The SDK entry point, for scripts run in separate processes. */
const SDK_URL = new URL('../../../../sdk/dist/src/index.js', import.meta.url).href

/**
 * A small hosting app run as its own node process: loads an identity, `listen()`s on a service
 * (no listening socket), and serves each connection by the command in its first line (JSON):
 * - `{"cmd":"exchange","size":N}`: sends N bytes (a seeded pseudo-random stream) while hashing
 *   everything it receives; reports `exchange-done` with both sha256 once its peer ended.
 * - `{"cmd":"flood","report":true}`: writes until the circuit closes; with `report`, reports
 *   `blocked` when write() returns false and `drain` when it drains.
 * - `{"cmd":"hold"}`: only waits; reports `closed` with the error code that closed it.
 * Every event is one JSON line on stdout: `listening`, `connection`, `error`, `clientError`, ...
 */
const HOST_SCRIPT = `
import { createCipheriv, createHash } from 'node:crypto'
import { loadContext } from '${SDK_URL}'
const [identityPath, service, optsJson] = process.argv.slice(2)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n')
const ctx = await loadContext(identityPath)
const server = ctx.listen(service, { allowHalfOpen: true, ...JSON.parse(optsJson || '{}') })
server.on('listening', () => out({ event: 'listening', address: server.address() }))
server.on('error', (e) => out({ event: 'error', code: e.code, message: e.message }))
server.on('clientError', (e) => out({ event: 'clientError', code: e.code, message: e.message }))
ctx.on('revoked', (e) => out({ event: 'revoked', code: e.code }))
let n = 0
function source(size) {
  // AES-CTR keystream seeded by the size: fast, and both ends can hash it without storing it
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, size & 255), Buffer.alloc(16))
  return (len) => c.update(Buffer.alloc(len))
}
server.on('connection', (s) => {
  const id = ++n
  out({ event: 'connection', id, remote: s.remoteIdentity, encrypted: s.encrypted, routerId: s.routerId, circuitTag: s.circuitTag })
  s.on('error', (e) => out({ event: 'socket-error', id, code: e.code, message: e.message }))
  s.on('close', () => out({ event: 'closed', id, code: s.errored ? s.errored.code : null }))
  let head = Buffer.alloc(0)
  const onHead = (d) => {
    head = Buffer.concat([head, d])
    const nl = head.indexOf(10)
    if (nl < 0) return
    s.removeListener('data', onHead)
    const cmd = JSON.parse(head.subarray(0, nl).toString())
    const rest = head.subarray(nl + 1)
    s.pause()
    run(id, s, cmd, rest)
  }
  s.on('data', onHead)
})
function run(id, s, cmd, rest) {
  if (cmd.cmd === 'exchange') {
    const rx = createHash('sha256'), tx = createHash('sha256')
    let rxBytes = rest.length
    rx.update(rest)
    s.on('data', (d) => { rx.update(d); rxBytes += d.length })
    let txDone = false, rxDone = false
    const finish = () => { if (txDone && rxDone) out({ event: 'exchange-done', id, rxBytes, rxHash: rx.digest('hex'), txHash: tx.digest('hex') }) }
    s.on('end', () => { rxDone = true; finish() })
    s.resume()
    const next = source(cmd.size)
    let left = cmd.size
    const pump = () => {
      while (left > 0) {
        const b = next(Math.min(left, 1 << 20))
        left -= b.length
        tx.update(b)
        if (!s.write(b)) { s.once('drain', pump); return }
      }
      s.end(() => { txDone = true; finish() })
    }
    pump()
  } else if (cmd.cmd === 'flood') {
    // with "report": every 'blocked' (write() returned false) and 'drain' of this circuit
    const block = Buffer.alloc(256 * 1024, 7)
    let sent = 0, blocked = false
    const pump = () => {
      if (blocked) { blocked = false; if (cmd.report) out({ event: 'drain', id, sent }) }
      while (!s.destroyed && !s.writableEnded) {
        sent += block.length
        if (!s.write(block)) { blocked = true; if (cmd.report) out({ event: 'blocked', id, sent }); s.once('drain', pump); return }
      }
    }
    s.resume()
    pump()
  } else if (cmd.cmd === 'hold') {
    s.resume()
    out({ event: 'holding', id })
  }
}
process.on('SIGTERM', async () => { await server.close(); await ctx.close(); process.exit(0) })
`

export interface HostEvent {
  event: string
  id?: number
  code?: string | null
  [k: string]: unknown
}

export interface HostProcess {
  pid: number
  events: HostEvent[]
  /** Resolves with the first event (already seen or future) that matches. */
  waitFor(pred: (e: HostEvent) => boolean, timeoutMs?: number): Promise<HostEvent>
  /** Resident set size of the process, in bytes (from /proc). */
  rss(): Promise<number>
  stop(): Promise<void>
}

/** Starts the hosting app above as a separate process and waits until it is listening. */
export async function spawnHost(
  net: TestNetwork,
  identityPath: string,
  service: string,
  listenOptions: Record<string, unknown> = {},
): Promise<HostProcess> {
  const { spawn } = await import('node:child_process')
  const { writeFile, readFile } = await import('node:fs/promises')
  const script = join(net.dir, 'host-app.mjs')
  await writeFile(script, HOST_SCRIPT)
  const child = spawn(process.execPath, [script, identityPath, service, JSON.stringify(listenOptions)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const events: HostEvent[] = []
  const waiters: Array<{ pred: (e: HostEvent) => boolean; resolve: (e: HostEvent) => void }> = []
  let buf = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (d: string) => {
    buf += d
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      let e: HostEvent
      try {
        e = JSON.parse(line) as HostEvent
      } catch {
        continue
      }
      events.push(e)
      for (const w of waiters.slice()) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(e)
        }
      }
    }
  })
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (d: string) => {
    stderr = (stderr + d).slice(-16384)
  })
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  const h: HostProcess = {
    pid: child.pid!,
    events,
    waitFor(pred, timeoutMs = 30_000) {
      const seen = events.find(pred)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1)
          reject(
            new Error(
              `host: no matching event within ${timeoutMs} ms; events: ${JSON.stringify(events.slice(-10))}; stderr: ${stderr}`,
            ),
          )
        }, timeoutMs)
        const w = {
          pred,
          resolve: (e: HostEvent) => {
            clearTimeout(t)
            resolve(e)
          },
        }
        waiters.push(w)
        child.once('exit', () => {
          if (waiters.includes(w)) {
            clearTimeout(t)
            reject(new Error(`host exited (${child.exitCode}); stderr: ${stderr}`))
          }
        })
      })
    },
    async rss() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
      const m = /VmRSS:\s+(\d+) kB/.exec(status)
      return m ? Number(m[1]) * 1024 : 0
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const t = setTimeout(() => child.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(t)
      }
    },
  }
  try {
    await h.waitFor((e) => e.event === 'listening' || e.event === 'error')
  } catch (err) {
    await h.stop()
    throw err
  }
  return h
}

/** The same seeded stream the host sends for `exchange` (so the dialer can check its hash). */
export function hostStream(size: number): (len: number) => Buffer {
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, size & 255), Buffer.alloc(16))
  return (len) => c.update(Buffer.alloc(len))
}
