/** Ids, token hashing and password hashing (scrypt, per-user salt, constant-time compare). */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto'

/** Opaque URL-safe id, e.g. `id_3f9Kx...`. */
export function newId(): string {
  return randomBytes(12).toString('base64url').replace(/^[-_]/, 'x')
}

/** A bearer token: 32 random bytes, base64url. */
export function newToken(): string {
  return randomBytes(32).toString('base64url')
}

export function sha256Hex(s: string | Buffer): string {
  return createHash('sha256').update(s).digest('hex')
}

const N = 16384
const R = 8
const P = 1
const KEYLEN = 32

function scrypt(
  password: string,
  salt: Buffer,
  n: number,
  r: number,
  p: number,
  len: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password.normalize('NFC'), salt, len, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  )
}

/** `scrypt$N$r$p$salt$hash` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(password, salt, N, R, P, KEYLEN)
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

const DUMMY = `scrypt$${N}$${R}$${P}$${Buffer.alloc(16).toString('base64url')}$${Buffer.alloc(KEYLEN).toString('base64url')}`

/** Constant-time check. With `stored` null it still spends the same work (no user-exists oracle). */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parts = (stored ?? DUMMY).split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [, n, r, p, salt, hash] = parts
  const expected = Buffer.from(hash!, 'base64url')
  const key = await scrypt(
    password,
    Buffer.from(salt!, 'base64url'),
    Number(n),
    Number(r),
    Number(p),
    expected.length,
  )
  return timingSafeEqual(key, expected) && stored !== null
}
