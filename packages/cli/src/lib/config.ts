/**
 * The CLI's own state: `$NULLPORT_HOME/cli.json` (default `~/.nullport/cli.json`, mode 0600),
 * holding the management session of `nullport edge login`.
 */
import { mkdir, readFile, unlink } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { writeSecretFile } from '@nullport/protocol'
import { CliError } from '../errors.js'

export interface CliSession {
  /** Controller base URL, e.g. `https://127.0.0.1:1280`. */
  url: string
  /** Management API session token. */
  token: string
  /** ISO time the session expires (as the controller said at login). */
  expiresAt: string
  /** PEM: the CA certificates the controller's TLS certificate is verified against. */
  ca: string
  /** Who logged in (for messages). */
  username?: string
}

export interface CliConfig {
  version: 1
  session?: CliSession
}

const MAX_CONFIG = 1024 * 1024

/** `$NULLPORT_HOME`, default `~/.nullport`. */
export function nullportHome(): string {
  const h = process.env.NULLPORT_HOME
  return h && h.length > 0 ? h : join(homedir(), '.nullport')
}

export function cliConfigPath(): string {
  return join(nullportHome(), 'cli.json')
}

export async function loadCliConfig(): Promise<CliConfig> {
  const path = cliConfigPath()
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1 }
    throw new CliError(
      'ERR_CLI_CONFIG',
      `cannot read ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    )
  }
  if (text.length > MAX_CONFIG)
    throw new CliError(
      'ERR_CLI_CONFIG',
      `${path} is larger than ${MAX_CONFIG} bytes: remove it and log in again`,
      { path },
    )
  try {
    const v = JSON.parse(text) as CliConfig
    if (typeof v !== 'object' || v === null || v.version !== 1) throw new Error('not a version 1 CLI config')
    if (v.session !== undefined) {
      const s = v.session
      for (const f of ['url', 'token', 'expiresAt', 'ca'] as const) {
        if (typeof s[f] !== 'string') throw new Error(`session.${f} must be a string`)
      }
    }
    return v
  } catch (err) {
    throw new CliError(
      'ERR_CLI_CONFIG',
      `${path} is malformed (${(err as Error).message}): remove it and run \`nullport edge login URL -u USER\``,
      { path },
      { cause: err },
    )
  }
}

export async function saveCliConfig(cfg: CliConfig): Promise<void> {
  const home = nullportHome()
  await mkdir(home, { recursive: true, mode: 0o700 })
  await writeSecretFile(cliConfigPath(), `${JSON.stringify(cfg, null, 2)}\n`)
}

export async function removeCliConfig(): Promise<void> {
  await unlink(cliConfigPath()).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err
  })
}
