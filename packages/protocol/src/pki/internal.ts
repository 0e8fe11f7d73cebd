/**
 * Helpers shared by the PKI modules (error constructors, OIDs, WebCrypto handles, name checks).
 * Not exported from the package.
 */
import './reflect-metadata.js'
import { randomBytes, webcrypto } from 'node:crypto'
import type * as x509 from '@peculiar/x509'
import { ProtocolError, type ProtocolErrorCode } from '../errors.js'

export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
export const OID_BASIC_CONSTRAINTS = '2.5.29.19'
export const OID_KEY_USAGE = '2.5.29.15'
export const OID_EXT_KEY_USAGE = '2.5.29.37'
export const OID_SAN = '2.5.29.17'
export const OID_SKI = '2.5.29.14'
export const OID_AKI = '2.5.29.35'
/** Extensions we understand; any other extension marked critical makes a certificate unusable. */
export const KNOWN_CRITICAL = new Set([
  OID_BASIC_CONSTRAINTS,
  OID_KEY_USAGE,
  OID_EXT_KEY_USAGE,
  OID_SAN,
  OID_SKI,
  OID_AKI,
])

export const EC_IMPORT = { name: 'ECDSA', namedCurve: 'P-256' }
export const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' }
// Node's webcrypto is a complete WebCrypto implementation; @peculiar/x509 is typed against the DOM's
// `Crypto` (not in this project's lib), hence the type taken from its own signature.
type PeculiarCrypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>
export type CryptoKey = webcrypto.CryptoKey
export type CryptoKeyPair = webcrypto.CryptoKeyPair
export const wc = webcrypto as unknown as PeculiarCrypto
export const subtle = webcrypto.subtle

export const MAX_PEM_INPUT = 1024 * 1024
export const MAX_CSR_INPUT = 64 * 1024

export function fail(
  code: ProtocolErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw new ProtocolError(code, message, details, cause === undefined ? undefined : { cause })
}

export function invalid(message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  return fail('ERR_PKI_INVALID_INPUT', message, details, cause)
}

export function toArrayBuffer(buf: Uint8Array): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer
}

/** 16 random bytes, first byte in 0x01..0x7f: a positive DER INTEGER of exactly 16 bytes. */
export function randomSerialHex(): string {
  const b = randomBytes(16)
  b[0] = b[0]! & 0x7f || 0x01
  return b.toString('hex')
}

export function checkPositiveInt(value: unknown, field: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    invalid(`${field} must be an integer >= ${min} (got ${String(value)})`, { field })
  }
  return value
}

export function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

export function checkCommonName(cn: unknown, field = 'commonName'): string {
  if (typeof cn !== 'string' || cn.length === 0 || cn.length > 256 || hasControlChars(cn)) {
    invalid(`${field} must be a non-empty string of at most 256 characters without control characters`, {
      field,
    })
  }
  return cn
}

export function subjectName(commonName: string, organization?: string): x509.JsonName {
  const name: x509.JsonName = []
  if (organization !== undefined) name.push({ O: [checkCommonName(organization, 'organization')] })
  name.push({ CN: [commonName] })
  return name
}
