/** Root and intermediate CA creation. */
import './reflect-metadata.js'
import * as x509 from '@peculiar/x509'
import {
  DEFAULT_BACKDATE_SECONDS,
  DEFAULT_INTERMEDIATE_CA_DAYS,
  DEFAULT_ROOT_CA_DAYS,
  type IssuedPem,
} from './defaults.js'
import {
  checkCommonName,
  checkPositiveInt,
  invalid,
  randomSerialHex,
  SIGN_ALG,
  subjectName,
  wc,
} from './internal.js'
import { cnOf, loadIssuer, signWithIssuer, validity } from './issuer.js'
import { generateKeyPem, importVerifyKey, keyPairOf, loadPrivateKey, pkcs8Pem } from './keys.js'
import { pemOf } from './pem.js'

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
  const cert = await signWithIssuer(issuer, {
    commonName,
    publicKey,
    notBefore,
    notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(true, pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKey, false, wc),
      new x509.AuthorityKeyIdentifierExtension(issuer.authorityKeyId, false),
    ],
  })
  return { certPem: pemOf(cert), keyPem: pkcs8Pem(key) }
}
