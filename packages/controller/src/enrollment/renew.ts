/**
 * Certificate renewal: `POST /edge/client/v1/current-identity/renew {csr}` (identities) and
 * `POST /fabric/v1/renew {csr}` (edge routers). The caller authenticates with its current,
 * still valid certificate (mTLS, checked by authenticatePeer before the body is read); it gets a
 * new certificate for a new key, with a full lifetime. The certificate it renewed with stays
 * valid until it expires (live connections keep working), so does the newest other unexpired
 * one; expired and older ones are removed in the same transaction (core addCertificate), so an
 * entity holds at most three. Routers learn the new fingerprint through the usual push (and close
 * connections made with a removed one). One renewal per entity per RENEW_MIN_INTERVAL_MS.
 */
import type { ControllerContext } from '../core/context.js'
import { ControllerError } from '../errors.js'
import { type NetworkPki, parseHostPort } from '../pki/network-pki.js'
import type { PeerIdentity } from '../pki/peer-auth.js'

export const RENEW_MIN_INTERVAL_MS = 10_000
const RENEW_TRACKED_MAX = 100_000

export interface RenewResponse {
  /** PEM: the new leaf followed by the issuing intermediate. */
  cert: string
  /** PEM: the network CA bundle (root, intermediate). */
  ca: string
  /** ISO time the new certificate expires. */
  notAfter: string
}

export class RenewLimiter {
  private readonly last = new Map<string, number>()
  constructor(private readonly minIntervalMs = RENEW_MIN_INTERVAL_MS) {}

  /** Throws ERR_RATE_LIMITED when `key` renewed less than minIntervalMs ago; records this attempt. */
  take(key: string, now = Date.now()): void {
    const at = this.last.get(key)
    if (at !== undefined && now - at < this.minIntervalMs) {
      const wait = Math.ceil((this.minIntervalMs - (now - at)) / 1000)
      throw new ControllerError('ERR_RATE_LIMITED', `certificate renewed moments ago: retry in ${wait} s`, {
        retryAfterSeconds: wait,
      })
    }
    if (this.last.size >= RENEW_TRACKED_MAX) {
      for (const [k, t] of this.last) if (now - t >= this.minIntervalMs) this.last.delete(k)
      if (this.last.size >= RENEW_TRACKED_MAX) this.last.delete(this.last.keys().next().value as string)
    }
    this.last.set(key, now)
  }
}

export async function renewCertificate(
  ctx: ControllerContext,
  pki: NetworkPki,
  limiter: RenewLimiter,
  peer: PeerIdentity,
  body: { csr: unknown },
): Promise<RenewResponse> {
  limiter.take(`${peer.kind}:${peer.id}`)
  await pki.checkCsr(body.csr)
  const csrPem = body.csr as string
  let issued: Awaited<ReturnType<NetworkPki['issueIdentityCert']>>
  if (peer.kind === 'identity') {
    issued = await pki.issueIdentityCert({ csrPem, id: peer.id, name: peer.name })
  } else {
    const advertise = ctx.policy.router(peer.id)?.advertise
    const hp = advertise ? parseHostPort(advertise) : null
    if (!hp) {
      throw new ControllerError(
        'ERR_VALIDATION',
        `edge router ${peer.name} has no advertised address: re-enroll it (nullport edge re-enroll edge-router ${peer.name})`,
        { field: 'advertise' },
      )
    }
    issued = await pki.issueRouterCert({ csrPem, id: peer.id, name: peer.name, advertiseHost: hp.host })
  }
  await ctx.core.addCertificate({
    kind: peer.kind,
    entityId: peer.id,
    certPem: issued.certPem,
    fingerprint: issued.fingerprint,
    certExpiresAt: issued.notAfter,
    renewedWith: peer.fingerprint,
  })
  ctx.log('enrollment').info(
    {
      kind: peer.kind,
      id: peer.id,
      name: peer.name,
      fingerprint: issued.fingerprint,
      notAfter: issued.notAfter,
      previous: peer.fingerprint,
    },
    'certificate renewed',
  )
  return { cert: issued.chainPem, ca: pki.caBundlePem, notAfter: issued.notAfter }
}
