import { readFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { terminalSafe } from './lib/terminal-text.js'

/** The CLI package's version (package.json next to dist/). */
function cliVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string
    }
    return pkg.version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

type Register = (program: Command) => void

/**
 * Command groups, loaded on demand: `nullport edge ...` must not pay for loading the controller,
 * the router and their database drivers.
 */
const GROUPS: Record<string, () => Promise<{ register: Register }>> = {
  pki: () => import('./commands/pki.js'),
  edge: () => import('./commands/edge/index.js'),
  controller: () => import('./commands/controller.js'),
  router: () => import('./commands/router.js'),
  tunnel: () => import('./commands/tunnel.js'),
  quickstart: () => import('./commands/quickstart.js'),
}

/**
 * Builds the `nullport` program. With `argv`, only the command group it names is loaded (all of
 * them when it names none, e.g. for `nullport --help`).
 */
export async function buildProgram(argv?: string[]): Promise<Command> {
  const program = new Command('nullport')
  program
    .description('Nullport: a zero-trust overlay network')
    .version(`nullport ${cliVersion()} (node ${process.versions.node})`, '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride()
  const first = argv?.slice(2).find((a) => !a.startsWith('-'))
  const names = first !== undefined && first in GROUPS ? [first] : Object.keys(GROUPS)
  for (const name of names) {
    const mod = await GROUPS[name]!()
    mod.register(program)
  }
  return program
}

/** Runs the CLI; resolves to the process exit code. Errors print one line to stderr. */
export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv)
  try {
    await program.parseAsync(argv)
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message (help, version, usage errors)
      return err.exitCode
    }
    const e = err as Error & { code?: string }
    process.stderr.write(terminalSafe(`nullport: ${e.code ? `${e.code}: ` : ''}${e.message}\n`))
    return 1
  }
}
