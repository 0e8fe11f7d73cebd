/**
 * Shortest paths over the router link graph. Edge cost u -> v = measured latency of the link
 * (ms) + the static `cost` of v (the router being entered). Pure functions, no I/O.
 */

export interface RoutingNode {
  id: string
  /** Static cost added when a path enters this router. */
  cost: number
}

export interface RoutingEdge {
  from: string
  to: string
  latencyMs: number
}

export interface ComputedRoutes {
  /** destination -> next hop (equal to the destination for a direct link). */
  nextHop: Record<string, string>
  /** destination -> total path cost. */
  cost: Record<string, number>
}

/** A binary min-heap keyed by number. */
class MinHeap<T> {
  private readonly items: Array<{ key: number; value: T }> = []
  get size(): number {
    return this.items.length
  }
  push(key: number, value: T): void {
    const a = this.items
    a.push({ key, value })
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (a[p]!.key <= a[i]!.key) break
      ;[a[p], a[i]] = [a[i]!, a[p]!]
      i = p
    }
  }
  pop(): { key: number; value: T } | undefined {
    const a = this.items
    if (a.length === 0) return undefined
    const top = a[0]!
    const last = a.pop()!
    if (a.length > 0) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && a[l]!.key < a[m]!.key) m = l
        if (r < a.length && a[r]!.key < a[m]!.key) m = r
        if (m === i) break
        ;[a[m], a[i]] = [a[i]!, a[m]!]
        i = m
      }
    }
    return top
  }
}

/** Adjacency list from nodes and directed edges; edges to or from unknown nodes are dropped. */
export function buildGraph(
  nodes: RoutingNode[],
  edges: RoutingEdge[],
): Map<string, Array<{ to: string; weight: number }>> {
  const byId = new Map(nodes.map((n) => [n.id, n]))
  const adj = new Map<string, Array<{ to: string; weight: number }>>()
  for (const n of nodes) adj.set(n.id, [])
  for (const e of edges) {
    const to = byId.get(e.to)
    if (!to || !byId.has(e.from) || e.from === e.to) continue
    if (!Number.isFinite(e.latencyMs) || e.latencyMs < 0) continue
    adj.get(e.from)!.push({ to: e.to, weight: e.latencyMs + Math.max(0, to.cost) })
  }
  return adj
}

/**
 * Dijkstra from `source`. Ties are broken by the lexicographically smaller next hop so the result
 * is deterministic. Unreachable destinations are absent.
 */
export function shortestPaths(
  adj: Map<string, Array<{ to: string; weight: number }>>,
  source: string,
): ComputedRoutes {
  const dist = new Map<string, number>()
  const first = new Map<string, string>()
  const done = new Set<string>()
  const heap = new MinHeap<string>()
  if (!adj.has(source)) return { nextHop: {}, cost: {} }
  dist.set(source, 0)
  heap.push(0, source)
  while (heap.size > 0) {
    const { key: d, value: u } = heap.pop()!
    if (done.has(u)) continue
    if (d > (dist.get(u) ?? Number.POSITIVE_INFINITY)) continue
    done.add(u)
    for (const { to, weight } of adj.get(u) ?? []) {
      if (done.has(to)) continue
      const nd = d + weight
      const hop = u === source ? to : first.get(u)!
      const cur = dist.get(to)
      if (cur === undefined || nd < cur || (nd === cur && hop < first.get(to)!)) {
        dist.set(to, nd)
        first.set(to, hop)
        heap.push(nd, to)
      }
    }
  }
  const nextHop: Record<string, string> = {}
  const cost: Record<string, number> = {}
  for (const [id, d] of dist) {
    if (id === source) continue
    nextHop[id] = first.get(id)!
    cost[id] = Math.round(d * 1000) / 1000
  }
  return { nextHop, cost }
}

/** Routes for every node. */
export function allRoutes(nodes: RoutingNode[], edges: RoutingEdge[]): Map<string, ComputedRoutes> {
  const adj = buildGraph(nodes, edges)
  const out = new Map<string, ComputedRoutes>()
  for (const n of nodes) out.set(n.id, shortestPaths(adj, n.id))
  return out
}

/**
 * Whether a new table differs meaningfully from the previous one: a destination appeared or
 * disappeared, a next hop changed, or a cost moved by more than `relative` (default 20%) and more
 * than `absoluteMs` (default 2 ms). Small jitter in latency does not cause a push.
 */
export function routesChanged(
  prev: ComputedRoutes | undefined,
  next: ComputedRoutes,
  opts: { relative?: number; absoluteMs?: number } = {},
): boolean {
  if (!prev) return true
  const relative = opts.relative ?? 0.2
  const absoluteMs = opts.absoluteMs ?? 2
  const a = Object.keys(prev.nextHop)
  const b = Object.keys(next.nextHop)
  if (a.length !== b.length) return true
  for (const dest of b) {
    if (prev.nextHop[dest] !== next.nextHop[dest]) return true
    const pc = prev.cost[dest] ?? 0
    const nc = next.cost[dest] ?? 0
    const diff = Math.abs(pc - nc)
    if (diff > absoluteMs && diff > relative * Math.max(pc, nc)) return true
  }
  return false
}
