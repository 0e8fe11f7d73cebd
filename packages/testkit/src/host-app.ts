/**
 * A hosting app as its own node process, for data-plane tests that need the host outside the
 * test process (its memory, its sockets, its backpressure): it listens on a service through the
 * SDK and reports every event as a JSON line.
 *
 * @example
 * const host = await spawnHost(net, hostIdentity.path, 'echo')
 * const done = await host.waitFor((e) => e.event === 'exchange-done')
 */
import { createCipheriv } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { spawnLogged } from './logged-process.js'
import type { TestNetwork } from './network.js'

/** The SDK entry point, for the script (written to a temp dir) to import. */
const SDK_URL = import.meta.resolve('@nullport/sdk')

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

/** Starts the hosting app above as a separate process and waits until it is listening (or failed to). */
export async function spawnHost(
  net: TestNetwork,
  identityPath: string,
  service: string,
  listenOptions: Record<string, unknown> = {},
): Promise<HostProcess> {
  const script = join(net.dir, 'host-app.mjs')
  await writeFile(script, HOST_SCRIPT)
  const proc = spawnLogged(process.execPath, [script, identityPath, service, JSON.stringify(listenOptions)], {
    name: 'host',
  })
  const h: HostProcess = {
    pid: proc.child.pid!,
    events: proc.json as HostEvent[],
    waitFor: (pred, timeoutMs = 30_000) =>
      proc.waitJson((e) => pred(e as HostEvent), timeoutMs, 'matching event') as Promise<HostEvent>,
    async rss() {
      const status = await readFile(`/proc/${proc.child.pid}/status`, 'utf8')
      const m = /VmRSS:\s+(\d+) kB/.exec(status)
      return m ? Number(m[1]) * 1024 : 0
    },
    async stop() {
      await proc.stop('SIGTERM', 5000)
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
