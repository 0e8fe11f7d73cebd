/** ECDSA P-256 keys: loading and checking PEM keys, WebCrypto imports, generation. */
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import type { ProtocolErrorCode } from '../errors.js'
import {
  type CryptoKey,
  type CryptoKeyPair,
  EC_IMPORT,
  fail,
  invalid,
  MAX_PEM_INPUT,
  subtle,
  toArrayBuffer,
} from './internal.js'

const generateKeyPairAsync = promisify(generateKeyPair)

export function loadPrivateKey(keyPem: string, field: string): KeyObject {
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

export function loadPublicKey(pem: string, field: string): KeyObject {
  let key: KeyObject
  try {
    key = createPublicKey(pem)
  } catch (err) {
    invalid(`${field} is not a readable PEM public key: ${(err as Error).message}`, { field }, err)
  }
  checkP256Public(key, field, 'ERR_PKI_INVALID_INPUT')
  return key
}

export function checkP256Public(key: KeyObject, what: string, code: ProtocolErrorCode): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const got =
      key.asymmetricKeyType === 'ec'
        ? `EC ${key.asymmetricKeyDetails?.namedCurve}`
        : (key.asymmetricKeyType ?? 'unknown')
    fail(code, `${what} must hold an ECDSA P-256 public key (got ${got})`, { got })
  }
}

export function spkiDer(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' })
}

export async function importSigningKey(key: KeyObject): Promise<CryptoKey> {
  const der = key.export({ type: 'pkcs8', format: 'der' })
  return subtle.importKey('pkcs8', toArrayBuffer(der), EC_IMPORT, false, ['sign'])
}

export async function importVerifyKey(key: KeyObject): Promise<CryptoKey> {
  return subtle.importKey('spki', toArrayBuffer(spkiDer(key)), EC_IMPORT, true, ['verify'])
}

export async function keyPairOf(key: KeyObject): Promise<CryptoKeyPair> {
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
export function pkcs8Pem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string
}
