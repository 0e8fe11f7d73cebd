/**
 * The options a service and its terminators carry for terminator selection: the strategy a
 * router uses to pick one terminator of a service, and the precedence classes of terminators.
 * One list each, shared by the controller's schemas, the router's strategies, the SDK's listen
 * options and the CLI flags (in this order in help texts and error messages).
 *
 * @example
 * if (!isTerminatorPrecedence(p)) throw new Error(`precedence must be one of ${TERMINATOR_PRECEDENCES.join(', ')}`)
 */

/** Strategies a service may name (`terminatorStrategy`). */
export const TERMINATOR_STRATEGIES = ['smartrouting', 'weighted', 'random', 'sticky'] as const
export type TerminatorStrategyName = (typeof TERMINATOR_STRATEGIES)[number]
/** A service's strategy when none is given. */
export const DEFAULT_TERMINATOR_STRATEGY: TerminatorStrategyName = 'smartrouting'

/** Precedence classes of a terminator (`precedence`, an identity's `defaultHostingPrecedence`). */
export const TERMINATOR_PRECEDENCES = ['default', 'required', 'failed'] as const
export type TerminatorPrecedence = (typeof TERMINATOR_PRECEDENCES)[number]
/** A terminator's precedence when none is given. */
export const DEFAULT_TERMINATOR_PRECEDENCE: TerminatorPrecedence = 'default'

/**
 * The order in which precedence classes are tried (lower first): every strategy picks among
 * the `required` terminators if there are any, then `default`, and `failed` only when nothing
 * better exists.
 */
export const TERMINATOR_PRECEDENCE_RANK: Readonly<Record<TerminatorPrecedence, number>> = Object.freeze({
  required: 0,
  default: 1,
  failed: 2,
})

export function isTerminatorStrategy(value: unknown): value is TerminatorStrategyName {
  return typeof value === 'string' && (TERMINATOR_STRATEGIES as readonly string[]).includes(value)
}

export function isTerminatorPrecedence(value: unknown): value is TerminatorPrecedence {
  return typeof value === 'string' && (TERMINATOR_PRECEDENCES as readonly string[]).includes(value)
}
