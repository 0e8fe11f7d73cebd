/**
 * Runs the real `nullport` CLI as a child process with its own NULLPORT_HOME, for the
 * `nullport edge` tests (edge*.test.ts, seed*.test.ts).
 *
 * OWNER: edge CLI.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_BIN } from './controller.js'

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface CliEnv {
  /** NULLPORT_HOME and working directory (temp). */
  home: string
  run(args: string[], opts?: { cwd?: string; env?: Record<string, string> }): Promise<CliResult>
  /** Runs and asserts exit 0; returns stdout. */
  ok(args: string[], opts?: { cwd?: string }): Promise<string>
  cleanup(): void
}

export function runCli(
  args: string[],
  o: { home: string; cwd?: string; env?: Record<string, string> },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      NULLPORT_HOME: o.home,
      ...o.env,
    }
    delete env.NULLPORT_PASSWORD
    const p = spawn(process.execPath, [CLI_BIN, ...args], {
      cwd: o.cwd ?? o.home,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000)
    p.on('error', reject)
    p.on('close', (code) => {
      clearTimeout(t)
      resolve({ code, stdout, stderr })
    })
  })
}

export function cliEnv(): CliEnv {
  const home = mkdtempSync(join(tmpdir(), 'nullport-cli-'))
  const env: CliEnv = {
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
  return env
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
