/**
 * Capped exponential backoff for reconnects and retries (controller streams, routers, binds,
 * renewals, database LISTEN). Attempt n has the ceiling `min(maxMs, initialMs * factor^n)`; the
 * delay is drawn below it according to `jitter`, so that many clients reconnecting after an
 * outage do not arrive together.
 *
 * @example
 * const backoff = new Backoff({ initialMs: 250, maxMs: 10_000 })
 * const retry = (): void => { setTimeout(connect, backoff.next()) }
 * // after a success:
 * backoff.reset()
 */

/**
 * How a delay is drawn under the ceiling `c`: `half` uniform in [c/2, c] (default), `full`
 * uniform in [0, c], `none` exactly `c`.
 */
export type BackoffJitter = 'half' | 'full' | 'none'

export interface BackoffOptions {
  /** First ceiling in ms. Default 250. */
  initialMs?: number
  /** Largest delay in ms. Default 30000. */
  maxMs?: number
  /** Growth per attempt. Default 2. */
  factor?: number
  /** Default `half`. */
  jitter?: BackoffJitter
  /** Random source in [0, 1) (tests). Default Math.random. */
  random?: () => number
}

export class Backoff {
  readonly initialMs: number
  readonly maxMs: number
  readonly factor: number
  readonly jitter: BackoffJitter
  private readonly random: () => number
  private attempt = 0

  /** Throws RangeError naming the option when one is out of range. */
  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 250
    this.maxMs = opts.maxMs ?? 30_000
    this.factor = opts.factor ?? 2
    this.jitter = opts.jitter ?? 'half'
    if (!Number.isFinite(this.initialMs) || this.initialMs <= 0)
      throw new RangeError(`backoff initialMs must be > 0, got ${this.initialMs}`)
    if (!Number.isFinite(this.maxMs) || this.maxMs < this.initialMs)
      throw new RangeError(`backoff maxMs must be >= initialMs, got ${this.maxMs}`)
    if (!Number.isFinite(this.factor) || this.factor < 1)
      throw new RangeError(`backoff factor must be >= 1, got ${this.factor}`)
    if (this.jitter !== 'half' && this.jitter !== 'full' && this.jitter !== 'none')
      throw new RangeError(`backoff jitter must be "half", "full" or "none", got ${String(this.jitter)}`)
    this.random = opts.random ?? Math.random
  }

  /** The ceiling of the next delay (without jitter), without counting an attempt. */
  peekCeiling(): number {
    // Past the cap the exponent no longer matters; bound it so the power stays finite.
    return Math.min(this.maxMs, this.initialMs * this.factor ** Math.min(this.attempt, 64))
  }

  /** The delay before the next attempt, in whole ms (and counts the attempt). */
  next(): number {
    const ceil = this.peekCeiling()
    this.attempt++
    switch (this.jitter) {
      case 'none':
        return Math.round(ceil)
      case 'full':
        return Math.round(this.random() * ceil)
      default:
        return Math.round(ceil / 2 + (this.random() * ceil) / 2)
    }
  }

  /** After a success: start again from the initial delay. */
  reset(): void {
    this.attempt = 0
  }

  /** Attempts counted since the last reset. */
  get attempts(): number {
    return this.attempt
  }
}
