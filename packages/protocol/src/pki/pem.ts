/** PEM text: splitting bundles into normalised certificate blocks, encoding certificates. */
import type * as x509 from '@peculiar/x509'
import { invalid, MAX_PEM_INPUT } from './internal.js'

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

/** A certificate or request as PEM with LF line ends and a final newline. */
export function pemOf(cert: x509.X509Certificate | x509.Pkcs10CertificateRequest): string {
  const pem = cert.toString('pem').replace(/\r\n/g, '\n')
  return pem.endsWith('\n') ? pem : `${pem}\n`
}
