/** Argument helpers shared by the commands (lists, roles, numbers, JSON, input files). */
import { readFile } from 'node:fs/promises'
import { CliError } from '../errors.js'

/** `a,b , c` -> ['a','b','c'] (OpenZiti style comma-separated lists; empty items dropped). */
export function splitList(v: string | undefined): string[] {
  if (v === undefined) return []
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

/** Role attributes: comma separated, a leading `#` is tolerated and removed. */
export function parseAttributes(v: string): string[] {
  return splitList(v).map((a) => (a.startsWith('#') ? a.slice(1) : a))
}

/** Roles: comma separated `#attr`, `@name`, `#all`; each must start with `#` or `@`. */
export function parseRoles(v: string, option: string): string[] {
  const roles = splitList(v)
  for (const r of roles) {
    if (!r.startsWith('#') && !r.startsWith('@')) {
      throw new CliError(
        'ERR_CLI_USAGE',
        `${option}: role "${r}" must start with # (attribute) or @ (name): e.g. ${option} '#${r}' or ${option} '@${r}'`,
        { option, role: r },
      )
    }
    if (r.length < 2)
      throw new CliError('ERR_CLI_USAGE', `${option}: role "${r}" is empty after its # or @`, { option })
  }
  return roles
}

export function parseBool(v: string, option: string): boolean {
  const s = v.trim().toLowerCase()
  if (s === 'true' || s === 'yes' || s === '1') return true
  if (s === 'false' || s === 'no' || s === '0') return false
  throw new CliError('ERR_CLI_USAGE', `${option} must be true or false, not "${v}"`, { option })
}

export function parseNonNegInt(v: string, option: string): number {
  if (!/^\d+$/.test(v.trim()))
    throw new CliError('ERR_CLI_USAGE', `${option} must be a whole number, not "${v}"`, { option })
  return Number(v.trim())
}

export function oneOf<T extends string>(v: string, allowed: readonly T[], what: string): T {
  const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase())
  if (!hit)
    throw new CliError('ERR_CLI_USAGE', `${what} must be one of ${allowed.join(', ')}, not "${v}"`, {
      value: v,
    })
  return hit
}

/** Parses a JSON object given on the command line or in a file, naming where it came from. */
export function parseJsonObject(text: string, where: string): Record<string, unknown> {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    throw new CliError(
      'ERR_CLI_INVALID_JSON',
      `${where} is not valid JSON (${(err as Error).message}): quote it with single quotes, e.g. '{"key":"value"}'`,
      { where },
      { cause: err },
    )
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new CliError('ERR_CLI_INVALID_JSON', `${where} must be a JSON object ({...})`, { where })
  }
  return v as Record<string, unknown>
}

const MAX_INPUT_FILE = 1024 * 1024

export async function readTextFile(path: string, what: string): Promise<string> {
  try {
    const buf = await readFile(path)
    if (buf.length > MAX_INPUT_FILE)
      throw new CliError('ERR_CLI_FILE', `${what} ${path} is larger than ${MAX_INPUT_FILE} bytes`, { path })
    return buf.toString('utf8')
  } catch (err) {
    if (err instanceof CliError) throw err
    throw new CliError(
      'ERR_CLI_FILE',
      `cannot read ${what} ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    )
  }
}

/** Reads an enrollment token file (`NAME.jwt`), or a one-line ERR_CLI_FILE naming it. */
export async function readEnrollmentToken(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw new CliError(
      'ERR_CLI_FILE',
      `cannot read the enrollment token ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    )
  }
}
