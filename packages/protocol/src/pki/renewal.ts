/**
 * What certificate renewal needs on both sides of the data plane (SDK identities and edge
 * routers): the validity of the certificate in use, when to renew it, a timer for far-off times,
 * and the check of a renewed certificate before it replaces the current one.
 */
import { createPublicKey, X509Certificate } from 'node:crypto'
import { ProtocolError } from '../errors.js'
import { fingerprintSha256 } from './cert-ids.js'
import { publicKeyPemOf } from './keys.js'
import { splitPem } from './pem.js'
import { verifyChain } from './verify.js'

/** Fingerprint and validity of a certificate (the leaf of a chain). */
export interface CertificateInfo {
  /** Lower-case hex SHA-256 of the leaf's DER. */
  fingerprint: string
  /** ISO times. */
  notBefore: string
  notAfter: string
}

export const DEFAULT_RENEW_FRACTION = 2 / 3
/** setTimeout's largest delay; LongTimer re-arms for longer waits. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** Fingerprint and validity of the first certificate of a PEM chain. Throws ERR_PKI_INVALID_INPUT. */
export function certificateInfo(chainPem: string): CertificateInfo {
  const leaf = new X509Certificate(splitPem(chainPem)[0] ?? '')
  return {
    fingerprint: fingerprintSha256(chainPem),
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: new Date(leaf.validTo).toISOString(),
  }
}

/** When (epoch ms) a certificate is due for renewal: once `fraction` of notBefore..notAfter passed. */
export function renewAt(info: CertificateInfo, fraction: number): number {
  const from = Date.parse(info.notBefore)
  const to = Date.parse(info.notAfter)
  return from + Math.max(0, to - from) * fraction
}

/** A timer for an absolute time, re-armed in steps of at most MAX_TIMER_MS; unref'd. */
export class LongTimer {
  private timer: NodeJS.Timeout | null = null

  /** Runs `fn` at `atMs` (epoch ms); replaces any earlier arming. */
  arm(atMs: number, fn: () => void): void {
    this.clear()
    const step = (): void => {
      const left = atMs - Date.now()
      if (left > 0) {
        this.timer = setTimeout(step, Math.min(left, MAX_TIMER_MS))
        this.timer.unref()
        return
      }
      this.timer = null
      fn()
    }
    this.timer = setTimeout(step, Math.max(0, Math.min(atMs - Date.now(), MAX_TIMER_MS)))
    this.timer.unref()
  }

  get armed(): boolean {
    return this.timer !== null
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }
}

/**
 * Checks a renewed certificate before use: the chain verifies against `rootsPem` (the CA bundle
 * the holder already trusts, never one sent with the answer) for every usage in `usages`, the
 * leaf names `spiffeId`, and it certifies the public key of `keyPem` (the key made for the CSR).
 * Returns the new certificate's info; throws ProtocolError ERR_PKI_CHAIN naming what is wrong.
 */
export function checkRenewedCertificate(o: {
  chainPem: string
  rootsPem: string
  keyPem: string
  spiffeId: string
  usages: Array<'client' | 'server'>
}): CertificateInfo {
  const bad = (why: string, cause?: unknown): never => {
    throw new ProtocolError(
      'ERR_PKI_CHAIN',
      `the renewed certificate is unusable: ${why}`,
      {},
      cause === undefined ? undefined : { cause },
    )
  }
  if (typeof o.chainPem !== 'string') bad('no certificate PEM text')
  let leaf: X509Certificate | undefined
  let spiffeId: string | null = null
  try {
    for (const usage of o.usages.length > 0 ? o.usages : [undefined]) {
      const v = verifyChain({ chainPem: o.chainPem, rootsPem: o.rootsPem, ...(usage ? { usage } : {}) })
      leaf = v.leaf
      spiffeId = v.spiffeId
    }
  } catch (err) {
    bad((err as Error).message, err)
  }
  if (spiffeId !== o.spiffeId) bad(`it names ${spiffeId ?? 'no SPIFFE id'}, expected ${o.spiffeId}`)
  const leafKey = leaf!.publicKey.export({ type: 'spki', format: 'der' })
  const ownKey = createPublicKey(publicKeyPemOf(o.keyPem)).export({ type: 'spki', format: 'der' })
  if (!leafKey.equals(ownKey)) bad('it does not certify the key of the CSR')
  return certificateInfo(o.chainPem)
}
