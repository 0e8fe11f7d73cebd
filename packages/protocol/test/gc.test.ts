import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'

const indexUrl = new URL('../src/index.js', import.meta.url).href

/** Runs a child that (maybe) tunes the GC, churns objects that survive a while, reports new space. */
function run(env: Record<string, string>): { tuned: boolean; start: number; end: number } {
  const script = `
    import v8 from 'node:v8'
    const { tuneGcForThroughput } = await import(${JSON.stringify(indexUrl)})
    const tuned = tuneGcForThroughput()
    const again = tuneGcForThroughput()
    if (again !== tuned) throw new Error('not idempotent')
    const ns = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size
    const start = ns()
    const ring = new Array(50000)
    for (let i = 0; i < 3000000; i++) ring[i % ring.length] = { i, a: [i, i + 1], s: 'x' + (i % 1000) }
    process.stdout.write(JSON.stringify({ tuned, start, end: ns() }))
  `
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    encoding: 'utf8',
  })
  return JSON.parse(out)
}

test('tuneGcForThroughput keeps the young generation at its initial size; NULLPORT_GC_TUNING=off leaves V8 alone', () => {
  const tuned = run({ NULLPORT_GC_TUNING: '' })
  const off = run({ NULLPORT_GC_TUNING: 'off' })
  assert.equal(tuned.tuned, true)
  assert.equal(off.tuned, false)
  // V8's default grows new space under this load (the behaviour the tuning exists to prevent)...
  assert.ok(off.end > off.start, `untuned new space should grow: ${JSON.stringify(off)}`)
  // ...and the tuned process keeps it where it started.
  assert.equal(tuned.end, tuned.start, JSON.stringify(tuned))
})

test('gcTuningRequested: only on, 1 or true opt in', async () => {
  const { gcTuningRequested } = await import('../src/gc.js')
  for (const v of ['on', 'ON', '1', 'true'])
    assert.equal(gcTuningRequested({ NULLPORT_GC_TUNING: v }), true, v)
  for (const v of ['', 'off', '0', 'false', 'yes', undefined])
    assert.equal(gcTuningRequested(v === undefined ? {} : { NULLPORT_GC_TUNING: v }), false, String(v))
})
