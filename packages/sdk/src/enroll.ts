/**
 * Enrollment: turns a one-time enrollment token (JWT) into an identity file.
 *
 * Trust is never taken on first use: the token names the network root CA by its SHA-256
 * fingerprint (`caFp`), the CA bundle fetched from the token's issuer must contain that root, and
 * only then is anything else believed (the controller's TLS certificate, its JWKS, the token's
 * signature). The private key is generated here and never leaves the device.
 * See docs/architecture.md, "Enrollment tokens".
 */
import {
  createPublicKey,
  verify as cryptoVerify,
  generateKeyPairSync,
  type JsonWebKey,
  X509Certificate,
} from 'node:crypto'
import { access } from 'node:fs/promises'
import {
  certFingerprint,
  createCsr,
  httpsRequest,
  type IdentityFile,
  isProtocolError,
  makeSpiffeId,
  saveIdentityFile,
  verifyChain,
} from '@nullport/protocol'
import { SdkError, type SdkErrorCode } from './errors.js'

/** The claims of an enrollment token (docs/architecture.md, "Enrollment tokens"). */
export interface EnrollmentClaims {
  /** Controller base URL (https). */
  iss: string
  /** Identity or router id. */
  sub: string
  /** Enrollment id (single use). */
  jti: string
  iat: number
  exp: number
  /** `ott`: identity; `erott`: edge router. */
  em: 'ott' | 'erott'
  name: string
  /** Trust domain. */
  td: string
  /** Lower-case hex SHA-256 of the network root CA's DER. */
  caFp: string
}

export interface DecodedEnrollmentToken {
  header: { alg: string; kid?: string; typ?: string }
  claims: EnrollmentClaims
  /** `header.payload`, the bytes the signature covers. */
  signingInput: string
  signature: Buffer
}

/** One HTTPS request made by enrollment. */
export interface EnrollHttpRequest {
  method: 'GET' | 'POST'
  url: string
  headers: Record<string, string>
  body?: string
  /**
   * PEM certificates the server's TLS certificate must chain to. Absent only for the first
   * request (`/.well-known/est/cacerts`), whose answer is checked against the token's `caFp`.
   */
  ca?: string
  /** Refuse (and abort) a response body larger than this. */
  maxBytes: number
  timeoutMs: number
}

export interface EnrollHttpResponse {
  status: number
  contentType: string | undefined
  body: string
}

/** Transport used by enroll(); the default uses node:https. Injectable for tests. */
export type EnrollFetch = (req: EnrollHttpRequest) => Promise<EnrollHttpResponse>

export interface EnrollOptions {
  /** The enrollment token (the text of the `.jwt` file; surrounding whitespace is ignored). */
  jwt: string
  /** Where to write the identity file (mode 0600, atomically). Default: not written, only returned. */
  output?: string
  /** Replace an existing file at `output`. Default false: ERR_ENROLL_OUTPUT_EXISTS. */
  overwrite?: boolean
  /** Edge routers only (`em` = `erott`): the `host:port` the router advertises. Required for routers. */
  advertise?: string
  /** Transport (default: node:https with the pinned CA). */
  fetchImpl?: EnrollFetch
  /** Per-request timeout in ms. Default 15000. */
  timeoutMs?: number
  /** The clock used for the expiry check. Default `new Date()`. */
  now?: () => Date
}

export interface EnrollResult {
  file: IdentityFile
  /** The path written, when `output` was given. */
  path?: string
}

const MAX_TOKEN = 16 * 1024
const MAX_CACERTS = 256 * 1024
const MAX_JWKS = 64 * 1024
const MAX_ENROLL_RESPONSE = 256 * 1024

function fail(
  code: SdkErrorCode,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): never {
  throw new SdkError(code, message, details, cause === undefined ? undefined : { cause })
}

function b64urlDecode(s: string, what: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(s))
    fail('ERR_ENROLL_TOKEN_MALFORMED', `enrollment token is malformed: ${what} is not base64url`)
  return Buffer.from(s, 'base64url')
}

/**
 * Decodes an enrollment token WITHOUT verifying it (nothing is trusted yet): checks its shape and
 * claims. Throws ERR_ENROLL_TOKEN_MALFORMED naming the problem.
 */
export function decodeEnrollmentToken(jwt: string): DecodedEnrollmentToken {
  const text = jwt.trim()
  if (text.length === 0)
    fail('ERR_ENROLL_TOKEN_MALFORMED', 'enrollment token is empty: pass the contents of the .jwt file')
  if (text.length > MAX_TOKEN)
    fail('ERR_ENROLL_TOKEN_MALFORMED', `enrollment token is larger than ${MAX_TOKEN} bytes`)
  const parts = text.split('.')
  if (parts.length !== 3)
    fail('ERR_ENROLL_TOKEN_MALFORMED', 'enrollment token is not a JWT (expected header.payload.signature)')
  let header: Record<string, unknown>
  let claims: Record<string, unknown>
  try {
    header = JSON.parse(b64urlDecode(parts[0]!, 'the header').toString('utf8'))
    claims = JSON.parse(b64urlDecode(parts[1]!, 'the payload').toString('utf8'))
  } catch (err) {
    if (err instanceof SdkError) throw err
    fail(
      'ERR_ENROLL_TOKEN_MALFORMED',
      'enrollment token is malformed: header or payload is not JSON',
      {},
      err,
    )
  }
  if (typeof header !== 'object' || header === null || typeof claims !== 'object' || claims === null) {
    fail(
      'ERR_ENROLL_TOKEN_MALFORMED',
      'enrollment token is malformed: header or payload is not a JSON object',
    )
  }
  const bad = (field: string, want: string): never =>
    fail('ERR_ENROLL_TOKEN_MALFORMED', `enrollment token is malformed: claim "${field}" must be ${want}`, {
      field,
    })
  if (typeof header.alg !== 'string') bad('alg', 'a string (header)')
  for (const f of ['iss', 'sub', 'jti', 'name', 'td'] as const) {
    if (typeof claims[f] !== 'string' || (claims[f] as string).length === 0) bad(f, 'a non-empty string')
  }
  for (const f of ['exp'] as const)
    if (typeof claims[f] !== 'number' || !Number.isFinite(claims[f])) bad(f, 'a number')
  if (claims.iat !== undefined && typeof claims.iat !== 'number') bad('iat', 'a number')
  if (claims.em !== 'ott' && claims.em !== 'erott') bad('em', '"ott" or "erott"')
  if (typeof claims.caFp !== 'string' || !/^[0-9a-f]{64}$/.test(claims.caFp))
    bad('caFp', 'lower-case hex SHA-256 (64 characters)')
  let iss: URL
  try {
    iss = new URL(claims.iss as string)
  } catch {
    return bad('iss', 'an https:// URL')
  }
  if (iss.protocol !== 'https:') bad('iss', 'an https:// URL')
  return {
    header: header as DecodedEnrollmentToken['header'],
    claims: {
      ...(claims as unknown as EnrollmentClaims),
      iat: typeof claims.iat === 'number' ? claims.iat : 0,
    },
    signingInput: `${parts[0]}.${parts[1]}`,
    signature: b64urlDecode(parts[2]!, 'the signature'),
  }
}

/** Default transport: protocol's httpsRequest, TLS verified against `ca` when given, bounded body, timeout. */
export const defaultEnrollFetch: EnrollFetch = async (req) => {
  try {
    const r = await httpsRequest({
      method: req.method,
      url: req.url,
      headers: req.headers,
      ...(req.body === undefined ? {} : { body: req.body }),
      // Only the first request (the CA bundle) is made before we can verify anything; its
      // answer is then checked against the token's pinned fingerprint.
      tls: req.ca === undefined ? { insecure: true } : { ca: req.ca },
      maxBytes: req.maxBytes,
      timeoutMs: req.timeoutMs,
    })
    return { status: r.status, contentType: r.contentType, body: r.text }
  } catch (err) {
    throw transportError(err, req)
  }
}

/** The cause of a failed request in words (enroll() puts it after "cannot reach the controller at ..."). */
function transportError(err: unknown, req: EnrollHttpRequest): Error {
  if (isProtocolError(err, 'ERR_HTTPS_BODY_TOO_LARGE'))
    return new Error(`the answer from ${new URL(req.url).pathname} is larger than ${req.maxBytes} bytes`, {
      cause: err,
    })
  if (isProtocolError(err, 'ERR_HTTPS_TIMEOUT'))
    return new Error(`no answer within ${req.timeoutMs} ms`, { cause: err })
  if (isProtocolError(err, 'ERR_HTTPS_INCOMPLETE'))
    return new Error('the connection closed before the answer was complete', { cause: err })
  if (isProtocolError(err, 'ERR_HTTPS_UNREACHABLE') && err.cause instanceof Error) return err.cause
  return err as Error
}

function splitPemCerts(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
}

function isSelfSigned(c: X509Certificate): boolean {
  try {
    return c.checkIssued(c) && c.verify(c.publicKey)
  } catch {
    return false
  }
}

/**
 * Checks a CA bundle against the pinned root fingerprint. Returns the PEM of the root followed by
 * the intermediates that chain to it (the trust anchors for TLS from then on).
 */
export function pinCaBundle(
  bundlePem: string,
  caFp: string,
  source: string,
): { root: string; chain: string[] } {
  const pems = splitPemCerts(bundlePem)
  if (pems.length === 0) {
    fail(
      'ERR_ENROLL_CA_MISMATCH',
      `${source} holds no PEM certificate, so the network CA ${caFp} cannot be confirmed: check the controller URL in the token`,
      { caFp },
    )
  }
  let certs: X509Certificate[]
  try {
    certs = pems.map((p) => new X509Certificate(p))
  } catch (err) {
    return fail(
      'ERR_ENROLL_CA_MISMATCH',
      `${source} holds a malformed certificate: check the controller URL in the token`,
      { caFp },
      err,
    )
  }
  const rootIdx = certs.findIndex((c) => isSelfSigned(c) && c.ca && certFingerprint(c) === caFp)
  if (rootIdx < 0) {
    const found = certs.filter(isSelfSigned).map(certFingerprint)
    fail(
      'ERR_ENROLL_CA_MISMATCH',
      `the controller's CA does not match the token: the token pins root ${caFp}, ${source} offers ${found.length ? found.join(', ') : 'no root'}: the token was altered or points at another network; ask the administrator for a new one`,
      { expected: caFp, found },
    )
  }
  const root = certs[rootIdx]!
  const chain = [pems[rootIdx]!]
  // Intermediates: accepted only when signed (directly or transitively) by the pinned root.
  const trusted: X509Certificate[] = [root]
  let progress = true
  const pending = certs.map((c, i) => ({ c, pem: pems[i]! })).filter((_, i) => i !== rootIdx)
  while (progress) {
    progress = false
    for (let i = 0; i < pending.length; i++) {
      const { c, pem } = pending[i]!
      const issuer = trusted.find((t) => {
        try {
          return c.checkIssued(t) && c.verify(t.publicKey)
        } catch {
          return false
        }
      })
      if (issuer && c.ca) {
        trusted.push(c)
        chain.push(pem)
        pending.splice(i, 1)
        i--
        progress = true
      }
    }
  }
  return { root: pems[rootIdx]!, chain }
}

function hhmm(d: Date): string {
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
}

function reEnrollHint(c: EnrollmentClaims): string {
  const kind = c.em === 'erott' ? 'edge-router' : 'identity'
  return `issue a new one with \`nullport edge re-enroll ${kind} ${c.name} -o ${c.name}.jwt\``
}

function expiredError(c: EnrollmentClaims, serverCode?: string): SdkError {
  return new SdkError(
    'ERR_ENROLL_TOKEN_EXPIRED',
    `enrollment token for ${c.name} expired at ${hhmm(new Date(c.exp * 1000))}: ${reEnrollHint(c)}`,
    {
      name: c.name,
      expiresAt: new Date(c.exp * 1000).toISOString(),
      ...(serverCode ? { serverCode } : {}),
    },
  )
}

interface ServerErrorBody {
  error?: { code?: unknown; message?: unknown }
}

function parseJson(body: string, what: string, url: string): unknown {
  try {
    return JSON.parse(body)
  } catch (err) {
    return fail(
      'ERR_ENROLL_RESPONSE',
      `${what} from ${url} is not JSON: is this a Nullport controller?`,
      { url },
      err,
    )
  }
}

/** Verifies an ES256 JWT signature against a JWKS document (node:crypto only). */
export function verifyEs256(token: DecodedEnrollmentToken, jwks: unknown): void {
  if (token.header.alg !== 'ES256') {
    fail(
      'ERR_ENROLL_TOKEN_INVALID',
      `enrollment token uses algorithm "${token.header.alg}", only ES256 is accepted: ask the administrator for a new token`,
      {
        alg: token.header.alg,
      },
    )
  }
  const keys = (jwks as { keys?: unknown })?.keys
  if (!Array.isArray(keys)) fail('ERR_ENROLL_RESPONSE', 'the controller\'s JWKS has no "keys" array')
  const candidates = (keys as Array<Record<string, unknown>>).filter(
    (k) =>
      k &&
      k.kty === 'EC' &&
      k.crv === 'P-256' &&
      (token.header.kid === undefined || k.kid === token.header.kid) &&
      (k.use === undefined || k.use === 'sig'),
  )
  if (candidates.length === 0) {
    fail(
      'ERR_ENROLL_TOKEN_INVALID',
      `enrollment token was signed with key "${token.header.kid ?? '(no kid)'}", which the controller does not publish: ask the administrator for a new token`,
      {
        kid: token.header.kid,
      },
    )
  }
  const data = Buffer.from(token.signingInput, 'ascii')
  for (const jwk of candidates) {
    try {
      const key = createPublicKey({
        key: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } as JsonWebKey,
        format: 'jwk',
      })
      if (
        token.signature.length === 64 &&
        cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, token.signature)
      )
        return
    } catch {
      // a malformed key in the set: try the next one
    }
  }
  fail(
    'ERR_ENROLL_TOKEN_INVALID',
    "enrollment token signature does not verify against the controller's signing key: the token was altered; ask the administrator for a new one",
    {
      kid: token.header.kid,
    },
  )
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}

/**
 * Enrolls an identity (token `em` = `ott`) or an edge router (`erott`) and returns its identity
 * file; with `output`, also writes it (mode 0600, atomically; never over an existing file unless
 * `overwrite`).
 *
 * Errors (SdkError): ERR_ENROLL_TOKEN_MALFORMED, ERR_ENROLL_CA_MISMATCH, ERR_ENROLL_TOKEN_INVALID,
 * ERR_ENROLL_TOKEN_EXPIRED, ERR_ENROLL_TOKEN_USED, ERR_ENROLL_UNREACHABLE, ERR_ENROLL_RESPONSE,
 * ERR_ENROLL_REFUSED (the server's code in `details.serverCode`), ERR_ENROLL_OUTPUT_EXISTS,
 * ERR_ENROLL_OUTPUT_WRITE, ERR_ENROLL_INVALID_OPTIONS.
 */
export async function enroll(opts: EnrollOptions): Promise<EnrollResult> {
  if (typeof opts !== 'object' || opts === null || typeof opts.jwt !== 'string') {
    fail('ERR_ENROLL_INVALID_OPTIONS', 'enroll(): "jwt" must be the enrollment token text')
  }
  if (opts.output !== undefined && (typeof opts.output !== 'string' || opts.output.length === 0)) {
    fail('ERR_ENROLL_INVALID_OPTIONS', 'enroll(): "output" must be a file path')
  }
  const timeoutMs = opts.timeoutMs ?? 15_000
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    fail('ERR_ENROLL_INVALID_OPTIONS', 'enroll(): "timeoutMs" must be a positive integer')
  const doFetch = opts.fetchImpl ?? defaultEnrollFetch
  const now = opts.now ?? (() => new Date())

  // 1. Decode (nothing trusted yet).
  const token = decodeEnrollmentToken(opts.jwt)
  const c = token.claims
  if (
    c.em === 'erott' &&
    (typeof opts.advertise !== 'string' || !/^([^\s:[\]]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/.test(opts.advertise))
  ) {
    fail(
      'ERR_ENROLL_INVALID_OPTIONS',
      `enroll(): edge router ${c.name} needs "advertise" as host:port (the address SDKs and routers reach it at)`,
      {
        name: c.name,
      },
    )
  }
  // Refuse early, before the one-time token is consumed.
  if (opts.output !== undefined && !opts.overwrite && (await exists(opts.output))) {
    fail(
      'ERR_ENROLL_OUTPUT_EXISTS',
      `${opts.output} already exists: choose another output file or remove it first`,
      { path: opts.output },
    )
  }
  const base = c.iss.replace(/\/+$/, '')

  const call = async (
    req: Omit<EnrollHttpRequest, 'timeoutMs' | 'headers'> & { headers?: Record<string, string> },
  ) => {
    try {
      return await doFetch({ headers: {}, ...req, timeoutMs })
    } catch (err) {
      return fail(
        'ERR_ENROLL_UNREACHABLE',
        `cannot reach the controller at ${base} (${req.url.slice(base.length)}): ${(err as Error).message}`,
        { url: req.url },
        err,
      )
    }
  }

  // 2. The CA bundle, checked against the pinned root fingerprint.
  const cacertsUrl = `${base}/.well-known/est/cacerts`
  const caRes = await call({
    method: 'GET',
    url: cacertsUrl,
    headers: { accept: 'application/pem-certificate-chain' },
    maxBytes: MAX_CACERTS,
  })
  if (caRes.status !== 200) {
    fail(
      'ERR_ENROLL_RESPONSE',
      `the controller at ${base} answered ${caRes.status} for its CA bundle: is the token's controller URL right?`,
      {
        url: cacertsUrl,
        status: caRes.status,
      },
    )
  }
  const pinned = pinCaBundle(caRes.body, c.caFp, `the CA bundle at ${cacertsUrl}`)
  const ca = pinned.chain.join('\n')

  // 3. From here on TLS is verified against the pinned root. Verify the token's signature.
  const jwksUrl = `${base}/.well-known/jwks.json`
  const jwksRes = await call({
    method: 'GET',
    url: jwksUrl,
    headers: { accept: 'application/json' },
    ca,
    maxBytes: MAX_JWKS,
  })
  if (jwksRes.status !== 200) {
    fail(
      'ERR_ENROLL_RESPONSE',
      `the controller answered ${jwksRes.status} for its signing keys (${jwksUrl})`,
      { url: jwksUrl, status: jwksRes.status },
    )
  }
  verifyEs256(token, parseJson(jwksRes.body, 'the JWKS', jwksUrl))

  // 4. Expiry, locally.
  if (now().getTime() >= c.exp * 1000) throw expiredError(c)

  // 5. Key and CSR, locally.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const csr = await createCsr({ keyPem, commonName: c.name })

  // 6. Enroll.
  const isRouter = c.em === 'erott'
  const enrollUrl = isRouter ? `${base}/fabric/v1/enroll` : `${base}/edge/client/v1/enroll`
  const body = JSON.stringify(
    isRouter ? { token: opts.jwt.trim(), csr, advertise: opts.advertise } : { token: opts.jwt.trim(), csr },
  )
  const res = await call({
    method: 'POST',
    url: enrollUrl,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body,
    ca,
    maxBytes: MAX_ENROLL_RESPONSE,
  })
  if (res.status < 200 || res.status >= 300) throw mapServerError(c, res)
  const json = parseJson(res.body, 'the enrollment answer', enrollUrl) as { data?: Record<string, unknown> }
  const d = json?.data
  if (!d || typeof d.cert !== 'string')
    fail('ERR_ENROLL_RESPONSE', `the enrollment answer from ${enrollUrl} has no "data.cert"`, {
      url: enrollUrl,
    })

  // 7. Check what we got: it chains to the pinned root, is for our key and carries our SPIFFE ID.
  const certPems = splitPemCerts(d.cert as string)
  if (certPems.length === 0)
    fail('ERR_ENROLL_RESPONSE', 'the enrollment answer\'s "cert" holds no PEM certificate')
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(certPems[0]!)
  } catch (err) {
    return fail('ERR_ENROLL_RESPONSE', 'the enrollment answer\'s "cert" is not a valid certificate', {}, err)
  }
  const intermediates = [...certPems.slice(1)]
  for (const p of pinned.chain.slice(1)) if (!intermediates.includes(p)) intermediates.push(p)
  const td = typeof d.trustDomain === 'string' && d.trustDomain ? d.trustDomain : c.td
  const id = c.sub
  if (d.id !== undefined && d.id !== c.sub) {
    fail(
      'ERR_ENROLL_RESPONSE',
      `the controller enrolled "${String(d.id)}", not the token's subject "${c.sub}"`,
      { id: d.id, sub: c.sub },
    )
  }
  try {
    const v = verifyChain({
      chainPem: [certPems[0]!, ...intermediates],
      rootsPem: pinned.root,
      usage: 'client',
    })
    const want = makeSpiffeId(td, isRouter ? 'router' : 'identity', id)
    if (v.spiffeId !== want)
      throw new Error(`certificate carries SPIFFE ID ${v.spiffeId ?? '(none)'}, expected ${want}`)
  } catch (err) {
    fail(
      'ERR_ENROLL_RESPONSE',
      `the certificate issued by the controller is not usable: ${(err as Error).message}`,
      {},
      err,
    )
  }
  const ourPub = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(ourPub)) {
    fail('ERR_ENROLL_RESPONSE', 'the certificate issued by the controller is not for the key made here')
  }
  // The leaf followed by its issuing intermediate(s), never the root.
  const rootFp = c.caFp
  const certChain = [
    certPems[0]!,
    ...intermediates.filter((p) => certFingerprint(new X509Certificate(p)) !== rootFp),
  ]
  const file: IdentityFile = {
    version: 1,
    kind: isRouter ? 'router' : 'identity',
    id,
    name: typeof d.name === 'string' && d.name ? d.name : c.name,
    controller: typeof d.controller === 'string' && d.controller.startsWith('https://') ? d.controller : base,
    cert: `${certChain.map((p) => p.trim()).join('\n')}\n`,
    key: keyPem,
    ca: `${pinned.chain.map((p) => p.trim()).join('\n')}\n`,
    trustDomain: td,
  }
  if (opts.output === undefined) return { file }
  try {
    await saveIdentityFile(opts.output, file, { exclusive: !opts.overwrite })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      fail(
        'ERR_ENROLL_OUTPUT_EXISTS',
        `${opts.output} appeared while enrolling: the certificate was issued but not saved; re-enroll with \`nullport edge re-enroll ${isRouter ? 'edge-router' : 'identity'} ${c.name} -o ${c.name}.jwt\``,
        {
          path: opts.output,
        },
        err,
      )
    }
    fail(
      'ERR_ENROLL_OUTPUT_WRITE',
      `cannot write ${opts.output}: ${(err as Error).message}`,
      { path: opts.output },
      err,
    )
  }
  return { file, path: opts.output }
}

function mapServerError(c: EnrollmentClaims, res: EnrollHttpResponse): SdkError {
  let code: string | undefined
  let message: string | undefined
  try {
    const e = (JSON.parse(res.body) as ServerErrorBody).error
    if (typeof e?.code === 'string') code = e.code
    if (typeof e?.message === 'string') message = e.message.slice(0, 500)
  } catch {
    // not JSON: fall through with the status
  }
  const details = { serverCode: code, status: res.status, serverMessage: message, name: c.name }
  const u = (code ?? '').toUpperCase()
  if (u === 'ERR_ENROLLMENT_EXPIRED' || u.includes('EXPIRED')) {
    const e = expiredError(c, code)
    Object.assign(e.details, details)
    return e
  }
  if (
    u === 'ERR_ENROLLMENT_USED' ||
    u === 'ERR_ENROLLMENT_NOT_FOUND' ||
    u === 'ERR_NOT_ENROLLED' ||
    u.includes('USED') ||
    u.includes('CONSUMED') ||
    u.includes('ALREADY') ||
    u.includes('NOT_FOUND') ||
    u.includes('REVOKED') ||
    res.status === 404 ||
    res.status === 410
  ) {
    return new SdkError(
      'ERR_ENROLL_TOKEN_USED',
      message?.includes('re-enroll')
        ? `enrollment token for ${c.name} was already used or replaced: ${message}`
        : `enrollment token for ${c.name} was already used or replaced${message ? ` (${message})` : ''}: ${reEnrollHint(c)}`,
      details,
    )
  }
  if (u === 'ERR_ENROLLMENT_INVALID' || u.includes('TOKEN') || u.includes('JWT') || res.status === 401) {
    return new SdkError(
      'ERR_ENROLL_TOKEN_INVALID',
      `the controller refused the enrollment token for ${c.name}${message ? `: ${message}` : ''}: ${reEnrollHint(c)}`,
      details,
    )
  }
  return new SdkError(
    'ERR_ENROLL_REFUSED',
    `the controller refused to enroll ${c.name} (${code ?? `HTTP ${res.status}`})${message ? `: ${message}` : ''}`,
    details,
  )
}
