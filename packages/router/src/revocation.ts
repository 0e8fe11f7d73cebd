/**
 * Revocation: after every policy snapshot or change, every connection, terminator and circuit is
 * checked again against the current policy data. A connection whose certificate, identity or
 * router is no longer valid is closed (GOAWAY); a terminator that lost its Bind permission is
 * unbound (UNBIND {ERR_REVOKED}) with its circuits; a circuit whose dialer, host, service or
 * policies went is closed (CLOSE {ERR_REVOKED}).
 */
import { type Forwarder, isIngress } from './circuits/forwarder.js'
import { checkPeer } from './connections/certificate-check.js'
import type { RouterState } from './state.js'
import type { Terminators } from './terminators/terminators.js'

type Authz = { ok: boolean; code?: string; message?: string }

export class Revocation {
  constructor(
    private readonly state: RouterState,
    private readonly terminators: Terminators,
    private readonly forwarder: Forwarder,
  ) {}

  /** Re-checks every connection, terminator and circuit against the current policy data. */
  recheck(): void {
    const s = this.state
    if (!s.index || s.stopping) return
    const idx = s.index
    const memo = new Map<string, Authz>()
    const authz = (identityId: string, serviceId: string, type: 'Dial' | 'Bind'): Authz => {
      const k = `${type}|${identityId}|${serviceId}`
      let r = memo.get(k)
      if (!r) {
        r = idx.authorize(identityId, serviceId, type, s.id)
        memo.set(k, r)
      }
      return r
    }
    for (const peer of [...s.peers]) {
      if (peer.state === 'auth' || peer.state === 'closed') continue
      const v = checkPeer(idx, peer)
      if (!v.ok) peer.refuse(v.code, v.message)
    }
    for (const t of [...s.terminators.values()]) {
      const r = authz(t.identityId, t.serviceId, 'Bind')
      if (r.ok) continue
      const msg = `Bind permission revoked (${r.code}): ${r.message ?? ''}`.slice(0, 1024)
      s.log.info({ code: 'ERR_REVOKED', reason: r.code, terminator: t.id }, 'terminator revoked')
      this.terminators.revoke(t, msg)
      for (const c of [...s.table.all()])
        if (c.meta.terminatorId === t.id) this.forwarder.abort(c, 'ERR_REVOKED', msg)
    }
    for (const c of [...s.table.all()]) {
      if (c.state === 'closed') continue
      const m = c.meta
      const dialer = idx.identity(m.dialerId)
      if (!dialer || dialer.disabled) {
        this.forwarder.abort(
          c,
          'ERR_REVOKED',
          `the dialing identity ${m.dialerName} was ${dialer ? 'disabled' : 'deleted'}`,
        )
        continue
      }
      const host = idx.identity(m.hostIdentityId)
      if (!host || host.disabled) {
        this.forwarder.abort(c, 'ERR_REVOKED', `the hosting identity was ${host ? 'disabled' : 'deleted'}`)
        continue
      }
      if (!idx.service(m.serviceId)) {
        this.forwarder.abort(c, 'ERR_REVOKED', `service ${m.serviceName} was deleted`)
        continue
      }
      if (isIngress(c)) {
        const r = authz(m.dialerId, m.serviceId, 'Dial')
        if (!r.ok) {
          this.forwarder.abort(c, 'ERR_REVOKED', `Dial permission revoked (${r.code}): ${r.message ?? ''}`)
          continue
        }
      } else if (idx.grantingPolicies(m.dialerId, m.serviceId, 'Dial').length === 0) {
        this.forwarder.abort(c, 'ERR_REVOKED', `Dial permission revoked for ${m.dialerName}`)
        continue
      }
      if (
        m.terminatorRouterId !== s.id &&
        idx.grantingPolicies(m.hostIdentityId, m.serviceId, 'Bind').length === 0
      ) {
        this.forwarder.abort(c, 'ERR_REVOKED', 'the host lost its Bind permission')
      }
    }
  }
}
