/** A loaded issuing CA (certificate, signing key, key id) and validity periods it caps. */
import './reflect-metadata.js'
import { X509Certificate } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { type CryptoKey, invalid, randomSerialHex, SIGN_ALG, subjectName, wc } from './internal.js'
import { importSigningKey, importVerifyKey, loadPrivateKey, spkiDer } from './keys.js'
import { splitPem } from './pem.js'

export interface Issuer {
  node: X509Certificate
  cert: x509.X509Certificate
  signingKey: CryptoKey
  authorityKeyId: string
  notAfter: Date
  pathLength: number | undefined
}

export async function loadIssuer(issuerCertPem: string, issuerKeyPem: string): Promise<Issuer> {
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

export function cnOf(cert: x509.X509Certificate | x509.Pkcs10CertificateRequest): string {
  return cert.subjectName.getField('CN')[0] ?? cert.subject
}

export function validity(
  lifetimeMs: number,
  backdateMs: number,
  cap?: Date,
): { notBefore: Date; notAfter: Date } {
  const now = Date.now()
  // whole seconds: certificates carry second precision
  const notBefore = new Date(Math.floor((now - backdateMs) / 1000) * 1000)
  let notAfter = new Date(Math.floor((now + lifetimeMs) / 1000) * 1000)
  if (cap && notAfter.getTime() > cap.getTime()) notAfter = cap
  return { notBefore, notAfter }
}

/** Signs a certificate (random serial, subject CN `commonName`) for `publicKey` with `issuer`. */
export function signWithIssuer(
  issuer: Issuer,
  o: {
    commonName: string
    publicKey: CryptoKey
    notBefore: Date
    notAfter: Date
    extensions: x509.Extension[]
  },
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerialHex(),
      subject: subjectName(o.commonName),
      issuer: issuer.cert.subjectName,
      notBefore: o.notBefore,
      notAfter: o.notAfter,
      publicKey: o.publicKey,
      signingKey: issuer.signingKey,
      signingAlgorithm: SIGN_ALG,
      extensions: o.extensions,
    },
    wc,
  )
}
