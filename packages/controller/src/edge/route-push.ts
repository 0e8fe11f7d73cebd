/**
 * Route publishing: recomputes the routers' next-hop tables from the link measurements of the
 * connected, enabled routers (routing/route-manager.ts) and pushes the tables that changed.
 * Bursts of triggers (links reported, routers coming and going) coalesce into one computation.
 */
import type { PolicyIndex } from '@nullport/protocol'
import type { Logger } from 'pino'
import type { RouteManager } from '../routing/route-manager.js'
import type { RouterHub } from './router-hub.js'

export class RoutePush {
  private scheduled = false
  private closed = false

  constructor(
    private readonly routes: RouteManager,
    private readonly routers: RouterHub,
    private readonly policy: PolicyIndex,
    private readonly log: Logger,
  ) {}

  /** Recomputes routes soon (coalesces bursts of triggers into one computation). */
  schedule(): void {
    if (this.scheduled || this.closed) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      if (this.closed) return
      this.recompute()
    })
  }

  recompute(): void {
    const nodes = []
    for (const id of this.routers.connected()) {
      const r = this.policy.router(id)
      if (!r || r.disabled) continue
      nodes.push({ id, cost: r.cost })
    }
    const changed = this.routes.recompute(nodes)
    for (const [id, table] of changed) this.routers.sendRoutes(id, table)
    if (changed.size > 0) this.log.debug({ routers: [...changed.keys()] }, 'routes pushed')
  }

  close(): void {
    this.closed = true
  }
}
