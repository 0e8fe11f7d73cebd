/**
 * Opt-in: `node --import @nullport/sdk/tune-gc app.js` for an app that moves bulk data over few
 * circuits (not for processes that hold thousands of circuits at once: see docs/architecture.md):
 * keeps V8's young generation at its initial size so that the Buffers every TLS read
 * allocates are freed by cheap scavenges instead of piling up into full mark-compacts (measured:
 * 61 mark-compacts per GiB forwarded without it, 1 with it; +30 to +40% throughput on the
 * SDK -> router -> SDK path). Same effect as `node --max-semi-space-size=1`. It must run before the
 * app allocates much: an ES module's static imports are all loaded before its first line runs, and
 * loading a large module graph already grows the young generation, hence `--import` (or a first
 * line that loads the rest of the app with `await import()`). `NULLPORT_GC_TUNING=off` disables
 * it. Details: @nullport/protocol gc.ts.
 */
import { tuneGcForThroughput } from '@nullport/protocol/gc'

tuneGcForThroughput()
