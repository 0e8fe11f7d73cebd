import assert from 'node:assert/strict'
import { test } from 'node:test'
import { allRoutes, buildGraph, routesChanged, shortestPaths } from '../src/routing/dijkstra.js'
import { RouteManager } from '../src/routing/route-manager.js'

const nodes = (ids: string[], cost: Record<string, number> = {}) =>
  ids.map((id) => ({ id, cost: cost[id] ?? 0 }))
const both = (a: string, b: string, latencyMs: number) => [
  { from: a, to: b, latencyMs },
  { from: b, to: a, latencyMs },
]

test('dijkstra: direct link vs cheaper two-hop path', () => {
  const edges = [...both('a', 'b', 10), ...both('b', 'c', 10), ...both('a', 'c', 50)]
  const r = shortestPaths(buildGraph(nodes(['a', 'b', 'c']), edges), 'a')
  assert.deepEqual(r.nextHop, { b: 'b', c: 'b' })
  assert.deepEqual(r.cost, { b: 10, c: 20 })
})

test('dijkstra: static cost of the entered router is added', () => {
  // Via b is 10+10 = 20 on latency alone, but entering b costs 100 more.
  const edges = [...both('a', 'b', 10), ...both('b', 'c', 10), ...both('a', 'c', 50)]
  const r = shortestPaths(buildGraph(nodes(['a', 'b', 'c'], { b: 100 }), edges), 'a')
  assert.equal(r.nextHop.c, 'c')
  assert.equal(r.cost.c, 50)
  assert.equal(r.cost.b, 110)
})

test('dijkstra: unreachable routers are absent; unknown routers and self links ignored', () => {
  const edges = [
    ...both('a', 'b', 5),
    { from: 'a', to: 'ghost', latencyMs: 1 },
    { from: 'a', to: 'a', latencyMs: 0 },
  ]
  const r = shortestPaths(buildGraph(nodes(['a', 'b', 'c']), edges), 'a')
  assert.deepEqual(Object.keys(r.nextHop), ['b'])
  assert.equal(r.nextHop.c, undefined)
})

test('dijkstra: ties break deterministically on the smaller next hop', () => {
  const edges = [...both('s', 'x', 5), ...both('s', 'y', 5), ...both('x', 'd', 5), ...both('y', 'd', 5)]
  for (let i = 0; i < 5; i++) {
    const r = shortestPaths(buildGraph(nodes(['s', 'y', 'x', 'd']), edges.slice().reverse()), 's')
    assert.equal(r.nextHop.d, 'x')
  }
})

test('dijkstra: a larger graph matches brute-force Floyd-Warshall', () => {
  const ids = Array.from({ length: 30 }, (_, i) => `r${String(i).padStart(2, '0')}`)
  let seed = 42
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
  const cost: Record<string, number> = {}
  for (const id of ids) cost[id] = Math.floor(rnd() * 20)
  const edges: Array<{ from: string; to: string; latencyMs: number }> = []
  for (const a of ids)
    for (const b of ids)
      if (a !== b && rnd() < 0.15) edges.push({ from: a, to: b, latencyMs: Math.floor(rnd() * 100) })
  const n = nodes(ids, cost)
  const dist = new Map<string, number>()
  const k = (a: string, b: string) => `${a}>${b}`
  for (const a of ids) dist.set(k(a, a), 0)
  for (const e of edges)
    dist.set(k(e.from, e.to), Math.min(dist.get(k(e.from, e.to)) ?? Infinity, e.latencyMs + cost[e.to]!))
  for (const m of ids)
    for (const a of ids)
      for (const b of ids) {
        const via = (dist.get(k(a, m)) ?? Infinity) + (dist.get(k(m, b)) ?? Infinity)
        if (via < (dist.get(k(a, b)) ?? Infinity)) dist.set(k(a, b), via)
      }
  const all = allRoutes(n, edges)
  for (const a of ids) {
    const r = all.get(a)!
    for (const b of ids) {
      if (a === b) continue
      const want = dist.get(k(a, b))
      if (want === undefined || want === Infinity) assert.equal(r.cost[b], undefined)
      else {
        assert.equal(r.cost[b], want, `${a}->${b}`)
        // The next hop is a neighbour on a shortest path.
        const hop = r.nextHop[b]!
        const e = edges.find((x) => x.from === a && x.to === hop)!
        assert.ok(e, `${a}->${hop} is an edge`)
        const rest = hop === b ? 0 : dist.get(k(hop, b))!
        assert.equal(e.latencyMs + cost[hop]! + rest, want)
      }
    }
  }
})

test('routesChanged ignores jitter, reports next-hop and reachability changes', () => {
  const base = { nextHop: { b: 'b', c: 'b' }, cost: { b: 10, c: 20 } }
  assert.equal(routesChanged(undefined, base), true)
  assert.equal(routesChanged(base, { nextHop: { b: 'b', c: 'b' }, cost: { b: 11, c: 21 } }), false)
  assert.equal(routesChanged(base, { nextHop: { b: 'b', c: 'b' }, cost: { b: 10, c: 40 } }), true)
  assert.equal(routesChanged(base, { nextHop: { b: 'b', c: 'c' }, cost: { b: 10, c: 20 } }), true)
  assert.equal(routesChanged(base, { nextHop: { b: 'b' }, cost: { b: 10 } }), true)
})

test('RouteManager: one-sided reports are symmetric, pushes only meaningful changes, drops offline routers', () => {
  const rm = new RouteManager()
  rm.setLinks('a', [{ routerId: 'b', latencyMs: 10 }])
  rm.setLinks('b', [{ routerId: 'c', latencyMs: 10 }])
  const n = nodes(['a', 'b', 'c'])
  const first = rm.recompute(n)
  assert.equal(first.size, 3)
  assert.equal(first.get('a')!.nextHop.c, 'b')
  assert.equal(first.get('c')!.nextHop.a, 'b')
  const v = first.get('a')!.version
  // Jitter: nothing to push.
  rm.setLinks('a', [{ routerId: 'b', latencyMs: 11 }])
  assert.equal(rm.recompute(n).size, 0)
  // A direct a-c link that is faster changes a's and c's tables (and not b's).
  rm.setLinks('c', [
    { routerId: 'a', latencyMs: 3 },
    { routerId: 'b', latencyMs: 10 },
  ])
  const second = rm.recompute(n)
  assert.deepEqual([...second.keys()].sort(), ['a', 'c'])
  assert.equal(second.get('a')!.nextHop.c, 'c')
  assert.ok(second.get('a')!.version > v)
  assert.equal(rm.current('b')!.version, v)
  // c goes offline: a and b lose the destination.
  const third = rm.recompute(nodes(['a', 'b']))
  assert.deepEqual(third.get('a')!.nextHop, { b: 'b' })
  assert.equal(rm.current('c'), undefined)
  assert.ok(rm.links().some((l) => l.from === 'c' && l.to === 'a' && l.latencyMs === 3))
})
