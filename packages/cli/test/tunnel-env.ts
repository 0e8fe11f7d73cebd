/**
 * A network for the tunnel tests and bench/tunnel.mjs: a real controller and router, a hosting
 * tunneler (`nullport tunnel run`, host mode) in front of PostgreSQL, Redis and an HTTP server,
 * and an intercepting tunneler (SOCKS5, HTTP proxy, DNS, local ports) that reaches them only
 * through the overlay.
 *
 * OWNER: tunnel.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { enroll } from '@nullport/sdk'
import { CLI_BIN, type RunningTestController, spawnController } from './helpers/controller.js'
import { startTestRouter, type TestRouter } from './helpers/router.js'

export interface TunnelProc {
  proc: ChildProcess
  logs: string[]
  /** Listener name -> host:port, from the `tunnel ready` log line. */
  addresses: Record<string, string>
  /** Resolves when a log line matches (already logged lines count). */
  waitLog(
    pred: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Spawns `nullport tunnel ARGS...`, waits for `tunnel ready`. */
export async function spawnTunnel(args: string[], env: Record<string, string> = {}): Promise<TunnelProc> {
  const proc = spawn(process.execPath, [CLI_BIN, 'tunnel', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env, NODE_OPTIONS: env.NODE_OPTIONS ?? '' },
  })
  const logs: string[] = []
  const waiters: Array<{
    pred: (l: Record<string, unknown>) => boolean
    resolve: (l: Record<string, unknown>) => void
  }> = []
  let pending = ''
  let stderr = ''
  const parse = (l: string): Record<string, unknown> | null => {
    try {
      return JSON.parse(l) as Record<string, unknown>
    } catch {
      return null
    }
  }
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    pending += d
    let i = pending.indexOf('\n')
    while (i >= 0) {
      const line = pending.slice(0, i)
      pending = pending.slice(i + 1)
      logs.push(line)
      const j = parse(line)
      if (j) {
        for (const w of [...waiters]) {
          if (w.pred(j)) {
            waiters.splice(waiters.indexOf(w), 1)
            w.resolve(j)
          }
        }
      }
      i = pending.indexOf('\n')
    }
  })
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  const exited = once(proc, 'exit')
  const waitLog = (
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs = 30_000,
  ): Promise<Record<string, unknown>> => {
    for (const l of logs) {
      const j = parse(l)
      if (j && pred(j)) return Promise.resolve(j)
    }
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (l: Record<string, unknown>) => {
          clearTimeout(t)
          resolve(l)
        },
      }
      const t = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1)
        reject(
          new Error(
            `tunnel: log line not seen in ${timeoutMs} ms; stderr: ${stderr}\nlogs:\n${logs.slice(-30).join('\n')}`,
          ),
        )
      }, timeoutMs)
      waiters.push(w)
      exited.then(() => {
        clearTimeout(t)
        reject(
          new Error(
            `tunnel exited (${proc.exitCode}); stderr: ${stderr}\nlogs:\n${logs.slice(-30).join('\n')}`,
          ),
        )
      })
    })
  }
  const ready = await waitLog((l) => l.msg === 'tunnel ready')
  return {
    proc,
    logs,
    addresses: ready.addresses as Record<string, string>,
    waitLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode
      proc.kill(signal)
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000)
      const [code] = (await exited) as [number | null]
      clearTimeout(t)
      return code
    },
  }
}

export interface TunnelNet {
  ctl: RunningTestController
  router: TestRouter
  dir: string
  hostId: string
  clientId: string
  httpServer: Server
  httpPort: number
  /** A port with nothing listening (the "down" service's underlay). */
  downPort: number
  // biome-ignore lint/suspicious/noExplicitAny: JSON of any shape
  api(method: string, path: string, body?: unknown): Promise<any>
  /** Creates a service with intercept.v1 and host.v1 configs, Bind for #tun-hosts, Dial for #tun-clients (unless dial false). */
  addService(
    name: string,
    intercept: Record<string, unknown>,
    host: Record<string, unknown>,
    dial?: boolean,
  ): Promise<void>
  stop(): Promise<void>
}

async function freePort(): Promise<number> {
  const s = createNetServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const p = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return p
}

/** The standard network: services pg, redis, web, down, fwd. */
export async function startTunnelNet(): Promise<TunnelNet> {
  const dir = mkdtempSync(join(tmpdir(), 'nullport-tunnel-'))
  const ctl = await spawnController()
  const router = await startTestRouter(ctl, { name: 'tun-r1', allPolicies: true })
  // biome-ignore lint/suspicious/noExplicitAny: JSON of any shape
  const api = async (method: string, path: string, body?: unknown): Promise<any> => {
    const r = await ctl.api(method, path, body)
    if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`)
    return r.body?.data
  }
  const mk = async (name: string, attrs: string[]): Promise<string> => {
    const d = await api('POST', 'identities', { name, type: 'Device', roleAttributes: attrs })
    const { file } = await enroll({ jwt: d.enrollment.jwt })
    const p = join(dir, `${name}.json`)
    writeFileSync(p, JSON.stringify(file), { mode: 0o600 })
    return p
  }
  const hostId = await mk('tun-host', ['tun-hosts'])
  const clientId = await mk('tun-client', ['tun-clients'])
  const httpServer = createServer((req, res) => {
    if (req.url?.startsWith('/big/')) {
      // /big/N: N MiB of bytes, written with backpressure
      const total = Number(req.url.slice(5)) * 1024 * 1024
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) })
      const chunk = Buffer.alloc(64 * 1024, 120)
      let sent = 0
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length
          if (!res.write(chunk)) {
            res.once('drain', pump)
            return
          }
        }
        res.end()
      }
      pump()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(
        `hello from behind the tunnel: ${req.method} ${req.url} host=${req.headers.host} body=${Buffer.concat(chunks).length}\n`,
      )
    })
  })
  httpServer.listen(0, '127.0.0.1')
  await once(httpServer, 'listening')
  const httpPort = (httpServer.address() as { port: number }).port
  const downPort = await freePort()
  await api('POST', 'service-policies', {
    name: 'tun-bind',
    type: 'Bind',
    semantic: 'AnyOf',
    identityRoles: ['#tun-hosts'],
    serviceRoles: ['#tun'],
  })
  const addService = async (
    name: string,
    intercept: Record<string, unknown>,
    host: Record<string, unknown>,
    dial = true,
  ): Promise<void> => {
    const ic = await api('POST', 'configs', {
      name: `${name}-intercept`,
      configTypeId: 'intercept.v1',
      data: intercept,
    })
    const hc = await api('POST', 'configs', { name: `${name}-host`, configTypeId: 'host.v1', data: host })
    await api('POST', 'services', {
      name,
      roleAttributes: ['tun'],
      configs: [ic.id, hc.id],
      // end-to-end encryption on, as for every real service
      encryptionRequired: true,
    })
    if (dial) {
      await api('POST', 'service-policies', {
        name: `dial-${name}`,
        type: 'Dial',
        semantic: 'AnyOf',
        identityRoles: ['#tun-clients'],
        serviceRoles: [`@${name}`],
      })
    }
  }
  const tcp = (addresses: string[], low: number, high = low) => ({
    protocols: ['tcp'],
    addresses,
    portRanges: [{ low, high }],
  })
  await addService('pg', tcp(['pg.tunnel.test'], 5432), { protocol: 'tcp', address: '127.0.0.1', port: 5432 })
  await addService('redis', tcp(['redis.tunnel.test'], 6379), {
    protocol: 'tcp',
    address: '127.0.0.1',
    port: 6379,
  })
  await addService('web', tcp(['*.web.test', 'web.test'], 80), {
    protocol: 'tcp',
    address: '127.0.0.1',
    port: httpPort,
  })
  await addService('down', tcp(['down.test'], 80), { protocol: 'tcp', address: '127.0.0.1', port: downPort })
  await addService('fwd', tcp(['fwd.test', '10.99.0.0/16'], 1, 65535), {
    protocol: 'tcp',
    address: '127.0.0.1',
    forwardPort: true,
    allowedPortRanges: [{ low: httpPort, high: httpPort }],
  })
  return {
    ctl,
    router,
    dir,
    hostId,
    clientId,
    httpServer,
    httpPort,
    downPort,
    api,
    addService,
    async stop() {
      httpServer.closeAllConnections()
      httpServer.close()
      await router.stop()
      await ctl.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Runs a command; resolves with exit code and output (never rejects). */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < 1_000_000) stdout += d
    })
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 1_000_000) stderr += d
    })
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
    p.on('error', (err) => {
      clearTimeout(t)
      resolve({ code: -1, stdout, stderr: String(err) })
    })
    p.on('close', (code) => {
      clearTimeout(t)
      resolve({ code, stdout, stderr })
    })
    p.stdin.end(opts.input ?? '')
  })
}

/** Splits `host:port`. */
export function hp(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(':')
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) }
}

/** A raw SOCKS5 exchange: sends `bytes`, resolves with everything received until close (or 5 s). */
export async function rawExchange(
  address: string,
  bytes: Buffer,
  waitMs = 5000,
): Promise<{ data: Buffer; closed: boolean; error?: NodeJS.ErrnoException }> {
  const { connect } = await import('node:net')
  const a = hp(address)
  const sock = connect(a.port, a.host)
  const chunks: Buffer[] = []
  let error: NodeJS.ErrnoException | undefined
  sock.on('data', (d: Buffer) => chunks.push(d))
  // A server that resets the connection at once (a refused dial) can do so before this
  // process has seen its own 'connect': the kernel completed the handshake, the RST arrived,
  // and libuv reports ECONNRESET from connect. That is a closed connection with no data,
  // not a failure to reach the server; ECONNREFUSED still surfaces to the caller.
  sock.on('error', (e: NodeJS.ErrnoException) => {
    error = e
  })
  sock.once('connect', () => sock.write(bytes))
  const closed = await Promise.race([
    new Promise<boolean>((r) => sock.once('close', () => r(true))),
    new Promise<boolean>((r) => setTimeout(() => r(false), waitMs)),
  ])
  sock.destroy()
  if (error && error.code !== 'ECONNRESET' && error.code !== 'EPIPE') throw error
  return { data: Buffer.concat(chunks), closed, ...(error ? { error } : {}) }
}

/** SOCKS5 greeting + CONNECT by domain name. */
export function socksConnectBytes(name: string, port: number, command = 1): Buffer {
  const n = Buffer.from(name)
  return Buffer.concat([
    Buffer.from([5, 1, 0, 5, command, 0, 3, n.length]),
    n,
    Buffer.from([port >> 8, port & 0xff]),
  ])
}

/** Retries `fn` until it returns true (every 250 ms, up to `timeoutMs`). */
export async function eventually(
  fn: () => Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await fn()) return
    if (Date.now() > end) throw new Error(`${what}: not reached within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** GET http://ADDR/status -> the `data` document (without spawning the CLI). */
// biome-ignore lint/suspicious/noExplicitAny: JSON of any shape
export async function fetchStatus(addr: string): Promise<any> {
  const { get } = await import('node:http')
  const a = hp(addr)
  return new Promise((resolve, reject) => {
    get({ host: a.host, port: a.port, path: '/status' }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (d: string) => {
        text += d
      })
      res.on('end', () => {
        try {
          resolve(JSON.parse(text).data)
        } catch (err) {
          reject(err)
        }
      })
    }).on('error', reject)
  })
}
