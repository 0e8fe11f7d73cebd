/**
 * Runs a command to completion (psql, redis-cli, curl, a CLI) and resolves with its exit code
 * and output; never rejects, so a test asserts on the result.
 */
import { spawn } from 'node:child_process'
import { trackChild } from './logged-process.js'

export interface CommandResult {
  /** The exit code; null when killed (timeout); -1 when it could not start. */
  code: number | null
  stdout: string
  stderr: string
}

export interface CommandOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>
  /** Removed from the environment it gets. */
  unset?: string[]
  cwd?: string
  /** SIGKILL after this many milliseconds. Default 60 000. */
  timeoutMs?: number
  /** Written to its stdin. Default: stdin is /dev/null. */
  input?: string
}

export function runCommand(cmd: string, args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...opts.env }
    for (const k of opts.unset ?? []) delete env[k]
    const p = spawn(cmd, args, {
      env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    })
    trackChild(p)
    let stdout = ''
    let stderr = ''
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < 1_000_000) stdout += d
    })
    p.stderr!.setEncoding('utf8').on('data', (d: string) => {
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
    if (p.stdin) {
      // a command that exits without reading its input is not an error of the runner
      p.stdin.on('error', () => undefined)
      p.stdin.end(opts.input)
    }
  })
}
