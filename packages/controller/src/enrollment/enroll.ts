/**
 * Completes an enrollment: `POST /edge/client/v1/enroll {token, csr}` (identities) and
 * `POST /fabric/v1/enroll {token, csr, advertise}` (routers). Verifies the token (signature,
 * expiry, `em`), that it is still pending (single use), the CSR (signature, P-256), issues the
 * certificate, then in ONE transaction (core.completeEnrollment) marks the token used and records
 * the certificate fingerprint as an authenticator; the change is pushed to routers and SDKs.
 */
import { timingSafeEqual } from 'node:crypto'
import type { ControllerContext } from '../core/context.js'
import { sha256Hex } from '../core/crypto.js'
import type { FailureLimiter } from '../core/rate-limit.js'
import { ControllerError, isControllerError } from '../errors.js'
import { type NetworkPki, parseHostPort } from '../pki/network-pki.js'
import { type EnrolledKind, type EnrollmentSigner, expiredError, methodFor, reenrollHint } from './tokens.js'

export interface EnrollResponse {
  /** PEM: the issued leaf followed by the issuing intermediate. */
  cert: string
  /** PEM: the network CA bundle (root, then intermediate). */
  ca: string
  id: string
  name: string
  /** Controller base URL. */
  controller: string
  trustDomain: string
}

function usedError(kind: EnrolledKind, name: string, at: string | null): ControllerError {
  return new ControllerError(
    'ERR_ENROLLMENT_USED',
    `the enrollment token for ${name} was already used${at ? ` at ${at}` : ''}: a token works once; issue a new one with \`${reenrollHint(kind, name)}\``,
    { name, kind, usedAt: at, fix: reenrollHint(kind, name) },
  )
}

/** Whether `token` is the one whose SHA-256 hex is `hash` (constant time). */
function sameHash(token: unknown, hash: string): boolean {
  if (typeof token !== 'string') return false
  const a = Buffer.from(sha256Hex(token), 'hex')
  const b = Buffer.from(hash, 'hex')
  return a.length === b.length && timingSafeEqual(a, b)
}

export async function enroll(
  ctx: ControllerContext,
  pki: NetworkPki,
  signer: EnrollmentSigner,
  kind: EnrolledKind,
  body: { token: unknown; csr: unknown; advertise?: unknown },
): Promise<EnrollResponse> {
  const claims = await signer.verify(body.token, methodFor(kind))
  let advertise: string | undefined
  if (kind === 'router') {
    const hp = typeof body.advertise === 'string' ? parseHostPort(body.advertise) : null
    if (!hp) {
      throw new ControllerError(
        'ERR_VALIDATION',
        'advertise: must be HOST:PORT, the address SDKs and routers reach this router at',
        {
          path: '$.advertise',
        },
      )
    }
    advertise = body.advertise as string
  }
  const rec = await ctx.core.findEnrollment(claims.jti)
  if (!rec) {
    throw new ControllerError(
      'ERR_ENROLLMENT_NOT_FOUND',
      `the enrollment token for ${claims.name} was replaced by a newer one or its ${kind === 'identity' ? 'identity' : 'edge router'} was deleted: use the newest token, or issue one with \`${reenrollHint(kind, claims.name)}\``,
      { name: claims.name, kind },
    )
  }
  if (rec.kind !== kind || rec.entityId !== claims.sub || !sameHash(body.token, rec.tokenHash)) {
    throw new ControllerError(
      'ERR_ENROLLMENT_INVALID',
      'the enrollment token does not match its enrollment record: issue a new token',
      {},
    )
  }
  if (rec.usedAt) throw usedError(kind, rec.name, rec.usedAt)
  if (Date.parse(rec.expiresAt) <= Date.now())
    throw expiredError(kind, rec.name, Math.floor(Date.parse(rec.expiresAt) / 1000))

  await pki.checkCsr(body.csr)
  const csrPem = body.csr as string
  const issued =
    kind === 'identity'
      ? await pki.issueIdentityCert({ csrPem, id: rec.entityId, name: rec.name })
      : await pki.issueRouterCert({
          csrPem,
          id: rec.entityId,
          name: rec.name,
          advertiseHost: parseHostPort(advertise!)!.host,
        })

  let done: { id: string; name: string }
  try {
    done = await ctx.core.completeEnrollment({
      jti: claims.jti,
      kind,
      entityId: rec.entityId,
      certPem: issued.certPem,
      fingerprint: issued.fingerprint,
      certExpiresAt: issued.notAfter,
      ...(advertise !== undefined ? { advertise } : {}),
    })
  } catch (err) {
    // A concurrent enrollment with the same token won the race.
    if (isControllerError(err, 'ERR_ENROLLMENT_USED')) throw usedError(kind, rec.name, null)
    if (isControllerError(err, 'ERR_ENROLLMENT_EXPIRED')) throw expiredError(kind, rec.name, claims.exp)
    throw err
  }
  ctx
    .log('enrollment')
    .info(
      { kind, id: done.id, name: done.name, fingerprint: issued.fingerprint, notAfter: issued.notAfter },
      'enrolled',
    )
  return {
    cert: issued.chainPem,
    ca: pki.caBundlePem,
    id: done.id,
    name: done.name,
    controller: ctx.baseUrl,
    trustDomain: pki.trustDomain,
  }
}

/**
 * Refuses an enrollment from a client address that failed too often within the limiter's window
 * (ERR_RATE_LIMITED with retryAfterSeconds). Called from an onRequest hook: before the body is
 * read or the token verified.
 */
export function checkEnrollRate(limiter: FailureLimiter, clientIp: string): void {
  const wait = limiter.blockedFor(clientIp)
  if (wait > 0) {
    throw new ControllerError(
      'ERR_RATE_LIMITED',
      `too many failed enrollments from ${clientIp}: retry in ${Math.ceil(wait / 1000)} s`,
      { retryAfterSeconds: Math.ceil(wait / 1000) },
    )
  }
}

/**
 * Runs an enrollment counting it as a failure of `clientIp` until it succeeds (so parallel
 * guesses cannot slip past the limit); a success clears the address's count.
 */
export async function limitedEnroll<T>(
  limiter: FailureLimiter,
  clientIp: string,
  run: () => Promise<T>,
): Promise<T> {
  checkEnrollRate(limiter, clientIp)
  limiter.fail(clientIp)
  const r = await run()
  limiter.succeed(clientIp)
  return r
}
