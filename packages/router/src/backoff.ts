/** Exponential backoff with full jitter, capped. */
export interface BackoffOptions {
  /** First delay ceiling in ms. Default 250. */
  baseMs?: number
  /** Largest delay in ms. Default 10000. */
  maxMs?: number
  /** Random source in [0, 1) (tests). Default Math.random. */
  random?: () => number
}

export class Backoff {
  readonly baseMs: number
  readonly maxMs: number
  private readonly random: () => number
  private attempt = 0

  constructor(opts: BackoffOptions = {}) {
    this.baseMs = opts.baseMs ?? 250
    this.maxMs = opts.maxMs ?? 10_000
    if (!Number.isFinite(this.baseMs) || this.baseMs <= 0)
      throw new RangeError(`backoff baseMs must be > 0, got ${this.baseMs}`)
    if (!Number.isFinite(this.maxMs) || this.maxMs < this.baseMs)
      throw new RangeError(`backoff maxMs must be >= baseMs, got ${this.maxMs}`)
    this.random = opts.random ?? Math.random
  }

  /** The next delay: uniform in [ceil/2, ceil] where ceil = min(max, base * 2^attempt). */
  next(): number {
    const ceil = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30))
    this.attempt++
    return Math.round(ceil / 2 + (this.random() * ceil) / 2)
  }

  reset(): void {
    this.attempt = 0
  }

  get attempts(): number {
    return this.attempt
  }
}
