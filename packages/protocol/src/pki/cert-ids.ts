/**
 * Certificate identities: SHA-256 fingerprints and SPIFFE ids. Two ways to read a SPIFFE id:
 * spiffeIdOf() parses the certificate's SAN extension (PEM or X509Certificate); the `*San`
 * helpers read Node's `subjectAltName` text (X509Certificate.subjectAltName,
 * TLSSocket.getPeerCertificate().subjectaltname), which is cheap enough for every TLS accept.
 */
import './reflect-metadata.js'
import { createHash, X509Certificate } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { ProtocolError } from '../errors.js'
import { fail, invalid, OID_SAN, toArrayBuffer } from './internal.js'
import { splitPem } from './pem.js'
import { readSans } from './sans.js'

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
  return certFingerprint({ raw })
}

/**
 * Lower-case hex SHA-256 of a certificate's DER, no separators: the fingerprint identities and
 * routers are known by (`certFingerprints`). Takes a node:crypto X509Certificate or a TLS
 * PeerCertificate (anything with the DER in `raw`).
 */
export function certFingerprint(cert: { readonly raw: Uint8Array }): string {
  return createHash('sha256').update(cert.raw).digest('hex')
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

export function spiffeOfParsed(parsed: x509.X509Certificate): string | null {
  const ids = readSans(parsed.getExtension(OID_SAN)).uris.filter((u) =>
    u.toLowerCase().startsWith('spiffe://'),
  )
  if (ids.length > 1)
    fail('ERR_PKI_SPIFFE_ID', 'certificate carries more than one spiffe:// URI SAN', { uris: ids })
  return ids[0] ?? null
}

/** One entry of Node's `subjectAltName` text, e.g. `{ type: 'URI', value: 'spiffe://nullport/router/r1' }`. */
export interface SubjectAltName {
  type: string
  value: string
}

/**
 * Parses Node's `subjectAltName` text (`DNS:a, IP Address:10.0.0.1, URI:spiffe://...`). Values
 * that Node quoted (JSON string syntax, for values holding `,` or quotes) are unquoted. An
 * unreadable rest of the text is dropped, never guessed at.
 */
export function parseSubjectAltName(text: string | undefined): SubjectAltName[] {
  const out: SubjectAltName[] = []
  if (!text) return out
  let i = 0
  while (i < text.length) {
    const colon = text.indexOf(':', i)
    if (colon < 0) break
    const type = text.slice(i, colon)
    let value: string
    let end: number
    if (text[colon + 1] === '"') {
      let j = colon + 2
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      if (j >= text.length) break
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1)) as string
      } catch {
        break
      }
      end = j + 1
    } else {
      const comma = text.indexOf(', ', colon + 1)
      end = comma < 0 ? text.length : comma
      value = text.slice(colon + 1, end)
    }
    out.push({ type, value })
    if (end >= text.length) break
    if (!text.startsWith(', ', end)) break
    i = end + 2
  }
  return out
}

/** The URI SANs of Node's `subjectAltName` text. */
export function uriSans(subjectAltName: string | undefined): string[] {
  return parseSubjectAltName(subjectAltName)
    .filter((e) => e.type === 'URI')
    .map((e) => e.value)
}

/** True when Node's `subjectAltName` text holds exactly the URI SAN `uri` (e.g. a router's SPIFFE id). */
export function hasUriSan(subjectAltName: string | undefined, uri: string): boolean {
  return uriSans(subjectAltName).includes(uri)
}

/**
 * The (kind, id) of the first `spiffe://<trustDomain>/<kind>/<id>` URI SAN of Node's
 * `subjectAltName` text, or null. The id is percent-decoded; a URI that does not decode is skipped.
 */
export function spiffeIdFromSan(
  subjectAltName: string | undefined,
  trustDomain: string,
): { kind: string; id: string } | null {
  const prefix = `spiffe://${trustDomain}/`
  for (const uri of uriSans(subjectAltName)) {
    if (!uri.startsWith(prefix)) continue
    const rest = uri.slice(prefix.length).split('/')
    if (rest.length !== 2 || !rest[0] || !rest[1]) continue
    try {
      return { kind: rest[0], id: decodeURIComponent(rest[1]) }
    } catch {}
  }
  return null
}
