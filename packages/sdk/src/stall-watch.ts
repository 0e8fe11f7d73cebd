/**
 * Event-loop stall detection: a process whose event loop is blocked answers nothing (no dial, no
 * accepted circuit, no PING), and from the outside looks alive. A context checks, with an unref'd
 * timer, how late its timer fires; a lateness past the bound is reported (the 'stall' event of a
 * context) instead of going unnoticed. It cannot report a loop that never runs again; it reports
 * every stall the loop comes back from, with how long it was.
 */
export interface StallReport {
  /** How much later than scheduled the check ran, in ms. */
  lagMs: number
  /** When the stall ended (epoch ms). */
  at: number
}

export class StallWatch {
  private timer: NodeJS.Timeout | null = null
  private expected = 0

  /**
   * @param thresholdMs lateness that counts as a stall
   * @param onStall called once per stall
   * @param periodMs how often the loop is sampled (default: a quarter of the threshold, 50..1000 ms)
   */
  constructor(
    readonly thresholdMs: number,
    private readonly onStall: (r: StallReport) => void,
    private readonly periodMs = Math.max(50, Math.min(1000, Math.floor(thresholdMs / 4))),
  ) {}

  start(): void {
    if (this.timer) return
    this.expected = Date.now() + this.periodMs
    this.timer = setInterval(() => this.check(), this.periodMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  private check(): void {
    const now = Date.now()
    const lag = now - this.expected
    this.expected = now + this.periodMs
    if (lag >= this.thresholdMs) this.onStall({ lagMs: lag, at: now })
  }
}
