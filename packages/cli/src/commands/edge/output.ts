/** What the edge commands print (stdout, one-line warnings on stderr) and the token files they write. */
import { writeSecretFile } from '@nullport/protocol'
import { CliError } from '../../errors.js'
import type { Envelope } from '../../lib/rest.js'
import { terminalSafe } from '../../lib/terminal-text.js'

export function out(s: string): void {
  const safe = terminalSafe(s)
  process.stdout.write(safe.endsWith('\n') ? safe : `${safe}\n`)
}

export function printJson(v: unknown): void {
  out(JSON.stringify(v, null, 2))
}

export function printWarnings(meta: Envelope['meta'] | undefined): void {
  for (const w of meta?.warnings ?? [])
    process.stderr.write(`warning: ${terminalSafe(String(w).replace(/\s*\n\s*/g, ' '))}\n`)
}

export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').trim()
}

/** Writes an enrollment token (0600, atomically). */
export async function writeJwt(path: string, jwt: string): Promise<void> {
  try {
    await writeSecretFile(path, `${jwt.trim()}\n`)
  } catch (err) {
    throw new CliError(
      'ERR_CLI_FILE',
      `cannot write the enrollment token to ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    )
  }
}
