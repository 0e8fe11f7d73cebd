/**
 * Opt-in garbage-collector tuning for processes that forward bulk data over few circuits.
 *
 * Off by default: with it, a hosting process holding thousands of circuits at once stalled (the
 * bench's 10,000 idle circuits: dials timed out after 6,000 opened, in 2 of 3 runs; none without
 * it), so it is for bulk movers only, enabled with NULLPORT_GC_TUNING=on or the SDK's tune-gc.
 *
 * Why: every TLS read hands JavaScript a fresh Buffer, so a process forwarding 200 MB/s allocates
 * that much ArrayBuffer memory outside the JS heap, in objects whose JS part is tiny. V8 counts
 * these bytes as "external memory" and, once 64 MB more are outstanding than after the last full
 * collection, starts a full mark-compact. With V8's default young generation (it grows up to
 * 16 MB per semi-space) the small Buffer wrappers are not scavenged before that limit is hit, so a
 * router measured one mark-compact per ~17 MB forwarded (61 per GiB; about a fifth of its CPU in
 * marking and sweeping). Keeping the young generation at its initial size makes scavenges frequent
 * enough to free those Buffers first: 1 mark-compact per GiB instead of 61, and +30 to +40%
 * throughput on the SDK -> router -> SDK path (bench/README.md).
 *
 * It only works if applied before the process has allocated much (V8 does not shrink a young
 * generation that already grew), and it is process-wide (a V8 flag), so libraries do not apply it
 * on their own: with NULLPORT_GC_TUNING=on the `nullport` launcher (packages/cli/bin/nullport.js)
 * applies it first thing for `router run`, `tunnel run`, `tunnel proxy` and `quickstart`, before it
 * loads the CLI; SDK apps opt in with `node --import @nullport/sdk/tune-gc app.js`, or node with
 * `--max-semi-space-size=1` (same effect). A static `import` is too late: an ES module's whole
 * import graph is loaded before its first line runs. `NULLPORT_GC_TUNING=off` disables it.
 */
import { setFlagsFromString } from 'node:v8'

let applied = false

/** True when NULLPORT_GC_TUNING asks for the tuning (`on`, `1` or `true`): the opt-in of the launcher and the bench. */
export function gcTuningRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(on|1|true)$/i.test(env.NULLPORT_GC_TUNING ?? '')
}

/**
 * Keeps V8's young generation at its initial size (`--semi-space-growth-factor=1`): call it
 * before anything else runs (see above). Idempotent.
 * Returns true when the setting is in effect, false when disabled by NULLPORT_GC_TUNING=off.
 */
export function tuneGcForThroughput(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = String(env.NULLPORT_GC_TUNING ?? '').toLowerCase()
  if (v === 'off' || v === '0' || v === 'false') return false
  if (!applied) {
    setFlagsFromString('--semi-space-growth-factor=1')
    applied = true
  }
  return true
}
