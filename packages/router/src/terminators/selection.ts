/**
 * Terminator selection for one dial: the candidates this router can reach (its own terminators
 * with a binding that takes circuits, and the terminators of other routers a link leads to, with
 * their route cost), the service's strategy's pick among them, and, when there is none, why
 * (every host at its maxConnections, hosts only behind unreachable routers, or no host at all).
 */
import type { PolicyService, Terminator } from '@nullport/protocol'
import type { Links } from '../links/links.js'
import type { RouterState } from '../state.js'
import { strategyFor, type TerminatorCandidate } from './strategy.js'
import type { Binding, LocalTerminator } from './terminators.js'

export type Selection =
  | { ok: true; terminator: Terminator }
  | { ok: false; code: 'ERR_MAX_CONNECTIONS' | 'ERR_NO_TERMINATORS'; message: string }

/** A binding of a local terminator to send a dial to (round robin), respecting maxConnections. */
export function liveBinding(t: LocalTerminator, advance: boolean): Binding | null {
  const n = t.bindings.length
  for (let i = 0; i < n; i++) {
    const b = t.bindings[(t.next + i) % n]!
    if (b.removed || b.peer.state !== 'ready' || b.peer.draining) continue
    if (b.maxConnections > 0 && b.circuits >= b.maxConnections) continue
    if (advance) t.next = (t.next + i + 1) % n
    return b
  }
  return null
}

/** The protocol's view of a terminator hosted here. */
export function localTerminator(t: LocalTerminator, routerId: string): Terminator {
  return {
    id: t.id,
    serviceId: t.serviceId,
    routerId,
    identityId: t.identityId,
    cost: t.cost,
    precedence: t.precedence,
    createdAt: '',
  }
}

export class TerminatorSelection {
  constructor(
    private readonly state: RouterState,
    private readonly links: Links,
  ) {}

  /** Picks the terminator of `svc` for a dial by `dialerId` (only `hostIdentityId`'s, if given). */
  select(svc: PolicyService, dialerId: string, hostIdentityId: string | undefined): Selection {
    const s = this.state
    const idx = s.index!
    const cands = this.candidates(svc.id, hostIdentityId)
    const pick = strategyFor(svc.terminatorStrategy).select(cands, {
      serviceId: svc.id,
      dialerId,
      random: Math.random,
    })
    if (pick) return { ok: true, terminator: pick.terminator }
    // Hosts bound here but every one at its maxConnections: say so, not "no host".
    const full = [...s.terminators.values()].filter(
      (t) =>
        t.serviceId === svc.id &&
        (!hostIdentityId || t.identityId === hostIdentityId) &&
        t.bindings.some((b) => !b.removed && b.peer.state === 'ready' && !b.peer.draining) &&
        idx.identity(t.identityId) !== undefined &&
        !idx.identity(t.identityId)?.disabled,
    )
    if (full.length > 0) {
      return {
        ok: false,
        code: 'ERR_MAX_CONNECTIONS',
        message: `every host of service ${svc.name} is at its maxConnections: retry later, or raise maxConnections in the host's listen()`,
      }
    }
    if (idx.terminatorsFor(svc.id).some((t) => t.routerId !== s.id)) {
      return {
        ok: false,
        code: 'ERR_NO_TERMINATORS',
        message: `service ${svc.name} is hosted only on routers that router ${s.name} cannot reach now (no link): check \`nullport edge list edge-routers\``,
      }
    }
    return {
      ok: false,
      code: 'ERR_NO_TERMINATORS',
      message: `service ${svc.name} has no host: no identity is bound to it (start the hosting app, or check its Bind policy with \`nullport edge policy-advisor identities HOST ${svc.name}\`)`,
    }
  }

  private candidates(serviceId: string, hostIdentityId: string | undefined): TerminatorCandidate[] {
    const s = this.state
    const idx = s.index!
    const out: TerminatorCandidate[] = []
    const seen = new Set<string>()
    for (const t of s.terminators.values()) {
      if (t.serviceId !== serviceId) continue
      if (hostIdentityId && t.identityId !== hostIdentityId) continue
      if (!liveBinding(t, false)) continue
      const host = idx.identity(t.identityId)
      if (!host || host.disabled) continue
      seen.add(t.id)
      out.push({ terminator: localTerminator(t, s.id), routeCost: 0, activeCircuits: t.circuits })
    }
    for (const t of idx.terminatorsFor(serviceId)) {
      if (seen.has(t.id) || t.routerId === s.id) continue
      if (hostIdentityId && t.identityId !== hostIdentityId) continue
      const r = idx.router(t.routerId)
      if (!r || r.disabled) continue
      const host = idx.identity(t.identityId)
      if (!host || host.disabled) continue
      const hop = this.links.nextHop(t.routerId)
      if (!hop) continue
      out.push({ terminator: t, routeCost: s.routes.cost[t.routerId] ?? 1000, activeCircuits: 0 })
    }
    return out
  }
}
