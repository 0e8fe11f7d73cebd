/**
 * Terminator selection. A strategy sees the candidates a router can reach for one dial and picks
 * one. Precedence classes come first in every strategy (required < default < failed): a
 * `failed` terminator is used only when nothing better exists. New strategies implement
 * `TerminatorStrategy` and register in `STRATEGIES`.
 */
import {
  DEFAULT_TERMINATOR_STRATEGY,
  type Service,
  TERMINATOR_PRECEDENCE_RANK,
  type Terminator,
  type TerminatorStrategyName,
} from '@nullport/protocol'

export interface TerminatorCandidate {
  terminator: Terminator
  /** Path cost from this router to the terminator's router (0 when local). */
  routeCost: number
  /** Circuits this router knows to be open on the terminator (dynamic cost). */
  activeCircuits: number
}

export interface StrategyContext {
  serviceId: string
  dialerId: string
  /** Random source in [0, 1). */
  random: () => number
}

export interface TerminatorStrategy {
  readonly name: string
  select(candidates: readonly TerminatorCandidate[], ctx: StrategyContext): TerminatorCandidate | undefined
}

/** The candidates of the best precedence class present. */
export function bestPrecedenceClass(candidates: readonly TerminatorCandidate[]): TerminatorCandidate[] {
  let best = 3
  for (const c of candidates) best = Math.min(best, TERMINATOR_PRECEDENCE_RANK[c.terminator.precedence] ?? 1)
  return candidates.filter((c) => (TERMINATOR_PRECEDENCE_RANK[c.terminator.precedence] ?? 1) === best)
}

/** Total cost of a candidate: terminator cost + route cost. */
export function candidateCost(c: TerminatorCandidate): number {
  return c.terminator.cost + c.routeCost
}

/** smartrouting: best precedence class, then lowest cost + route cost; ties go to the least loaded, then random. */
export const smartRouting: TerminatorStrategy = {
  name: 'smartrouting',
  select(candidates, ctx) {
    const pool = bestPrecedenceClass(candidates)
    if (pool.length === 0) return undefined
    let min = Number.POSITIVE_INFINITY
    for (const c of pool) min = Math.min(min, candidateCost(c))
    let ties = pool.filter((c) => candidateCost(c) === min)
    let minLoad = Number.POSITIVE_INFINITY
    for (const c of ties) minLoad = Math.min(minLoad, c.activeCircuits)
    ties = ties.filter((c) => c.activeCircuits === minLoad)
    return ties[Math.floor(ctx.random() * ties.length)] ?? ties[0]
  },
}

/** random: uniformly among the best precedence class. */
export const randomStrategy: TerminatorStrategy = {
  name: 'random',
  select(candidates, ctx) {
    const pool = bestPrecedenceClass(candidates)
    if (pool.length === 0) return undefined
    return pool[Math.floor(ctx.random() * pool.length)] ?? pool[0]
  },
}

/** weighted: among the best precedence class, with probability proportional to 1 / (1 + cost + route cost). */
export const weightedStrategy: TerminatorStrategy = {
  name: 'weighted',
  select(candidates, ctx) {
    const pool = bestPrecedenceClass(candidates)
    if (pool.length === 0) return undefined
    const weights = pool.map((c) => 1 / (1 + Math.max(0, candidateCost(c))))
    const total = weights.reduce((a, b) => a + b, 0)
    let r = ctx.random() * total
    for (let i = 0; i < pool.length; i++) {
      r -= weights[i]!
      if (r < 0) return pool[i]
    }
    return pool[pool.length - 1]
  },
}

/** The strategies implemented here, by the protocol's strategy names (`sticky` is not, yet). */
export const STRATEGIES: Record<string, TerminatorStrategy> = {
  smartrouting: smartRouting,
  random: randomStrategy,
  weighted: weightedStrategy,
} satisfies Partial<Record<TerminatorStrategyName, TerminatorStrategy>>

/** The strategy for a service's `terminatorStrategy`; unknown names (and `sticky`, not yet) use smartrouting. */
export function strategyFor(name: Service['terminatorStrategy'] | string | undefined): TerminatorStrategy {
  return (
    (name !== undefined && Object.hasOwn(STRATEGIES, name) ? STRATEGIES[name] : undefined) ??
    STRATEGIES[DEFAULT_TERMINATOR_STRATEGY]!
  )
}
