/**
 * `nullport pki create ca|intermediate|server|client|key|csr`: a file-based PKI in one command
 * per step (close to OpenZiti's `ziti pki create ...`). Every certificate and key is ECDSA P-256.
 *
 * Layout under `--pki-root` (default ./pki); every CA, root or intermediate, has its own directory
 * and its name is what `--ca-name` refers to:
 *
 *   <root>/<ca>/certs/<ca>.cert          the CA certificate
 *   <root>/<ca>/keys/<ca>.key            its key (0600)
 *   <root>/<ca>/certs/<ca>.chain.pem     intermediates only: the CA + the intermediates above it
 *   <root>/<ca>/certs/<name>.cert        a server or client certificate issued by <ca>
 *   <root>/<ca>/certs/<name>.chain.pem   the same + the intermediates (what TLS servers/clients send)
 *   <root>/<ca>/keys/<name>.key          its key (0600)
 *   <root>/<ca>/csrs/<name>.csr          `create csr`
 *
 * Everything is computed in memory first; files are then written atomically (keys with
 * writeSecretFile, mode 0600), and a failure removes what this command wrote: nothing is left
 * half-written. Existing files are never replaced without --force.
 */
import { X509Certificate } from 'node:crypto'
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises'
import { isIP } from 'node:net'
import { dirname, isAbsolute, join, relative, sep } from 'node:path'
import {
  createCsr,
  createIntermediateCa,
  createLeaf,
  createRootCa,
  generateKeyPem,
  issueCertificate,
  isValidDnsName,
  type ParsedCsr,
  ProtocolError,
  parseCsr,
  publicKeyPemOf,
  splitPem,
  writeFileAtomic,
  writeSecretFile,
} from '@nullport/protocol'
import type { Command } from 'commander'

const DEFAULT_DAYS = { ca: 3650, intermediate: 1825, leaf: 365 } as const
const MAX_DAYS = 36500
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/
const SPIFFE_RE = /^spiffe:\/\/[a-z0-9._-]{1,255}(\/[A-Za-z0-9._-]{1,255})+$/

interface CommonOptions {
  pkiRoot: string
  expireLimit?: string
  keyFile?: string
  force?: boolean
}

function usage(message: string, field: string): ProtocolError {
  return new ProtocolError('ERR_PKI_INVALID_INPUT', message, { field })
}

/** A file or CA name: letters, digits, `.`, `_`, `-`; no path separators. */
function checkName(value: string | undefined, flag: string): string {
  if (value === undefined) throw usage(`${flag} <name> is required`, flag)
  if (!NAME_RE.test(value) || value === '.' || value === '..') {
    throw usage(
      `${flag} must be a simple name (letters, digits, ".", "_", "-"; no "/"), got "${value ?? ''}"`,
      flag,
    )
  }
  return value
}

function checkCn(value: string, flag: string): string {
  if (value.length === 0 || value.length > 256) throw usage(`${flag} must be 1 to 256 characters`, flag)
  return value
}

function days(o: CommonOptions, fallback: number): number {
  if (o.expireLimit === undefined) return fallback
  const v = o.expireLimit.trim()
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_DAYS) {
    throw usage(
      `--expire-limit must be a number of days from 1 to ${MAX_DAYS}, got "${o.expireLimit}"`,
      '--expire-limit',
    )
  }
  return Number(v)
}

/** Commander collector: `--dns a,b --dns c` -> ['a','b','c']. */
function collectList(value: string, previous: string[] = []): string[] {
  return previous.concat(
    value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  )
}

function checkDns(names: string[]): string[] {
  for (const n of names) {
    if (!isValidDnsName(n)) {
      throw usage(
        `--dns: "${n}" is not a valid DNS name (letters, digits, "-", dots; e.g. --dns localhost,api.example.com)`,
        '--dns',
      )
    }
  }
  return [...new Set(names)]
}

function checkIps(ips: string[]): string[] {
  for (const a of ips) {
    if (isIP(a) === 0)
      throw usage(`--ip: "${a}" is not an IPv4 or IPv6 address (e.g. --ip 127.0.0.1,::1)`, '--ip')
  }
  return [...new Set(ips)]
}

function checkSpiffe(uri: string | undefined): string[] {
  if (uri === undefined) return []
  const segments = uri.replace(/^spiffe:\/\/[^/]*/, '').split('/')
  if (!SPIFFE_RE.test(uri) || segments.some((s) => s === '.' || s === '..')) {
    throw usage(
      `--spiffe-id: "${uri}" is not a SPIFFE id: use spiffe://<trust-domain>/<path>, e.g. spiffe://nullport/identity/laptop`,
      '--spiffe-id',
    )
  }
  return [uri]
}

// ---------------------------------------------------------------------------------------------
// files

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

interface PlannedFile {
  path: string
  data: string
  secret: boolean
  label: string
}

/**
 * Writes every planned file or none: refuses existing files without `force`, then writes each
 * atomically; on a failure, restores what was there before and removes what this call created.
 */
async function commitFiles(files: PlannedFile[], force: boolean): Promise<void> {
  const previous = new Map<string, string | null>()
  for (const f of files) previous.set(f.path, await readText(f.path))
  const existing = files.filter((f) => previous.get(f.path) !== null).map((f) => f.path)
  if (existing.length > 0 && !force) {
    throw new ProtocolError(
      'ERR_PKI_FILE_EXISTS',
      `${existing.join(', ')} already ${existing.length === 1 ? 'exists' : 'exist'}: pass --force to overwrite, or choose another name`,
      { paths: existing },
    )
  }
  const written: PlannedFile[] = []
  try {
    for (const f of files) {
      await mkdir(dirname(f.path), { recursive: true, mode: f.secret ? 0o700 : 0o755 })
      if (f.secret) await writeSecretFile(f.path, f.data)
      else await writeFileAtomic(f.path, f.data)
      written.push(f)
    }
  } catch (err) {
    for (const f of written.reverse()) {
      const old = previous.get(f.path)
      if (old === null || old === undefined) await unlink(f.path).catch(() => {})
      else if (f.secret) await writeSecretFile(f.path, old).catch(() => {})
      else await writeFileAtomic(f.path, old).catch(() => {})
    }
    throw err
  }
}

// ---------------------------------------------------------------------------------------------
// CAs on disk

interface CaPaths {
  dir: string
  cert: string
  key: string
  chain: string
}

function caPaths(root: string, name: string): CaPaths {
  return {
    dir: join(root, name),
    cert: join(root, name, 'certs', `${name}.cert`),
    key: join(root, name, 'keys', `${name}.key`),
    chain: join(root, name, 'certs', `${name}.chain.pem`),
  }
}

interface LoadedCa {
  name: string
  paths: CaPaths
  certPem: string
  keyPem: string
  /** The CA certificate and the intermediates above it (empty for a root CA). */
  chainPem: string
  /** The chain file to pass as `-untrusted` / intermediates (null for a root CA). */
  chainPath: string | null
  commonName: string
}

function isSelfSigned(pem: string): boolean {
  const c = new X509Certificate(pem)
  return c.checkIssued(c) && c.verify(c.publicKey)
}

function cnOf(pem: string): string {
  const subject = new X509Certificate(pem).subject
  return /^CN=(.*)$/m.exec(subject)?.[1] ?? subject
}

async function listCas(root: string): Promise<string[]> {
  let entries: string[]
  try {
    entries = await readdir(root)
  } catch {
    return []
  }
  const out: string[] = []
  for (const e of entries.sort()) {
    if (await exists(caPaths(root, e).cert)) out.push(e)
  }
  return out
}

async function loadCa(root: string, nameOpt: string | undefined): Promise<LoadedCa> {
  if (nameOpt === undefined) {
    const known = await listCas(root)
    throw usage(
      `--ca-name is required: the CA that issues (${known.length > 0 ? `one of: ${known.join(', ')}` : `none in ${root} yet: create one with \`nullport pki create ca --ca-file NAME\``})`,
      '--ca-name',
    )
  }
  const name = checkName(nameOpt, '--ca-name')
  const paths = caPaths(root, name)
  const certPem = await readText(paths.cert)
  const keyPem = await readText(paths.key)
  if (certPem === null || keyPem === null) {
    const known = await listCas(root)
    const hint =
      known.length > 0
        ? `use --ca-name with one of: ${known.join(', ')} (or --pki-root DIR)`
        : `create it with \`nullport pki create ca --pki-root ${root} --ca-file ${name}\``
    throw new ProtocolError(
      'ERR_PKI_CA_NOT_FOUND',
      `CA "${name}" not found: ${certPem === null ? paths.cert : paths.key} does not exist: ${hint}`,
      { ca: name, root },
    )
  }
  const certs = splitPem(certPem)
  if (certs.length === 0) throw usage(`${paths.cert} holds no PEM certificate`, '--ca-name')
  const cert = certs[0]!
  const root_ = isSelfSigned(cert)
  const chainFile = await readText(paths.chain)
  const chainPem = root_ ? '' : (chainFile ?? cert)
  return {
    name,
    paths,
    certPem: cert,
    keyPem,
    chainPem,
    chainPath: root_ ? null : chainFile !== null ? paths.chain : paths.cert,
    commonName: cnOf(cert),
  }
}

/** The root CA certificate file under `root` that anchors `chainPem` (CA cert + intermediates). */
async function findRootFile(root: string, ca: LoadedCa): Promise<string | null> {
  if (ca.chainPem === '') return ca.paths.cert
  const chain = splitPem(ca.chainPem)
  const top = new X509Certificate(chain[chain.length - 1]!)
  for (const name of await listCas(root)) {
    const pem = await readText(caPaths(root, name).cert)
    if (pem === null) continue
    try {
      const c = new X509Certificate(splitPem(pem)[0]!)
      if (isSelfSigned(c.toString()) && top.checkIssued(c) && top.verify(c.publicKey))
        return caPaths(root, name).cert
    } catch {}
  }
  return null
}

/** `--key-file NAME` (in the CA's keys directory) or a path: an existing key to reuse. */
async function reuseKey(
  root: string,
  caName: string,
  keyFile: string | undefined,
): Promise<{ path: string; pem: string } | null> {
  if (keyFile === undefined) return null
  const isPath = keyFile.includes('/') || keyFile.includes(sep) || isAbsolute(keyFile)
  const path = isPath ? keyFile : join(root, caName, 'keys', `${checkName(keyFile, '--key-file')}.key`)
  const pem = await readText(path)
  if (pem === null) {
    throw usage(
      `--key-file: ${path} does not exist: create it with \`nullport pki create key --ca-name ${caName} --key-file NAME\`, or omit --key-file to generate a new key`,
      '--key-file',
    )
  }
  try {
    publicKeyPemOf(pem)
  } catch (err) {
    throw usage(`--key-file: ${path}: ${(err as Error).message}`, '--key-file')
  }
  return { path, pem }
}

function show(path: string): string {
  const rel = relative(process.cwd(), path)
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel
}

function report(lines: string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`)
}

function expiry(certPem: string): string {
  return new Date(new X509Certificate(certPem).validTo).toISOString()
}

// ---------------------------------------------------------------------------------------------
// commands

async function createCa(
  o: CommonOptions & { caFile?: string; caName?: string; org?: string },
): Promise<void> {
  const file = checkName(o.caFile, '--ca-file')
  const cn = checkCn(o.caName ?? file, '--ca-name')
  const lifetimeDays = days(o, DEFAULT_DAYS.ca)
  const paths = caPaths(o.pkiRoot, file)
  const reused = await reuseKey(o.pkiRoot, file, o.keyFile)
  const ca = await createRootCa({
    commonName: cn,
    lifetimeDays,
    ...(reused ? { keyPem: reused.pem } : {}),
    ...(o.org !== undefined ? { organization: checkCn(o.org, '--org') } : {}),
  })
  const files: PlannedFile[] = [{ path: paths.cert, data: ca.certPem, secret: false, label: 'cert ' }]
  if (reused?.path !== paths.key)
    files.push({ path: paths.key, data: ca.keyPem, secret: true, label: 'key  ' })
  await commitFiles(files, o.force === true)
  report([
    `created root CA "${cn}" (expires ${expiry(ca.certPem)})`,
    ...files.map((f) => `  ${f.label} ${show(f.path)}${f.secret ? ' (0600)' : ''}`),
    ...(reused && reused.path !== paths.key ? [`  key was reused from ${show(reused.path)}`] : []),
    `next: nullport pki create intermediate --pki-root ${show(o.pkiRoot)} --ca-name ${file} --intermediate-file NAME`,
  ])
}

async function createIntermediate(
  o: CommonOptions & {
    caName?: string
    intermediateFile?: string
    intermediateName?: string
    maxPathLen?: string
  },
): Promise<void> {
  const file = checkName(o.intermediateFile, '--intermediate-file')
  const cn = checkCn(o.intermediateName ?? file, '--intermediate-name')
  const lifetimeDays = days(o, DEFAULT_DAYS.intermediate)
  let pathLength = 0
  if (o.maxPathLen !== undefined) {
    if (!/^\d+$/.test(o.maxPathLen) || Number(o.maxPathLen) > 8) {
      throw usage(`--max-path-len must be a number from 0 to 8, got "${o.maxPathLen}"`, '--max-path-len')
    }
    pathLength = Number(o.maxPathLen)
  }
  const issuer = await loadCa(o.pkiRoot, o.caName)
  if (file === issuer.name)
    throw usage(`--intermediate-file must differ from --ca-name "${issuer.name}"`, '--intermediate-file')
  const reused = await reuseKey(o.pkiRoot, issuer.name, o.keyFile)
  const inter = await createIntermediateCa({
    issuerCertPem: issuer.certPem,
    issuerKeyPem: issuer.keyPem,
    commonName: cn,
    lifetimeDays,
    pathLength,
    ...(reused ? { keyPem: reused.pem } : {}),
  })
  const paths = caPaths(o.pkiRoot, file)
  const files: PlannedFile[] = [
    { path: paths.cert, data: inter.certPem, secret: false, label: 'cert ' },
    { path: paths.chain, data: inter.certPem + issuer.chainPem, secret: false, label: 'chain' },
  ]
  if (reused?.path !== paths.key)
    files.push({ path: paths.key, data: inter.keyPem, secret: true, label: 'key  ' })
  await commitFiles(files, o.force === true)
  const rootFile = await findRootFile(o.pkiRoot, issuer)
  report([
    `created intermediate CA "${cn}" issued by "${issuer.commonName}" (expires ${expiry(inter.certPem)})`,
    ...files.map(
      (f) =>
        `  ${f.label} ${show(f.path)}${f.secret ? ' (0600)' : ''}${f.label === 'chain' ? ' (intermediate + intermediates above it)' : ''}`,
    ),
    ...(rootFile
      ? [
          `verify: openssl verify -CAfile ${show(rootFile)}${issuer.chainPath ? ` -untrusted ${show(issuer.chainPath)}` : ''} ${show(paths.cert)}`,
        ]
      : []),
    `next: nullport pki create server|client --pki-root ${show(o.pkiRoot)} --ca-name ${file} ...`,
  ])
}

async function createLeafCommand(
  kind: 'server' | 'client',
  o: CommonOptions & {
    caName?: string
    serverFile?: string
    serverName?: string
    clientFile?: string
    clientName?: string
    dns?: string[]
    ip?: string[]
    spiffeId?: string
    csr?: string
  },
): Promise<void> {
  const fileFlag = kind === 'server' ? '--server-file' : '--client-file'
  const file = checkName(kind === 'server' ? o.serverFile : o.clientFile, fileFlag)
  const dns = checkDns(o.dns ?? [])
  const ip = checkIps(o.ip ?? [])
  const uris = checkSpiffe(o.spiffeId)
  if (kind === 'server' && dns.length === 0 && ip.length === 0) {
    throw usage(
      'a server certificate needs the names clients connect to: pass --dns NAME[,NAME] and/or --ip ADDRESS[,ADDRESS]',
      '--dns',
    )
  }
  if (o.csr !== undefined && o.keyFile !== undefined) {
    throw usage(
      '--csr and --key-file exclude each other: the key of a CSR stays with whoever made the CSR',
      '--csr',
    )
  }
  const lifetimeDays = days(o, DEFAULT_DAYS.leaf)
  const ca = await loadCa(o.pkiRoot, o.caName)
  const request = await readCsr(o.pkiRoot, ca.name, o.csr)
  const cnOpt = kind === 'server' ? o.serverName : o.clientName
  const cn = checkCn(
    cnOpt ?? request?.parsed.commonName ?? (kind === 'server' ? (dns[0] ?? ip[0] ?? file) : file),
    `--${kind}-name`,
  )
  const reused = await reuseKey(o.pkiRoot, ca.name, o.keyFile)
  const leaf: { certPem: string; keyPem: string | null } = request
    ? {
        certPem: await issueCertificate({
          issuerCertPem: ca.certPem,
          issuerKeyPem: ca.keyPem,
          csrPem: request.pem,
          commonName: cn,
          usage: kind,
          dns,
          ip,
          uris,
          lifetimeSeconds: lifetimeDays * 86_400,
        }),
        keyPem: null,
      }
    : await createLeaf({
        issuerCertPem: ca.certPem,
        issuerKeyPem: ca.keyPem,
        commonName: cn,
        usage: kind,
        dns,
        ip,
        uris,
        lifetimeSeconds: lifetimeDays * 86_400,
        ...(reused ? { keyPem: reused.pem } : {}),
      })
  const certPath = join(o.pkiRoot, ca.name, 'certs', `${file}.cert`)
  const chainPath = join(o.pkiRoot, ca.name, 'certs', `${file}.chain.pem`)
  const keyPath = join(o.pkiRoot, ca.name, 'keys', `${file}.key`)
  const files: PlannedFile[] = [
    { path: certPath, data: leaf.certPem, secret: false, label: 'cert ' },
    { path: chainPath, data: leaf.certPem + ca.chainPem, secret: false, label: 'chain' },
  ]
  if (leaf.keyPem !== null && !reused)
    files.push({ path: keyPath, data: leaf.keyPem, secret: true, label: 'key  ' })
  await commitFiles(files, o.force === true)
  const rootFile = await findRootFile(o.pkiRoot, ca)
  const sans = [...dns.map((d) => `DNS:${d}`), ...ip.map((a) => `IP:${a}`), ...uris.map((u) => `URI:${u}`)]
  report([
    `created ${kind} certificate "${cn}" issued by "${ca.commonName}"${sans.length > 0 ? ` for ${sans.join(', ')}` : ''} (expires ${expiry(leaf.certPem)})`,
    ...files.map(
      (f) =>
        `  ${f.label} ${show(f.path)}${f.secret ? ' (0600)' : ''}${f.label === 'chain' ? ` (certificate + intermediates: the ${kind} cert file for Node, nginx, haproxy, stunnel)` : ''}`,
    ),
    ...(reused ? [`  key   ${show(reused.path)} (reused)`] : []),
    ...(request ? [`  csr   ${show(request.path)} (the key stays with whoever made the request)`] : []),
    ...(rootFile
      ? [
          `  ca    ${show(rootFile)} (the root CA the other side trusts)`,
          `verify: openssl verify -CAfile ${show(rootFile)}${ca.chainPath ? ` -untrusted ${show(ca.chainPath)}` : ''} ${show(certPath)}`,
        ]
      : []),
  ])
}

/** `--csr NAME` (in the CA's csrs/ directory) or a path: a PKCS#10 request to issue a certificate for. */
async function readCsr(
  root: string,
  caName: string,
  csr: string | undefined,
): Promise<{ path: string; pem: string; parsed: ParsedCsr } | null> {
  if (csr === undefined) return null
  const isPath = csr.includes('/') || csr.includes(sep) || isAbsolute(csr)
  const path = isPath ? csr : join(root, caName, 'csrs', `${checkName(csr, '--csr')}.csr`)
  const pem = await readText(path)
  if (pem === null) {
    throw usage(
      `--csr: ${path} does not exist: pass a CSR file path, or a name in ${join(root, caName, 'csrs')}`,
      '--csr',
    )
  }
  // parseCsr verifies the request's signature (ERR_PKI_CSR_SIGNATURE) and its P-256 key (ERR_PKI_INVALID_CSR)
  return { path, pem, parsed: await parseCsr(pem) }
}

async function createKeyCommand(o: CommonOptions & { caName?: string }): Promise<void> {
  const file = checkName(o.keyFile, '--key-file')
  const ca = await loadCa(o.pkiRoot, o.caName)
  const path = join(o.pkiRoot, ca.name, 'keys', `${file}.key`)
  await commitFiles([{ path, data: await generateKeyPem(), secret: true, label: 'key  ' }], o.force === true)
  report([
    `created ECDSA P-256 key`,
    `  key   ${show(path)} (0600)`,
    `use it with: --ca-name ${ca.name} --key-file ${file}`,
  ])
}

async function createCsrCommand(
  o: CommonOptions & {
    caName?: string
    csrFile?: string
    csrName?: string
    dns?: string[]
    ip?: string[]
    spiffeId?: string
  },
): Promise<void> {
  const file = checkName(o.csrFile, '--csr-file')
  const dns = checkDns(o.dns ?? [])
  const ip = checkIps(o.ip ?? [])
  const uris = checkSpiffe(o.spiffeId)
  const cn = checkCn(o.csrName ?? file, '--csr-name')
  const ca = await loadCa(o.pkiRoot, o.caName)
  const reused = await reuseKey(o.pkiRoot, ca.name, o.keyFile)
  const keyPem = reused?.pem ?? (await generateKeyPem())
  const csr = await createCsr({ keyPem, commonName: cn, dns, ip, uris })
  const csrPath = join(o.pkiRoot, ca.name, 'csrs', `${file}.csr`)
  const keyPath = join(o.pkiRoot, ca.name, 'keys', `${file}.key`)
  const files: PlannedFile[] = [{ path: csrPath, data: csr, secret: false, label: 'csr  ' }]
  if (!reused) files.push({ path: keyPath, data: keyPem, secret: true, label: 'key  ' })
  await commitFiles(files, o.force === true)
  report([
    `created certificate request "${cn}"`,
    ...files.map((f) => `  ${f.label} ${show(f.path)}${f.secret ? ' (0600)' : ''}`),
    ...(reused ? [`  key   ${show(reused.path)} (reused)`] : []),
    `inspect: openssl req -in ${show(csrPath)} -noout -text -verify`,
  ])
}

// ---------------------------------------------------------------------------------------------
// registration

/** Adds the options every `create` subcommand has, after its own. */
function common(cmd: Command, opts: { keyFile?: boolean; expire?: number }): Command {
  cmd.option('--pki-root <dir>', 'directory of the PKI', './pki')
  if (opts.expire !== undefined)
    cmd.option('--expire-limit <days>', `lifetime in days (default ${opts.expire})`)
  if (opts.keyFile !== false) {
    cmd.option('--key-file <name>', "reuse an existing key: a name in the CA's keys/ directory, or a path")
  }
  cmd.option('--force', 'overwrite existing files')
  return cmd
}

/** Registers the `nullport pki ...` commands. */
export function register(program: Command): void {
  const pki = program
    .command('pki')
    .description('a file-based PKI: CAs, server and client certificates, keys and CSRs (ECDSA P-256)')
  const create = pki
    .command('create')
    .description('create a CA, intermediate, server or client certificate, key or CSR')
    .addHelpText(
      'after',
      `
Example (mTLS between two services):
  nullport pki create ca --ca-file root --ca-name "Example Root CA"
  nullport pki create intermediate --ca-name root --intermediate-file issuing
  nullport pki create server --ca-name issuing --server-file api --dns localhost --ip 127.0.0.1
  nullport pki create client --ca-name issuing --client-file worker --spiffe-id spiffe://example/worker
Files: pki/<ca>/certs/<name>.cert, .chain.pem (cert + intermediates), pki/<ca>/keys/<name>.key (0600).`,
    )

  common(
    create
      .command('ca')
      .description('create a self-signed root CA')
      .option('--ca-file <name>', 'name of the CA: its directory and file names (required)')
      .option('--ca-name <common-name>', 'common name of the CA certificate (default: --ca-file)')
      .option('--org <organization>', 'organization (O) of the CA certificate'),
    { expire: DEFAULT_DAYS.ca },
  ).action(async (o) => createCa(o))

  common(
    create
      .command('intermediate')
      .description('create an intermediate CA signed by --ca-name')
      .option('--ca-name <name>', 'the issuing CA (a --ca-file or --intermediate-file created before)')
      .option('--intermediate-file <name>', 'name of the new intermediate CA (required)')
      .option('--intermediate-name <common-name>', 'common name (default: --intermediate-file)')
      .option('--max-path-len <n>', 'CAs allowed below this one (default 0: it issues only leaves)'),
    {
      expire: DEFAULT_DAYS.intermediate,
    },
  ).action(async (o) => createIntermediate(o))

  common(
    create
      .command('server')
      .description('create a key and a TLS server certificate')
      .option('--ca-name <name>', 'the issuing CA')
      .option('--server-file <name>', 'file name of the certificate and key (required)')
      .option('--server-name <common-name>', 'common name (default: the first --dns or --ip)')
      .option('--dns <names>', 'DNS names, comma separated (repeatable)', collectList)
      .option('--ip <addresses>', 'IP addresses, comma separated (repeatable)', collectList)
      .option('--spiffe-id <uri>', 'a spiffe:// URI SAN')
      .option(
        '--csr <name>',
        "issue for this CSR (a name in the CA's csrs/ directory, or a path) instead of a new key",
      ),
    {
      expire: DEFAULT_DAYS.leaf,
    },
  ).action(async (o) => createLeafCommand('server', o))

  common(
    create
      .command('client')
      .description('create a key and a TLS client certificate')
      .option('--ca-name <name>', 'the issuing CA')
      .option('--client-file <name>', 'file name of the certificate and key (required)')
      .option('--client-name <common-name>', 'common name (default: --client-file)')
      .option('--spiffe-id <uri>', 'a spiffe:// URI SAN, e.g. spiffe://nullport/identity/laptop')
      .option('--dns <names>', 'DNS names, comma separated (optional)', collectList)
      .option('--ip <addresses>', 'IP addresses, comma separated (optional)', collectList)
      .option(
        '--csr <name>',
        "issue for this CSR (a name in the CA's csrs/ directory, or a path) instead of a new key",
      ),
    {
      expire: DEFAULT_DAYS.leaf,
    },
  ).action(async (o) => createLeafCommand('client', o))

  common(
    create
      .command('key')
      .description("create an ECDSA P-256 key in the CA's keys/ directory")
      .option('--ca-name <name>', 'the CA whose keys/ directory holds the key')
      .option('--key-file <name>', 'name of the key (required)'),
    {
      keyFile: false,
    },
  ).action(async (o) => createKeyCommand(o))

  common(
    create
      .command('csr')
      .description('create a certificate request (and a key, unless --key-file)')
      .option('--ca-name <name>', 'the CA directory to write into (csrs/, keys/)')
      .option('--csr-file <name>', 'file name of the request (required)')
      .option('--csr-name <common-name>', 'common name (default: --csr-file)')
      .option('--dns <names>', 'DNS names, comma separated (repeatable)', collectList)
      .option('--ip <addresses>', 'IP addresses, comma separated (repeatable)', collectList)
      .option('--spiffe-id <uri>', 'a spiffe:// URI SAN'),
    {},
  ).action(async (o) => createCsrCommand(o))
}
