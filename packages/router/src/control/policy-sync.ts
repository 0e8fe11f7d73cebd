/**
 * The router's side of the controller's policy stream (`GET /fabric/v1/stream`): before each
 * (re)connect the router reports itself online; a snapshot replaces the policy data (the first
 * one makes the router ready), changes are applied in order, routes replace the route table.
 * After each snapshot or change every connection, terminator and circuit is checked again and
 * the links follow the router list.
 */
import { PolicyIndex, type PolicySnapshot, type RouterEvent } from '@nullport/protocol'
import type { LinkDialer } from '../links/link-dialer.js'
import type { Revocation } from '../revocation.js'
import type { RouterState } from '../state.js'
import type { Terminators } from '../terminators/terminators.js'
import { ROUTER_VERSION } from '../version.js'

export class PolicySync {
  private firstSnapshot = true

  constructor(
    private readonly state: RouterState,
    private readonly terminators: Terminators,
    private readonly revocation: Revocation,
    private readonly linkDialer: LinkDialer,
  ) {}

  /** Opens the stream (reconnecting until the fabric client stops). */
  start(): void {
    const s = this.state
    s.fabric.startStream({
      beforeConnect: async () => {
        await s.fabric.request('POST', '/fabric/v1/online', {
          advertise: s.advertise,
          version: ROUTER_VERSION,
        })
        this.terminators.retryDeletes()
      },
      onEvent: (ev) => this.onEvent(ev),
      onConnected: () => s.log.info({ controller: s.identity.controller }, 'controller stream open'),
      onDisconnected: (err) => {
        if (s.stopping) return // our own stop() closed it
        s.log.warn(
          { err: err?.message },
          'controller stream lost; circuits keep flowing, authorizing from the last policy data',
        )
      },
    })
  }

  private onEvent(ev: RouterEvent): void {
    const s = this.state
    switch (ev.type) {
      case 'snapshot':
        this.loadSnapshot(ev.snapshot)
        break
      case 'change': {
        const idx = s.index
        if (!idx) {
          s.log.warn('change before snapshot; resyncing')
          s.fabric.resync()
          return
        }
        for (const ch of ev.changes) {
          idx.apply(ch)
          if (ch.entity === 'router') {
            if (ch.op === 'delete') s.routerList.delete(ch.id)
            else s.routerList.set(ch.data.id, ch.data)
          }
        }
        s.log.debug({ changes: ev.changes.length, version: idx.version }, 'policy changes applied')
        this.afterPolicyUpdate()
        break
      }
      case 'routes':
        s.routes = ev.routes
        s.log.debug({ version: ev.routes.version }, 'routes updated')
        break
      default:
        break
    }
  }

  private loadSnapshot(snapshot: PolicySnapshot): void {
    const s = this.state
    const idx = new PolicyIndex()
    idx.load(snapshot)
    s.index = idx
    s.routerList.clear()
    for (const r of snapshot.routers) s.routerList.set(r.id, r)
    s.fabric.backoff.reset()
    s.log.info(
      { version: idx.version, identities: snapshot.identities.length, services: snapshot.services.length },
      'policy snapshot loaded',
    )
    if (!this.firstSnapshot) this.terminators.reconcile(snapshot)
    if (this.firstSnapshot) {
      this.firstSnapshot = false
      // Terminators left by an earlier run of this router: nobody serves them.
      this.terminators.dropStale(snapshot)
    }
    if (!s.isReady) {
      // Always announced (process harnesses wait for it), unless logging is off entirely.
      const announce = s.log.level === 'silent' ? s.log : s.log.child({}, { level: 'info' })
      announce.info(
        { address: s.address, advertise: s.advertise, metrics: s.metricsAddress },
        'router listening',
      )
      s.markReady()
    }
    this.afterPolicyUpdate()
  }

  private afterPolicyUpdate(): void {
    this.revocation.recheck()
    this.linkDialer.refresh()
  }
}
