/**
 * The X25519 freeze (issue 18): bursts of e2e handshakes in processes with a small young
 * generation, which froze Node 20 within seconds (a GC during the export of a freshly generated
 * key deadlocked on the key-generation job's mutex). Three such processes run for a bounded time;
 * each must keep making progress and finish. Before the fix 2 of 4 runs of 8 s froze here.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const BURST = fileURLToPath(new URL('./fixtures/e2e-burst.js', import.meta.url))
const RUN_MS = 6000
/** No progress line for this long means the process is frozen (generous for a busy machine). */
const STALL_MS = 30_000

function runBurst(): Promise<{ done: number; misses: number; hits: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-semi-space-size=1', BURST, String(RUN_MS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    })
    let buf = ''
    let stderr = ''
    let last: { done?: number; stats?: { ephemeralHits: number; ephemeralMisses: number } } = {}
    let watchdog = setTimeout(stalled, STALL_MS)
    function stalled(): void {
      child.kill('SIGKILL')
      reject(new Error(`no progress for ${STALL_MS} ms: the process froze (last ${JSON.stringify(last)})`))
    }
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d
      let i = buf.indexOf('\n')
      while (i >= 0) {
        last = JSON.parse(buf.slice(0, i))
        buf = buf.slice(i + 1)
        i = buf.indexOf('\n')
        clearTimeout(watchdog)
        watchdog = setTimeout(stalled, STALL_MS)
      }
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    child.once('exit', (code) => {
      clearTimeout(watchdog)
      if (code !== 0 || last.done === undefined || last.stats === undefined) {
        reject(new Error(`burst exited ${code}: ${stderr.slice(-2000)}`))
        return
      }
      resolve({ done: last.done, hits: last.stats.ephemeralHits, misses: last.stats.ephemeralMisses })
    })
  })
}

describe('e2e handshakes under GC pressure', () => {
  it('three processes with a small young generation keep making progress and finish', async () => {
    const runs = await Promise.all([runBurst(), runBurst(), runBurst()])
    for (const r of runs) {
      assert.ok(r.done >= 64, `made ${r.done} handshakes`)
      // the pool grows with demand: after the first bursts, keys come from it
      assert.ok(r.hits > r.misses, `pool hits ${r.hits}, misses ${r.misses}`)
    }
  })
})
