/**
 * A child process whose stdout is JSON log lines (the controller, a router, a tunneler, a
 * hosting app): every line is kept, JSON lines are also kept parsed, and a test waits for the
 * first line that matches (already logged or still to come) instead of sleeping.
 */
import { type ChildProcess, spawn } from 'node:child_process'

export type LogLine = Record<string, unknown>

export interface LoggedProcessOptions {
  /** Names the process in error messages. */
  name: string
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Keep at most this many lines (the oldest are dropped). Default: all. */
  maxLines?: number
}

export interface LoggedProcess {
  readonly child: ChildProcess
  /** Every stdout line so far. */
  readonly lines: string[]
  /** The stdout lines that are JSON objects, parsed, in order. */
  readonly json: LogLine[]
  /** The last 64 KiB of stderr. */
  stderr(): string
  /** Resolves with the exit code (null after a signal) once the process has exited. */
  readonly exited: Promise<number | null>
  /**
   * Resolves with the first JSON line that matches; rejects when the process exits first or
   * after `timeoutMs` (default 30 000), with the last lines and stderr in the message.
   */
  waitJson(pred: (line: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>
  /** Sends `signal` (default SIGTERM), SIGKILL after `graceMs` (default 10 000); resolves with the exit code. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>
}

/** Children still running, ended when this process ends (also on SIGINT/SIGTERM/SIGHUP). */
const live = new Set<ChildProcess>()
let hooked = false

function endChildren(signal: NodeJS.Signals): void {
  for (const c of live) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill(signal)
      } catch {
        // already gone
      }
    }
  }
}

/**
 * A harness that is killed (SIGINT, SIGTERM, SIGHUP) or exits must not leave its controller,
 * routers or apps running, reparented to init: the children get SIGKILL on exit, and a signal
 * ends them before this process exits with the signal's status.
 */
function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => endChildren('SIGKILL'))
  for (const [sig, n] of [
    ['SIGINT', 2],
    ['SIGTERM', 15],
    ['SIGHUP', 1],
  ] as const) {
    process.once(sig, () => {
      endChildren('SIGKILL')
      process.exit(128 + n)
    })
  }
}

/** Registers a child of the harness so that it ends with the harness (see hookExit). */
export function trackChild(child: ChildProcess): void {
  hookExit()
  live.add(child)
  child.once('exit', () => live.delete(child))
}

export function spawnLogged(command: string, args: string[], o: LoggedProcessOptions): LoggedProcess {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(o.env ? { env: o.env } : {}),
    ...(o.cwd ? { cwd: o.cwd } : {}),
  })
  trackChild(child)
  const lines: string[] = []
  const json: LogLine[] = []
  const waiters = new Set<(line: LogLine) => void>()
  let stderr = ''
  let pending = ''
  const max = o.maxLines ?? Number.POSITIVE_INFINITY
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    pending += d
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      lines.push(line)
      if (lines.length > max) lines.shift()
      let j: unknown
      try {
        j = JSON.parse(line)
      } catch {
        continue
      }
      if (j === null || typeof j !== 'object') continue
      json.push(j as LogLine)
      if (json.length > max) json.shift()
      for (const w of [...waiters]) w(j as LogLine)
    }
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-65_536)
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const tail = (): string => `\nstderr: ${stderr}\nstdout (last lines):\n${lines.slice(-30).join('\n')}`
  return {
    child,
    lines,
    json,
    stderr: () => stderr,
    exited,
    waitJson(pred, timeoutMs = 30_000, what = 'a matching log line') {
      const seen = json.find(pred)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        const check = (line: LogLine): void => {
          if (!pred(line)) return
          done()
          resolve(line)
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`${o.name}: no ${what} within ${timeoutMs} ms${tail()}`))
        }, timeoutMs)
        waiters.add(check)
        exited.then((code) => {
          if (!waiters.has(check)) return
          done()
          reject(
            Object.assign(new Error(`${o.name} exited with code ${code} before ${what}${tail()}`), {
              exitCode: code,
              stderr,
            }),
          )
        })
      })
    },
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal)
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(t)
      }
      return child.exitCode
    },
  }
}
