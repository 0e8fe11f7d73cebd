/**
 * `nullport tunnel ...` as a process: started and awaited until it logs `tunnel ready` (with the
 * addresses of its listeners), its log lines to wait on, and its status endpoint.
 *
 * @example
 * const client = await spawnTunnel(['run', '-i', net.clientPath, '--no-host', '--socks', '127.0.0.1:0'])
 * const socks = client.addresses.socks!
 * await client.waitLog((l) => l.msg === 'intercepted services changed')
 */
import type { ChildProcess } from 'node:child_process'
import { get } from 'node:http'
import { parseHostPort } from '@nullport/protocol'
import { type LogLine, spawnLogged } from './logged-process.js'
import { CLI_BIN } from './paths.js'

export interface TunnelProc {
  proc: ChildProcess
  logs: string[]
  /** Listener name -> host:port, from the `tunnel ready` log line. */
  addresses: Record<string, string>
  /** Resolves when a log line matches (already logged lines count). */
  waitLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>
  /** Sends `signal` (default SIGTERM), SIGKILL after 10 s; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Spawns `nullport tunnel ARGS...` (NODE_OPTIONS cleared unless given), waits for `tunnel ready`. */
export async function spawnTunnel(args: string[], env: Record<string, string> = {}): Promise<TunnelProc> {
  const p = spawnLogged(process.execPath, [CLI_BIN, 'tunnel', ...args], {
    name: 'tunnel',
    env: { ...process.env, ...env, NODE_OPTIONS: env.NODE_OPTIONS ?? '' },
  })
  const waitLog = (pred: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> =>
    p.waitJson(pred, timeoutMs, 'matching log line')
  const ready = await waitLog((l) => l.msg === 'tunnel ready')
  return {
    proc: p.child,
    logs: p.lines,
    addresses: ready.addresses as Record<string, string>,
    waitLog,
    stop: (signal: NodeJS.Signals = 'SIGTERM') => p.stop(signal, 10_000),
  }
}

/** GET http://ADDR/status -> the `data` document (without spawning the CLI). */
// biome-ignore lint/suspicious/noExplicitAny: JSON of any shape
export async function fetchStatus(addr: string): Promise<any> {
  const a = parseHostPort(addr)
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
