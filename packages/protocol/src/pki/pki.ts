import './reflect-metadata.js'
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  verify as cryptoVerify,
  generateKeyPair,
  type KeyObject,
  randomBytes,
  webcrypto,
  X509Certificate,
} from 'node:crypto'
import { isIP } from 'node:net'
import { promisify } from 'node:util'
import * as x509 from '@peculiar/x509'
import { ProtocolError, type ProtocolErrorCode } from '../errors.js'

export type CertUsage = 'client' | 'server' | 'both'

export interface IssuedPem {
  certPem: string
  keyPem: string
}

// ---------------------------------------------------------------------------------------------
// constants and small helpers

/** Default lifetimes (days) of `createRootCa` and `createIntermediateCa`. */
export const DEFAULT_ROOT_CA_DAYS = 3650
export const DEFAULT_INTERMEDIATE_CA_DAYS = 1825
/** Default backdating of notBefore, in seconds (clock skew between machines). */
export const DEFAULT_BACKDATE_SECONDS = 60
/** Longest accepted certificate path (leaf + intermediates + root) and chainPem length. */
export const MAX_CHAIN_LENGTH = 5

const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
const OID_BASIC_CONSTRAINTS = '2.5.29.19'
const OID_KEY_USAGE = '2.5.29.15'
const OID_EXT_KEY_USAGE = '2.5.29.37'
const OID_SAN = '2.5.29.17'
const OID_SKI = '2.5.29.14'
const OID_AKI = '2.5.29.35'
/** Extensions we understand; any other extension marked critical makes a certificate unusable. */
const KNOWN_CRITICAL = new Set([
  OID_BASIC_CONSTRAINTS,
  OID_KEY_USAGE,
  OID_EXT_KEY_USAGE,
  OID_SAN,
  OID_SKI,
  OID_AKI,
])

const EC_IMPORT = { name: 'ECDSA', namedCurve: 'P-256' }
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' }
// Node's webcrypto is a complete WebCrypto implementation; @peculiar/x509 is typed against the DOM's
// `Crypto` (not in this project's lib), hence the type taken from its own signature.
type PeculiarCrypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>
type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair
const wc = webcrypto as unknown as PeculiarCrypto
const subtle = webcrypto.subtle

const MAX_PEM_INPUT = 1024 * 1024
const MAX_CSR_INPUT = 64 * 1024

const generateKeyPairAsync = promisify(generateKeyPair)

function fail(
  code: ProtocolErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw new ProtocolError(code, message, details, cause === undefined ? undefined : { cause })
}

function invalid(message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  return fail('ERR_PKI_INVALID_INPUT', message, details, cause)
}

function toArrayBuffer(buf: Uint8Array): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer
}

/** 16 random bytes, first byte in 0x01..0x7f: a positive DER INTEGER of exactly 16 bytes. */
function randomSerialHex(): string {
  const b = randomBytes(16)
  b[0] = b[0]! & 0x7f || 0x01
  return b.toString('hex')
}

function checkPositiveInt(value: unknown, field: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    invalid(`${field} must be an integer >= ${min} (got ${String(value)})`, { field })
  }
  return value
}

function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

function checkCommonName(cn: unknown, field = 'commonName'): string {
  if (typeof cn !== 'string' || cn.length === 0 || cn.length > 256 || hasControlChars(cn)) {
    invalid(`${field} must be a non-empty string of at most 256 characters without control characters`, {
      field,
    })
  }
  return cn
}

function subjectName(commonName: string, organization?: string): x509.JsonName {
  const name: x509.JsonName = []
  if (organization !== undefined) name.push({ O: [checkCommonName(organization, 'organization')] })
  name.push({ CN: [commonName] })
  return name
}

const DNS_LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
const DNS_RE = new RegExp(`^(?:\\*\\.)?${DNS_LABEL}(?:\\.${DNS_LABEL})*$`)

/** True when `name` is a valid DNS SAN (letters, digits, `-`, `_`, dots; an optional leading `*.`). */
export function isValidDnsName(name: string): boolean {
  return typeof name === 'string' && name.length <= 253 && DNS_RE.test(name)
}

interface Sans {
  dns: string[]
  ip: string[]
  uris: string[]
}

function checkSans(o: {
  dns?: string[] | undefined
  ip?: string[] | undefined
  uris?: string[] | undefined
}): Sans {
  const list = (v: unknown, field: string): string[] => {
    if (v === undefined) return []
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
      invalid(`${field} must be an array of strings`, { field })
    return [...new Set(v as string[])]
  }
  const dns = list(o.dns, 'dns')
  const ip = list(o.ip, 'ip')
  const uris = list(o.uris, 'uris')
  for (const d of dns)
    if (!isValidDnsName(d)) invalid(`dns: "${d}" is not a valid DNS name`, { field: 'dns', value: d })
  for (const a of ip)
    if (isIP(a) === 0) invalid(`ip: "${a}" is not an IPv4 or IPv6 address`, { field: 'ip', value: a })
  for (const u of uris) {
    let ok = /^[\x21-\x7e]+$/.test(u)
    if (ok) {
      try {
        ok = new URL(u).protocol.length > 1
      } catch {
        ok = false
      }
    }
    if (!ok) invalid(`uris: "${u}" is not an absolute ASCII URI`, { field: 'uris', value: u })
  }
  if (uris.filter((u) => u.startsWith('spiffe:')).length > 1) {
    invalid('uris: a certificate carries at most one spiffe:// URI', { field: 'uris' })
  }
  return { dns, ip, uris }
}

function sanExtension(s: Sans): x509.SubjectAlternativeNameExtension | null {
  const names: x509.JsonGeneralNames = [
    ...s.dns.map((value) => ({ type: 'dns' as const, value })),
    ...s.ip.map((value) => ({ type: 'ip' as const, value })),
    ...s.uris.map((value) => ({ type: 'url' as const, value })),
  ]
  return names.length === 0 ? null : new x509.SubjectAlternativeNameExtension(names, false)
}

function readSans(ext: x509.Extension | null): Sans {
  const out: Sans = { dns: [], ip: [], uris: [] }
  if (!ext) return out
  const san =
    ext instanceof x509.SubjectAlternativeNameExtension
      ? ext
      : new x509.SubjectAlternativeNameExtension(ext.rawData)
  for (const n of san.names.toJSON()) {
    if (n.type === 'dns') out.dns.push(n.value)
    else if (n.type === 'ip') out.ip.push(n.value)
    else if (n.type === 'url') out.uris.push(n.value)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// keys

function loadPrivateKey(keyPem: string, field: string): KeyObject {
  if (typeof keyPem !== 'string' || keyPem.length > MAX_PEM_INPUT)
    invalid(`${field} must be a PEM private key`, { field })
  let key: KeyObject
  try {
    key = createPrivateKey(keyPem)
  } catch (err) {
    invalid(`${field} is not a readable PEM private key: ${(err as Error).message}`, { field }, err)
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    invalid(`${field} must be an ECDSA P-256 private key (got ${key.asymmetricKeyType ?? 'unknown'})`, {
      field,
    })
  }
  return key
}

function loadPublicKey(pem: string, field: string): KeyObject {
  let key: KeyObject
  try {
    key = createPublicKey(pem)
  } catch (err) {
    invalid(`${field} is not a readable PEM public key: ${(err as Error).message}`, { field }, err)
  }
  checkP256Public(key, field, 'ERR_PKI_INVALID_INPUT')
  return key
}

function checkP256Public(key: KeyObject, what: string, code: ProtocolErrorCode): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const got =
      key.asymmetricKeyType === 'ec'
        ? `EC ${key.asymmetricKeyDetails?.namedCurve}`
        : (key.asymmetricKeyType ?? 'unknown')
    fail(code, `${what} must hold an ECDSA P-256 public key (got ${got})`, { got })
  }
}

function spkiDer(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' })
}

async function importSigningKey(key: KeyObject): Promise<CryptoKey> {
  const der = key.export({ type: 'pkcs8', format: 'der' })
  return subtle.importKey('pkcs8', toArrayBuffer(der), EC_IMPORT, false, ['sign'])
}

async function importVerifyKey(key: KeyObject): Promise<CryptoKey> {
  return subtle.importKey('spki', toArrayBuffer(spkiDer(key)), EC_IMPORT, true, ['verify'])
}

async function keyPairOf(key: KeyObject): Promise<CryptoKeyPair> {
  return { privateKey: await importSigningKey(key), publicKey: await importVerifyKey(key) }
}

/** Generates an ECDSA P-256 private key, PKCS#8 PEM. */
export async function generateKeyPem(): Promise<string> {
  const { privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' })
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
}

/** The SPKI PEM public key of a private key PEM (PKCS#8 or SEC1). */
export function publicKeyPemOf(keyPem: string): string {
  return createPublicKey(loadPrivateKey(keyPem, 'keyPem')).export({ type: 'spki', format: 'pem' }) as string
}

/** Normalises any P-256 private key PEM (PKCS#8 or SEC1) to PKCS#8 PEM. */
function pkcs8Pem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string
}

function pemOf(cert: x509.X509Certificate | x509.Pkcs10CertificateRequest): string {
  const pem = cert.toString('pem').replace(/\r\n/g, '\n')
  return pem.endsWith('\n') ? pem : `${pem}\n`
}

// ---------------------------------------------------------------------------------------------
// issuers

interface Issuer {
  node: X509Certificate
  cert: x509.X509Certificate
  signingKey: CryptoKey
  authorityKeyId: string
  notAfter: Date
  pathLength: number | undefined
}

async function loadIssuer(issuerCertPem: string, issuerKeyPem: string): Promise<Issuer> {
  const pems = splitPem(issuerCertPem)
  if (pems.length === 0) invalid('issuerCertPem holds no PEM certificate', { field: 'issuerCertPem' })
  let node: X509Certificate
  let cert: x509.X509Certificate
  try {
    node = new X509Certificate(pems[0]!)
    cert = new x509.X509Certificate(pems[0]!)
  } catch (err) {
    invalid(
      `issuerCertPem is not a readable certificate: ${(err as Error).message}`,
      { field: 'issuerCertPem' },
      err,
    )
  }
  const key = loadPrivateKey(issuerKeyPem, 'issuerKeyPem')
  if (!spkiDer(key).equals(spkiDer(node.publicKey))) {
    invalid(
      'issuerKeyPem is not the private key of issuerCertPem: pass the key file that belongs to the CA certificate',
      {
        field: 'issuerKeyPem',
      },
    )
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension)
  const ku = cert.getExtension(x509.KeyUsagesExtension)
  if (!bc?.ca || !ku || (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    invalid(
      `issuer "${cnOf(cert)}" is not a CA certificate with keyCertSign: use a root or intermediate CA to issue`,
      {
        field: 'issuerCertPem',
      },
    )
  }
  const now = Date.now()
  if (cert.notAfter.getTime() <= now) {
    invalid(`issuer "${cnOf(cert)}" expired at ${cert.notAfter.toISOString()}: renew the CA first`, {
      field: 'issuerCertPem',
    })
  }
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)
  const authorityKeyId =
    ski?.keyId ??
    (await x509.SubjectKeyIdentifierExtension.create(await importVerifyKey(key), false, wc)).keyId
  return {
    node,
    cert,
    signingKey: await importSigningKey(key),
    authorityKeyId,
    notAfter: cert.notAfter,
    pathLength: bc.pathLength,
  }
}

function cnOf(cert: x509.X509Certificate | x509.Pkcs10CertificateRequest): string {
  return cert.subjectName.getField('CN')[0] ?? cert.subject
}

function validity(lifetimeMs: number, backdateMs: number, cap?: Date): { notBefore: Date; notAfter: Date } {
  const now = Date.now()
  // whole seconds: certificates carry second precision
  const notBefore = new Date(Math.floor((now - backdateMs) / 1000) * 1000)
  let notAfter = new Date(Math.floor((now + lifetimeMs) / 1000) * 1000)
  if (cap && notAfter.getTime() > cap.getTime()) notAfter = cap
  return { notBefore, notAfter }
}

// ---------------------------------------------------------------------------------------------
// CAs

/** Self-signed root CA (basicConstraints CA, keyCertSign+cRLSign). */
export async function createRootCa(o: {
  commonName: string
  lifetimeDays?: number
  keyPem?: string
  organization?: string
}): Promise<IssuedPem> {
  const commonName = checkCommonName(o.commonName)
  const days = checkPositiveInt(o.lifetimeDays ?? DEFAULT_ROOT_CA_DAYS, 'lifetimeDays')
  const key = loadPrivateKey(o.keyPem ?? (await generateKeyPem()), 'keyPem')
  const keys = await keyPairOf(key)
  const { notBefore, notAfter } = validity(days * 86_400_000, DEFAULT_BACKDATE_SECONDS * 1000)
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerialHex(),
      name: subjectName(commonName, o.organization),
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: SIGN_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, wc),
      ],
    },
    wc,
  )
  return { certPem: pemOf(cert), keyPem: pkcs8Pem(key) }
}

/** Intermediate CA signed by an issuer CA (pathLen 0 by default). */
export async function createIntermediateCa(o: {
  issuerCertPem: string
  issuerKeyPem: string
  commonName: string
  lifetimeDays?: number
  keyPem?: string
  pathLength?: number
}): Promise<IssuedPem> {
  const commonName = checkCommonName(o.commonName)
  const days = checkPositiveInt(o.lifetimeDays ?? DEFAULT_INTERMEDIATE_CA_DAYS, 'lifetimeDays')
  const pathLength = checkPositiveInt(o.pathLength ?? 0, 'pathLength', 0)
  const issuer = await loadIssuer(o.issuerCertPem, o.issuerKeyPem)
  if (issuer.pathLength !== undefined && pathLength > issuer.pathLength - 1) {
    invalid(
      issuer.pathLength === 0
        ? `issuer "${cnOf(issuer.cert)}" has pathLength 0 and cannot sign another CA: sign the intermediate with the root`
        : `pathLength must be at most ${issuer.pathLength - 1} under issuer "${cnOf(issuer.cert)}"`,
      { field: 'pathLength' },
    )
  }
  const key = loadPrivateKey(o.keyPem ?? (await generateKeyPem()), 'keyPem')
  const publicKey = await importVerifyKey(key)
  const { notBefore, notAfter } = validity(
    days * 86_400_000,
    DEFAULT_BACKDATE_SECONDS * 1000,
    issuer.notAfter,
  )
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialHex(),
      subject: subjectName(commonName),
      issuer: issuer.cert.subjectName,
      notBefore,
      notAfter,
      publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: SIGN_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, pathLength, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, wc),
        new x509.AuthorityKeyIdentifierExtension(issuer.authorityKeyId, false),
      ],
    },
    wc,
  )
  return { certPem: pemOf(cert), keyPem: pkcs8Pem(key) }
}

// ---------------------------------------------------------------------------------------------
// CSRs

/** PEM PKCS#10 CSR signed by keyPem. */
export async function createCsr(o: {
  keyPem: string
  commonName: string
  dns?: string[]
  ip?: string[]
  uris?: string[]
}): Promise<string> {
  const commonName = checkCommonName(o.commonName)
  const sans = checkSans(o)
  const key = loadPrivateKey(o.keyPem, 'keyPem')
  const san = sanExtension(sans)
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: subjectName(commonName),
      keys: await keyPairOf(key),
      signingAlgorithm: SIGN_ALG,
      extensions: san ? [san] : [],
    },
    wc,
  )
  return pemOf(csr)
}

export interface ParsedCsr {
  publicKeyPem: string
  commonName: string | null
  dns: string[]
  ip: string[]
  uris: string[]
}

/** A DER TLV: where its header starts, where its value starts, where it ends. */
interface Tlv {
  tag: number
  start: number
  valueStart: number
  end: number
}

function readTlv(buf: Uint8Array, off: number, limit: number): Tlv {
  if (off + 2 > limit) throw new Error('truncated DER')
  const tag = buf[off]!
  let len = buf[off + 1]!
  let p = off + 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4 || p + n > limit) throw new Error('unsupported DER length')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!
    p += n
  }
  if (p + len > limit) throw new Error('truncated DER')
  return { tag, start: off, valueStart: p, end: p + len }
}

// ecdsa-with-SHA256/384/512 AlgorithmIdentifier OIDs (DER, without parameters)
const ECDSA_SIG_OIDS: Record<string, string> = {
  '06082a8648ce3d040302': 'sha256',
  '06082a8648ce3d040303': 'sha384',
  '06082a8648ce3d040304': 'sha512',
}

function pemBlockToDer(pem: string, labelRe: RegExp, what: string, code: ProtocolErrorCode): Buffer {
  const m = labelRe.exec(pem)
  if (!m) fail(code, `${what} is not PEM (expected -----BEGIN ${what.toUpperCase()}-----)`)
  const b64 = m[1]!.replace(/\s+/g, '')
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) fail(code, `${what} PEM has invalid base64`)
  return Buffer.from(b64, 'base64')
}

/** Parses a CSR and verifies its self-signature (ERR_PKI_INVALID_CSR, ERR_PKI_CSR_SIGNATURE). */
export async function parseCsr(csrPem: string): Promise<ParsedCsr> {
  if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_INPUT) {
    fail('ERR_PKI_INVALID_CSR', `csr must be a PEM string of at most ${MAX_CSR_INPUT} characters`)
  }
  const der = pemBlockToDer(
    csrPem,
    /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (?:NEW )?CERTIFICATE REQUEST-----/,
    'certificate request',
    'ERR_PKI_INVALID_CSR',
  )
  // Outer structure by hand, so the signature is checked over the exact bytes that were signed.
  let tbs: Uint8Array
  let sigAlg: string
  let signature: Uint8Array
  try {
    const outer = readTlv(der, 0, der.length)
    if (outer.tag !== 0x30 || outer.end !== der.length) throw new Error('not a DER SEQUENCE')
    const info = readTlv(der, outer.valueStart, outer.end)
    const alg = readTlv(der, info.end, outer.end)
    const sig = readTlv(der, alg.end, outer.end)
    if (info.tag !== 0x30 || alg.tag !== 0x30 || sig.tag !== 0x03 || sig.end !== outer.end)
      throw new Error('bad structure')
    tbs = der.subarray(info.start, info.end)
    sigAlg = Buffer.from(der.subarray(alg.valueStart, alg.end)).toString('hex')
    if (der[sig.valueStart] !== 0) throw new Error('signature has unused bits')
    signature = der.subarray(sig.valueStart + 1, sig.end)
  } catch (err) {
    fail('ERR_PKI_INVALID_CSR', `csr is not a valid PKCS#10 request: ${(err as Error).message}`, {}, err)
  }
  let csr: x509.Pkcs10CertificateRequest
  try {
    csr = new x509.Pkcs10CertificateRequest(toArrayBuffer(der))
  } catch (err) {
    fail('ERR_PKI_INVALID_CSR', `csr is not a valid PKCS#10 request: ${(err as Error).message}`, {}, err)
  }
  let pub: KeyObject
  try {
    pub = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' })
  } catch (err) {
    fail('ERR_PKI_INVALID_CSR', `csr public key is unreadable: ${(err as Error).message}`, {}, err)
  }
  checkP256Public(pub, 'csr', 'ERR_PKI_INVALID_CSR')
  const hash = ECDSA_SIG_OIDS[sigAlg]
  if (!hash) fail('ERR_PKI_INVALID_CSR', 'csr must be signed with ECDSA (SHA-256, SHA-384 or SHA-512)')
  let ok = false
  try {
    ok = cryptoVerify(hash, tbs, { key: pub, dsaEncoding: 'der' }, signature)
  } catch {
    ok = false
  }
  if (!ok)
    fail(
      'ERR_PKI_CSR_SIGNATURE',
      'csr signature does not verify: the request was altered or not signed by its key',
    )
  let sans: Sans
  try {
    sans = readSans(csr.getExtension(OID_SAN))
  } catch (err) {
    fail('ERR_PKI_INVALID_CSR', `csr subjectAltName is unreadable: ${(err as Error).message}`, {}, err)
  }
  return {
    publicKeyPem: pub.export({ type: 'spki', format: 'pem' }) as string,
    commonName: csr.subjectName.getField('CN')[0] ?? null,
    ...sans,
  }
}

// ---------------------------------------------------------------------------------------------
// leaves

/**
 * Issues a leaf certificate for a CSR (whose signature is verified) or a public key. The SANs come
 * from the arguments only, never from the CSR, unless `useCsrSans` is set.
 */
export async function issueCertificate(o: {
  issuerCertPem: string
  issuerKeyPem: string
  csrPem?: string
  publicKeyPem?: string
  commonName: string
  usage: CertUsage
  dns?: string[]
  ip?: string[]
  uris?: string[]
  useCsrSans?: boolean
  lifetimeSeconds: number
  /** Backdate notBefore by this many seconds for clock skew (default 60). */
  backdateSeconds?: number
}): Promise<string> {
  const commonName = checkCommonName(o.commonName)
  if (o.usage !== 'client' && o.usage !== 'server' && o.usage !== 'both') {
    invalid(`usage must be "client", "server" or "both" (got ${String(o.usage)})`, { field: 'usage' })
  }
  const lifetime = checkPositiveInt(o.lifetimeSeconds, 'lifetimeSeconds')
  const backdate = checkPositiveInt(o.backdateSeconds ?? DEFAULT_BACKDATE_SECONDS, 'backdateSeconds', 0)
  if ((o.csrPem === undefined) === (o.publicKeyPem === undefined)) {
    invalid('pass exactly one of csrPem and publicKeyPem', { field: 'csrPem' })
  }
  let subjectKey: KeyObject
  let sansIn: { dns?: string[] | undefined; ip?: string[] | undefined; uris?: string[] | undefined } = o
  if (o.csrPem !== undefined) {
    const csr = await parseCsr(o.csrPem)
    subjectKey = createPublicKey(csr.publicKeyPem)
    if (o.useCsrSans) {
      sansIn = {
        dns: [...(o.dns ?? []), ...csr.dns],
        ip: [...(o.ip ?? []), ...csr.ip],
        uris: [...(o.uris ?? []), ...csr.uris],
      }
    }
  } else {
    subjectKey = loadPublicKey(o.publicKeyPem!, 'publicKeyPem')
  }
  const sans = checkSans(sansIn)
  const issuer = await loadIssuer(o.issuerCertPem, o.issuerKeyPem)
  const publicKey = await importVerifyKey(subjectKey)
  const { notBefore, notAfter } = validity(lifetime * 1000, backdate * 1000, issuer.notAfter)
  const eku: string[] = []
  if (o.usage !== 'client') eku.push(x509.ExtendedKeyUsage.serverAuth)
  if (o.usage !== 'server') eku.push(x509.ExtendedKeyUsage.clientAuth)
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension(eku, false),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, wc),
    new x509.AuthorityKeyIdentifierExtension(issuer.authorityKeyId, false),
  ]
  const san = sanExtension(sans)
  if (san) extensions.push(san)
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialHex(),
      subject: subjectName(commonName),
      issuer: issuer.cert.subjectName,
      notBefore,
      notAfter,
      publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: SIGN_ALG,
      extensions,
    },
    wc,
  )
  return pemOf(cert)
}

/** Convenience: a key and a certificate in one step (used by `nullport pki create server|client`). */
export async function createLeaf(o: {
  issuerCertPem: string
  issuerKeyPem: string
  commonName: string
  usage: CertUsage
  dns?: string[]
  ip?: string[]
  uris?: string[]
  lifetimeSeconds: number
  /** Reuse this private key (PKCS#8 or SEC1 PEM) instead of generating one. */
  keyPem?: string
}): Promise<IssuedPem> {
  const keyPem =
    o.keyPem === undefined ? await generateKeyPem() : pkcs8Pem(loadPrivateKey(o.keyPem, 'keyPem'))
  const { keyPem: _ignored, ...rest } = o
  const certPem = await issueCertificate({ ...rest, publicKeyPem: publicKeyPemOf(keyPem) })
  return { certPem, keyPem }
}

// ---------------------------------------------------------------------------------------------
// verification

export interface VerifiedChain {
  leaf: X509Certificate
  /** URI SAN `spiffe://...`, if any. */
  spiffeId: string | null
}

interface ChainCert {
  node: X509Certificate
  cert: x509.X509Certificate
  fp: string
  name: string
  /** Cached SPIFFE ID (undefined until first asked). */
  spiffe?: string | null
}

/**
 * Parsing a certificate costs ~1-9 ms (OpenSSL and ASN.1 schema parsing) and a signature check
 * ~0.5 ms, while the same roots, intermediates and peer leaves are verified over and over (every
 * mTLS request at the controller, every e2e handshake). Parsed certificates (keyed by their
 * PEM text) and signature results (keyed by both fingerprints) are kept in bounded maps; every
 * time-dependent check (validity, revocation by fingerprint elsewhere) still runs on every call.
 */
const CACHE_LIMIT = 1024
const parsedCache = new Map<string, ChainCert>()
const signatureCache = new Map<string, boolean>()

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  if (map.size >= CACHE_LIMIT) {
    const oldest = map.keys().next().value
    if (oldest !== undefined) map.delete(oldest)
  }
  map.set(key, value)
}

function loadCerts(input: string | string[], field: string, code: ProtocolErrorCode): ChainCert[] {
  const list = Array.isArray(input) ? input : [input]
  const out: ChainCert[] = []
  for (const item of list) {
    if (typeof item !== 'string') fail(code, `${field} must be PEM text or an array of PEM texts`, { field })
    let pems: string[]
    try {
      pems = splitPem(item)
    } catch (err) {
      fail(code, `${field}: ${(err as Error).message}`, { field }, err)
    }
    for (const pem of pems) {
      const cached = parsedCache.get(pem)
      if (cached) {
        out.push(cached)
        continue
      }
      try {
        const node = new X509Certificate(pem)
        const cert = new x509.X509Certificate(toArrayBuffer(node.raw))
        const parsed: ChainCert = {
          node,
          cert,
          fp: createHash('sha256').update(node.raw).digest('hex'),
          name: describe(cert),
        }
        remember(parsedCache, pem, parsed)
        out.push(parsed)
      } catch (err) {
        fail(code, `${field} holds an unreadable certificate: ${(err as Error).message}`, { field }, err)
      }
    }
  }
  return out
}

function describe(cert: x509.X509Certificate): string {
  const cn = cert.subjectName.getField('CN')[0]
  return cn === undefined ? `"${cert.subject}"` : `"${cn}"`
}

function keyIdMatches(child: ChainCert, parent: ChainCert): boolean {
  const aki = child.cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId
  const ski = parent.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId
  return aki === undefined || ski === undefined || aki.toLowerCase() === ski.toLowerCase()
}

/** `parent`'s name is `child`'s issuer and `parent`'s key verifies `child`'s signature. */
function signedBy(child: ChainCert, parent: ChainCert): boolean {
  if (child.node.issuer !== parent.node.subject || !keyIdMatches(child, parent)) return false
  const key = `${child.fp}:${parent.fp}`
  const known = signatureCache.get(key)
  if (known !== undefined) return known
  let ok: boolean
  try {
    ok = child.node.verify(parent.node.publicKey)
  } catch {
    ok = false
  }
  remember(signatureCache, key, ok)
  return ok
}

function chainError(message: string, cert?: ChainCert): never {
  return fail('ERR_PKI_CHAIN', message, cert ? { subject: cert.node.subject, fingerprint: cert.fp } : {})
}

/**
 * Verifies a leaf (optionally with intermediates) up to one of the trusted roots: every
 * signature, validity period at `at`, CA basicConstraints and keyCertSign on every issuer,
 * pathLen, and extendedKeyUsage for `usage` when given. Any failure throws ERR_PKI_CHAIN,
 * ERR_PKI_EXPIRED or ERR_PKI_NOT_YET_VALID naming the certificate. Synchronous (node:crypto).
 *
 * The first certificate of `chainPem` is the leaf; the others (in any order) may serve as
 * intermediates, unused ones are ignored. The path must end at a certificate of `rootsPem`,
 * compared by DER. With `usage`, the leaf must carry extendedKeyUsage clientAuth/serverAuth.
 */
export function verifyChain(o: {
  chainPem: string | string[]
  rootsPem: string | string[]
  at?: Date
  usage?: 'client' | 'server'
}): VerifiedChain {
  const leaf = verifyPath(o, 'leaf')
  return { leaf: leaf.node, spiffeId: leaf.spiffe ?? null }
}

/**
 * Verifies a CA certificate (the first of `chainPem`, typically an intermediate, with any
 * intermediates above it) up to one of the trusted roots, with the same checks as verifyChain
 * except that the first certificate must be a CA with keyCertSign instead of a leaf. A root of
 * `rootsPem` verifies as itself. Same errors as verifyChain. Use it to check that an
 * intermediate on disk belongs to a root; verifyChain refuses a CA as its first certificate.
 */
export function verifyCaChain(o: { chainPem: string | string[]; rootsPem: string | string[]; at?: Date }): {
  cert: X509Certificate
} {
  return { cert: verifyPath(o, 'ca').node }
}

function verifyPath(
  o: { chainPem: string | string[]; rootsPem: string | string[]; at?: Date; usage?: 'client' | 'server' },
  mode: 'leaf' | 'ca',
): ChainCert {
  const chain = loadCerts(o.chainPem, 'chainPem', 'ERR_PKI_CHAIN')
  const roots = loadCerts(o.rootsPem, 'rootsPem', 'ERR_PKI_INVALID_INPUT')
  const at = o.at ?? new Date()
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) invalid('at must be a valid Date', { field: 'at' })
  if (o.usage !== undefined && o.usage !== 'client' && o.usage !== 'server') {
    invalid(`usage must be "client" or "server" (got ${String(o.usage)})`, { field: 'usage' })
  }
  if (chain.length === 0) chainError('no certificate presented: chainPem holds no PEM certificate')
  if (roots.length === 0)
    invalid('rootsPem holds no PEM certificate: pass the network root CA', { field: 'rootsPem' })
  if (chain.length > MAX_CHAIN_LENGTH) {
    chainError(`chain has ${chain.length} certificates, more than the maximum of ${MAX_CHAIN_LENGTH}`)
  }
  const rootFps = new Set(roots.map((r) => r.fp))
  const leaf = chain[0]!

  // 1. Build the path leaf -> intermediates -> root, by name, key id and signature.
  const path: ChainCert[] = [leaf]
  const used = new Set([leaf.fp])
  let cur = leaf
  let anchored = rootFps.has(leaf.fp)
  while (!anchored) {
    if (path.length >= MAX_CHAIN_LENGTH)
      chainError(`certificate path is longer than ${MAX_CHAIN_LENGTH}`, leaf)
    const root = roots.find((r) => signedBy(cur, r))
    if (root) {
      path.push(root)
      anchored = true
      break
    }
    const next = chain.find((c) => !used.has(c.fp) && signedBy(cur, c))
    if (!next) {
      const loop =
        cur.node.issuer !== cur.node.subject && chain.some((c) => used.has(c.fp) && signedBy(cur, c))
      if (loop) chainError(`certificate chain loops at ${cur.name}`, cur)
      chainError(
        cur === leaf
          ? `certificate ${cur.name} is not signed by a trusted root CA or by an intermediate of the chain`
          : `certificate ${cur.name} does not chain to a trusted root CA (issuer "${cur.cert.issuer}")`,
        cur,
      )
    }
    used.add(next.fp)
    path.push(next)
    cur = next
    anchored = rootFps.has(next.fp)
  }

  // 2. Check every certificate of the path.
  const usageOid = o.usage === 'client' ? OID_CLIENT_AUTH : o.usage === 'server' ? OID_SERVER_AUTH : undefined
  path.forEach((c, i) => {
    if (at.getTime() < c.cert.notBefore.getTime()) {
      fail(
        'ERR_PKI_NOT_YET_VALID',
        `certificate ${c.name} is not valid before ${c.cert.notBefore.toISOString()}`,
        {
          subject: c.node.subject,
          fingerprint: c.fp,
          notBefore: c.cert.notBefore.toISOString(),
        },
      )
    }
    if (at.getTime() > c.cert.notAfter.getTime()) {
      fail('ERR_PKI_EXPIRED', `certificate ${c.name} expired at ${c.cert.notAfter.toISOString()}`, {
        subject: c.node.subject,
        fingerprint: c.fp,
        notAfter: c.cert.notAfter.toISOString(),
      })
    }
    for (const ext of c.cert.extensions) {
      if (ext.critical && !KNOWN_CRITICAL.has(ext.type)) {
        chainError(`certificate ${c.name} has an unsupported critical extension ${ext.type}`, c)
      }
    }
    const bc = c.cert.getExtension(x509.BasicConstraintsExtension)
    const ku = c.cert.getExtension(x509.KeyUsagesExtension)
    if (i === 0 && mode === 'ca') {
      if (!bc?.ca || !ku || (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
        chainError(`certificate ${c.name} is not a CA certificate with keyCertSign`, c)
      }
    } else if (i === 0) {
      if (bc?.ca) {
        chainError(
          `certificate ${c.name} is a CA, not a leaf: the first certificate of the chain must be the leaf (check the order)`,
          c,
        )
      }
      if (ku && (ku.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
        chainError(`certificate ${c.name} lacks keyUsage digitalSignature`, c)
      }
    } else {
      if (!bc?.ca) chainError(`certificate ${path[i - 1]!.name} is signed by ${c.name}, which is not a CA`, c)
      if (!ku || (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
        chainError(`issuer ${c.name} lacks keyUsage keyCertSign`, c)
      }
      // CAs below this one: the intermediates between it and the leaf (the first cert too in CA mode)
      const below = mode === 'ca' ? i : i - 1
      if (bc.pathLength !== undefined && below > bc.pathLength) {
        chainError(
          `issuer ${c.name} allows ${bc.pathLength} intermediate CA(s) below it (pathLen), the path has ${below}`,
          c,
        )
      }
      if (!path[i - 1]!.node.checkIssued(c.node))
        chainError(`certificate ${path[i - 1]!.name} is not issued by ${c.name}`, c)
    }
    if (usageOid) {
      const eku = c.cert.getExtension(x509.ExtendedKeyUsageExtension)
      if ((i === 0 && !eku) || (eku && !eku.usages.map(String).includes(usageOid))) {
        chainError(
          `certificate ${c.name} is not valid for TLS ${o.usage} authentication (extendedKeyUsage)`,
          c,
        )
      }
    }
  })
  if (leaf.spiffe === undefined) leaf.spiffe = spiffeOfParsed(leaf.cert)
  return leaf
}

// ---------------------------------------------------------------------------------------------
// PEM, fingerprints, SPIFFE ids

/**
 * Splits a PEM bundle into individual PEM blocks (certificates), in order. Other blocks (keys,
 * CSRs) and text between blocks are skipped. Each block is returned normalised
 * (`-----BEGIN CERTIFICATE-----`, base64 in 64-character lines, `-----END CERTIFICATE-----\n`).
 * Throws ERR_PKI_INVALID_INPUT for a truncated block or invalid base64.
 */
export function splitPem(bundle: string): string[] {
  if (typeof bundle !== 'string') invalid('PEM input must be a string')
  if (bundle.length > MAX_PEM_INPUT) invalid(`PEM input is larger than ${MAX_PEM_INPUT} characters`)
  const out: string[] = []
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g
  let lastEnd = 0
  for (let m = re.exec(bundle); m !== null; m = re.exec(bundle)) {
    lastEnd = re.lastIndex
    if (m[1] !== m[3]) invalid(`PEM block "${m[1]}" ends with "END ${m[3]}"`)
    if (m[1] !== 'CERTIFICATE') continue
    const b64 = m[2]!.replace(/\s+/g, '')
    if (b64.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      invalid('PEM certificate has invalid base64')
    }
    out.push(`-----BEGIN CERTIFICATE-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`)
  }
  if (bundle.indexOf('-----BEGIN ', lastEnd) !== -1)
    invalid('PEM input has a truncated block (BEGIN without END)')
  return out
}

/** Lower-case hex SHA-256 of the certificate's DER, no separators. */
export function fingerprintSha256(certPem: string): string {
  const pem = splitPem(certPem)[0]
  if (!pem) invalid('fingerprintSha256: no PEM certificate in the input')
  let raw: Buffer
  try {
    raw = new X509Certificate(pem).raw
  } catch (err) {
    invalid(`fingerprintSha256: unreadable certificate: ${(err as Error).message}`, {}, err)
  }
  return createHash('sha256').update(raw).digest('hex')
}

export type SpiffeKind = 'identity' | 'router' | 'controller'
export function makeSpiffeId(trustDomain: string, kind: SpiffeKind, id: string): string {
  return `spiffe://${trustDomain}/${kind}/${id}`
}

const SPIFFE_RE = /^spiffe:\/\/([a-z0-9._-]{1,255})\/(identity|router|controller)\/([A-Za-z0-9._-]{1,128})$/

/** Parses `spiffe://<td>/<kind>/<id>`; throws ERR_PKI_SPIFFE_ID when it is not one of ours. */
export function parseSpiffeId(uri: string): { trustDomain: string; kind: SpiffeKind; id: string } {
  const m = typeof uri === 'string' ? SPIFFE_RE.exec(uri) : null
  if (!m || m[3] === '.' || m[3] === '..') {
    fail(
      'ERR_PKI_SPIFFE_ID',
      `"${String(uri).slice(0, 300)}" is not a Nullport SPIFFE id: expected spiffe://<trust-domain>/<identity|router|controller>/<id>`,
      { uri: String(uri).slice(0, 300) },
    )
  }
  return { trustDomain: m[1]!, kind: m[2] as SpiffeKind, id: m[3]! }
}

/**
 * The spiffe:// URI SAN of a certificate, or null. Throws ERR_PKI_SPIFFE_ID when the certificate
 * carries more than one (a SPIFFE SVID has exactly one).
 */
export function spiffeIdOf(cert: string | X509Certificate): string | null {
  let raw: Buffer
  try {
    if (typeof cert === 'string') {
      const pem = splitPem(cert)[0]
      if (!pem) invalid('spiffeIdOf: no PEM certificate in the input')
      raw = new X509Certificate(pem).raw
    } else {
      raw = cert.raw
    }
  } catch (err) {
    if (err instanceof ProtocolError) throw err
    invalid(`spiffeIdOf: unreadable certificate: ${(err as Error).message}`, {}, err)
  }
  return spiffeOfParsed(new x509.X509Certificate(toArrayBuffer(raw)))
}

function spiffeOfParsed(parsed: x509.X509Certificate): string | null {
  const ids = readSans(parsed.getExtension(OID_SAN)).uris.filter((u) =>
    u.toLowerCase().startsWith('spiffe://'),
  )
  if (ids.length > 1)
    fail('ERR_PKI_SPIFFE_ID', 'certificate carries more than one spiffe:// URI SAN', { uris: ids })
  return ids[0] ?? null
}
