/**
 * Certificate renewal of the edge router. The controller issues short-lived certificates; the
 * router renews its own before it expires: after `fraction` of notBefore..notAfter has elapsed
 * (default 2/3) it makes a new ECDSA P-256 key and a CSR, sends it to `POST /fabric/v1/renew`
 * (mTLS with the current certificate), verifies the answer (chain to the returned CA bundle,
 * the router's SPIFFE id, the new key) and hands the new credentials to `apply` (the router
 * switches its listener, fabric client and link dialer, and rewrites the identity file).
 *
 * Failures are retried with backoff (5 s doubling to 5 min by default, never later than the
 * expiry); ERR_CERT_REVOKED stops renewing. A certificate that expires unrenewed is logged as an
 * error.
 */
import {
  Backoff,
  type CertificateInfo,
  certificateInfo,
  checkRenewedCertificate,
  createCsr,
  DEFAULT_RENEW_FRACTION,
  generateKeyPem,
  LongTimer,
  makeSpiffeId,
  renewAt,
} from '@nullport/protocol'
import type { Logger } from 'pino'
import { RouterError } from './errors.js'

/** `startRouter({ renew })`: `false` disables automatic renewal (on-demand renewal still works). */
export interface RenewOptions {
  /** Renew once this fraction of the certificate's validity (notBefore..notAfter) has elapsed. In (0, 1). Default 2/3. */
  fraction?: number
  /** First retry delay after a failed renewal. Default 5000 ms (doubling, jittered). */
  retryBaseMs?: number
  /** Largest retry delay. Default 300000 ms. */
  retryMaxMs?: number
}

// shared with the SDK (@nullport/protocol pki/renewal.ts); re-exported for the router's API
export { type CertificateInfo, LongTimer, MAX_TIMER_MS, renewAt } from '@nullport/protocol'

/** What the controller answers to `POST /fabric/v1/renew`. */
export interface RenewAnswer {
  cert: string
  ca: string
  notAfter: string
}

export interface Credentials {
  /** PEM: leaf + intermediate. */
  cert: string
  /** PEM PKCS#8. */
  key: string
  /** PEM CA bundle. */
  ca: string
}

export interface CertRenewerDeps {
  log: Logger
  trustDomain: string
  routerId: string
  /** The credentials in use now. */
  current(): Credentials
  /** Sends the CSR (POST /fabric/v1/renew). */
  request(csrPem: string): Promise<RenewAnswer>
  /** Switches to (and persists) verified new credentials. */
  apply(next: Credentials, info: CertificateInfo): Promise<void>
}

/** A scheduled renewal never runs sooner than this after the previous successful one (the controller refuses renewals 10 s apart). */
const MIN_RENEW_GAP_MS = 15_000

/** Validates `startRouter({ renew })`; throws ERR_ROUTER_CONFIG naming the field. */
export function resolveRenewOptions(
  v: false | RenewOptions | undefined,
): { fraction: number; retryBaseMs: number; retryMaxMs: number } | false {
  if (v === false) return false
  if (v !== undefined && (typeof v !== 'object' || v === null)) {
    throw new RouterError(
      'ERR_ROUTER_CONFIG',
      'router option "renew" must be false or { fraction?: number }',
      {
        field: 'renew',
      },
    )
  }
  const fraction = v?.fraction ?? DEFAULT_RENEW_FRACTION
  if (typeof fraction !== 'number' || !Number.isFinite(fraction) || fraction <= 0 || fraction >= 1) {
    throw new RouterError(
      'ERR_ROUTER_CONFIG',
      `router option "renew.fraction" must be a number between 0 and 1 (exclusive), e.g. 0.66, got ${String(fraction)}`,
      { field: 'renew.fraction' },
    )
  }
  const ms = (x: number | undefined, d: number, field: string): number => {
    const n = x ?? d
    if (!Number.isInteger(n) || n <= 0)
      throw new RouterError(
        'ERR_ROUTER_CONFIG',
        `router option "${field}" must be a positive integer (ms), got ${n}`,
        {
          field,
        },
      )
    return n
  }
  const retryBaseMs = ms(v?.retryBaseMs, 5000, 'renew.retryBaseMs')
  const retryMaxMs = ms(v?.retryMaxMs, 300_000, 'renew.retryMaxMs')
  if (retryMaxMs < retryBaseMs)
    throw new RouterError(
      'ERR_ROUTER_CONFIG',
      'router option "renew.retryMaxMs" must be >= renew.retryBaseMs',
      {
        field: 'renew.retryMaxMs',
      },
    )
  return { fraction, retryBaseMs, retryMaxMs }
}

/** The controller's API code of a failed renewal (or the router's own code). */
export function renewErrorCode(err: unknown): string {
  if (err instanceof RouterError) {
    const api = err.details.apiCode
    return typeof api === 'string' && api.length > 0 ? api : err.code
  }
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : 'ERR_ROUTER_INTERNAL'
}

/**
 * Verifies the controller's answer for `keyPem` against `trustedCaPem`, the CA bundle the router
 * already trusts (never the one sent with the answer): the chain verifies for client and server
 * use, the leaf names `spiffe://<td>/router/<id>` and carries the new key. Throws
 * ERR_ROUTER_CERT_RENEWAL.
 */
export function verifyRenewal(
  answer: RenewAnswer,
  keyPem: string,
  trustDomain: string,
  routerId: string,
  trustedCaPem: string,
): CertificateInfo {
  try {
    if (typeof answer?.cert !== 'string') throw new Error('the answer has no "cert" PEM text')
    return checkRenewedCertificate({
      chainPem: answer.cert,
      rootsPem: trustedCaPem,
      keyPem,
      spiffeId: makeSpiffeId(trustDomain, 'router', routerId),
      usages: ['client', 'server'],
    })
  } catch (err) {
    throw new RouterError(
      'ERR_ROUTER_CERT_RENEWAL',
      `the controller's renewed certificate is unusable (kept the current one): ${(err as Error).message}`,
      {},
      { cause: err },
    )
  }
}

/** Schedules and performs renewals. */
export class CertRenewer {
  private readonly deps: CertRenewerDeps
  private readonly opts: { fraction: number; retryBaseMs: number; retryMaxMs: number } | false
  private readonly timer = new LongTimer()
  private readonly expiryTimer = new LongTimer()
  private readonly backoff: Backoff
  private infoNow: CertificateInfo
  private inFlight: Promise<CertificateInfo> | null = null
  private stopped = false
  /** Renewal given up (certificate revoked). */
  private gaveUp = false
  private lastRenewedAt = 0

  constructor(
    deps: CertRenewerDeps,
    opts: { fraction: number; retryBaseMs: number; retryMaxMs: number } | false,
  ) {
    this.deps = deps
    this.opts = opts
    this.infoNow = certificateInfo(deps.current().cert)
    this.backoff = opts
      ? new Backoff({ initialMs: opts.retryBaseMs, maxMs: opts.retryMaxMs })
      : new Backoff({ initialMs: 5000, maxMs: 300_000 })
  }

  info(): CertificateInfo {
    return { ...this.infoNow }
  }

  /** Arms the schedule (no-op when automatic renewal is disabled). */
  start(): void {
    this.armExpiry()
    if (!this.opts) {
      this.deps.log.info({ notAfter: this.infoNow.notAfter }, 'automatic certificate renewal disabled')
      return
    }
    this.schedule()
  }

  stop(): void {
    this.stopped = true
    this.timer.clear()
    this.expiryTimer.clear()
  }

  /** Renews now (shares a renewal already under way). Rejects with the failure; the current certificate stays in use. */
  renewNow(): Promise<CertificateInfo> {
    const old = this.infoNow
    return this.shared().catch((err: unknown) => {
      if (!this.stopped)
        this.deps.log.warn(
          {
            code: renewErrorCode(err),
            err: (err as Error).message,
            fingerprint: old.fingerprint,
            notAfter: old.notAfter,
          },
          'certificate renewal failed; the current certificate stays in use',
        )
      throw err
    })
  }

  /** One renewal at a time: callers during a renewal share it. */
  private shared(): Promise<CertificateInfo> {
    if (this.stopped) return Promise.reject(new RouterError('ERR_ROUTER_STOPPED', 'the router is stopped'))
    if (!this.inFlight) {
      this.inFlight = this.renewOnce().finally(() => {
        this.inFlight = null
      })
    }
    return this.inFlight
  }

  private schedule(): void {
    if (!this.opts || this.stopped || this.gaveUp) return
    const at = Math.max(renewAt(this.infoNow, this.opts.fraction), this.lastRenewedAt + MIN_RENEW_GAP_MS)
    this.deps.log.debug(
      { renewAt: new Date(at).toISOString(), notAfter: this.infoNow.notAfter },
      'certificate renewal scheduled',
    )
    this.timer.arm(at, () => void this.runScheduled())
  }

  private async runScheduled(): Promise<void> {
    if (this.stopped || !this.opts) return
    try {
      await this.shared()
    } catch (err) {
      if (this.stopped) return
      const code = renewErrorCode(err)
      const notAfter = Date.parse(this.infoNow.notAfter)
      const left = notAfter - Date.now()
      if (code === 'ERR_CERT_REVOKED') {
        this.gaveUp = true
        this.deps.log.error(
          { code, err: (err as Error).message, notAfter: this.infoNow.notAfter },
          'certificate renewal refused: the router certificate is revoked; not retrying (re-enroll the router: nullport edge re-enroll edge-router NAME)',
        )
        return
      }
      if (left <= 0) {
        this.gaveUp = true
        this.deps.log.error(
          { code, err: (err as Error).message, notAfter: this.infoNow.notAfter },
          'certificate renewal failed and the router certificate has expired: re-enroll the router (nullport edge re-enroll edge-router NAME)',
        )
        return
      }
      // Never later than the expiry: the last attempt runs a moment before notAfter.
      const delay = Math.max(250, Math.min(this.backoff.next(), left - 1000))
      const total = notAfter - Date.parse(this.infoNow.notBefore)
      const soon = left < Math.min(3_600_000, total * 0.1)
      const fields = {
        code,
        err: (err as Error).message,
        retryInMs: delay,
        notAfter: this.infoNow.notAfter,
        expiresInSeconds: Math.floor(left / 1000),
      }
      if (soon)
        this.deps.log.error(
          fields,
          'certificate renewal failed and the router certificate expires soon; the current certificate stays in use, retrying',
        )
      else
        this.deps.log.warn(
          fields,
          'certificate renewal failed; the current certificate stays in use, retrying',
        )
      this.timer.arm(Date.now() + delay, () => void this.runScheduled())
    }
  }

  private armExpiry(): void {
    const notAfter = Date.parse(this.infoNow.notAfter)
    this.expiryTimer.arm(notAfter, () => {
      if (this.stopped || Date.parse(this.infoNow.notAfter) > Date.now()) return
      this.deps.log.error(
        { fingerprint: this.infoNow.fingerprint, notAfter: this.infoNow.notAfter },
        'the router certificate expired unrenewed: SDKs and routers refuse it; re-enroll the router (nullport edge re-enroll edge-router NAME)',
      )
    })
  }

  private async renewOnce(): Promise<CertificateInfo> {
    const old = this.infoNow
    const key = await generateKeyPem()
    const csr = await createCsr({
      keyPem: key,
      commonName: this.deps.routerId,
      uris: [makeSpiffeId(this.deps.trustDomain, 'router', this.deps.routerId)],
    })
    const answer = await this.deps.request(csr)
    const trusted = this.deps.current().ca
    const info = verifyRenewal(answer, key, this.deps.trustDomain, this.deps.routerId, trusted)
    if (this.stopped)
      throw new RouterError('ERR_ROUTER_STOPPED', 'the router stopped during certificate renewal')
    // the trust anchors stay the ones the router enrolled with
    await this.deps.apply({ cert: answer.cert, key, ca: trusted }, info)
    this.infoNow = info
    this.lastRenewedAt = Date.now()
    this.gaveUp = false
    this.armExpiry()
    // The next renewal follows the new certificate (also after an on-demand renewal).
    this.backoff.reset()
    this.schedule()
    this.deps.log.info(
      {
        oldFingerprint: old.fingerprint,
        newFingerprint: info.fingerprint,
        notAfter: info.notAfter,
        previousNotAfter: old.notAfter,
      },
      'certificate renewed',
    )
    return { ...info }
  }
}
