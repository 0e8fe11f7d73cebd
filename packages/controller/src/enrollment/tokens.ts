/**
 * Enrollment tokens: one-time ES256 JWTs signed by the controller's signing key (docs/architecture.md,
 * "Enrollment tokens"). This module only signs and verifies; single use is enforced by the store.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import {
  calculateJwkThumbprint,
  decodeJwt,
  exportJWK,
  type JWK,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from 'jose'
import { ControllerError } from '../errors.js'
import type { NetworkPki } from '../pki/network-pki.js'

export type EnrollmentMethod = 'ott' | 'erott'
export type EnrolledKind = 'identity' | 'router'

export interface EnrollmentClaims {
  iss: string
  sub: string
  jti: string
  iat: number
  exp: number
  em: EnrollmentMethod
  name: string
  td: string
  caFp: string
}

export const methodFor = (kind: EnrolledKind): EnrollmentMethod => (kind === 'identity' ? 'ott' : 'erott')

/** The command that issues a fresh token, for error messages. */
export function reenrollHint(kind: EnrolledKind, name: string): string {
  const safe = /^[A-Za-z0-9._-]+$/.test(name) ? name : JSON.stringify(name)
  const file = `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.jwt`
  return kind === 'identity'
    ? `nullport edge re-enroll identity ${safe} -o ${file}`
    : `nullport edge re-enroll edge-router ${safe} -o ${file}`
}

function clock(at: Date): string {
  const iso = at.toISOString()
  const sameDay = iso.slice(0, 10) === new Date().toISOString().slice(0, 10)
  return sameDay ? iso.slice(11, 16) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`
}

export function expiredError(kind: EnrolledKind, name: string, exp: number): ControllerError {
  const at = new Date(exp * 1000)
  return new ControllerError(
    'ERR_ENROLLMENT_EXPIRED',
    `enrollment token for ${name} expired at ${clock(at)}: issue a new one with \`${reenrollHint(kind, name)}\``,
    { name, kind, expiredAt: at.toISOString(), fix: reenrollHint(kind, name) },
  )
}

function invalid(why: string, cause?: unknown): ControllerError {
  return new ControllerError(
    'ERR_ENROLLMENT_INVALID',
    `the enrollment token is not valid (${why}): use the token exactly as issued, or issue a new one with \`nullport edge re-enroll identity|edge-router NAME\``,
    {},
    cause === undefined ? undefined : { cause },
  )
}

export class EnrollmentSigner {
  private constructor(
    private readonly key: ReturnType<typeof createPrivateKey>,
    private readonly publicKey: ReturnType<typeof createPublicKey>,
    readonly kid: string,
    private readonly jwk: JWK,
    private readonly issuer: () => string,
    private readonly trustDomain: string,
    private readonly caFp: string,
  ) {}

  /** `issuer` gives the controller base URL at signing time (known once the server listens). */
  static async create(pki: NetworkPki, issuer: () => string): Promise<EnrollmentSigner> {
    const key = createPrivateKey(pki.signingKeyPem)
    const publicKey = createPublicKey(key)
    const jwk = await exportJWK(publicKey)
    const kid = await calculateJwkThumbprint(jwk, 'sha256')
    const certDer = new X509Certificate(pki.signingCertPem).raw.toString('base64')
    const interDer = new X509Certificate(pki.intermediateCertPem).raw.toString('base64')
    const full: JWK = { ...jwk, kid, alg: 'ES256', use: 'sig', x5c: [certDer, interDer] }
    return new EnrollmentSigner(key, publicKey, kid, full, issuer, pki.trustDomain, pki.rootFingerprint)
  }

  /** `{keys: [...]}` for /.well-known/jwks.json. */
  jwks(): { keys: JWK[] } {
    return { keys: [this.jwk] }
  }

  async sign(o: {
    kind: EnrolledKind
    sub: string
    jti: string
    name: string
    expiresAt: Date
  }): Promise<string> {
    return new SignJWT({ em: methodFor(o.kind), name: o.name, td: this.trustDomain, caFp: this.caFp })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer().replace(/\/+$/, ''))
      .setSubject(o.sub)
      .setJti(o.jti)
      .setIssuedAt()
      .setExpirationTime(Math.floor(o.expiresAt.getTime() / 1000))
      .sign(this.key)
  }

  /**
   * Verifies signature, algorithm, `em` and expiry. Throws ERR_ENROLLMENT_INVALID or
   * ERR_ENROLLMENT_EXPIRED (with the command that issues a new token).
   */
  async verify(token: unknown, expected: EnrollmentMethod): Promise<EnrollmentClaims> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192)
      throw invalid('"token" must be the JWT string')
    let payload: Record<string, unknown>
    try {
      const r = await jwtVerify(token, this.publicKey, { algorithms: ['ES256'], clockTolerance: 0 })
      payload = r.payload as Record<string, unknown>
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) {
        // The signature was verified before the expiry check, so the claims are trustworthy.
        const p = err.payload as Record<string, unknown>
        const kind: EnrolledKind = p.em === 'erott' ? 'router' : 'identity'
        throw expiredError(
          kind,
          typeof p.name === 'string' ? p.name : String(p.sub ?? 'unknown'),
          Number(p.exp),
        )
      }
      if (err instanceof joseErrors.JWSSignatureVerificationFailed)
        throw invalid('signature does not verify', err)
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw invalid('algorithm must be ES256', err)
      throw invalid((err as Error).message, err)
    }
    const { sub, jti, em, name, iat, exp, iss, td, caFp } = payload
    if (
      typeof sub !== 'string' ||
      typeof jti !== 'string' ||
      typeof name !== 'string' ||
      typeof exp !== 'number'
    ) {
      throw invalid('claims sub, jti, name and exp are required')
    }
    if (em !== expected) {
      throw invalid(
        expected === 'ott'
          ? 'this is an edge-router token: enroll it with `nullport router enroll`'
          : 'this is an identity token: enroll it with `nullport edge enroll`',
      )
    }
    if (td !== this.trustDomain)
      throw invalid(`trust domain "${String(td)}" is not this network's "${this.trustDomain}"`)
    return {
      iss: String(iss ?? ''),
      sub,
      jti,
      iat: Number(iat ?? 0),
      exp,
      em: expected,
      name,
      td: this.trustDomain,
      caFp: String(caFp ?? ''),
    }
  }
}

/** Decodes without verifying (logging only). */
export function peekClaims(token: string): Partial<EnrollmentClaims> | null {
  try {
    return decodeJwt(token) as Partial<EnrollmentClaims>
  } catch {
    return null
  }
}
