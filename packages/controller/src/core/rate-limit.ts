/**
 * Failed-login limiter per (username, client IP): after `maxFailures` failures within `windowMs`
 * further attempts are refused (even with the right password) until the window passes. Bounded:
 * at most `maxKeys` keys are tracked (oldest evicted first).
 */
export class FailureLimiter {
  private readonly entries = new Map<string, { failures: number; first: number }>()
  constructor(
    readonly maxFailures = 5,
    readonly windowMs = 60_000,
    private readonly maxKeys = 10_000,
  ) {}

  /** Milliseconds until the key may try again, or 0. */
  blockedFor(key: string, now = Date.now()): number {
    const e = this.entries.get(key)
    if (!e) return 0
    if (now - e.first >= this.windowMs) {
      this.entries.delete(key)
      return 0
    }
    return e.failures >= this.maxFailures ? e.first + this.windowMs - now : 0
  }

  fail(key: string, now = Date.now()): void {
    const e = this.entries.get(key)
    if (!e || now - e.first >= this.windowMs) {
      this.entries.delete(key)
      if (this.entries.size >= this.maxKeys) {
        const oldest = this.entries.keys().next().value
        if (oldest !== undefined) this.entries.delete(oldest)
      }
      this.entries.set(key, { failures: 1, first: now })
    } else {
      e.failures++
    }
  }

  succeed(key: string): void {
    this.entries.delete(key)
  }

  /** Takes back one failure of `key` (an attempt counted up front that turned out to succeed). */
  forgive(key: string): void {
    const e = this.entries.get(key)
    if (!e) return
    if (e.failures <= 1) this.entries.delete(key)
    else e.failures--
  }
}
