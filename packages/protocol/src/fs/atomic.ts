/**
 * Atomic file writes: the data goes to a temporary file in the same directory, is fsynced, then
 * renamed over the target (and the directory is fsynced, where the platform allows it). A crash
 * leaves either the old file or the new one, never half of one, and a failed write leaves no
 * temporary file behind.
 *
 * Secrets (private keys, identity files, tokens, passwords) use writeSecretFile(): mode exactly
 * 0600 whatever the umask. Other files (certificates, configs) use writeFileAtomic(): mode 0644
 * by default, narrowed by the umask like any created file.
 *
 * @example
 * await writeSecretFile('/etc/nullport/router.json', json)            // 0600, replaces
 * writeSecretFileSync(path, pem, { exclusive: true })                 // EEXIST if it exists
 */
import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  closeSync,
  fsyncSync,
  lstatSync,
  openSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { chmod, lstat, open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

export interface AtomicWriteOptions {
  /** Refuse to replace an existing file (an Error with code EEXIST). Default false. */
  exclusive?: boolean
  /** Mode of a created file (the umask applies). Default 0o644. Ignored by writeSecretFile*. */
  mode?: number
}

const SECRET_MODE = 0o600

function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
}

function existsError(path: string): NodeJS.ErrnoException {
  const err = new Error(`${path} already exists`) as NodeJS.ErrnoException
  err.code = 'EEXIST'
  err.path = path
  return err
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
}

async function write(
  path: string,
  data: string | Uint8Array,
  mode: number,
  exact: boolean,
  exclusive: boolean,
): Promise<void> {
  if (exclusive) {
    try {
      await lstat(path)
      throw existsError(path)
    } catch (err) {
      if (!isMissing(err)) throw err
    }
  }
  const tmp = tempPath(path)
  const fh = await open(tmp, 'wx', mode)
  try {
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (exact) await chmod(tmp, mode)
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
  await syncDir(dirname(path))
}

async function syncDir(dir: string): Promise<void> {
  // Makes the rename durable. Not every platform can open a directory (Windows): best effort.
  try {
    const d = await open(dir, 'r')
    try {
      await d.sync()
    } finally {
      await d.close()
    }
  } catch {}
}

function writeSync(
  path: string,
  data: string | Uint8Array,
  mode: number,
  exact: boolean,
  exclusive: boolean,
): void {
  if (exclusive) {
    try {
      lstatSync(path)
      throw existsError(path)
    } catch (err) {
      if (!isMissing(err)) throw err
    }
  }
  const tmp = tempPath(path)
  const fd = openSync(tmp, 'wx', mode)
  try {
    try {
      writeFileSync(fd, data)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    if (exact) chmodSync(tmp, mode)
    renameSync(tmp, path)
  } catch (err) {
    try {
      unlinkSync(tmp)
    } catch {}
    throw err
  }
  try {
    const d = openSync(dirname(path), 'r')
    try {
      fsyncSync(d)
    } finally {
      closeSync(d)
    }
  } catch {}
}

/** Writes a file atomically, mode `opts.mode` (default 0644, narrowed by the umask). */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  await write(path, data, opts.mode ?? 0o644, false, opts.exclusive === true)
}

/** writeFileAtomic(), synchronous. */
export function writeFileAtomicSync(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): void {
  writeSync(path, data, opts.mode ?? 0o644, false, opts.exclusive === true)
}

/**
 * Writes a file atomically with mode exactly 0600. With `exclusive`, refuses to replace an
 * existing file (an Error with code EEXIST).
 */
export async function writeSecretFile(
  path: string,
  data: string | Uint8Array,
  opts: { exclusive?: boolean } = {},
): Promise<void> {
  await write(path, data, SECRET_MODE, true, opts.exclusive === true)
}

/** writeSecretFile(), synchronous. */
export function writeSecretFileSync(
  path: string,
  data: string | Uint8Array,
  opts: { exclusive?: boolean } = {},
): void {
  writeSync(path, data, SECRET_MODE, true, opts.exclusive === true)
}
