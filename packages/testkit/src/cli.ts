/**
 * The real `nullport` CLI as a child process: one command to completion (`runCli`), or a
 * user's environment with its own NULLPORT_HOME for a sequence of commands (`cliEnv`), and the
 * check of the CLI's one-line failure format (`failLine`).
 *
 * @example
 * const cli = cliEnv()
 * await cli.ok(['edge', 'login', ctl.url, '-u', 'admin', '-p', pw, '--ca', caFile])
 * failLine(await cli.run(['edge', 'delete', 'identity', 'nobody']), 'ERR_NOT_FOUND')
 * cli.cleanup()
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CommandResult, runCommand } from './command.js'
import { CLI_BIN } from './paths.js'

export type CliResult = CommandResult

export interface RunCliOptions {
  /** NULLPORT_HOME (and the default working directory). Default: the inherited one. */
  home?: string
  cwd?: string
  /** Added to the environment. */
  env?: Record<string, string>
  /** SIGKILL after this many milliseconds (the result then has code null). Default 60 000. */
  timeoutMs?: number
}

/** Runs `nullport ARGS...` to completion (NULLPORT_PASSWORD is never inherited). */
export function runCli(args: string[], o: RunCliOptions = {}): Promise<CliResult> {
  return runCommand(process.execPath, [CLI_BIN, ...args], {
    env: { ...(o.home !== undefined ? { NULLPORT_HOME: o.home } : {}), ...o.env },
    unset: ['NULLPORT_PASSWORD'],
    ...(o.cwd !== undefined || o.home !== undefined ? { cwd: (o.cwd ?? o.home)! } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  })
}

export interface CliEnv {
  /** NULLPORT_HOME and working directory (temp). */
  home: string
  run(args: string[], opts?: { cwd?: string; env?: Record<string, string> }): Promise<CliResult>
  /** Runs and asserts exit 0; returns stdout. */
  ok(args: string[], opts?: { cwd?: string }): Promise<string>
  cleanup(): void
}

export function cliEnv(): CliEnv {
  const home = mkdtempSync(join(tmpdir(), 'nullport-cli-'))
  return {
    home,
    run: (args, o = {}) => runCli(args, { home, ...o }),
    async ok(args, o = {}) {
      const r = await runCli(args, { home, ...o })
      if (r.code !== 0)
        throw new Error(
          `nullport ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
        )
      return r.stdout
    },
    cleanup: () => rmSync(home, { recursive: true, force: true }),
  }
}

/** Asserts a failure: exit code 1 and exactly one stderr line `nullport: CODE: ...` (warnings aside). */
export function failLine(r: CliResult, code: string): string {
  const lines = r.stderr.split('\n').filter((l) => l.length > 0 && !l.startsWith('warning: '))
  if (r.code !== 1 || lines.length !== 1 || !lines[0]!.startsWith(`nullport: ${code}: `)) {
    throw new Error(
      `expected exit 1 and one line "nullport: ${code}: ...", got exit ${r.code}\nstderr: ${r.stderr}\nstdout: ${r.stdout}`,
    )
  }
  return lines[0]!
}
