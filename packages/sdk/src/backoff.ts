/** Options of a jittered exponential backoff. */
export interface BackoffOptions {
  /** First delay in ms. Default 250. */
  initialMs?: number
  /** Largest delay in ms. Default 30000. */
  maxMs?: number
}

/**
 * Jittered exponential backoff ("full jitter"): attempt n waits a random time in
 * [base/2, base] with base = min(max, initial * 2^n), so that many SDKs reconnecting after an
 * outage do not arrive together.
 */
export class Backoff {
  private attempt = 0
  private readonly initialMs: number
  private readonly maxMs: number
  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 250
    this.maxMs = opts.maxMs ?? 30_000
  }
  /** The delay before the next attempt (and counts the attempt). */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 20))
    this.attempt++
    return Math.round(base / 2 + Math.random() * (base / 2))
  }
  /** After a success: start again from the initial delay. */
  reset(): void {
    this.attempt = 0
  }
  get attempts(): number {
    return this.attempt
  }
}
