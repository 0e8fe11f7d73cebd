/** Certificate path verification (leaf or CA up to trusted roots), with bounded parse caches. */
import './reflect-metadata.js'
import { X509Certificate } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import type { ProtocolErrorCode } from '../errors.js'
import { certFingerprint, spiffeOfParsed } from './cert-ids.js'
import { MAX_CHAIN_LENGTH } from './defaults.js'
import { fail, invalid, KNOWN_CRITICAL, OID_CLIENT_AUTH, OID_SERVER_AUTH, toArrayBuffer } from './internal.js'
import { splitPem } from './pem.js'

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
          fp: certFingerprint(node),
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
