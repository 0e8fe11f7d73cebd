/**
 * The network PKI: root CA, issuing intermediate, the controller's TLS server certificate and the
 * enrollment-token signing key, all under DATA/pki. Created on first start, reused afterwards.
 * Private keys are 0600 (written atomically); a key file readable by group or others stops the
 * controller with ERR_KEY_PERMISSIONS.
 */
import { createPublicKey, type X509Certificate as NodeX509, X509Certificate } from 'node:crypto'
import { mkdir, readFile, stat } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join } from 'node:path'
import {
  certFingerprint,
  createIntermediateCa,
  createRootCa,
  generateKeyPem,
  type HostPort,
  isProtocolError,
  issueCertificate,
  makeSpiffeId,
  type ParsedCsr,
  parseCsr,
  parseSpiffeId,
  type SpiffeKind,
  splitPem,
  stripBrackets,
  tryParseHostPort,
  verifyCaChain,
  verifyChain,
  writeFileAtomic,
  writeSecretFile,
} from '@nullport/protocol'
import type { Logger } from 'pino'
import { ControllerError } from '../errors.js'

export interface NetworkPkiOptions {
  /** The controller data directory; the PKI lives in `<dataDir>/pki`. */
  dataDir: string
  /** SPIFFE trust domain (default `nullport`). */
  trustDomain: string
  /**
   * Host names or IPs the controller is reached at (the `advertise` URL's host, the listen host):
   * SANs of the server cert, with localhost, 127.0.0.1 and ::1. The first names the certificate.
   */
  hosts: string[]
  /** Lifetime of identity certificates, seconds. */
  identityCertLifetimeSeconds: number
  /** Lifetime of router certificates, seconds (default: the identity lifetime). */
  routerCertLifetimeSeconds?: number
  logger?: Logger
}

export interface IssuedCert {
  /** The leaf certificate PEM. */
  certPem: string
  /** Leaf followed by the issuing intermediate (what the enrolling side stores as `cert`). */
  chainPem: string
  /** Lower-case hex SHA-256 of the leaf DER. */
  fingerprint: string
  notAfter: string
}

export interface VerifiedPeer {
  kind: SpiffeKind
  id: string
  fingerprint: string
  commonName: string | null
}

const ROOT_DAYS = 3650
const INTERMEDIATE_DAYS = 1825
const SERVER_SECONDS = 365 * 86400
const SIGNING_SECONDS = 365 * 86400
/** Server and signing certs are re-issued on start when they expire within this window. */
const RENEW_BEFORE_MS = 30 * 86400 * 1000

const KEY_FILES = ['root.key', 'intermediate.key', 'server.key', 'signing.key'] as const

/** `HOST:PORT` (IPv6 as `[::1]:3022`, port 1-65535), or null when malformed. */
export function parseHostPort(value: string): HostPort | null {
  const r = tryParseHostPort(value)
  return r.ok ? { host: r.host, port: r.port } : null
}

function sanFor(host: string): { dns: string[]; ip: string[] } {
  const h = stripBrackets(host)
  return isIP(h) ? { dns: [], ip: [h] } : { dns: [h], ip: [] }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/** Refuses key files that group or others may read or write. */
export async function checkKeyPermissions(dir: string): Promise<void> {
  if (process.platform === 'win32') return
  for (const name of KEY_FILES) {
    const path = join(dir, name)
    let mode: number
    try {
      mode = (await stat(path)).mode
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw err
    }
    if ((mode & 0o077) !== 0) {
      throw new ControllerError(
        'ERR_KEY_PERMISSIONS',
        `private key ${path} is accessible by group or others (mode ${(mode & 0o777).toString(8)}): run \`chmod 600 ${path}\` and start again`,
        { path, mode: (mode & 0o777).toString(8) },
      )
    }
  }
}

function firstCert(pem: string): string {
  const blocks = splitPem(pem)
  if (blocks.length === 0) throw new Error('no certificate in PEM')
  return blocks[0]!
}

/** Whether `cert` names `host` (DNS or IP SAN). */
export function certCoversHost(cert: NodeX509, host: string): boolean {
  const h = stripBrackets(host)
  if (isIP(h)) return cert.checkIP(h) !== undefined
  return cert.checkHost(h, { subject: 'never' }) !== undefined
}

export class NetworkPki {
  readonly dir: string
  readonly trustDomain: string
  readonly rootCertPem: string
  readonly intermediateCertPem: string
  /** Root + intermediate, served at /.well-known/est/cacerts. */
  readonly caBundlePem: string
  /** Server leaf + intermediate. */
  readonly serverCertPem: string
  readonly serverKeyPem: string
  readonly signingCertPem: string
  readonly signingKeyPem: string
  /** Lower-case hex SHA-256 of the root DER (`caFp` in enrollment tokens). */
  readonly rootFingerprint: string
  private readonly intermediateKeyPem: string
  private readonly identityLifetime: number
  private readonly routerLifetime: number
  /** Verified-chain cache: leaf fingerprint -> result (the fingerprint still has to be current). */
  private readonly verified = new Map<string, { peer: VerifiedPeer; notAfter: number; notBefore: number }>()

  private constructor(f: {
    dir: string
    trustDomain: string
    rootCertPem: string
    intermediateCertPem: string
    intermediateKeyPem: string
    serverCertPem: string
    serverKeyPem: string
    signingCertPem: string
    signingKeyPem: string
    identityLifetime: number
    routerLifetime: number
  }) {
    this.dir = f.dir
    this.trustDomain = f.trustDomain
    this.rootCertPem = f.rootCertPem
    this.intermediateCertPem = f.intermediateCertPem
    this.intermediateKeyPem = f.intermediateKeyPem
    this.serverCertPem = f.serverCertPem
    this.serverKeyPem = f.serverKeyPem
    this.signingCertPem = f.signingCertPem
    this.signingKeyPem = f.signingKeyPem
    this.identityLifetime = f.identityLifetime
    this.routerLifetime = f.routerLifetime
    this.caBundlePem = `${f.rootCertPem.trim()}\n${f.intermediateCertPem.trim()}\n`
    this.rootFingerprint = certFingerprint(new X509Certificate(f.rootCertPem))
  }

  /** Loads the PKI from `<dataDir>/pki`, creating what is missing. */
  static async open(o: NetworkPkiOptions): Promise<NetworkPki> {
    const dir = join(o.dataDir, 'pki')
    const log = o.logger
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await checkKeyPermissions(dir)
    const p = (n: string) => join(dir, n)

    // Root
    let rootCertPem: string
    let rootKeyPem: string
    const haveRootCert = await exists(p('root.crt'))
    const haveRootKey = await exists(p('root.key'))
    if (haveRootCert && haveRootKey) {
      rootCertPem = await readFile(p('root.crt'), 'utf8')
      rootKeyPem = await readFile(p('root.key'), 'utf8')
    } else if (!haveRootCert && !haveRootKey && !(await exists(p('intermediate.crt')))) {
      const root = await createRootCa({
        commonName: `Nullport Root CA (${o.trustDomain})`,
        lifetimeDays: ROOT_DAYS,
        organization: 'Nullport',
      })
      await writeSecretFile(p('root.key'), root.keyPem)
      await writeFileAtomic(p('root.crt'), root.certPem)
      rootCertPem = root.certPem
      rootKeyPem = root.keyPem
      log?.info({ path: p('root.crt') }, 'created network root CA')
    } else {
      throw new ControllerError(
        'ERR_PKI_INCOMPLETE',
        `the network PKI in ${dir} is incomplete (root.crt and root.key must both exist): restore them from a backup, or move ${dir} away to create a new network`,
        { dir },
      )
    }

    // Intermediate
    let intermediateCertPem: string
    let intermediateKeyPem: string
    const haveInterCert = await exists(p('intermediate.crt'))
    const haveInterKey = await exists(p('intermediate.key'))
    if (haveInterCert !== haveInterKey) {
      throw new ControllerError(
        'ERR_PKI_INCOMPLETE',
        `the network PKI in ${dir} is incomplete (intermediate.crt and intermediate.key must both exist): restore the missing file from a backup; issued certificates chain to this intermediate`,
        { dir },
      )
    }
    if (haveInterCert && haveInterKey) {
      intermediateCertPem = await readFile(p('intermediate.crt'), 'utf8')
      intermediateKeyPem = await readFile(p('intermediate.key'), 'utf8')
      try {
        verifyCaChain({ chainPem: firstCert(intermediateCertPem), rootsPem: rootCertPem })
      } catch (err) {
        throw new ControllerError(
          'ERR_PKI_INCOMPLETE',
          `${p('intermediate.crt')} does not verify against ${p('root.crt')}: ${(err as Error).message}`,
          { dir },
          { cause: err },
        )
      }
    } else {
      const inter = await createIntermediateCa({
        issuerCertPem: rootCertPem,
        issuerKeyPem: rootKeyPem,
        commonName: `Nullport Issuing CA (${o.trustDomain})`,
        lifetimeDays: INTERMEDIATE_DAYS,
      })
      await writeSecretFile(p('intermediate.key'), inter.keyPem)
      await writeFileAtomic(p('intermediate.crt'), inter.certPem)
      intermediateCertPem = inter.certPem
      intermediateKeyPem = inter.keyPem
      log?.info({ path: p('intermediate.crt') }, 'created issuing intermediate CA')
    }
    intermediateCertPem = firstCert(intermediateCertPem)
    const bundle = `${rootCertPem.trim()}\n${intermediateCertPem.trim()}\n`
    if (!(await exists(p('ca-bundle.pem'))) || (await readFile(p('ca-bundle.pem'), 'utf8')) !== bundle) {
      await writeFileAtomic(p('ca-bundle.pem'), bundle)
    }

    const interFp = certFingerprint(new X509Certificate(intermediateCertPem))
    const needsLeaf = async (
      certFile: string,
      keyFile: string,
      extra?: (c: NodeX509) => boolean,
    ): Promise<boolean> => {
      if (!(await exists(p(certFile))) || !(await exists(p(keyFile)))) return true
      const blocks = splitPem(await readFile(p(certFile), 'utf8'))
      if (blocks.length === 0) return true
      const leaf = new X509Certificate(blocks[0]!)
      if (Date.parse(leaf.validTo) - Date.now() < RENEW_BEFORE_MS) return true
      if (!leaf.checkIssued(new X509Certificate(intermediateCertPem))) return true
      if (blocks[1] && certFingerprint(new X509Certificate(blocks[1])) !== interFp) return true
      return extra ? !extra(leaf) : false
    }
    const keyFor = async (keyFile: string): Promise<string> =>
      (await exists(p(keyFile))) ? await readFile(p(keyFile), 'utf8') : await generateKeyPem()

    // Server certificate
    const given = o.hosts.map(stripBrackets).filter((h) => h !== '' && h !== '0.0.0.0' && h !== '::')
    const hosts = [...new Set([...given, 'localhost', '127.0.0.1', '::1'])]
    if (await needsLeaf('server.crt', 'server.key', (c) => hosts.every((h) => certCoversHost(c, h)))) {
      const keyPem = await keyFor('server.key')
      const dns: string[] = []
      const ip: string[] = []
      for (const h of hosts) {
        const s = sanFor(h)
        dns.push(...s.dns)
        ip.push(...s.ip)
      }
      const certPem = await issueCertificate({
        issuerCertPem: intermediateCertPem,
        issuerKeyPem: intermediateKeyPem,
        publicKeyPem: createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }) as string,
        commonName: hosts[0]!,
        usage: 'server',
        dns,
        ip,
        uris: [makeSpiffeId(o.trustDomain, 'controller', 'controller')],
        lifetimeSeconds: SERVER_SECONDS,
      })
      if (!(await exists(p('server.key')))) await writeSecretFile(p('server.key'), keyPem)
      await writeFileAtomic(p('server.crt'), `${certPem.trim()}\n${intermediateCertPem.trim()}\n`)
      log?.info({ path: p('server.crt'), dns, ip }, 'issued controller TLS server certificate')
    }

    // JWT signing key + certificate
    if (await needsLeaf('signing.crt', 'signing.key')) {
      const keyPem = await keyFor('signing.key')
      const certPem = await issueCertificate({
        issuerCertPem: intermediateCertPem,
        issuerKeyPem: intermediateKeyPem,
        publicKeyPem: createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }) as string,
        commonName: `Nullport enrollment signer (${o.trustDomain})`,
        usage: 'client',
        lifetimeSeconds: SIGNING_SECONDS,
      })
      if (!(await exists(p('signing.key')))) await writeSecretFile(p('signing.key'), keyPem)
      await writeFileAtomic(p('signing.crt'), `${certPem.trim()}\n${intermediateCertPem.trim()}\n`)
      log?.info({ path: p('signing.crt') }, 'issued enrollment signing certificate')
    }
    await checkKeyPermissions(dir)

    return new NetworkPki({
      dir,
      trustDomain: o.trustDomain,
      rootCertPem,
      intermediateCertPem,
      intermediateKeyPem,
      serverCertPem: await readFile(p('server.crt'), 'utf8'),
      serverKeyPem: await readFile(p('server.key'), 'utf8'),
      signingCertPem: firstCert(await readFile(p('signing.crt'), 'utf8')),
      signingKeyPem: await readFile(p('signing.key'), 'utf8'),
      identityLifetime: o.identityCertLifetimeSeconds,
      routerLifetime: o.routerCertLifetimeSeconds ?? o.identityCertLifetimeSeconds,
    })
  }

  /** Options for `https.createServer` / Fastify `https`: client certs requested, verified per request. */
  tlsOptions(): { key: string; cert: string; ca: string; requestCert: true; rejectUnauthorized: false } {
    return {
      key: this.serverKeyPem,
      cert: this.serverCertPem,
      ca: this.caBundlePem,
      requestCert: true,
      rejectUnauthorized: false,
    }
  }

  /**
   * Parses a CSR and checks its signature and key (ECDSA P-256). Throws ERR_CSR_INVALID or
   * ERR_CSR_SIGNATURE.
   */
  async checkCsr(csrPem: unknown): Promise<ParsedCsr> {
    if (
      typeof csrPem !== 'string' ||
      !csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----') ||
      csrPem.length > 16384
    ) {
      throw new ControllerError(
        'ERR_CSR_INVALID',
        '"csr" must be a PEM PKCS#10 certificate request (-----BEGIN CERTIFICATE REQUEST-----)',
        {
          field: 'csr',
        },
      )
    }
    let parsed: ParsedCsr
    try {
      parsed = await parseCsr(csrPem)
    } catch (err) {
      if (isProtocolError(err, 'ERR_PKI_CSR_SIGNATURE')) {
        throw new ControllerError(
          'ERR_CSR_SIGNATURE',
          'the CSR signature does not match its public key: make the CSR with the private key you will use (the enrollment client does this for you)',
          { field: 'csr' },
          { cause: err },
        )
      }
      throw new ControllerError(
        'ERR_CSR_INVALID',
        `the CSR cannot be parsed: ${(err as Error).message}`,
        { field: 'csr' },
        { cause: err },
      )
    }
    let curve: string | undefined
    try {
      const k = createPublicKey(parsed.publicKeyPem)
      curve = k.asymmetricKeyType === 'ec' ? k.asymmetricKeyDetails?.namedCurve : k.asymmetricKeyType
    } catch (err) {
      throw new ControllerError(
        'ERR_CSR_INVALID',
        `the CSR public key cannot be read: ${(err as Error).message}`,
        { field: 'csr' },
        { cause: err },
      )
    }
    if (curve !== 'prime256v1') {
      throw new ControllerError(
        'ERR_CSR_INVALID',
        `the CSR key must be ECDSA P-256 (got ${curve ?? 'unknown'}): generate a P-256 key`,
        {
          field: 'csr',
          keyType: curve ?? null,
        },
      )
    }
    return parsed
  }

  private async issue(o: {
    csrPem: string
    commonName: string
    usage: 'client' | 'both'
    uris: string[]
    dns?: string[]
    ip?: string[]
    lifetimeSeconds: number
  }): Promise<IssuedCert> {
    const interNotAfter = Date.parse(new X509Certificate(this.intermediateCertPem).validTo)
    const lifetime = Math.max(
      60,
      Math.min(o.lifetimeSeconds, Math.floor((interNotAfter - Date.now()) / 1000) - 60),
    )
    let certPem: string
    try {
      certPem = await issueCertificate({
        issuerCertPem: this.intermediateCertPem,
        issuerKeyPem: this.intermediateKeyPem,
        csrPem: o.csrPem,
        commonName: o.commonName,
        usage: o.usage,
        uris: o.uris,
        dns: o.dns ?? [],
        ip: o.ip ?? [],
        lifetimeSeconds: lifetime,
      })
    } catch (err) {
      if (isProtocolError(err, 'ERR_PKI_CSR_SIGNATURE')) {
        throw new ControllerError(
          'ERR_CSR_SIGNATURE',
          'the CSR signature does not match its public key',
          { field: 'csr' },
          { cause: err },
        )
      }
      if (isProtocolError(err, 'ERR_PKI_INVALID_CSR')) {
        throw new ControllerError(
          'ERR_CSR_INVALID',
          `the CSR is invalid: ${err.message}`,
          { field: 'csr' },
          { cause: err },
        )
      }
      throw err
    }
    const leaf = new X509Certificate(certPem)
    return {
      certPem,
      chainPem: `${certPem.trim()}\n${this.intermediateCertPem.trim()}\n`,
      fingerprint: certFingerprint(leaf),
      notAfter: new Date(leaf.validTo).toISOString(),
    }
  }

  /** Issues an identity certificate: CN = name, URI SAN spiffe://<td>/identity/<id>, clientAuth. */
  issueIdentityCert(o: { csrPem: string; id: string; name: string }): Promise<IssuedCert> {
    return this.issue({
      csrPem: o.csrPem,
      commonName: o.name,
      usage: 'client',
      uris: [makeSpiffeId(this.trustDomain, 'identity', o.id)],
      lifetimeSeconds: this.identityLifetime,
    })
  }

  /** Issues a router certificate: URI SAN spiffe://<td>/router/<id>, SANs of the advertised host, clientAuth+serverAuth. */
  issueRouterCert(o: {
    csrPem: string
    id: string
    name: string
    advertiseHost: string
  }): Promise<IssuedCert> {
    const san = sanFor(o.advertiseHost)
    return this.issue({
      csrPem: o.csrPem,
      commonName: o.name,
      usage: 'both',
      uris: [makeSpiffeId(this.trustDomain, 'router', o.id)],
      dns: san.dns,
      ip: san.ip,
      lifetimeSeconds: this.routerLifetime,
    })
  }

  /**
   * Verifies a TLS peer certificate (the leaf; the intermediate is ours) up to the network root,
   * for clientAuth, and that its SPIFFE id is of `kind` in our trust domain. Does NOT check that
   * the fingerprint is still current: the caller checks it against the entity's authenticators.
   * Throws ERR_CERT_REQUIRED / ERR_CERT_INVALID.
   */
  verifyPeer(leaf: NodeX509 | undefined | null, kind: SpiffeKind): VerifiedPeer {
    if (!leaf) {
      throw new ControllerError(
        'ERR_CERT_REQUIRED',
        `this API needs a client certificate of ${kind === 'router' ? 'an edge router' : 'an enrolled identity'}: connect with the certificate from your identity file`,
        { kind },
      )
    }
    const fp = certFingerprint(leaf)
    const now = Date.now()
    const cached = this.verified.get(fp)
    if (cached && now >= cached.notBefore && now <= cached.notAfter) {
      if (cached.peer.kind !== kind) throw this.wrongKind(cached.peer.kind, kind)
      return cached.peer
    }
    let spiffeId: string | null
    try {
      spiffeId = verifyChain({
        chainPem: [leaf.toString(), this.intermediateCertPem],
        rootsPem: this.rootCertPem,
        usage: 'client',
      }).spiffeId
    } catch (err) {
      throw new ControllerError(
        'ERR_CERT_INVALID',
        `the client certificate does not verify against this network's CA: ${(err as Error).message}`,
        { fingerprint: fp },
        { cause: err },
      )
    }
    let parsed: { trustDomain: string; kind: SpiffeKind; id: string }
    try {
      if (!spiffeId) throw new Error('no spiffe:// URI SAN')
      parsed = parseSpiffeId(spiffeId)
    } catch (err) {
      throw new ControllerError(
        'ERR_CERT_INVALID',
        `the client certificate has no valid SPIFFE id: ${(err as Error).message}`,
        { fingerprint: fp },
        { cause: err },
      )
    }
    if (parsed.trustDomain !== this.trustDomain) {
      throw new ControllerError(
        'ERR_CERT_INVALID',
        `the client certificate belongs to trust domain "${parsed.trustDomain}", not "${this.trustDomain}"`,
        {
          fingerprint: fp,
        },
      )
    }
    const m = /CN=([^\n]*)/.exec(leaf.subject)
    const peer: VerifiedPeer = {
      kind: parsed.kind,
      id: parsed.id,
      fingerprint: fp,
      commonName: m ? m[1]! : null,
    }
    if (this.verified.size >= 10_000) this.verified.delete(this.verified.keys().next().value!)
    this.verified.set(fp, { peer, notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo) })
    if (peer.kind !== kind) throw this.wrongKind(peer.kind, kind)
    return peer
  }

  private wrongKind(got: SpiffeKind, want: SpiffeKind): ControllerError {
    return new ControllerError(
      'ERR_CERT_WRONG_KIND',
      `this API is for ${want === 'router' ? 'edge routers' : 'identities'}; the client certificate is a ${got} certificate`,
      { kind: got, expected: want },
    )
  }
}
