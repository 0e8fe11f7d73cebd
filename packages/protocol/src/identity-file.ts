import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { ProtocolError } from './errors.js'
import { writeSecretFile } from './fs/atomic.js'

/**
 * An identity file, written by enrollment with mode 0600. Holds everything an SDK, tunneler or
 * router needs to join the network: where the controller is, its own certificate and key, and
 * the network's CA bundle (root + intermediate) it verifies everyone else against.
 */
export interface IdentityFile {
  version: 1
  kind: 'identity' | 'router'
  /** Entity id (identity id or edge-router id). */
  id: string
  name: string
  /** Controller base URL, e.g. `https://127.0.0.1:1280`. */
  controller: string
  /** PEM: the leaf certificate followed by the issuing intermediate. */
  cert: string
  /** PEM: PKCS#8 private key (ECDSA P-256). */
  key: string
  /** PEM: the network CA bundle (root, then intermediate). */
  ca: string
  /** SPIFFE trust domain of the network. */
  trustDomain: string
}

const MAX_IDENTITY_FILE = 256 * 1024

function malformedError(path: string, why: string, label = path): ProtocolError {
  return new ProtocolError('ERR_IDENTITY_FILE_MALFORMED', `identity file ${label} is malformed: ${why}`, {
    path,
  })
}

/**
 * Checks an already-parsed object is an IdentityFile; throws ERR_IDENTITY_FILE_MALFORMED naming
 * the field. `label` names the file in messages (default `path`).
 */
export function parseIdentityFile(value: unknown, path = '<memory>', label = path): IdentityFile {
  const malformed = (why: string): ProtocolError => malformedError(path, why, label)
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed('not a JSON object')
  const v = value as Record<string, unknown>
  const allowed = new Set(['version', 'kind', 'id', 'name', 'controller', 'cert', 'key', 'ca', 'trustDomain'])
  for (const k of Object.keys(v)) if (!allowed.has(k)) throw malformed(`unknown field "${k}"`)
  if (v.version !== 1) throw malformed(`"version" must be 1`)
  if (v.kind !== 'identity' && v.kind !== 'router') throw malformed(`"kind" must be "identity" or "router"`)
  for (const f of ['id', 'name', 'controller', 'cert', 'key', 'ca', 'trustDomain'] as const) {
    if (typeof v[f] !== 'string' || (v[f] as string).length === 0)
      throw malformed(`"${f}" must be a non-empty string`)
  }
  try {
    const u = new URL(v.controller as string)
    if (u.protocol !== 'https:') throw new Error('not https')
  } catch {
    throw malformed(`"controller" must be an https:// URL`)
  }
  for (const f of ['cert', 'ca'] as const) {
    if (!(v[f] as string).includes('-----BEGIN CERTIFICATE-----'))
      throw malformed(`"${f}" must hold PEM certificates`)
  }
  if (!(v.key as string).includes('-----BEGIN PRIVATE KEY-----'))
    throw malformed(`"key" must hold a PEM PKCS#8 private key`)
  return v as unknown as IdentityFile
}

export interface LoadIdentityFileOptions {
  /**
   * How messages name the file, default the path (e.g. `${path} (NULLPORT_IDENTITY)` when the
   * path came from an environment variable).
   */
  label?: string
}

function readError(path: string, label: string, err: unknown): ProtocolError {
  if (err instanceof ProtocolError) return err
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') {
    return new ProtocolError(
      'ERR_IDENTITY_FILE_MISSING',
      `identity file ${label} does not exist: enroll first with \`nullport edge enroll NAME.jwt\``,
      { path },
      { cause: err },
    )
  }
  return new ProtocolError(
    'ERR_IDENTITY_FILE_MISSING',
    `identity file ${label} cannot be read: ${(err as Error).message}`,
    { path },
    { cause: err },
  )
}

function tooLarge(path: string, label: string, size: number): ProtocolError | null {
  return size > MAX_IDENTITY_FILE
    ? malformedError(path, `larger than ${MAX_IDENTITY_FILE} bytes`, label)
    : null
}

function fromText(text: string, path: string, label: string): IdentityFile {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ProtocolError(
      'ERR_IDENTITY_FILE_MALFORMED',
      `identity file ${label} is not valid JSON: ${(err as Error).message}`,
      { path },
      { cause: err },
    )
  }
  return parseIdentityFile(json, path, label)
}

/**
 * Reads and validates an identity file (at most 256 KiB). Errors: ERR_IDENTITY_FILE_MISSING,
 * ERR_IDENTITY_FILE_MALFORMED.
 */
export async function loadIdentityFile(
  path: string,
  opts: LoadIdentityFileOptions = {},
): Promise<IdentityFile> {
  const label = opts.label ?? path
  let text: string
  try {
    const fh = await open(path, 'r')
    try {
      const big = tooLarge(path, label, (await fh.stat()).size)
      if (big) throw big
      text = await fh.readFile('utf8')
    } finally {
      await fh.close()
    }
  } catch (err) {
    throw readError(path, label, err)
  }
  return fromText(text, path, label)
}

/** loadIdentityFile(), synchronous (for calls that must fail at once, before any I/O is scheduled). */
export function loadIdentityFileSync(path: string, opts: LoadIdentityFileOptions = {}): IdentityFile {
  const label = opts.label ?? path
  let text: string
  try {
    const fd = openSync(path, 'r')
    try {
      const big = tooLarge(path, label, fstatSync(fd).size)
      if (big) throw big
      text = readFileSync(fd, 'utf8')
    } finally {
      closeSync(fd)
    }
  } catch (err) {
    throw readError(path, label, err)
  }
  return fromText(text, path, label)
}

/** Writes an identity file (mode 0600, atomically). */
export async function saveIdentityFile(
  path: string,
  file: IdentityFile,
  opts: { exclusive?: boolean } = {},
): Promise<void> {
  parseIdentityFile(file, path)
  await writeSecretFile(path, `${JSON.stringify(file, null, 2)}\n`, opts)
}
