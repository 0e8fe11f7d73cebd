/**
 * The one polling wait of the tests: for a condition that no event announces (a counter in
 * another component, a log line in a file, a state behind an HTTP endpoint).
 *
 * @example
 * await waitFor(() => router.stats().links.includes('r-b'), { what: 'link up' })
 * const view = await waitFor(async () => (await fetchStatus(addr)).services.find((s) => s.name === 'late'))
 */

export interface WaitForOptions {
  /** Give up after this many milliseconds. Default 10 000. */
  timeoutMs?: number
  /** Milliseconds between two checks. Default 25. */
  intervalMs?: number
  /** What is awaited, for the error message. Default `condition`. */
  what?: string
}

/** A value that means "not yet". */
type NotYet = false | null | undefined

/**
 * Calls `check` until it returns something other than `false`, `null` or `undefined` and
 * resolves with that value; rejects with `timed out after N ms waiting for WHAT` when
 * `timeoutMs` has passed. A check that throws rejects at once.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<Exclude<T, NotYet>> {
  const timeoutMs = opts.timeoutMs ?? 10_000
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== false && v !== null && v !== undefined) return v as Exclude<T, NotYet>
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}`)
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25))
  }
}
