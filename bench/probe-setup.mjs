#!/usr/bin/env node
// Diagnostic: where does connection setup time go? Starts the bench overlay (controller, router,
// hosting SDK app, backend) and dials from this process, timing each phase per service:
// dial() until 'connect' (DIAL -> host -> DIAL_SUCCESS, e2e handshake included), then the first
// byte back through host -> backend. Usage: node bench/probe-setup.mjs [iterations]
import './lib/gc-first.mjs'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const { loadContext } = await import('../packages/sdk/dist/src/index.js')
const { startOverlay } = await import('./lib/overlay.mjs')
const { start } = await import('./lib/proc.mjs')

const N = Number(process.argv[2] ?? 500)
const dir = mkdtempSync(join(tmpdir(), 'np-probe-'))
const backend = start(
  'backend',
  process.execPath,
  [new URL('./lib/backend.mjs', import.meta.url).pathname],
  {},
)
const backendPort = (await backend.waitLine((l) => l?.ready === true)).port
const profDir = process.env.PROBE_PROF_DIR
const overlay = await startOverlay({ dir, backendPort, ...(profDir ? { profDir } : {}) })
const signalAll = () => {
  for (const p of Object.values(overlay.procs)) process.kill(p.pid ?? p.child?.pid, 'SIGUSR2')
}
const ctx = await loadContext(overlay.identities.dialer)
console.log(JSON.stringify({ router: overlay.procs['router-a'].address, backendPort }))
const pct = (a, p) => a[Math.min(a.length - 1, Math.floor((a.length * p) / 100))]
try {
  const bulkMiB = Number(process.env.PROBE_BULK_MIB ?? 0)
  if (bulkMiB > 0) {
    // one bulk transfer to the sink ('S' + u64 length), for perf/profiling of the data path
    const s = await ctx.dial(process.env.PROBE_BULK_SERVICE ?? 'bench-e2e')
    const hdr = Buffer.alloc(9)
    hdr.write('S')
    hdr.writeBigUInt64BE(BigInt(bulkMiB) * 1048576n, 1)
    s.write(hdr)
    const chunk = Buffer.alloc(1048576, 7)
    const pids = Object.fromEntries(Object.entries(overlay.procs).map(([k, p]) => [k, p.pid]))
    console.log(JSON.stringify({ bulkStart: true, pids, self: process.pid }))
    await new Promise((r) => setTimeout(r, Number(process.env.PROBE_BULK_DELAY_MS ?? 0)))
    const t0 = performance.now()
    for (let i = 0; i < bulkMiB; i++) if (!s.write(chunk)) await new Promise((r) => s.once('drain', r))
    const reply = await new Promise((r) => s.once('data', r))
    const secs = (performance.now() - t0) / 1000
    console.log(
      JSON.stringify({
        bulkMiB,
        gbps: ((bulkMiB * 8 * 1.048576) / 1000 / secs).toFixed(2),
        reply: reply.length,
      }),
    )
    s.destroy()
    if (process.env.PROBE_GC) {
      for (const [name, p] of Object.entries(overlay.procs)) {
        const gc = (p.lines ?? []).filter(
          (l) => typeof l === 'string' && /Scavenge|Mark-Compact|Mark-sweep/.test(l),
        )
        const kinds = {}
        for (const l of gc) {
          const k = /Scavenge/.test(l) ? 'scavenge' : 'mark'
          kinds[k] = (kinds[k] ?? 0) + 1
        }
        console.log(
          name,
          JSON.stringify(kinds),
          gc
            .filter((l) => !/Scavenge/.test(l))
            .slice(-3)
            .join('\n'),
        )
      }
    }
  }
  const idle = Number(process.env.PROBE_IDLE ?? 0)
  if (idle > 0) {
    // many idle circuits at once (the bench's router-memory test), then report each process
    const held = []
    let failed = 0
    let firstError = null
    let next = 0
    const t0 = performance.now()
    const worker = async () => {
      while (next < idle) {
        next++
        try {
          const s = await ctx.dial('bench-idle', { timeoutMs: 30_000 })
          s.on('error', () => {})
          held.push(s)
        } catch (err) {
          failed++
          firstError ??= String(err?.message ?? err)
          if (failed > 200) return
        }
      }
    }
    await Promise.all(Array.from({ length: 64 }, worker))
    console.log(
      JSON.stringify({
        idle,
        opened: held.length,
        failed,
        firstError,
        seconds: (performance.now() - t0) / 1000,
      }),
    )
    for (const [name, p] of Object.entries(overlay.procs)) {
      console.log(
        name,
        'exit:',
        p.child.exitCode,
        p.child.signalCode,
        'stderr:',
        String(p.stderr ?? '').slice(-3000),
        'lines:',
        JSON.stringify((p.lines ?? []).slice(-5)),
      )
    }
    for (const s of held) s.destroy()
  }
  const services =
    process.env.PROBE_SERVICES !== undefined
      ? process.env.PROBE_SERVICES.split(',').filter(Boolean)
      : ['bench-plain', 'bench-e2e', 'bench-plain', 'bench-e2e']
  for (const [k, service] of services.entries()) {
    if (profDir && k === services.length - 1) signalAll()
    const dialT = []
    const firstT = []
    for (let i = 0; i < N + 50; i++) {
      const t0 = performance.now()
      const s = await ctx.dial(service)
      s.on('error', () => {})
      const t1 = performance.now()
      s.write('H')
      await new Promise((r) => s.once('data', r))
      const t2 = performance.now()
      s.destroy()
      if (i >= 50) {
        dialT.push(t1 - t0)
        firstT.push(t2 - t1)
      }
    }
    dialT.sort((a, b) => a - b)
    firstT.sort((a, b) => a - b)
    console.log(
      `${service.padEnd(12)} dial p50 ${pct(dialT, 50).toFixed(3)} ms p90 ${pct(dialT, 90).toFixed(3)} | first byte p50 ${pct(firstT, 50).toFixed(3)} ms p90 ${pct(firstT, 90).toFixed(3)}`,
    )
  }
  if (profDir) {
    signalAll()
    await new Promise((r) => setTimeout(r, 1000))
  }
} finally {
  await ctx.close().catch(() => {})
  await overlay.stop()
  backend.stop()
  rmSync(dir, { recursive: true, force: true })
}
