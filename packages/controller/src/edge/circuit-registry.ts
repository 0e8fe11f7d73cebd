/**
 * Circuit reports from routers (`POST /fabric/v1/circuits`, `DELETE /fabric/v1/circuits/:tag`),
 * kept in memory, bounded, for `GET /edge/management/v1/circuits`. Best effort by design: routers
 * batch their reports, and a controller restart forgets them (routers report new circuits only).
 */

export interface CircuitReport {
  /** Circuit tag (unique per circuit across the network). */
  tag: string
  serviceId: string
  /** The dialing identity. */
  identityId: string
  hostIdentityId?: string
  terminatorId?: string
  /** Ingress router (the reporter). */
  routerId: string
  terminatorRouterId?: string
  createdAt: string
}

export interface CircuitRecord extends CircuitReport {
  /** The router that reported it. */
  reportedBy: string
  reportedAt: string
}

export const MAX_CIRCUITS = 100_000

export class CircuitRegistry {
  private readonly byTag = new Map<string, CircuitRecord>()

  get size(): number {
    return this.byTag.size
  }

  /** Records reports from `routerId`. At capacity the oldest report is forgotten. */
  add(routerId: string, reports: CircuitReport[]): number {
    const at = new Date().toISOString()
    let n = 0
    for (const r of reports) {
      const prev = this.byTag.get(r.tag)
      if (prev && prev.reportedBy !== routerId) continue
      if (prev) this.byTag.delete(r.tag)
      while (this.byTag.size >= MAX_CIRCUITS) this.byTag.delete(this.byTag.keys().next().value!)
      this.byTag.set(r.tag, { ...r, routerId: r.routerId || routerId, reportedBy: routerId, reportedAt: at })
      n++
    }
    return n
  }

  /** Removes a circuit reported by `routerId`. Returns false if unknown or owned by another router. */
  remove(routerId: string, tag: string): boolean {
    const prev = this.byTag.get(tag)
    if (!prev || prev.reportedBy !== routerId) return false
    this.byTag.delete(tag)
    return true
  }

  /** Forgets every circuit reported by a router (it went away). */
  dropRouter(routerId: string): void {
    for (const [tag, c] of this.byTag) if (c.reportedBy === routerId) this.byTag.delete(tag)
  }

  list(q: { limit: number; offset: number; serviceId?: string; routerId?: string; identityId?: string }): {
    data: CircuitRecord[]
    totalCount: number
  } {
    const all = [...this.byTag.values()].filter(
      (c) =>
        (q.serviceId === undefined || c.serviceId === q.serviceId) &&
        (q.routerId === undefined || c.routerId === q.routerId || c.terminatorRouterId === q.routerId) &&
        (q.identityId === undefined || c.identityId === q.identityId || c.hostIdentityId === q.identityId),
    )
    all.sort((a, b) =>
      a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.tag.localeCompare(b.tag),
    )
    return { data: all.slice(q.offset, q.offset + q.limit), totalCount: all.length }
  }
}
