// Summarizes a .cpuprofile (V8 CPU profile JSON): self time per function (name, file:line),
// top N, as fractions of the sampled time. Usage: node profile.mjs FILE [N]
import { readFileSync } from 'node:fs'

export function summarize(file, top = 12) {
  const prof = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(prof.nodes.map((n) => [n.id, n]))
  // samples under the profiler hook itself (starting the profiler) are not the workload
  const skip = new Set()
  const mark = (id, under) => {
    const n = byId.get(id)
    const u = under || (n.callFrame.url ?? '').includes('prof-hook')
    if (u) skip.add(id)
    for (const c of n.children ?? []) mark(c, u)
  }
  mark(prof.nodes[0].id, false)
  const self = new Map()
  let total = 0
  let idle = 0
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0
    const node = byId.get(prof.samples[i])
    if (!node || skip.has(node.id)) continue
    total += dt
    if (node.callFrame.functionName === '(idle)') idle += dt
    const cf = node.callFrame
    const url = (cf.url || '')
      .replace(/^file:\/\//, '')
      .replace(/.*\/packages\//, 'packages/')
      .replace(/.*\/node_modules\//, 'node_modules/')
    const key = `${cf.functionName || '(anonymous)'} ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim()
    self.set(key, (self.get(key) ?? 0) + dt)
  }
  const rows = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, us]) => ({
      fn,
      ms: +(us / 1000).toFixed(1),
      pct: +((100 * us) / Math.max(1, total)).toFixed(1),
    }))
  return {
    file,
    sampledMs: +(total / 1000).toFixed(1),
    busyPct: +((100 * (total - idle)) / Math.max(1, total)).toFixed(1),
    top: rows,
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const s = summarize(process.argv[2], Number(process.argv[3] ?? 15))
  console.log(`${s.file}: ${s.sampledMs} ms sampled`)
  for (const r of s.top) console.log(`${String(r.pct).padStart(5)}%  ${String(r.ms).padStart(8)} ms  ${r.fn}`)
}
