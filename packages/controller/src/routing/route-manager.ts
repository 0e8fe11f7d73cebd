import type { RouteTable } from '@nullport/protocol'
import {
  allRoutes,
  type ComputedRoutes,
  type RoutingEdge,
  type RoutingNode,
  routesChanged,
} from './dijkstra.js'

/** Bounds on what routers may report. */
export const MAX_LINK_PEERS = 1000
export const MAX_LINK_LATENCY_MS = 600_000

export interface LinkMeasurement {
  from: string
  to: string
  latencyMs: number
  reportedAt: string
}

/**
 * Keeps the latest link measurements per router and the route tables last pushed to each router.
 * `recompute` returns only the tables that changed meaningfully since the last push.
 */
export class RouteManager {
  /** reporter -> peer -> {latency, at} */
  private readonly reports = new Map<string, Map<string, { latencyMs: number; at: string }>>()
  private readonly pushed = new Map<string, RouteTable>()
  private version = 0

  /** Replaces everything `routerId` reported before. */
  setLinks(routerId: string, peers: Array<{ routerId: string; latencyMs: number }>): void {
    const at = new Date().toISOString()
    const m = new Map<string, { latencyMs: number; at: string }>()
    for (const p of peers) {
      if (p.routerId === routerId) continue
      m.set(p.routerId, { latencyMs: p.latencyMs, at })
    }
    this.reports.set(routerId, m)
  }

  /** Forgets a router's reports and its pushed table (it went offline or was deleted). */
  removeRouter(routerId: string): void {
    this.reports.delete(routerId)
    this.pushed.delete(routerId)
  }

  /** All measurements, for the management API. */
  links(): LinkMeasurement[] {
    const out: LinkMeasurement[] = []
    for (const [from, m] of this.reports) {
      for (const [to, v] of m) out.push({ from, to, latencyMs: v.latencyMs, reportedAt: v.at })
    }
    return out
  }

  /** Directed edges: latency a->b as a reported it, else as b reported b->a. */
  edges(online: Set<string>): RoutingEdge[] {
    const lat = new Map<string, number>()
    const key = (a: string, b: string) => `${a}\u0000${b}`
    for (const [from, m] of this.reports) {
      if (!online.has(from)) continue
      for (const [to, v] of m) {
        if (!online.has(to)) continue
        lat.set(key(from, to), v.latencyMs)
        if (!lat.has(key(to, from)) && !this.reports.get(to)?.has(from)) lat.set(key(to, from), v.latencyMs)
      }
    }
    const edges: RoutingEdge[] = []
    for (const [k, latencyMs] of lat) {
      const [from, to] = k.split('\u0000') as [string, string]
      edges.push({ from, to, latencyMs })
    }
    return edges
  }

  /**
   * Recomputes the routes of the given (online, enabled) routers and returns the tables to push:
   * those whose routes changed meaningfully. Tables of routers not in `nodes` are forgotten.
   */
  recompute(nodes: RoutingNode[]): Map<string, RouteTable> {
    const online = new Set(nodes.map((n) => n.id))
    for (const id of [...this.pushed.keys()]) if (!online.has(id)) this.pushed.delete(id)
    const computed = allRoutes(nodes, this.edges(online))
    const changed = new Map<string, ComputedRoutes>()
    for (const [id, routes] of computed) {
      if (routesChanged(this.pushed.get(id), routes)) changed.set(id, routes)
    }
    const out = new Map<string, RouteTable>()
    if (changed.size === 0) return out
    this.version++
    for (const [id, routes] of changed) {
      const table: RouteTable = { version: this.version, nextHop: routes.nextHop, cost: routes.cost }
      this.pushed.set(id, table)
      out.set(id, table)
    }
    return out
  }

  /** The table last computed for a router (sent after the snapshot on a new stream). */
  current(routerId: string): RouteTable | undefined {
    return this.pushed.get(routerId)
  }
}
