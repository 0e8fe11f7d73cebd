import { chmod, open, readFile, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { ProtocolError } from './errors.js'

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

function malformed(path: string, why: string): ProtocolError {
  return new ProtocolError('ERR_IDENTITY_FILE_MALFORMED', `identity file ${path} is malformed: ${why}`, {
    path,
  })
}

/** Checks an already-parsed object is an IdentityFile; throws ERR_IDENTITY_FILE_MALFORMED naming the field. */
export function parseIdentityFile(value: unknown, path = '<memory>'): IdentityFile {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw malformed(path, 'not a JSON object')
  const v = value as Record<string, unknown>
  const allowed = new Set(['version', 'kind', 'id', 'name', 'controller', 'cert', 'key', 'ca', 'trustDomain'])
  for (const k of Object.keys(v)) if (!allowed.has(k)) throw malformed(path, `unknown field "${k}"`)
  if (v.version !== 1) throw malformed(path, `"version" must be 1`)
  if (v.kind !== 'identity' && v.kind !== 'router')
    throw malformed(path, `"kind" must be "identity" or "router"`)
  for (const f of ['id', 'name', 'controller', 'cert', 'key', 'ca', 'trustDomain'] as const) {
    if (typeof v[f] !== 'string' || (v[f] as string).length === 0)
      throw malformed(path, `"${f}" must be a non-empty string`)
  }
  try {
    const u = new URL(v.controller as string)
    if (u.protocol !== 'https:') throw new Error('not https')
  } catch {
    throw malformed(path, `"controller" must be an https:// URL`)
  }
  for (const f of ['cert', 'ca'] as const) {
    if (!(v[f] as string).includes('-----BEGIN CERTIFICATE-----'))
      throw malformed(path, `"${f}" must hold PEM certificates`)
  }
  if (!(v.key as string).includes('-----BEGIN PRIVATE KEY-----'))
    throw malformed(path, `"key" must hold a PEM PKCS#8 private key`)
  return v as unknown as IdentityFile
}

/** Reads and validates an identity file. Errors: ERR_IDENTITY_FILE_MISSING, ERR_IDENTITY_FILE_MALFORMED. */
export async function loadIdentityFile(path: string): Promise<IdentityFile> {
  let text: string
  try {
    const fh = await open(path, 'r')
    try {
      const st = await fh.stat()
      if (st.size > MAX_IDENTITY_FILE) throw malformed(path, `larger than ${MAX_IDENTITY_FILE} bytes`)
      text = await fh.readFile('utf8')
    } finally {
      await fh.close()
    }
  } catch (err) {
    if (err instanceof ProtocolError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new ProtocolError(
        'ERR_IDENTITY_FILE_MISSING',
        `identity file ${path} does not exist: enroll first with \`nullport edge enroll NAME.jwt\``,
        { path },
        { cause: err },
      )
    }
    throw new ProtocolError(
      'ERR_IDENTITY_FILE_MISSING',
      `identity file ${path} cannot be read: ${(err as Error).message}`,
      { path },
      { cause: err },
    )
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ProtocolError(
      'ERR_IDENTITY_FILE_MALFORMED',
      `identity file ${path} is not valid JSON: ${(err as Error).message}`,
      { path },
      { cause: err },
    )
  }
  return parseIdentityFile(json, path)
}

/**
 * Writes a file atomically with mode 0600: a temporary file in the same directory, fsync, rename.
 * A crash leaves either the old file or the new one, never half of one. With `exclusive`, refuses
 * to replace an existing file.
 */
export async function writeSecretFile(
  path: string,
  data: string | Uint8Array,
  opts: { exclusive?: boolean } = {},
): Promise<void> {
  if (opts.exclusive) {
    try {
      await readFile(path)
      const err = new Error(`${path} already exists`) as NodeJS.ErrnoException
      err.code = 'EEXIST'
      throw err
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`)
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } catch (err) {
    await fh.close().catch(() => {})
    await unlink(tmp).catch(() => {})
    throw err
  }
  await fh.close()
  await chmod(tmp, 0o600)
  await rename(tmp, path)
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
