/**
 * Router presence: whether each router is online, from its fabric stream. `POST /online` marks a
 * router online and it must open its stream within `streamWaitMs`; when the stream closes the
 * router is offline at once, and its terminators and circuit reports go after `terminatorGraceMs`
 * unless it reconnects first.
 */
import type { PolicyIndex } from '@nullport/protocol'
import type { Logger } from 'pino'
import type { CoreService } from '../core/service.js'
import type { RouteManager } from '../routing/route-manager.js'
import type { CircuitRegistry } from './circuit-registry.js'
import type { RoutePush } from './route-push.js'
import type { RouterHub } from './router-hub.js'

export interface PresenceDeps {
  core: CoreService
  policy: PolicyIndex
  routers: RouterHub
  routes: RouteManager
  routePush: RoutePush
  circuits: CircuitRegistry
  log: Logger
  /** How long a router's terminators survive its stream closing. */
  terminatorGraceMs: number
  /** How long after `POST /online` a router must open its stream. */
  streamWaitMs: number
}

export class RouterPresence {
  private readonly graceTimers = new Map<string, NodeJS.Timeout>()
  /** Routers that said they are online but have no stream yet: marked offline if none opens. */
  private readonly announceTimers = new Map<string, NodeJS.Timeout>()
  private closed = false

  constructor(private readonly d: PresenceDeps) {}

  /**
   * `POST /online` marked the router online; unless its stream opens within `streamWaitMs`, it is
   * marked offline again (a router that crashed between the two steps is not shown online forever).
   */
  announced(routerId: string): void {
    if (this.closed || this.d.routers.isConnected(routerId)) return
    const prev = this.announceTimers.get(routerId)
    if (prev) clearTimeout(prev)
    const timer = setTimeout(() => {
      this.announceTimers.delete(routerId)
      if (this.closed || this.d.routers.isConnected(routerId)) return
      this.markOffline(routerId)
    }, this.d.streamWaitMs)
    timer.unref()
    this.announceTimers.set(routerId, timer)
  }

  /** A router's stream opened: cancel its terminator grace timer. */
  connected(routerId: string): void {
    const a = this.announceTimers.get(routerId)
    if (a) {
      clearTimeout(a)
      this.announceTimers.delete(routerId)
    }
    const t = this.graceTimers.get(routerId)
    if (t) {
      clearTimeout(t)
      this.graceTimers.delete(routerId)
    }
    this.d.routePush.schedule()
  }

  /** A router's stream closed: offline now, terminators and circuits after the grace period. */
  disconnected(routerId: string, reason: string): void {
    this.d.log.info({ routerId, reason }, 'router stream closed')
    this.d.routes.removeRouter(routerId)
    this.d.routePush.schedule()
    if (this.closed) return
    if (!this.d.policy.router(routerId)) {
      // Deleted: its terminators went with it; nothing to record.
      this.d.circuits.dropRouter(routerId)
      return
    }
    this.markOffline(routerId)
    const prev = this.graceTimers.get(routerId)
    if (prev) clearTimeout(prev)
    const timer = setTimeout(() => {
      this.graceTimers.delete(routerId)
      if (this.closed || this.d.routers.isConnected(routerId)) return
      this.d.circuits.dropRouter(routerId)
      void this.deleteTerminators(routerId)
    }, this.d.terminatorGraceMs)
    timer.unref()
    this.graceTimers.set(routerId, timer)
  }

  close(): void {
    this.closed = true
    for (const t of this.graceTimers.values()) clearTimeout(t)
    this.graceTimers.clear()
    for (const t of this.announceTimers.values()) clearTimeout(t)
    this.announceTimers.clear()
  }

  private markOffline(routerId: string): void {
    this.d.core.setRouterStatus(routerId, { isOnline: false }).catch((err: Error) => {
      if (!this.closed) this.d.log.warn({ err: err.message, routerId }, 'cannot mark router offline')
    })
  }

  private async deleteTerminators(routerId: string): Promise<void> {
    try {
      const ids = await this.d.core.routerTerminatorIds(routerId)
      const name = this.d.policy.router(routerId)?.name ?? routerId
      for (const id of ids) {
        if (this.closed || this.d.routers.isConnected(routerId)) return
        await this.d.core
          .deleteTerminator(id, { id: routerId, name: `router:${name}` })
          .catch((err: Error & { code?: string }) => {
            if (err.code !== 'ERR_NOT_FOUND') throw err
          })
      }
      if (ids.length > 0)
        this.d.log.info(
          { routerId, terminators: ids.length },
          'removed the terminators of a router that went away',
        )
    } catch (err) {
      if (!this.closed)
        this.d.log.warn(
          { err: (err as Error).message, routerId },
          'cannot remove terminators of a router that went away',
        )
    }
  }
}
