/**
 * `npm run bench` in CI: runs `node bench/run.mjs --quick --paths direct,nullport-sdk` (real
 * controller, router, hosting SDK, backend and load generator processes) into a temp directory
 * and checks the shape of the JSON result, the sha256 checks of every transfer, and that the
 * markdown table and the SVG chart were written. No timing assertions: speed is what the bench
 * reports, not what a test can rely on.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { REPO_ROOT } from '@nullport/testkit'

const RUN = join(REPO_ROOT, 'bench/run.mjs')

let out: string
let run: { code: number; stdout: string; stderr: string }

before(async () => {
  out = await mkdtemp(join(tmpdir(), 'nullport-bench-smoke-'))
  run = await new Promise((done) => {
    execFile(
      process.execPath,
      [RUN, '--quick', '--paths', 'direct,nullport-sdk', '--out', out],
      { env: { ...process.env, NODE_OPTIONS: '' }, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        done({ code, stdout, stderr })
      },
    )
  })
})

after(async () => {
  await rm(out, { recursive: true, force: true })
})

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

test('bench --quick exits 0 and writes latest-quick.json, .md, .svg and a timestamped copy', async () => {
  assert.equal(run.code, 0, `bench/run.mjs failed (${run.code}):\n${run.stderr.slice(-4000)}`)
  const files = await readdir(out)
  for (const f of ['latest-quick.json', 'latest-quick.md', 'latest-quick.svg'])
    assert.ok(files.includes(f), `${f} missing: ${files}`)
  assert.ok(
    files.some((f) => /^quick-\d{4}-\d{2}-\d{2}T\d{6}Z\.json$/.test(f)),
    `no timestamped copy: ${files}`,
  )
})

test('the JSON result has every figure for both paths, and every transfer passed its sha256 check', async () => {
  // biome-ignore lint/suspicious/noExplicitAny: JSON of a known shape, checked field by field
  const r: any = JSON.parse(await readFile(join(out, 'latest-quick.json'), 'utf8'))
  assert.equal(r.schema, 'nullport-bench/1')
  assert.equal(r.quick, true)
  assert.ok(r.ok, 'result.ok is false')
  assert.equal(r.machine.loadavgStart.length, 3)
  assert.equal(r.machine.loadavgEnd.length, 3)
  assert.deepEqual(
    // biome-ignore lint/suspicious/noExplicitAny: see above
    r.paths.map((p: any) => p.path),
    ['direct', 'nullport-sdk'],
  )
  for (const p of r.paths) {
    assert.equal(p.error, undefined, `${p.path}: ${p.error}`)
    for (const [name, b, streams] of [
      ['bulk1', p.bulk1, 1],
      ['bulk8', p.bulk8, 8],
    ]) {
      assert.equal(b.streams, streams, `${p.path} ${name} streams`)
      assert.ok(isNum(b.gbitPerSec) && b.gbitPerSec > 0, `${p.path} ${name} gbitPerSec`)
      assert.ok(b.bytes > 0, `${p.path} ${name} bytes`)
      assert.equal(b.sha256.length, streams, `${p.path} ${name}: one sha256 check per stream`)
      for (const s of b.sha256) {
        assert.match(s.digest, /^[0-9a-f]{64}$/)
        assert.equal(
          s.digest,
          s.expected,
          `${p.path} ${name}: the receiver's sha256 differs from the sender's`,
        )
        assert.equal(s.ok, true)
      }
      assert.equal(b.sha256Ok, true)
    }
    assert.equal(p.sha256Ok, true)
    assert.ok(isNum(p.pingpong.p50us) && isNum(p.pingpong.p99us) && p.pingpong.p99us >= p.pingpong.p50us)
    assert.equal(p.pingpong.size, 64)
    assert.ok(isNum(p.setup.p50ms) && isNum(p.setup.p99ms) && p.setup.p99ms >= p.setup.p50ms)
    assert.ok(isNum(p.cpu.secPerGiB) && p.cpu.secPerGiB >= 0)
    assert.ok(isNum(p.cpu.bySecPerGiB.loadgen) && isNum(p.cpu.bySecPerGiB.backend))
    for (const name of p.processes) {
      assert.ok(
        isNum(p.pausedReader.rssPausedKiB[name]) && p.pausedReader.rssPausedKiB[name] > 0,
        `${p.path}: RSS of ${name}`,
      )
    }
  }
  const sdk = r.paths[1]
  assert.deepEqual(sdk.processes, ['router-a', 'sdk-host1', 'loadgen', 'backend'])
  assert.ok(sdk.idleCircuits.circuits > 0, 'idle circuits opened')
  assert.equal(
    sdk.idleCircuits.failed,
    0,
    `idle circuits failed: ${sdk.idleCircuits.firstError} (${JSON.stringify(sdk.idleCircuits)}; load ${r.machine.loadavgEnd})`,
  )
  assert.ok(isNum(sdk.idleCircuits.routerKiBPerCircuit))
})

test('the markdown table has a row per path with ratios to direct', async () => {
  const md = await readFile(join(out, 'latest-quick.md'), 'utf8')
  assert.match(md, /\| path \| 1 stream Gbit\/s \| 8 streams Gbit\/s \|/)
  assert.match(md, /\n\| direct \| [\d.]+ \|/)
  assert.match(md, /\n\| nullport-sdk \| [\d.]+ \([\d.]+x\) \|/)
  assert.match(md, /load average at start/)
  const svg = await readFile(join(out, 'latest-quick.svg'), 'utf8')
  assert.ok(svg.startsWith('<svg'), 'SVG chart')
  assert.match(svg, /nullport-sdk/)
})
