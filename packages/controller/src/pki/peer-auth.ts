/**
 * Application-layer client-certificate authentication for the client and fabric APIs. The HTTPS
 * server requests client certificates but does not reject connections without one (the management
 * API uses passwords), so every client/fabric request checks here: chain to the network root,
 * SPIFFE kind, and the fingerprint among the entity's current certificates (revocation by
 * re-enrollment or deletion takes effect at once).
 */
import type { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import type { PolicyIndex } from '@nullport/protocol'
import type { FastifyRequest } from 'fastify'
import { ControllerError } from '../errors.js'
import type { NetworkPki } from './network-pki.js'

export interface PeerIdentity {
  kind: 'identity' | 'router'
  id: string
  name: string
  fingerprint: string
}

/** The leaf certificate the TLS peer presented, if any. */
export function peerCertificate(req: FastifyRequest): X509Certificate | undefined {
  const sock = req.raw.socket as TLSSocket
  if (!sock || typeof sock.getPeerX509Certificate !== 'function') return undefined
  return sock.getPeerX509Certificate() ?? undefined
}

/**
 * Authenticates the request's client certificate as an identity or a router. Throws
 * ERR_CERT_REQUIRED, ERR_CERT_INVALID, ERR_CERT_WRONG_KIND, ERR_CERT_REVOKED,
 * ERR_IDENTITY_DISABLED / ERR_ROUTER_DISABLED.
 */
export function authenticatePeer(
  req: FastifyRequest,
  pki: NetworkPki,
  policy: PolicyIndex,
  kind: 'identity' | 'router',
): PeerIdentity {
  const peer = pki.verifyPeer(peerCertificate(req), kind)
  const entity = kind === 'identity' ? policy.identity(peer.id) : policy.router(peer.id)
  const label = kind === 'identity' ? 'identity' : 'edge router'
  if (!entity) {
    throw new ControllerError(
      'ERR_CERT_REVOKED',
      `the ${label} ${peer.commonName ?? peer.id} no longer exists: its certificate is not valid`,
      {
        kind,
        id: peer.id,
      },
    )
  }
  if (!entity.certFingerprints?.includes(peer.fingerprint)) {
    throw new ControllerError(
      'ERR_CERT_REVOKED',
      `this certificate of ${label} ${entity.name} was revoked (re-enrolled): enroll again with the new token (\`nullport ${kind === 'identity' ? 'edge enroll' : 'router enroll'} ${entity.name}.jwt\`)`,
      { kind, id: entity.id, fingerprint: peer.fingerprint },
    )
  }
  if (entity.disabled) {
    throw new ControllerError(
      kind === 'identity' ? 'ERR_IDENTITY_DISABLED' : 'ERR_ROUTER_DISABLED',
      `${label} ${entity.name} is disabled`,
      {
        id: entity.id,
      },
    )
  }
  return { kind, id: entity.id, name: entity.name, fingerprint: peer.fingerprint }
}
