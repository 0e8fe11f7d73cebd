/** PKCS#10 certificate requests: creation, and parsing with the self-signature checked. */
import './reflect-metadata.js'
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import type { ProtocolErrorCode } from '../errors.js'
import {
  checkCommonName,
  fail,
  MAX_CSR_INPUT,
  OID_SAN,
  SIGN_ALG,
  subjectName,
  toArrayBuffer,
  wc,
} from './internal.js'
import { checkP256Public, keyPairOf, loadPrivateKey } from './keys.js'
import { pemOf } from './pem.js'
import { checkSans, readSans, type Sans, sanExtension } from './sans.js'

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
