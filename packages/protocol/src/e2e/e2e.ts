/**
 * End-to-end encryption of circuits: handshake (X25519 + ECDSA P-256 identity signatures over a
 * length-prefixed transcript) and AES-256-GCM records with implicit counter nonces. Design and
 * threat model: docs/security.md. node:crypto only.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createSecretKey,
  type KeyObject,
  randomBytes,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto'
import { ProtocolError, type ProtocolErrorCode } from '../errors.js'
import type { E2EHello } from '../frames/types.js'
import { MAX_DATA_PAYLOAD } from '../frames/types.js'
import { parseSpiffeId, spiffeIdOf, splitPem, verifyChain } from '../pki/index.js'
import { type Ephemeral, ephemeralStats, newEphemeral, sharedSecret, X25519_KEY_SIZE } from './x25519.js'

export interface E2EOwnIdentity {
  /** PEM chain: leaf, intermediate. */
  certChainPem: string
  /** PEM PKCS#8 key of the leaf. */
  keyPem: string
}

export interface E2EPeer {
  /** Verified SPIFFE ID of the peer's certificate. */
  spiffeId: string
  identityId: string
  /** Certificate CN (the identity name at issue time). */
  commonName: string
}

/** Seals (encrypts) records in one direction. */
export interface RecordSealer {
  /** Encrypts one DATA record; plaintext up to MAX_DATA_PAYLOAD - TAG bytes. */
  seal(plaintext: Uint8Array): Buffer
  /** The authenticated end-of-stream record (carried in HALF_CLOSE). */
  sealEnd(): Buffer
  /**
   * Same record as `seal()`, as its two parts `[ciphertext, tag]` (joined, they are exactly what
   * `seal()` returns). Faster: no copy into one buffer. Send with
   * `FrameConnection.sendDataParts(circuitId, FrameFlag.E2E, parts)`. Optional in the interface
   * (test doubles may omit it); the sealers of real sessions always have it.
   */
  sealParts?(plaintext: Uint8Array): [Buffer, Buffer]
}
/** Opens (decrypts) records in one direction; any failure throws ERR_E2E_DECRYPT_FAILED. */
export interface RecordOpener {
  open(record: Uint8Array): Buffer
  /** Verifies an end-of-stream record; throws ERR_E2E_TRUNCATED / ERR_E2E_DECRYPT_FAILED. */
  openEnd(record: Uint8Array): void
}

export interface E2ESession {
  peer: E2EPeer
  sealer: RecordSealer
  opener: RecordOpener
}

/** Bytes a sealed record adds to its plaintext. */
export const E2E_OVERHEAD = 16
/** Largest plaintext of one sealed record, so that the record fits a DATA frame an SDK sends. */
export const E2E_MAX_PLAINTEXT = MAX_DATA_PAYLOAD - E2E_OVERHEAD
/** Largest record `open()` accepts. */
export const E2E_MAX_RECORD = MAX_DATA_PAYLOAD
/** Size of the end-of-stream record (a tag over an empty plaintext). */
export const E2E_END_RECORD_SIZE = E2E_OVERHEAD
/** Protocol label; part of every signed transcript and of the key derivation. */
export const E2E_PROTOCOL_LABEL = 'nullport-e2e-v1'

const NONCE_SIZE = 16
/** A DER ECDSA P-256 signature is at most 72 bytes. */
const MAX_SIGNATURE_SIZE = 72
/** Records per direction before the session refuses to continue (never reached in practice). */
const MAX_RECORDS = 2 ** 48

const RECORD_DATA = Buffer.from([0x00])
const RECORD_END = Buffer.from([0x01])

function fail(
  code: ProtocolErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw new ProtocolError(code, message, details, cause === undefined ? undefined : { cause })
}

/** Length-prefixed concatenation: for each part, u32 BE length then the bytes. Unambiguous. */
function lp(parts: Array<Uint8Array | string>): Buffer {
  const bufs = parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p))
  const out = Buffer.allocUnsafe(bufs.reduce((n, b) => n + 4 + b.byteLength, 0))
  let off = 0
  for (const b of bufs) {
    out.writeUInt32BE(b.byteLength, off)
    out.set(b, off + 4)
    off += 4 + b.byteLength
  }
  return out
}

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest()
}

function dialerTranscript(service: string, nonce: Uint8Array, dialerPub: Uint8Array): Buffer {
  return lp([`${E2E_PROTOCOL_LABEL} dialer`, service, nonce, dialerPub])
}

function hostTranscript(
  service: string,
  dialerNonce: Uint8Array,
  dialerPub: Uint8Array,
  hostPub: Uint8Array,
  dialerCertHash: Uint8Array,
  hostNonce: Uint8Array,
): Buffer {
  return lp([
    `${E2E_PROTOCOL_LABEL} host`,
    service,
    dialerNonce,
    dialerPub,
    hostPub,
    dialerCertHash,
    hostNonce,
  ])
}

// ---------------------------------------------------------------------------------------------
// identities

interface OwnParsed {
  leaf: X509Certificate
  leafHash: Buffer
  key: KeyObject
  trustDomain: string
  /** SHA-256 of chain and key: names this identity in the pre-signed hello pool. */
  cacheKey: string
}

const ownCache = new Map<string, OwnParsed>()
const OWN_CACHE_MAX = 16

function checkService(service: unknown): string {
  if (typeof service !== 'string' || service.length === 0 || service.length > 256) {
    fail('ERR_E2E_HANDSHAKE', 'e2e: service must be the service name, 1 to 256 characters')
  }
  return service
}

/** Parses our own chain and key once (cached): the key must be the leaf's, the leaf a SPIFFE identity. */
function parseOwn(own: E2EOwnIdentity): OwnParsed {
  if (!own || typeof own.certChainPem !== 'string' || typeof own.keyPem !== 'string') {
    fail('ERR_E2E_HANDSHAKE', 'e2e: own identity needs certChainPem and keyPem (PEM strings)')
  }
  // Keyed by a hash: the cache does not hold another copy of the private key text.
  const cacheKey = createHash('sha256').update(own.certChainPem).update('\0').update(own.keyPem).digest('hex')
  const hit = ownCache.get(cacheKey)
  if (hit) return hit
  let parsed: OwnParsed
  try {
    const pem = splitPem(own.certChainPem)[0]
    if (!pem) fail('ERR_E2E_HANDSHAKE', 'e2e: own certChainPem holds no certificate')
    const leaf = new X509Certificate(pem)
    const key = createPrivateKey(own.keyPem)
    if (!leaf.checkPrivateKey(key)) {
      fail('ERR_E2E_HANDSHAKE', 'e2e: own keyPem is not the key of the first certificate of certChainPem')
    }
    checkEcP256(leaf, 'own certificate')
    const spiffe = spiffeIdOf(leaf)
    if (!spiffe)
      fail('ERR_E2E_HANDSHAKE', 'e2e: own certificate has no spiffe:// URI SAN: use the identity certificate')
    const { trustDomain } = parseSpiffeId(spiffe)
    parsed = { leaf, leafHash: sha256(leaf.raw), key, trustDomain, cacheKey }
  } catch (err) {
    if (err instanceof ProtocolError && err.code === 'ERR_E2E_HANDSHAKE') throw err
    fail('ERR_E2E_HANDSHAKE', `e2e: own identity is unusable: ${(err as Error).message}`, {}, err)
  }
  if (ownCache.size >= OWN_CACHE_MAX) ownCache.delete(ownCache.keys().next().value as string)
  ownCache.set(cacheKey, parsed)
  return parsed
}

function checkEcP256(cert: X509Certificate, what: string): void {
  checkEcP256Key(cert.publicKey, what)
}

function checkEcP256Key(k: KeyObject, what: string): void {
  if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    fail('ERR_E2E_VERIFY_FAILED', `e2e: ${what} does not have an ECDSA P-256 key`)
  }
}

function commonNameOf(cert: X509Certificate): string {
  for (const line of cert.subject.split('\n')) {
    if (line.startsWith('CN=')) return line.slice(3)
  }
  return ''
}

/**
 * Chains verified recently (key: SHA-256 of CA PEM + chain PEM): verifyChain costs tens of ms
 * and a dialer usually reaches the same hosts again. A hit is used for at most
 * CHAIN_CACHE_TTL_MS and only while the leaf is within its validity period; the transcript
 * signature is verified on every handshake regardless.
 */
const chainCache = new Map<
  string,
  {
    leaf: X509Certificate
    /** The leaf's public key, parsed once (X509Certificate.publicKey makes a new KeyObject per call). */
    publicKey: KeyObject
    /** SHA-256 of the leaf's DER (bound into the host's transcript). */
    leafHash: Buffer
    spiffeId: string | null
    verifiedAt: number
    notBefore: number
    notAfter: number
  }
>()
const CHAIN_CACHE_TTL_MS = 60_000
const CHAIN_CACHE_MAX = 256

/**
 * Verifies a peer's chain to the network CA and that it is an identity of our trust domain.
 * Returns the leaf and the peer description.
 */
function verifyPeer(
  certChain: string,
  caPem: string,
  trustDomain: string,
  who: string,
): { leaf: X509Certificate; publicKey: KeyObject; leafHash: Buffer; peer: E2EPeer } {
  let leaf: X509Certificate
  let publicKey: KeyObject
  let leafHash: Buffer
  let spiffeId: string | null
  const now = Date.now()
  const cacheKey = createHash('sha256').update(caPem).update('\0').update(certChain).digest('hex')
  const hit = chainCache.get(cacheKey)
  if (hit && now - hit.verifiedAt < CHAIN_CACHE_TTL_MS && now >= hit.notBefore && now <= hit.notAfter) {
    leaf = hit.leaf
    publicKey = hit.publicKey
    leafHash = hit.leafHash
    spiffeId = hit.spiffeId
  } else {
    if (hit) chainCache.delete(cacheKey)
    try {
      const v = verifyChain({ chainPem: certChain, rootsPem: caPem })
      leaf = v.leaf
      spiffeId = v.spiffeId
    } catch (err) {
      fail(
        'ERR_E2E_VERIFY_FAILED',
        `e2e: the ${who}'s certificate does not verify against the network CA: ${(err as Error).message}`,
        { who },
        err,
      )
    }
    publicKey = leaf.publicKey
    leafHash = sha256(leaf.raw)
    if (chainCache.size >= CHAIN_CACHE_MAX) chainCache.delete(chainCache.keys().next().value as string)
    chainCache.set(cacheKey, {
      leaf,
      publicKey,
      leafHash,
      spiffeId,
      verifiedAt: now,
      notBefore: Date.parse(leaf.validFrom),
      notAfter: Date.parse(leaf.validTo),
    })
  }
  checkEcP256Key(publicKey, `the ${who}'s certificate`)
  if (!spiffeId)
    fail('ERR_E2E_VERIFY_FAILED', `e2e: the ${who}'s certificate has no spiffe:// identity`, { who })
  let parsed: ReturnType<typeof parseSpiffeId>
  try {
    parsed = parseSpiffeId(spiffeId)
  } catch (err) {
    fail(
      'ERR_E2E_VERIFY_FAILED',
      `e2e: the ${who}'s SPIFFE id is invalid: ${(err as Error).message}`,
      { who, spiffeId },
      err,
    )
  }
  if (parsed.kind !== 'identity' || parsed.trustDomain !== trustDomain) {
    fail(
      'ERR_E2E_VERIFY_FAILED',
      `e2e: the ${who}'s certificate is ${spiffeId}, expected spiffe://${trustDomain}/identity/<id>`,
      { who, spiffeId },
    )
  }
  return {
    leaf,
    publicKey,
    leafHash,
    peer: { spiffeId, identityId: parsed.id, commonName: commonNameOf(leaf) },
  }
}

/** Strict base64 of an exact (or bounded) size. */
function decodeB64(value: unknown, field: string, size: { exact?: number; max?: number }): Buffer {
  if (typeof value !== 'string') fail('ERR_E2E_HANDSHAKE', `e2e hello: ${field} must be base64`, { field })
  const b = Buffer.from(value, 'base64')
  if (b.toString('base64') !== value)
    fail('ERR_E2E_HANDSHAKE', `e2e hello: ${field} is not canonical base64`, { field })
  if (
    (size.exact !== undefined && b.length !== size.exact) ||
    (size.max !== undefined && (b.length === 0 || b.length > size.max))
  ) {
    fail('ERR_E2E_HANDSHAKE', `e2e hello: ${field} has the wrong size (${b.length} bytes)`, {
      field,
      size: b.length,
    })
  }
  return b
}

function decodeHello(
  h: E2EHello,
  who: string,
): { pub: Buffer; sig: Buffer; nonce: Buffer; certChain: string } {
  if (!h || typeof h !== 'object') fail('ERR_E2E_HANDSHAKE', `e2e: the ${who}'s hello is missing`)
  if (typeof h.certChain !== 'string' || h.certChain.length === 0 || h.certChain.length > 16384) {
    fail(
      'ERR_E2E_HANDSHAKE',
      `e2e hello: the ${who}'s certChain must be PEM text of at most 16384 characters`,
    )
  }
  return {
    pub: decodeB64(h.publicKey, 'publicKey', { exact: X25519_KEY_SIZE }),
    sig: decodeB64(h.signature, 'signature', { max: MAX_SIGNATURE_SIZE }),
    nonce: decodeB64(h.nonce, 'nonce', { exact: NONCE_SIZE }),
    certChain: h.certChain,
  }
}

// ---------------------------------------------------------------------------------------------
// key derivation (X25519: x25519.ts)

/**
 * HKDF-SHA256 (RFC 5869) of 32-byte outputs, one extract for several infos: the same bytes as
 * `hkdfSync('sha256', ikm, salt, info, 32)` per info, with three HMACs instead of two full HKDF
 * runs (hkdfSync builds a key object and runs extract again on every call). Exported for the
 * test that checks it against hkdfSync.
 */
export function hkdfSha256x32(ikm: Uint8Array, salt: Uint8Array, infos: string[]): Buffer[] {
  const prk = createHmac('sha256', salt).update(ikm).digest()
  return infos.map((info) => createHmac('sha256', prk).update(info, 'utf8').update(ONE).digest())
}
const ONE = Buffer.from([1])

function deriveKeys(secret: Buffer, transcriptHash: Buffer): { d2h: KeyObject; h2d: KeyObject } {
  const [d2h, h2d] = hkdfSha256x32(secret, transcriptHash, [
    `${E2E_PROTOCOL_LABEL} d2h`,
    `${E2E_PROTOCOL_LABEL} h2d`,
  ])
  return { d2h: createSecretKey(d2h!), h2d: createSecretKey(h2d!) }
}

function transcriptHash(dialerT: Buffer, hostT: Buffer): Buffer {
  return sha256(lp([dialerT, hostT]))
}

// ---------------------------------------------------------------------------------------------
// records

/** Writes the nonce of record `counter` into `n` (12 bytes, the first 4 stay zero) and returns it. */
function nonceFor(n: Buffer, counter: number): Buffer {
  n.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 4)
  n.writeUInt32BE(counter >>> 0, 8)
  return n
}

class Sealer implements RecordSealer {
  private counter = 0
  /** Reused for every record (createCipheriv copies the IV). */
  private readonly nonce = Buffer.alloc(12)
  private ended = false
  constructor(private readonly key: KeyObject) {}

  private sealRecord(plaintext: Uint8Array, type: Buffer): [Buffer, Buffer] {
    if (this.ended) fail('ERR_E2E_HANDSHAKE', 'e2e: no record can be sealed after the end-of-stream record')
    if (this.counter >= MAX_RECORDS)
      fail('ERR_E2E_HANDSHAKE', 'e2e: record limit of this session reached; open a new circuit')
    const c = createCipheriv('aes-256-gcm', this.key, nonceFor(this.nonce, this.counter++), {
      authTagLength: 16,
    })
    c.setAAD(type)
    const body = c.update(plaintext)
    c.final()
    return [body, c.getAuthTag()]
  }

  seal(plaintext: Uint8Array): Buffer {
    const [body, tag] = this.sealParts(plaintext)
    const out = Buffer.allocUnsafe(body.length + E2E_OVERHEAD)
    body.copy(out, 0)
    tag.copy(out, body.length)
    return out
  }

  sealParts(plaintext: Uint8Array): [Buffer, Buffer] {
    if (!(plaintext instanceof Uint8Array)) fail('ERR_E2E_HANDSHAKE', 'e2e: seal() takes bytes')
    if (plaintext.byteLength > E2E_MAX_PLAINTEXT) {
      fail(
        'ERR_E2E_HANDSHAKE',
        `e2e: a record holds at most ${E2E_MAX_PLAINTEXT} bytes, got ${plaintext.byteLength}: split the data`,
        { size: plaintext.byteLength },
      )
    }
    return this.sealRecord(plaintext, RECORD_DATA)
  }

  sealEnd(): Buffer {
    const [, tag] = this.sealRecord(Buffer.alloc(0), RECORD_END)
    this.ended = true
    return tag
  }
}

class Opener implements RecordOpener {
  private counter = 0
  /** Reused for every record (createDecipheriv copies the IV). */
  private readonly nonce = Buffer.alloc(12)
  private ended = false
  private failed: ProtocolError | null = null
  constructor(private readonly key: KeyObject) {}

  private openRecord(record: Uint8Array, type: Buffer, what: string): Buffer {
    if (this.failed) throw this.failed
    try {
      if (this.ended) fail('ERR_E2E_DECRYPT_FAILED', `e2e: ${what} after the end-of-stream record`)
      if (
        !(record instanceof Uint8Array) ||
        record.byteLength < E2E_OVERHEAD ||
        record.byteLength > E2E_MAX_RECORD
      ) {
        fail(
          'ERR_E2E_DECRYPT_FAILED',
          `e2e: ${what} has an invalid size (${(record as Uint8Array)?.byteLength ?? 'none'} bytes)`,
        )
      }
      if (this.counter >= MAX_RECORDS)
        fail('ERR_E2E_DECRYPT_FAILED', 'e2e: record limit of this session reached')
      const tagAt = record.byteLength - E2E_OVERHEAD
      const d = createDecipheriv('aes-256-gcm', this.key, nonceFor(this.nonce, this.counter), {
        authTagLength: 16,
      })
      d.setAAD(type)
      d.setAuthTag(record.subarray(tagAt))
      const plain = d.update(record.subarray(0, tagAt))
      try {
        d.final()
      } catch (err) {
        fail(
          'ERR_E2E_DECRYPT_FAILED',
          `e2e: ${what} #${this.counter} failed authentication: it was altered, dropped, reordered, replayed or forged`,
          { record: this.counter },
          err,
        )
      }
      this.counter++
      return plain
    } catch (err) {
      const e =
        err instanceof ProtocolError
          ? err
          : new ProtocolError('ERR_E2E_DECRYPT_FAILED', `e2e: ${what} failed`, {}, { cause: err })
      this.failed = e
      throw e
    }
  }

  open(record: Uint8Array): Buffer {
    return this.openRecord(record, RECORD_DATA, 'record')
  }

  openEnd(record: Uint8Array): void {
    if (this.failed) throw this.failed
    if (!(record instanceof Uint8Array) || record.byteLength === 0) {
      this.failed = new ProtocolError(
        'ERR_E2E_TRUNCATED',
        'e2e: the stream ended without the authenticated end-of-stream record: it may have been truncated',
      )
      throw this.failed
    }
    if (record.byteLength !== E2E_END_RECORD_SIZE) {
      this.failed = new ProtocolError(
        'ERR_E2E_DECRYPT_FAILED',
        `e2e: end-of-stream record has ${record.byteLength} bytes, expected ${E2E_END_RECORD_SIZE}`,
      )
      throw this.failed
    }
    this.openRecord(record, RECORD_END, 'end-of-stream record')
    this.ended = true
  }
}

// ---------------------------------------------------------------------------------------------
// handshake

const DIALER_STATE = Symbol('nullport.e2e.dialerState')

interface DialerState {
  [DIALER_STATE]: true
  service: string
  own: OwnParsed
  nonce: Buffer
  privateKey: KeyObject
  pub: Buffer
  transcript: Buffer
  used: boolean
}

function b64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
}

function signWith(key: KeyObject, data: Buffer): Buffer {
  return sign('sha256', data, { key, dsaEncoding: 'der' })
}

function verifySig(key: KeyObject, data: Buffer, sig: Buffer, who: string): void {
  let ok = false
  try {
    ok = verify('sha256', data, { key, dsaEncoding: 'der' }, sig)
  } catch (err) {
    fail('ERR_E2E_VERIFY_FAILED', `e2e: the ${who}'s signature is malformed`, { who }, err)
  }
  if (!ok) {
    fail(
      'ERR_E2E_VERIFY_FAILED',
      `e2e: the ${who}'s hello signature does not verify: the hello was altered (e.g. a substituted key) or signed by another key`,
      { who },
    )
  }
}

/**
 * Dialer step 1: make the dialer's hello for DIAL. Keep the returned state for step 2.
 * `service` is the service **name** (the host signs and checks the same string).
 */
export function dialerHello(o: { service: string; own: E2EOwnIdentity }): {
  hello: E2EHello
  state: unknown
} {
  const service = checkService(o.service)
  const own = parseOwn(o.own)
  let pre = takePresigned(own, service)
  if (pre) stats.presignedHits++
  else {
    stats.presignedMisses++
    const [transcript, parts] = unsigned(service)
    pre = { ...parts, transcript, signature: signWith(own.key, transcript), madeAt: Date.now() }
  }
  refillPresigned(own, service)
  const state: DialerState = {
    [DIALER_STATE]: true,
    service,
    own,
    nonce: pre.nonce,
    privateKey: pre.eph.privateKey,
    pub: pre.eph.pub,
    transcript: pre.transcript,
    used: false,
  }
  return {
    hello: {
      publicKey: b64(pre.eph.pub),
      certChain: o.own.certChainPem,
      signature: b64(pre.signature),
      nonce: b64(pre.nonce),
    },
    state,
  }
}

/**
 * Pre-signed dialer hellos. Nothing in the dialer's hello depends on the host (label, service,
 * a fresh nonce, a fresh ephemeral key), so after a first dial to a service the next hellos are
 * made ahead of time, signed on libuv's thread pool, and a dial takes one ready-made: the
 * dialer's signature and key generation leave the connection-setup path. Each is used once and
 * dropped; entries older than PRESIGNED_MAX_AGE_MS are discarded unused (ephemeral private keys
 * do not linger). Bounded: PRESIGNED_PER_SERVICE per (identity, service), PRESIGNED_SERVICES
 * pairs (least recently dialed dropped first). Security is unchanged: the host's fresh nonce and
 * ephemeral key still make every session's keys and transcript unique.
 */
interface Presigned {
  eph: Ephemeral
  nonce: Buffer
  transcript: Buffer
  signature: Buffer
  madeAt: number
}
const PRESIGNED_PER_SERVICE = 4
const PRESIGNED_SERVICES = 64
const PRESIGNED_MAX_AGE_MS = 60_000
const presigned = new Map<string, { ready: Presigned[]; pending: number }>()

const stats = { presignedHits: 0, presignedMisses: 0 }
/**
 * Counters of the handshake's precomputation: dialer hellos taken ready-made vs signed in line,
 * ephemeral keys taken from the pool vs made in line. For metrics and tests.
 */
export function e2eHandshakeStats(): Readonly<typeof stats & typeof ephemeralStats> {
  return { ...stats, ...ephemeralStats }
}

function unsigned(service: string): [Buffer, { eph: Ephemeral; nonce: Buffer }] {
  const nonce = randomBytes(NONCE_SIZE)
  const eph = newEphemeral()
  return [dialerTranscript(service, nonce, eph.pub), { eph, nonce }]
}

function takePresigned(own: OwnParsed, service: string): Presigned | undefined {
  const key = `${own.cacheKey}\0${service}`
  const slot = presigned.get(key)
  if (!slot) return undefined
  // most recently dialed last (Map order), so eviction drops the least recently dialed pair
  presigned.delete(key)
  presigned.set(key, slot)
  const now = Date.now()
  while (slot.ready.length > 0) {
    const p = slot.ready.shift()!
    if (now - p.madeAt < PRESIGNED_MAX_AGE_MS) return p
  }
  return undefined
}

function refillPresigned(own: OwnParsed, service: string): void {
  const key = `${own.cacheKey}\0${service}`
  let slot = presigned.get(key)
  if (!slot) {
    if (presigned.size >= PRESIGNED_SERVICES) presigned.delete(presigned.keys().next().value as string)
    slot = { ready: [], pending: 0 }
    presigned.set(key, slot)
  }
  const s = slot
  while (s.ready.length + s.pending < PRESIGNED_PER_SERVICE) {
    s.pending++
    const [transcript, parts] = unsigned(service)
    sign('sha256', transcript, { key: own.key, dsaEncoding: 'der' }, (err, signature) => {
      s.pending--
      if (err || presigned.get(key) !== s || s.ready.length >= PRESIGNED_PER_SERVICE) return
      s.ready.push({ eph: parts.eph, nonce: parts.nonce, transcript, signature, madeAt: Date.now() })
    })
  }
}

/**
 * Host: verify the dialer's hello (chain to `caPem`, signature, SPIFFE id) and answer with the
 * host's hello for DIAL_SUCCESS. `expectedDialerId`, when the router named the dialer, must
 * match the dialer certificate's identity id (ERR_E2E_IDENTITY_MISMATCH).
 *
 * `service` is the name of the service the host bound (not a value taken from the DIAL: that way
 * a router cannot steer a dial for one service to a host of another).
 */
export function hostAccept(o: {
  service: string
  own: E2EOwnIdentity
  caPem: string
  dialerHello: E2EHello
  expectedDialerId?: string
}): { hello: E2EHello; session: E2ESession } {
  const service = checkService(o.service)
  const own = parseOwn(o.own)
  const dh = decodeHello(o.dialerHello, 'dialer')
  const { publicKey, leafHash, peer } = verifyPeer(dh.certChain, o.caPem, own.trustDomain, 'dialer')
  if (o.expectedDialerId !== undefined && peer.identityId !== o.expectedDialerId) {
    fail(
      'ERR_E2E_IDENTITY_MISMATCH',
      `e2e: the router named the dialer ${o.expectedDialerId} but its certificate is ${peer.spiffeId}`,
      { expected: o.expectedDialerId, actual: peer.identityId },
    )
  }
  const dialerT = dialerTranscript(service, dh.nonce, dh.pub)
  verifySig(publicKey, dialerT, dh.sig, 'dialer')

  const hostNonce = randomBytes(NONCE_SIZE)
  const { privateKey, pub } = newEphemeral()
  const hostT = hostTranscript(service, dh.nonce, dh.pub, pub, leafHash, hostNonce)
  const signature = signWith(own.key, hostT)
  const keys = deriveKeys(sharedSecret(privateKey, dh.pub), transcriptHash(dialerT, hostT))
  return {
    hello: {
      publicKey: b64(pub),
      certChain: o.own.certChainPem,
      signature: b64(signature),
      nonce: b64(hostNonce),
    },
    session: { peer, sealer: new Sealer(keys.h2d), opener: new Opener(keys.d2h) },
  }
}

/**
 * Dialer step 2: verify the host's hello (chain, signature over the whole transcript, and that the
 * host is `expectedHostId`, the identity the router named) and derive the session.
 */
export function dialerFinish(o: {
  state: unknown
  caPem: string
  hostHello: E2EHello
  expectedHostId: string
}): E2ESession {
  const st = o.state as Partial<DialerState> | null
  if (!st || typeof st !== 'object' || st[DIALER_STATE] !== true) {
    fail('ERR_E2E_HANDSHAKE', 'e2e: dialerFinish needs the state returned by dialerHello')
  }
  const state = st as DialerState
  if (state.used)
    fail('ERR_E2E_HANDSHAKE', 'e2e: this dialer state was already used; make a new hello per dial')
  state.used = true
  const hh = decodeHello(o.hostHello, 'host')
  const { publicKey, peer } = verifyPeer(hh.certChain, o.caPem, state.own.trustDomain, 'host')
  if (typeof o.expectedHostId !== 'string' || peer.identityId !== o.expectedHostId) {
    fail(
      'ERR_E2E_IDENTITY_MISMATCH',
      `e2e: the router named the host ${String(o.expectedHostId)} but its certificate is ${peer.spiffeId}`,
      { expected: o.expectedHostId, actual: peer.identityId },
    )
  }
  const hostT = hostTranscript(state.service, state.nonce, state.pub, hh.pub, state.own.leafHash, hh.nonce)
  verifySig(publicKey, hostT, hh.sig, 'host')
  const keys = deriveKeys(sharedSecret(state.privateKey, hh.pub), transcriptHash(state.transcript, hostT))
  return { peer, sealer: new Sealer(keys.d2h), opener: new Opener(keys.h2d) }
}
