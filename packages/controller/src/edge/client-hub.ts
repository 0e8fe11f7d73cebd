/**
 * Pushes `ClientEvent`s to SDK sessions connected to `GET /edge/client/v1/events`.
 *
 * Rule (cheap and safe): any change to a service, a policy, a router or a config may change every
 * identity's service list, so every session gets `services-changed`; a change to an identity
 * reaches that identity's sessions only. Events coalesce per session (at most one pending of each
 * type), so a slow reader never makes the controller buffer more than one event per kind.
 * When the identity is disabled or deleted, or the session's certificate is no longer among the
 * identity's current ones (re-enrollment), the session gets `revoked` and the stream ends.
 */
import type { ClientEvent, DataChange, PolicyIdentity } from '@nullport/protocol'
import type { SseStream } from './sse.js'

interface Session {
  identityId: string
  fingerprint: string
  stream: SseStream
  pendingServices: number | null
  pendingRouters: number | null
  flushing: boolean
}

/** Event streams one identity may hold open; past it the oldest is closed. */
export const MAX_STREAMS_PER_IDENTITY = 16

export class ClientEventHub {
  private readonly byIdentity = new Map<string, Set<Session>>()
  private count = 0

  get size(): number {
    return this.count
  }

  /** Registers a stream; it is removed when it closes. */
  add(identityId: string, fingerprint: string, stream: SseStream): void {
    const s: Session = {
      identityId,
      fingerprint,
      stream,
      pendingServices: null,
      pendingRouters: null,
      flushing: false,
    }
    let set = this.byIdentity.get(identityId)
    if (!set) {
      set = new Set()
      this.byIdentity.set(identityId, set)
    }
    while (set.size >= MAX_STREAMS_PER_IDENTITY) {
      const oldest = set.values().next().value!
      set.delete(oldest)
      this.count--
      oldest.stream.close('server')
    }
    set.add(s)
    this.count++
    stream.onClose(() => {
      const cur = this.byIdentity.get(identityId)
      if (cur?.delete(s)) {
        this.count--
        if (cur.size === 0) this.byIdentity.delete(identityId)
      }
    })
  }

  /** Applies a committed batch of policy changes. `lookup` gives the identity after the batch. */
  onChanges(changes: DataChange[], lookup: (id: string) => PolicyIdentity | undefined): void {
    if (changes.length === 0) return
    const version = changes[changes.length - 1]!.version
    let everyone = false
    let routers = false
    const identities = new Set<string>()
    for (const c of changes) {
      switch (c.entity) {
        case 'identity':
          identities.add(c.op === 'delete' ? c.id : c.data.id)
          break
        case 'router':
          routers = true
          everyone = true
          break
        case 'terminator':
          break
        default:
          everyone = true
      }
    }
    for (const id of identities) {
      const sessions = this.byIdentity.get(id)
      if (!sessions) continue
      const identity = lookup(id)
      for (const s of [...sessions]) {
        if (!identity) this.revoke(s, 'the identity was deleted')
        else if (identity.disabled) this.revoke(s, 'the identity was disabled')
        else if (identity.certFingerprints && !identity.certFingerprints.includes(s.fingerprint)) {
          this.revoke(s, 'the certificate was revoked (the identity was re-enrolled)')
        } else if (!everyone) this.queue(s, 'services', version)
      }
    }
    if (everyone) this.servicesChanged(version, routers)
  }

  /** Sends `services-changed` (and `routers-changed` when `routers`) to every session. */
  servicesChanged(version: number, routers = false): void {
    for (const set of this.byIdentity.values()) {
      for (const s of set) {
        this.queue(s, 'services', version)
        if (routers) this.queue(s, 'routers', version)
      }
    }
  }

  /** Sends `routers-changed` to every session (router online/offline, address). */
  routersChanged(version: number): void {
    for (const set of this.byIdentity.values()) for (const s of set) this.queue(s, 'routers', version)
  }

  /** Revokes every session of an identity (re-enrollment, deletion). */
  revokeIdentity(identityId: string, reason: string): void {
    const set = this.byIdentity.get(identityId)
    if (!set) return
    for (const s of [...set]) this.revoke(s, reason)
  }

  closeAll(): void {
    for (const set of [...this.byIdentity.values()]) for (const s of [...set]) s.stream.close('server')
  }

  private revoke(s: Session, reason: string): void {
    const ev: ClientEvent = { type: 'revoked', reason }
    s.stream.send('revoked', ev)
    s.stream.close('server')
  }

  private queue(s: Session, kind: 'services' | 'routers', version: number): void {
    if (kind === 'services') s.pendingServices = Math.max(version, s.pendingServices ?? 0)
    else s.pendingRouters = Math.max(version, s.pendingRouters ?? 0)
    if (s.flushing) return
    s.flushing = true
    s.stream.onDrain(() => this.flush(s))
  }

  private flush(s: Session): void {
    s.flushing = false
    if (s.stream.closed) return
    if (s.pendingServices !== null) {
      const ev: ClientEvent = { type: 'services-changed', version: s.pendingServices }
      s.pendingServices = null
      s.stream.send('services-changed', ev)
    }
    if (s.pendingRouters !== null) {
      const ev: ClientEvent = { type: 'routers-changed', version: s.pendingRouters }
      s.pendingRouters = null
      s.stream.send('routers-changed', ev)
    }
  }
}
