/**
 * X25519 for the e2e handshake: ephemeral keys (a pool made on libuv's thread pool, sized by
 * demand) and the shared secret. See the comment below for why no generated key object is ever
 * exported on the main thread.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPair,
  type KeyObject,
  randomBytes,
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
 * exported on the main thread. Node 20 can deadlock there: a garbage collection during the
 * export of a freshly generated key runs the finished job's destructor, which takes the mutex
 * the export holds, and the process freezes at 0% CPU (seen with generateKeyPairSync + JWK
 * export, and with the pool's async keys exported in their callback). So:
 * - the pool's keys are generated on libuv's thread pool with DER encodings chosen at
 *   generation: the callback receives plain Buffers, and a key object is imported from the
 *   PKCS#8 bytes only when the key is used (an imported key has no job behind it);
 * - when the pool is empty, the private key is 32 random bytes (every X25519 scalar is valid:
 *   the function clamps it) imported from PKCS#8, and its public key is derived from it.
 * The pool's size follows demand: every miss doubles the target (up to EPHEMERAL_POOL_MAX), and
 * it halves back towards EPHEMERAL_POOL_MIN after EPHEMERAL_SHRINK_MS without a miss.
 */
const EPHEMERAL_POOL_MIN = 8
const EPHEMERAL_POOL_MAX = 512
const EPHEMERAL_SHRINK_MS = 30_000
/** PKCS#8 DER of an X25519 private key: this prefix, then the 32-byte scalar. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
/** SPKI DER of an X25519 public key: 12 bytes of prefix, then the 32-byte point. */
const X25519_SPKI_PREFIX_LENGTH = 12
const X25519_KEYGEN_DER = {
  publicKeyEncoding: { type: 'spki', format: 'der' },
  privateKeyEncoding: { type: 'pkcs8', format: 'der' },
} as const

interface PooledEphemeral {
  pkcs8: Buffer
  pub: Buffer
}
const ephemeralPool: PooledEphemeral[] = []
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
    generateKeyPair('x25519', X25519_KEYGEN_DER, (err, spki: Buffer, pkcs8: Buffer) => {
      ephemeralPending--
      if (!err && ephemeralPool.length < ephemeralTarget)
        ephemeralPool.push({ pkcs8, pub: spki.subarray(X25519_SPKI_PREFIX_LENGTH) })
    })
  }
}

function importX25519(pkcs8: Buffer): KeyObject {
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
}

/** An ephemeral key made in line, without a key-generation job (see above). */
function inlineEphemeral(): Ephemeral {
  const privateKey = importX25519(Buffer.concat([X25519_PKCS8_PREFIX, randomBytes(X25519_KEY_SIZE)]))
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
  return { privateKey, pub: spki.subarray(X25519_SPKI_PREFIX_LENGTH) }
}

export function newEphemeral(): Ephemeral {
  const pooled = ephemeralPool.pop()
  if (pooled) {
    ephemeralStats.ephemeralHits++
    refillEphemerals()
    return { privateKey: importX25519(pooled.pkcs8), pub: pooled.pub }
  }
  ephemeralStats.ephemeralMisses++
  lastEphemeralMiss = Date.now()
  ephemeralTarget = Math.min(EPHEMERAL_POOL_MAX, ephemeralTarget * 2)
  refillEphemerals()
  return inlineEphemeral()
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
