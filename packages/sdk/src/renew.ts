/**
 * Automatic renewal of the identity certificate. Certificates are short-lived (the controller's
 * `identityCertLifetime`, 30 days by default); a context renews its own when a fraction of the
 * lifetime has passed (default 2/3): a new P-256 key, a CSR, `POST /current-identity/renew`
 * authenticated with the current certificate, the answer verified (chain to the network CA, same
 * SPIFFE id, the new key) before it is used. Then new connections (controller, routers, e2e
 * hellos) use the new certificate, live ones continue, and the identity file, when the context was
 * loaded from one, is rewritten atomically (0600). Failures are retried with backoff, never past
 * the expiry; a revoked identity stops retrying.
 */
import {
  Backoff,
  type CertificateInfo,
  certificateInfo,
  checkRenewedCertificate,
  createCsr,
  DEFAULT_RENEW_FRACTION,
  generateKeyPem,
  type IdentityFile,
  LongTimer,
  makeSpiffeId,
  renewAt,
  saveIdentityFile,
} from '@nullport/protocol'
import { SdkError } from './errors.js'

/** `renew` option of loadContext: false disables automatic renewal. */
export type RenewOption = false | { fraction?: number }

// shared with the router (@nullport/protocol pki/renewal.ts)
export { type CertificateInfo, certificateInfo } from '@nullport/protocol'

const RETRY_MIN_MS = 5_000
const RETRY_MAX_MS = 5 * 60_000
/** After a successful renewal the next one is at least this far away (certificates are backdated
 * by the controller, so a small fraction could otherwise fall due again at once). */
const MIN_GAP_MS = 15_000

export function checkRenewOption(o: RenewOption | undefined): false | { fraction: number } {
  if (o === false) return false
  const fraction = o?.fraction ?? DEFAULT_RENEW_FRACTION
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction < 1)) {
    throw new SdkError(
      'ERR_INVALID_OPTION',
      `option renew.fraction must be a number between 0 and 1 (the share of the certificate's lifetime after which it is renewed), got ${String(fraction)}`,
    )
  }
  return { fraction }
}

export interface RenewHost {
  identity: { id: string; name: string }
  trustDomain: string
  caPem: string
  currentCert(): string
  /** Asks the controller for a certificate for `csr`. */
  requestRenewal(csr: string): Promise<{ cert: string; ca: string; notAfter: string }>
  /** Switches to the new certificate and key (in memory). */
  apply(cert: string, keyPem: string): void
  /** The identity file to rewrite, if the context was loaded from one. */
  filePath: string | null
  fileContent(): IdentityFile
  onRenewed(info: CertificateInfo & { previous: string }): void
  onFailed(err: SdkError, retryInMs: number | null): void
}

export class CertRenewer {
  private readonly timer = new LongTimer()
  private running: Promise<CertificateInfo> | null = null
  private readonly backoff = new Backoff({ initialMs: RETRY_MIN_MS, maxMs: RETRY_MAX_MS })
  private stopped = false

  constructor(
    private readonly host: RenewHost,
    private readonly opts: false | { fraction: number },
  ) {}

  /** Arms the timer for the current certificate (no-op when renewal is disabled). */
  start(minDelayMs = 0): void {
    if (this.opts === false || this.stopped) return
    const at = renewAt(certificateInfo(this.host.currentCert()), this.opts.fraction)
    this.arm(Math.max(minDelayMs, at - Date.now()))
  }

  stop(): void {
    this.stopped = true
    this.timer.clear()
  }

  private arm(delayMs: number): void {
    this.timer.arm(Date.now() + delayMs, () => {
      if (this.stopped) return
      this.renew().then(
        () => {
          this.backoff.reset()
          this.start(MIN_GAP_MS)
        },
        (err: SdkError) => this.retry(err),
      )
    })
  }

  private retry(err: SdkError): void {
    if (this.stopped) return
    const revoked = err.code === 'ERR_IDENTITY_REVOKED'
    const left = Date.parse(certificateInfo(this.host.currentCert()).notAfter) - Date.now()
    if (revoked || left <= 0) {
      this.host.onFailed(err, null)
      return
    }
    const wait = Math.min(this.backoff.next(), Math.max(1_000, left / 2))
    this.host.onFailed(err, wait)
    this.arm(wait)
  }

  /** Renews now (one at a time: a second call while one runs gets the same result). */
  renew(): Promise<CertificateInfo> {
    this.running ??= this.renewOnce().finally(() => {
      this.running = null
    })
    const p = this.running
    // an on-demand renewal re-arms the schedule for the new certificate
    p.then(
      () => {
        if (!this.stopped && this.timer.armed) this.start(MIN_GAP_MS)
      },
      () => undefined,
    )
    return p
  }

  private async renewOnce(): Promise<CertificateInfo> {
    const h = this.host
    const previous = certificateInfo(h.currentCert()).fingerprint
    const keyPem = await generateKeyPem()
    const csr = await createCsr({ keyPem, commonName: h.identity.name })
    let answer: { cert: string; ca: string; notAfter: string }
    try {
      answer = await h.requestRenewal(csr)
    } catch (err) {
      if (err instanceof SdkError && err.code === 'ERR_IDENTITY_REVOKED') throw err
      throw new SdkError(
        'ERR_RENEW_FAILED',
        `renewing the certificate of ${h.identity.name} failed: ${(err as Error).message}`,
        { remoteCode: (err as SdkError).details?.remoteCode },
        { cause: err },
      )
    }
    // Never switch to a certificate that is not ours: chain (to the CA we already trust),
    // identity and key are checked.
    try {
      checkRenewedCertificate({
        chainPem: answer.cert,
        rootsPem: h.caPem,
        keyPem,
        spiffeId: makeSpiffeId(h.trustDomain, 'identity', h.identity.id),
        usages: ['client'],
      })
    } catch (err) {
      throw new SdkError(
        'ERR_RENEW_FAILED',
        `the controller answered the renewal of ${h.identity.name} with an unusable certificate: ${(err as Error).message}`,
        {},
        { cause: err },
      )
    }
    const cert = answer.cert.endsWith('\n') ? answer.cert : `${answer.cert}\n`
    if (h.filePath) {
      // The file first: if it cannot be written, keep running on the old certificate (which is
      // still valid) rather than hold a certificate that a restart would lose.
      try {
        await saveIdentityFile(h.filePath, { ...h.fileContent(), cert, key: keyPem })
      } catch (err) {
        throw new SdkError(
          'ERR_RENEW_FAILED',
          `the renewed certificate of ${h.identity.name} could not be saved to ${h.filePath}: ${(err as Error).message}`,
          { path: h.filePath },
          { cause: err },
        )
      }
    }
    h.apply(cert, keyPem)
    const info = certificateInfo(cert)
    h.onRenewed({ ...info, previous })
    return info
  }
}
