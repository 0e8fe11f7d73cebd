/**
 * X25519 for the e2e handshake: ephemeral keys (a pool made on libuv's thread pool, sized by
 * demand) and the shared secret. See the comment below for why no generated key object is ever
 * exported once its generation job is done.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPair,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto'
import { ProtocolError } from '../errors.js'

export const X25519_KEY_SIZE = 32

/** Ephemeral keys taken from the pool vs made in line (for metrics and tests). */
export const ephemeralStats = { ephemeralHits: 0, ephemeralMisses: 0 }

function fail(message: string, cause?: unknown): never {
  throw new ProtocolError('ERR_E2E_HANDSHAKE', message, {}, cause === undefined ? undefined : { cause })
}

export interface Ephemeral {
  privateKey: KeyObject
  pub: Buffer
}

/*
 * Ephemeral X25519 keys, made so that no key object produced by a key-generation job is ever
 * exported after the job is done. Node 20 can deadlock there: a garbage collection during the
 * export of a freshly generated key runs the finished job's destructor, which takes the mutex
 * the export holds, and the process freezes at 0% CPU (seen with generateKeyPairSync followed by
 * `publicKey.export({ format: 'jwk' })`, and with the pool's async keys exported in their
 * callback). So the JWK encoding is chosen at generation: Node encodes the key inside the job
 * (the job is alive then), the callback receives plain JWK objects, and the key object it keeps
 * is imported from the JWK (an imported key has no job behind it; a JWK import costs about as
 * much as the old export, a PKCS#8 DER import ten times more).
 * The pool is made on libuv's thread pool; its size follows demand: every miss doubles the
 * target (up to EPHEMERAL_POOL_MAX), and it halves back towards EPHEMERAL_POOL_MIN after
 * EPHEMERAL_SHRINK_MS without a miss. A miss generates one key in line, the same way.
 */
const EPHEMERAL_POOL_MIN = 8
const EPHEMERAL_POOL_MAX = 512
const EPHEMERAL_SHRINK_MS = 30_000
const X25519_KEYGEN_JWK = {
  privateKeyEncoding: { format: 'jwk' },
} as const

const ephemeralPool: Ephemeral[] = []
let ephemeralPending = 0
let ephemeralTarget = EPHEMERAL_POOL_MIN
let lastEphemeralMiss = 0

function refillEphemerals(): void {
  if (ephemeralTarget > EPHEMERAL_POOL_MIN && Date.now() - lastEphemeralMiss > EPHEMERAL_SHRINK_MS) {
    ephemeralTarget = Math.max(EPHEMERAL_POOL_MIN, ephemeralTarget >> 1)
    lastEphemeralMiss = Date.now()
    if (ephemeralPool.length > ephemeralTarget) ephemeralPool.length = ephemeralTarget
  }
  while (ephemeralPool.length + ephemeralPending < ephemeralTarget) {
    ephemeralPending++
    // @types/node has no overload for JWK encodings: the callback gets JsonWebKey objects
    generateKeyPair('x25519', X25519_KEYGEN_JWK, (err, _pub, privateJwk) => {
      ephemeralPending--
      if (!err && ephemeralPool.length < ephemeralTarget)
        ephemeralPool.push(fromJwk(privateJwk as unknown as JsonWebKey))
    })
  }
}

/** A key object from a private JWK (with its public `x`), and the raw public key. */
function fromJwk(jwk: JsonWebKey): Ephemeral {
  return {
    privateKey: createPrivateKey({ key: jwk, format: 'jwk' }),
    pub: Buffer.from(jwk.x as string, 'base64url'),
  }
}

export function newEphemeral(): Ephemeral {
  const pooled = ephemeralPool.pop()
  if (pooled) {
    ephemeralStats.ephemeralHits++
    refillEphemerals()
    return pooled
  }
  ephemeralStats.ephemeralMisses++
  lastEphemeralMiss = Date.now()
  ephemeralTarget = Math.min(EPHEMERAL_POOL_MAX, ephemeralTarget * 2)
  refillEphemerals()
  return fromJwk(generateKeyPairSync('x25519', X25519_KEYGEN_JWK).privateKey as unknown as JsonWebKey)
}

/** Test hook: the pool's current target size (it follows demand). */
export function e2eEphemeralPoolTarget(): number {
  return ephemeralTarget
}

export function sharedSecret(privateKey: KeyObject, peerPub: Buffer): Buffer {
  let secret: Buffer
  try {
    // JWK, not DER: OpenSSL 3 imports a raw OKP key far faster than it decodes SPKI
    const publicKey = createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: peerPub.toString('base64url') },
      format: 'jwk',
    })
    secret = diffieHellman({ privateKey, publicKey })
  } catch (err) {
    fail('e2e: the peer X25519 public key is unusable', err)
  }
  if (secret.every((b) => b === 0)) fail('e2e: the peer X25519 public key is a low-order point')
  return secret
}
