/**
 * The terminators hosted on this router: an SDK's BIND creates (or joins) the terminator of its
 * (identity, service) at the controller, UNBIND and the end of the connection remove the
 * binding, and the terminator goes with its last binding. Creates and deletes of one (identity,
 * service) run one after another; deletes that fail while the controller is away are retried
 * when it is back; after a resync the terminators the controller lost are created again.
 */
import {
  type BindPayload,
  FrameType,
  type PolicySnapshot,
  type Terminator,
  type TerminatorPrecedence,
  withFixHint,
} from '@nullport/protocol'
import type { Circuit } from '../circuits/circuit-table.js'
import type { Peer } from '../connections/peer.js'
import type { RouterError } from '../errors.js'
import type { RouterState } from '../state.js'

/** One BIND of an SDK connection. */
export interface Binding {
  peer: Peer
  bindId: number
  serviceId: string
  serviceName: string
  cost: number
  precedence: TerminatorPrecedence
  maxConnections: number
  /** Set once the terminator exists. */
  terminator: LocalTerminator | null
  /** Circuits currently open through this binding. */
  circuits: number
  removed: boolean
}

/** A terminator hosted on this router; one or more bindings (connections of the same identity) serve it. */
export interface LocalTerminator {
  id: string
  serviceId: string
  identityId: string
  cost: number
  precedence: TerminatorPrecedence
  bindings: Binding[]
  /** Round-robin cursor over bindings. */
  next: number
  circuits: number
}

export class Terminators {
  /** (identityId|serviceId) -> the last queued create/delete of that terminator. */
  private readonly keyChain = new Map<string, Promise<void>>()
  /** Terminator id -> key, for deletes that failed while the controller was away. */
  private readonly pendingDeletes = new Map<string, string>()

  constructor(private readonly state: RouterState) {}

  /** BIND from an SDK connection. */
  async onBind(peer: Peer, p: BindPayload): Promise<void> {
    const s = this.state
    const existing = peer.binds.get(p.bindId)
    if (existing) {
      if (existing.terminator) {
        peer.send({
          type: FrameType.BIND_SUCCESS,
          circuitId: 0,
          flags: 0,
          payload: { bindId: p.bindId, terminatorId: existing.terminator.id },
        })
      }
      return
    }
    const fail = (code: string, message: string): void => {
      const msg = withFixHint(code, message)
      s.log.info(
        { code, service: p.service, bindId: p.bindId, reason: msg, ...peer.describe() },
        'bind refused',
      )
      peer.send({
        type: FrameType.BIND_FAILED,
        circuitId: 0,
        flags: 0,
        payload: { bindId: p.bindId, code, message: msg },
      })
    }
    const idx = s.index!
    const svc = idx.serviceByName(p.service) ?? idx.service(p.service)
    if (!svc) return fail('ERR_SERVICE_NOT_FOUND', `service "${p.service}" does not exist`)
    const az = idx.authorize(peer.entityId, svc.id, 'Bind', s.id)
    if (!az.ok) return fail(az.code, az.message)
    if (peer.binds.size >= s.limits.maxBindsPerConnection) {
      return fail('ERR_BIND_FAILED', `a connection may hold at most ${s.limits.maxBindsPerConnection} binds`)
    }
    const binding: Binding = {
      peer,
      bindId: p.bindId,
      serviceId: svc.id,
      serviceName: svc.name,
      cost: p.cost,
      precedence: p.precedence,
      maxConnections: p.maxConnections,
      terminator: null,
      circuits: 0,
      removed: false,
    }
    peer.binds.set(p.bindId, binding)
    const key = `${peer.entityId}|${svc.id}`
    // Creates and deletes of the terminator of one (identity, service) run one after another, so
    // an SDK that reconnects and binds again while its old terminator is being deleted gets a
    // fresh one, never a deleted one. The controller's terminators are idempotent per (service,
    // router, identity): every connection of that identity here shares one terminator.
    await this.serial(key, async () => {
      if (binding.removed) return
      const shared = [...s.terminators.values()].find(
        (t) => t.identityId === peer.entityId && t.serviceId === svc.id,
      )
      if (shared) {
        shared.bindings.push(binding)
        binding.terminator = shared
        this.bindSucceeded(binding, shared)
        return
      }
      try {
        const t = await this.create({
          serviceId: svc.id,
          identityId: peer.entityId,
          cost: p.cost,
          precedence: p.precedence,
        })
        if (binding.removed || s.stopping) {
          if (!s.stopping) this.queueDelete(t.id, key)
          return
        }
        const lt: LocalTerminator = {
          id: t.id,
          serviceId: svc.id,
          identityId: peer.entityId,
          cost: p.cost,
          precedence: p.precedence,
          bindings: [binding],
          next: 0,
          circuits: 0,
        }
        s.terminators.set(t.id, lt)
        binding.terminator = lt
        this.bindSucceeded(binding, lt)
      } catch (err) {
        peer.binds.delete(p.bindId)
        binding.removed = true
        const e = err as RouterError
        fail(
          e.code === 'ERR_CONTROLLER_UNAVAILABLE' ? 'ERR_CONTROLLER_UNAVAILABLE' : 'ERR_BIND_FAILED',
          `the controller could not create the terminator: ${e.message} (bind again when the controller is back)`,
        )
      }
    })
  }

  private bindSucceeded(b: Binding, t: LocalTerminator): void {
    b.peer.send({
      type: FrameType.BIND_SUCCESS,
      circuitId: 0,
      flags: 0,
      payload: { bindId: b.bindId, terminatorId: t.id },
    })
    this.state.log.info(
      {
        service: b.serviceName,
        terminator: t.id,
        bindId: b.bindId,
        bindings: t.bindings.length,
        ...b.peer.describe(),
      },
      'bound',
    )
  }

  /** UNBIND from an SDK connection. */
  onUnbind(peer: Peer, bindId: number): void {
    const b = peer.binds.get(bindId)
    if (!b) return
    this.removeBinding(b)
    this.state.log.info({ service: b.serviceName, bindId, ...peer.describe() }, 'unbound')
  }

  /** The connection closed: its bindings go. */
  peerGone(peer: Peer): void {
    for (const b of [...peer.binds.values()]) this.removeBinding(b)
  }

  /** Bind permission revoked: UNBIND {ERR_REVOKED} to every binding of `t`, which then goes. */
  revoke(t: LocalTerminator, message: string): void {
    for (const b of [...t.bindings]) {
      b.peer.send({
        type: FrameType.UNBIND,
        circuitId: 0,
        flags: 0,
        payload: { bindId: b.bindId, code: 'ERR_REVOKED', message },
      })
      this.removeBinding(b)
    }
  }

  /** Removes a binding; the terminator goes when its last binding does. */
  private removeBinding(b: Binding): void {
    if (b.removed) return
    b.removed = true
    b.peer.binds.delete(b.bindId)
    const t = b.terminator
    if (!t) return
    t.bindings = t.bindings.filter((x) => x !== b)
    if (t.bindings.length === 0) {
      this.state.terminators.delete(t.id)
      if (!this.state.stopping) this.queueDelete(t.id, `${t.identityId}|${t.serviceId}`)
    }
  }

  /** A circuit was dialed out through `binding` of local terminator `t`. */
  circuitOpened(binding: Binding, t: LocalTerminator | undefined): void {
    binding.circuits++
    if (t) t.circuits++
  }

  /** A circuit toward a local terminator ended: its load counts go down. */
  circuitClosed(c: Circuit<Peer>): void {
    const t = this.state.terminators.get(c.meta.terminatorId)
    if (t && c.b && c.b.peer.kind === 'sdk') {
      t.circuits = Math.max(0, t.circuits - 1)
      for (const b of t.bindings) if (b.peer === c.b.peer) b.circuits = Math.max(0, b.circuits - 1)
    }
  }

  /**
   * The first snapshot after start: terminators the controller still lists for this router were
   * left by an earlier run of it, and nobody serves them.
   */
  dropStale(snapshot: PolicySnapshot): void {
    for (const t of snapshot.terminators) {
      if (t.routerId === this.state.id && !this.state.terminators.has(t.id)) {
        this.queueDelete(t.id, `${t.identityId}|${t.serviceId}`)
      }
    }
  }

  /**
   * After a resync: terminators this router still serves but the controller no longer has (it
   * deletes a router's terminators when its stream stays down) are created again, so dials through
   * other routers find them. The controller may assign a new id.
   */
  reconcile(snapshot: PolicySnapshot): void {
    const s = this.state
    const known = new Set(snapshot.terminators.map((t) => t.id))
    for (const t of [...s.terminators.values()]) {
      if (known.has(t.id)) continue
      const key = `${t.identityId}|${t.serviceId}`
      void this.serial(key, async () => {
        if (s.terminators.get(t.id) !== t || s.stopping) return
        try {
          const fresh = await this.create(t)
          if (s.terminators.get(t.id) !== t) {
            if (!s.terminators.has(fresh.id)) this.queueDelete(fresh.id, key)
            return
          }
          if (fresh.id !== t.id) {
            const old = t.id
            s.terminators.delete(old)
            t.id = fresh.id
            s.terminators.set(t.id, t)
            for (const c of s.table.all()) if (c.meta.terminatorId === old) c.meta.terminatorId = t.id
          }
          s.log.info({ terminator: t.id, service: t.serviceId }, 'terminator re-created after resync')
        } catch (err) {
          const e = err as RouterError
          s.log.warn({ terminator: t.id, err: e.message }, 'terminator could not be re-created')
          if (e.details?.status === 403) {
            // Bind no longer allowed: the next policy check unbinds the hosts.
            return
          }
        }
      })
    }
  }

  /** Creates the terminator at the controller (idempotent per service, router and identity there). */
  private create(
    t: Pick<LocalTerminator, 'serviceId' | 'identityId' | 'cost' | 'precedence'>,
  ): Promise<Terminator> {
    return this.state.fabric.request<Terminator>('POST', '/fabric/v1/terminators', {
      serviceId: t.serviceId,
      identityId: t.identityId,
      cost: t.cost,
      precedence: t.precedence,
    })
  }

  /** Runs `fn` after every earlier task of `key` finished. */
  private serial(key: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.keyChain.get(key) ?? Promise.resolve()
    const next = prev.then(fn).catch((err: unknown) => {
      this.state.log.error({ err }, 'terminator task failed')
    })
    this.keyChain.set(key, next)
    void next.then(() => {
      if (this.keyChain.get(key) === next) this.keyChain.delete(key)
    })
    return next
  }

  /** Deletes a terminator at the controller (serialized with creates of the same key; retried after reconnects). */
  private queueDelete(id: string, key: string): void {
    const s = this.state
    this.pendingDeletes.set(id, key)
    void this.serial(key, async () => {
      if (s.terminators.has(id)) {
        this.pendingDeletes.delete(id)
        return
      }
      try {
        await s.fabric.request('DELETE', `/fabric/v1/terminators/${encodeURIComponent(id)}`)
        this.pendingDeletes.delete(id)
      } catch (err) {
        const e = err as RouterError
        if (e.details?.status === 404) this.pendingDeletes.delete(id)
        else
          s.log.warn(
            { terminator: id, err: e.message },
            'terminator delete failed; retrying when the controller is back',
          )
      }
    })
  }

  /** The controller is back: deletes that failed run again. */
  retryDeletes(): void {
    for (const [id, key] of [...this.pendingDeletes]) this.queueDelete(id, key)
  }

  /** stop(): forgets every terminator here and returns the ids to delete at the controller. */
  takeAllForStop(): string[] {
    const ids = [...this.state.terminators.keys(), ...this.pendingDeletes.keys()]
    this.state.terminators.clear()
    return ids
  }
}
