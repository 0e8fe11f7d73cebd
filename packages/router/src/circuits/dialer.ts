/**
 * Dial routing: a DIAL from an SDK is authorized here (service, Dial policy, edge-router
 * policies), a terminator is selected, and the DIAL goes on toward it (the host's connection, or
 * the link toward its router) with a circuit tag and a timeout; a DIAL arriving over a link is
 * checked again (defense in depth) and routed on. DIAL_SUCCESS / DIAL_FAILED from the host
 * travel back and open (or end) the circuit.
 */
import { randomBytes } from 'node:crypto'
import { type DialPayload, type Frame, FrameType, type Terminator, withFixHint } from '@nullport/protocol'
import type { Peer } from '../connections/peer.js'
import type { Links } from '../links/links.js'
import type { RouterState } from '../state.js'
import { liveBinding, localTerminator, type TerminatorSelection } from '../terminators/selection.js'
import type { Binding, Terminators } from '../terminators/terminators.js'
import type { CircuitMeta } from './circuit-table.js'
import { type Forwarder, isIngress } from './forwarder.js'
import type { CircuitReports } from './reports.js'

export class Dialer {
  constructor(
    private readonly state: RouterState,
    private readonly forwarder: Forwarder,
    private readonly selection: TerminatorSelection,
    private readonly terminators: Terminators,
    private readonly links: Links,
    private readonly reports: CircuitReports,
  ) {}

  /** DIAL from an SDK or over a link. */
  onDial(peer: Peer, circuitId: number, p: DialPayload): void {
    const s = this.state
    const wrongParity = peer.alloc.isLocal(circuitId)
    if (wrongParity || s.table.has(peer, circuitId)) {
      // docs/protocol.md: DIAL_FAILED, and GOAWAY for a repeated offender.
      if (++peer.idViolations > 8) {
        peer.refuse('ERR_PROTOCOL', 'repeated DIALs on invalid circuit ids')
        return
      }
      this.refuse(
        peer,
        circuitId,
        'ERR_CIRCUIT_ID',
        wrongParity
          ? `circuit id ${circuitId} has the router's parity: the side that opened the connection uses odd ids`
          : `circuit id ${circuitId} is already in use on this connection`,
        {},
      )
      return
    }
    if (s.table.countOn(peer) >= s.limits.maxCircuitsPerConnection) {
      this.refuse(
        peer,
        circuitId,
        'ERR_TOO_MANY_CIRCUITS',
        `a connection may carry at most ${s.limits.maxCircuitsPerConnection} circuits: open another connection`,
        {},
      )
      return
    }
    if (s.stopping) {
      this.refuse(
        peer,
        circuitId,
        'ERR_ROUTER_SHUTDOWN',
        'the router is shutting down: dial through another router',
        {},
      )
      return
    }
    if (peer.kind === 'sdk') this.ingressDial(peer, circuitId, p)
    else this.linkDial(peer, circuitId, p)
  }

  private refuse(
    peer: Peer,
    circuitId: number,
    code: string,
    message: string,
    ctx: Record<string, unknown>,
  ): void {
    const msg = withFixHint(code, message)
    this.state.log.info({ code, ...ctx, reason: msg, ...peer.describe() }, 'dial refused')
    peer.send({ type: FrameType.DIAL_FAILED, circuitId, flags: 0, payload: { code, message: msg } })
    if (peer.kind === 'sdk') this.state.metrics.dial('refused')
  }

  /** A DIAL from an SDK: authorize, select a terminator, dial out. */
  private ingressDial(peer: Peer, circuitId: number, p: DialPayload): void {
    const idx = this.state.index!
    const svc = idx.serviceByName(p.service) ?? idx.service(p.service)
    const ctx = { service: p.service, identity: peer.name }
    if (!svc) {
      this.refuse(peer, circuitId, 'ERR_SERVICE_NOT_FOUND', `service "${p.service}" does not exist`, ctx)
      return
    }
    const az = idx.authorize(peer.entityId, svc.id, 'Dial', this.state.id)
    if (!az.ok) {
      this.refuse(peer, circuitId, az.code, az.message, ctx)
      return
    }
    const pick = this.selection.select(svc, peer.entityId, p.hostIdentityId)
    if (!pick.ok) {
      this.refuse(peer, circuitId, pick.code, pick.message, ctx)
      return
    }
    const t = pick.terminator
    const meta: CircuitMeta = {
      tag: randomBytes(16).toString('hex'),
      serviceId: svc.id,
      serviceName: svc.name,
      dialerId: peer.entityId,
      dialerName: peer.name,
      terminatorId: t.id,
      terminatorRouterId: t.routerId,
      hostIdentityId: t.identityId,
    }
    const payload: DialPayload = {
      service: svc.name,
      dialer: { id: peer.entityId, name: peer.name },
      terminatorId: t.id,
      hostIdentityId: t.identityId,
      circuitTag: meta.tag,
    }
    if (p.e2e) payload.e2e = p.e2e
    if (p.appData) payload.appData = p.appData
    this.dialOut(peer, circuitId, meta, payload, t)
  }

  /** A DIAL over a link: the dialer and the terminator are checked again here. */
  private linkDial(peer: Peer, circuitId: number, p: DialPayload): void {
    const s = this.state
    const idx = s.index!
    const ctx = { service: p.service, dialer: p.dialer?.name, fromRouter: peer.name }
    if (!p.dialer || !p.terminatorId || !p.hostIdentityId || !p.circuitTag) {
      this.refuse(
        peer,
        circuitId,
        'ERR_PROTOCOL',
        'a DIAL over a link needs dialer, terminatorId, hostIdentityId and circuitTag',
        ctx,
      )
      return
    }
    const svc = idx.serviceByName(p.service)
    if (!svc) {
      this.refuse(peer, circuitId, 'ERR_SERVICE_NOT_FOUND', `service "${p.service}" does not exist`, ctx)
      return
    }
    // Defense in depth: the dialer must still exist, be enabled and hold a Dial policy.
    const dialer = idx.identity(p.dialer.id)
    if (!dialer) {
      this.refuse(peer, circuitId, 'ERR_IDENTITY_NOT_FOUND', `identity ${p.dialer.id} does not exist`, ctx)
      return
    }
    if (dialer.disabled) {
      this.refuse(peer, circuitId, 'ERR_IDENTITY_DISABLED', `identity ${dialer.name} is disabled`, ctx)
      return
    }
    if (idx.grantingPolicies(dialer.id, svc.id, 'Dial').length === 0) {
      this.refuse(
        peer,
        circuitId,
        'ERR_NO_DIAL_PERMISSION',
        `identity ${dialer.name} may not dial "${svc.name}"`,
        ctx,
      )
      return
    }
    const lt = s.terminators.get(p.terminatorId)
    let t: Terminator | undefined
    if (lt) {
      if (lt.serviceId !== svc.id || lt.identityId !== p.hostIdentityId) {
        this.refuse(
          peer,
          circuitId,
          'ERR_INVALID_TERMINATOR',
          `terminator ${lt.id} does not serve "${svc.name}" for that host`,
          ctx,
        )
        return
      }
      t = localTerminator(lt, s.id)
    } else {
      t = idx.terminatorsFor(svc.id).find((x) => x.id === p.terminatorId)
      if (!t || t.routerId === s.id || t.identityId !== p.hostIdentityId) {
        this.refuse(
          peer,
          circuitId,
          'ERR_INVALID_TERMINATOR',
          `terminator ${p.terminatorId} is not hosted on router ${s.name} or beyond it`,
          ctx,
        )
        return
      }
    }
    const meta: CircuitMeta = {
      tag: p.circuitTag,
      serviceId: svc.id,
      serviceName: svc.name,
      dialerId: dialer.id,
      dialerName: dialer.name,
      terminatorId: t.id,
      terminatorRouterId: t.routerId,
      hostIdentityId: t.identityId,
    }
    this.dialOut(peer, circuitId, meta, { ...p, service: svc.name }, t)
  }

  /** Sends the DIAL toward the terminator (host connection or next link) and arms the timeout. */
  private dialOut(
    peer: Peer,
    circuitId: number,
    meta: CircuitMeta,
    payload: DialPayload,
    t: Terminator,
  ): void {
    const s = this.state
    let outPeer: Peer | null
    let binding: Binding | null = null
    if (t.routerId === s.id) {
      const lt = s.terminators.get(t.id)
      binding = lt ? liveBinding(lt, true) : null
      if (!lt || !binding) {
        this.refuse(
          peer,
          circuitId,
          lt ? 'ERR_TERMINATOR_AT_CAPACITY' : 'ERR_INVALID_TERMINATOR',
          lt
            ? `terminator ${t.id} is at its maxConnections`
            : `terminator ${t.id} is not hosted on router ${s.name}`,
          { service: meta.serviceName },
        )
        return
      }
      outPeer = binding.peer
    } else {
      outPeer = this.links.nextHop(t.routerId)
      if (outPeer === peer || (peer.kind === 'router' && s.table.hasTag(meta.tag))) {
        // Inconsistent routes would bounce the DIAL between routers: refuse instead of looping.
        outPeer = null
      }
      if (!outPeer) {
        this.refuse(peer, circuitId, 'ERR_NO_ROUTE', `no usable route toward router ${t.routerId}`, {
          service: meta.serviceName,
        })
        return
      }
    }
    const c = s.table.open(meta, peer, circuitId)
    let outId: number
    try {
      outId = outPeer.alloc.next()
    } catch {
      this.forwarder.remove(c)
      this.refuse(peer, circuitId, 'ERR_TOO_MANY_CIRCUITS', 'no free circuit id toward the host', {})
      return
    }
    const out = s.table.attach(c, outPeer, outId)
    if (binding) this.terminators.circuitOpened(binding, s.terminators.get(t.id))
    c.timer = setTimeout(() => {
      this.forwarder.abort(
        c,
        'ERR_DIAL_TIMEOUT',
        `no answer from the host of "${meta.serviceName}" within ${s.limits.dialTimeoutMs} ms`,
      )
    }, s.limits.dialTimeoutMs)
    this.forwarder.forward({ type: FrameType.DIAL, circuitId: outId, flags: 0, payload }, c.a, out)
    s.log.debug(
      { circuit: meta.tag, service: meta.serviceName, terminator: t.id, via: outPeer.entityId },
      'dialing',
    )
  }

  /** DIAL_SUCCESS / DIAL_FAILED from the host side of a circuit being dialed. */
  onDialAnswer(
    peer: Peer,
    f: Extract<Frame, { type: typeof FrameType.DIAL_SUCCESS | typeof FrameType.DIAL_FAILED }>,
  ): void {
    const s = this.state
    const leg = s.table.lookup(peer, f.circuitId)
    if (!leg || leg !== leg.circuit.b || leg.circuit.state !== 'dialing') {
      s.log.debug({ circuitId: f.circuitId, ...peer.describe() }, 'dial answer for no pending dial')
      return
    }
    const c = leg.circuit
    const a = c.a
    if (f.type === FrameType.DIAL_FAILED) {
      s.log.info(
        { code: f.payload.code, circuit: c.meta.tag, service: c.meta.serviceName, reason: f.payload.message },
        'dial failed at the host',
      )
      this.forwarder.forward(
        { type: FrameType.DIAL_FAILED, circuitId: a.id, flags: 0, payload: f.payload },
        leg,
        a,
      )
      if (isIngress(c)) s.metrics.dial('failed')
      this.forwarder.remove(c)
      return
    }
    if (c.timer) clearTimeout(c.timer)
    c.timer = null
    c.state = 'open'
    let payload = f.payload
    if (peer.kind === 'sdk') {
      // The terminating router names the host as its TLS certificate proved it.
      payload = { hostIdentity: { id: peer.entityId, name: peer.name }, circuitTag: c.meta.tag }
      if (f.payload.e2e) payload.e2e = f.payload.e2e
    }
    this.forwarder.forward({ type: FrameType.DIAL_SUCCESS, circuitId: a.id, flags: 0, payload }, leg, a)
    if (isIngress(c)) {
      s.metrics.dial('success')
      this.reports.opened(c)
    }
  }
}
