/** Leaf (identity, router, server) certificates issued by a CA. */
import './reflect-metadata.js'
import { createPublicKey, type KeyObject } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { parseCsr } from './csr.js'
import { type CertUsage, DEFAULT_BACKDATE_SECONDS, type IssuedPem } from './defaults.js'
import { checkCommonName, checkPositiveInt, invalid, wc } from './internal.js'
import { loadIssuer, signWithIssuer, validity } from './issuer.js'
import {
  generateKeyPem,
  importVerifyKey,
  loadPrivateKey,
  loadPublicKey,
  pkcs8Pem,
  publicKeyPemOf,
} from './keys.js'
import { pemOf } from './pem.js'
import { checkSans, sanExtension } from './sans.js'

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
  const cert = await signWithIssuer(issuer, { commonName, publicKey, notBefore, notAfter, extensions })
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
