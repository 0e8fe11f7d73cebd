/**
 * The one certificate check of the router. Every peer, whichever side opened the TLS connection
 * (an SDK or a router dialing in, this router dialing a link out), and every connected peer
 * again after each policy change, passes `checkCertificate`: the SPIFFE id of its certificate
 * names an identity (SDK) or router that exists in the policy data, is enabled, and lists the
 * certificate's fingerprint among its current ones (re-enrollment and deletion revoke at once).
 */
import type { X509Certificate } from 'node:crypto'
import { certFingerprint, type PolicyIndex, spiffeIdFromSan, withFixHint } from '@nullport/protocol'
import type { RouterWireCode } from '../errors.js'
import type { Peer, PeerKind } from './peer.js'

/** Who a peer certificate names. */
export interface CertSubject {
  kind: PeerKind
  /** Identity id (kind `sdk`) or router id. */
  id: string
  /** Lower-case hex SHA-256 of the certificate's DER ('' when unknown). */
  fingerprint: string
}

export type CertCheck = { ok: true; name: string } | { ok: false; code: RouterWireCode; message: string }

/**
 * Checks `subject` against the policy data. `connectedAs` is null while a connection is being
 * accepted (messages then name the entity by its id, and the fix), else the name the peer
 * connected with (messages say what happened to it since). Resolves to the entity's name.
 */
export function checkCertificate(
  idx: PolicyIndex,
  subject: CertSubject,
  connectedAs: string | null,
): CertCheck {
  const sdk = subject.kind === 'sdk'
  const entity = sdk ? idx.identity(subject.id) : idx.router(subject.id)
  if (!entity) {
    const code = sdk ? 'ERR_IDENTITY_NOT_FOUND' : 'ERR_ROUTER_NOT_FOUND'
    if (connectedAs !== null)
      return refused(code, `${sdk ? 'identity' : 'router'} ${connectedAs} was deleted`)
    return refused(
      code,
      sdk
        ? `identity ${subject.id} does not exist (deleted?): enroll a new identity`
        : `router ${subject.id} does not exist`,
    )
  }
  const what = `${sdk ? 'identity' : 'router'} ${connectedAs ?? entity.name}`
  if (entity.disabled) {
    const code = sdk ? 'ERR_IDENTITY_DISABLED' : 'ERR_ROUTER_DISABLED'
    if (connectedAs !== null) return refused(code, `${what} was disabled`)
    return refused(code, sdk ? withFixHint(code, `${what} is disabled`) : `${what} is disabled`)
  }
  if (!subject.fingerprint || !entity.certFingerprints?.includes(subject.fingerprint)) {
    const why = sdk
      ? 'was revoked (re-enrolled): use the new identity file'
      : connectedAs === null
        ? 'was revoked (re-enrolled)'
        : 'was revoked'
    return refused('ERR_CERT_REVOKED', `the certificate of ${what} ${why}`)
  }
  return { ok: true, name: entity.name }
}

/** `checkCertificate` for a connected peer (or an outbound link whose certificate was just presented). */
export function checkPeer(idx: PolicyIndex, peer: Peer): CertCheck {
  return checkCertificate(
    idx,
    { kind: peer.kind, id: peer.entityId, fingerprint: peer.fingerprint },
    peer.name,
  )
}

function refused(code: RouterWireCode, message: string): CertCheck {
  return { ok: false, code, message }
}

/**
 * The subject of a peer certificate: the first `spiffe://<trustDomain>/identity|router/<id>` URI
 * SAN and the fingerprint; null when the certificate names neither.
 */
export function certificateSubject(cert: X509Certificate, trustDomain: string): CertSubject | null {
  const s = spiffeIdFromSan(cert.subjectAltName, trustDomain)
  if (!s || (s.kind !== 'identity' && s.kind !== 'router')) return null
  return { kind: s.kind === 'identity' ? 'sdk' : 'router', id: s.id, fingerprint: certFingerprint(cert) }
}
