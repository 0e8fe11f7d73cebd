#!/usr/bin/env node
// `npm run bench`: what Nullport costs, on one machine and in one run, against a plain TCP
// connection and against the mTLS tunnels users would otherwise deploy (stunnel, haproxy, nginx
// stream). Every path forwards to the same backend (bench/lib/backend.mjs); the load comes from a
// separate process per path (bench/lib/loadgen.mjs). Results: bench/results/latest.{json,md,svg}
// and a timestamped copy. See bench/README.md.
//
// Usage: node bench/run.mjs [--quick] [--paths direct,stunnel,...] [--no-profile] [--out DIR]
import { fork } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { makePki, PEERS } from './lib/peers.mjs'
import { cpuSnapshot, killAllChildren, rssSnapshot, sleep, start, track } from './lib/proc.mjs'
import { summarize } from './lib/profile.mjs'
import { renderMarkdown, renderSvg } from './lib/report.mjs'

const ALL_PATHS = [
  'direct',
  'stunnel',
  'haproxy',
  'nginx',
  'nullport-sdk',
  'nullport-sdk-plain',
  'nullport-tunnel',
  'nullport-2routers',
]
const DESCRIBE = {
  direct: 'loadgen -> backend (plain TCP, the physical limit)',
  stunnel: 'loadgen -> stunnel client -> mTLS -> stunnel server -> backend',
  haproxy: 'loadgen -> haproxy -> mTLS -> haproxy -> backend',
  nginx: 'loadgen -> nginx stream -> mTLS -> nginx stream -> backend',
  'nullport-sdk':
    'loadgen (SDK dial) -> TLS -> router -> TLS -> SDK host -> backend, end-to-end encryption on',
  'nullport-sdk-plain': 'same as nullport-sdk with encryptionRequired=false (no e2e layer; TLS hops only)',
  'nullport-tunnel':
    'loadgen -> tunneler local port proxy -> router -> tunneler host mode -> backend (e2e on)',
  'nullport-2routers': 'loadgen (SDK dial) -> router A -> link -> router B -> SDK host -> backend (e2e on)',
}

const args = process.argv.slice(2)
const flag = (n) => args.includes(`--${n}`)
const opt = (n, d) => {
  const i = args.indexOf(`--${n}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : d
}
const QUICK = flag('quick')
// GC tuning (@nullport/protocol gc.ts) is opt-in: --gc-tuning runs every Nullport process of the
// bench with it (children inherit the variable), for comparing; by default V8's defaults.
const GC_TUNING = flag('gc-tuning')
if (GC_TUNING) process.env.NULLPORT_GC_TUNING = 'on'
else delete process.env.NULLPORT_GC_TUNING
const paths = opt('paths', ALL_PATHS.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
for (const p of paths)
  if (!ALL_PATHS.includes(p)) throw new Error(`unknown path ${p}; known: ${ALL_PATHS.join(', ')}`)
const PROFILE = flag('profile') || (!QUICK && !flag('no-profile'))
const OUT = opt('out', new URL('./results/', import.meta.url).pathname)
const MiB = 1024 * 1024
const S = QUICK
  ? {
      bulk: 64 * MiB,
      parallel: 32 * MiB,
      pings: 300,
      setups: 60,
      idle: 1000,
      pausedRead: 1 * MiB,
      profileBulk: 64 * MiB,
    }
  : {
      bulk: 1024 * MiB,
      parallel: 1024 * MiB,
      pings: 5000,
      setups: 1000,
      idle: 10_000,
      pausedRead: 1 * MiB,
      profileBulk: 512 * MiB,
    }

// overrides: --bulk-mib N --parallel-mib N --pings N --setups N --idle N
for (const [flagName, key, mul] of [
  ['bulk-mib', 'bulk', MiB],
  ['parallel-mib', 'parallel', MiB],
  ['pings', 'pings', 1],
  ['setups', 'setups', 1],
  ['idle', 'idle', 1],
]) {
  const v = opt(flagName, null)
  if (v !== null) {
    const n = Number(v)
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${flagName} must be a positive integer`)
    S[key] = n * mul
  }
}
const log = (...a) =>
  process.stderr.write(`[bench ${((Date.now() - T0) / 1000).toFixed(1)}s] ${a.join(' ')}\n`)
const T0 = Date.now()
const tmp = mkdtempSync(join(os.tmpdir(), 'nullport-bench-'))
const profDir = PROFILE ? join(tmp, 'prof') : null
if (profDir) mkdirSync(profDir)
process.on('exit', () => {
  killAllChildren()
  rmSync(tmp, { recursive: true, force: true })
})

const result = {
  schema: 'nullport-bench/1',
  startedAt: new Date().toISOString(),
  quick: QUICK,
  sizes: S,
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: +(os.totalmem() / 1024 ** 3).toFixed(1),
    node: process.version,
    loadavgStart: os.loadavg().map((x) => +x.toFixed(2)),
  },
  paths: [],
  skipped: [],
  profiles: [],
  notes: [],
}

let overlay = null
const cleanups = []
try {
  // ---------------------------------------------------------------- backend
  const backend = start(
    'backend',
    process.execPath,
    [new URL('./lib/backend.mjs', import.meta.url).pathname],
    { env: { NODE_OPTIONS: '' } },
  )
  cleanups.push(() => backend.stop())
  const backendPort = (await backend.waitLine((l) => l?.ready === true)).port
  log(`backend on 127.0.0.1:${backendPort}`)

  const peerPaths = paths.filter((p) => PEERS[p])
  const pki = peerPaths.length ? await makePki(tmp) : null
  if (pki) log('PKI made with nullport pki create (P-256 root -> intermediate -> server, client)')

  const np = paths.filter((p) => p.startsWith('nullport'))
  if (np.length) {
    const { startOverlay } = await import('./lib/overlay.mjs')
    overlay = await startOverlay({
      dir: tmp,
      backendPort,
      twoRouters: paths.includes('nullport-2routers'),
      tunnel: paths.includes('nullport-tunnel'),
      profDir,
      maxCircuits: Math.max(20_000, S.idle * 2),
    })
    cleanups.push(() => overlay.stop())
    log(
      `overlay up: controller ${overlay.ctl.url}, routers ${Object.keys(overlay.procs)
        .filter((n) => n.startsWith('router'))
        .join(', ')}`,
    )
  }

  for (const path of paths) {
    const t = Date.now()
    try {
      const r = await runPath(path, backend, backendPort, pki)
      if (r) {
        r.seconds = +((Date.now() - t) / 1000).toFixed(1)
        result.paths.push(r)
        log(
          `${path}: 1 stream ${r.bulk1?.gbitPerSec.toFixed(2) ?? 'failed'} Gbit/s, 8 streams ${r.bulk8?.gbitPerSec.toFixed(2) ?? 'failed'} Gbit/s, rtt p50 ${r.pingpong?.p50us.toFixed(0) ?? 'failed'} us, setup p50 ${r.setup?.p50ms.toFixed(2) ?? 'failed'} ms, sha256 ${r.sha256Ok ? 'ok' : 'failed'}${r.errors.length ? `; failed: ${r.errors.map((e) => e.test).join(', ')}` : ''}`,
        )
      }
    } catch (err) {
      if (err?.skip) {
        result.skipped.push({ path, reason: err.message })
        log(`${path}: skipped (${err.message})`)
      } else {
        result.paths.push({ path, error: String(err?.stack ?? err) })
        log(`${path}: FAILED ${err?.stack ?? err}`)
        // the overlay processes' last log lines (warn and above) help to tell why
        for (const p of Object.values(overlay?.procs ?? {}))
          for (const l of p.lines.slice(-8))
            log(`  ${p.name}: ${typeof l === 'string' ? l : JSON.stringify(l)}`.slice(0, 400))
      }
    }
  }
} finally {
  for (const f of cleanups.reverse()) await Promise.resolve(f()).catch(() => {})
}

result.machine.loadavgEnd = os.loadavg().map((x) => +x.toFixed(2))
result.finishedAt = new Date().toISOString()
result.durationSec = +((Date.now() - T0) / 1000).toFixed(1)
result.ok =
  result.paths.length > 0 && result.paths.every((p) => !p.error && p.sha256Ok && p.errors.length === 0)
mkdirSync(OUT, { recursive: true })
const stamp = result.startedAt.replace(/[:]/g, '').replace(/\..*/, 'Z')
const base = `${QUICK ? 'quick' : 'full'}-${stamp}`
const md = renderMarkdown(result)
const svg = renderSvg(result)
writeFileSync(join(OUT, `${base}.json`), `${JSON.stringify(result, null, 2)}\n`)
writeFileSync(join(OUT, `${base}.md`), md)
writeFileSync(join(OUT, `${base}.svg`), svg)
// a quick run does not replace the full run's table: latest-quick.* vs latest.*
const latest = QUICK ? 'latest-quick' : 'latest'
for (const ext of ['json', 'md', 'svg'])
  copyFileSync(join(OUT, `${base}.${ext}`), join(OUT, `${latest}.${ext}`))
process.stdout.write(md)
log(`wrote ${join(OUT, `${latest}.json`)} (+ .md, .svg, ${base}.*) in ${result.durationSec} s`)
process.exitCode = result.ok ? 0 : 1

// ------------------------------------------------------------------------------------------------

async function runPath(path, backend, backendPort, pki) {
  let target
  let pathProcs = []
  let stopPeers = null
  let note = DESCRIBE[path]
  if (path === 'direct') {
    target = { kind: 'tcp', port: backendPort }
  } else if (PEERS[path]) {
    const dir = join(tmp, path)
    mkdirSync(dir)
    const peer = await PEERS[path](dir, pki, backendPort)
    target = { kind: 'tcp', port: peer.entryPort }
    pathProcs = peer.procs
    stopPeers = () => Promise.all(peer.procs.map((p) => p.stop('SIGTERM', 5000)))
    note = `${note}; ${peer.note}`
  } else {
    const P = overlay.procs
    const dialer = overlay.identities.dialer
    if (path === 'nullport-sdk') {
      target = { kind: 'sdk', identity: dialer, service: 'bench-e2e' }
      pathProcs = [P['router-a'], P['sdk-host1']]
    } else if (path === 'nullport-sdk-plain') {
      target = { kind: 'sdk', identity: dialer, service: 'bench-plain' }
      pathProcs = [P['router-a'], P['sdk-host1']]
    } else if (path === 'nullport-tunnel') {
      target = { kind: 'tcp', port: P['tunnel-intercept'].entryPort }
      pathProcs = [P['tunnel-intercept'], P['router-a'], P['tunnel-host']]
    } else if (path === 'nullport-2routers') {
      target = { kind: 'sdk', identity: dialer, service: 'bench-2r' }
      pathProcs = [P['router-a'], P['router-b'], P['sdk-host2']]
    }
  }
  const lgEnv = profDir
    ? {
        ...process.env,
        NODE_OPTIONS: `--import=${new URL('./lib/prof-hook.mjs', import.meta.url).pathname}`,
        NULLPORT_BENCH_PROF_DIR: profDir,
        NULLPORT_BENCH_PROF_NAME: `loadgen-${path}`,
      }
    : { ...process.env, NODE_OPTIONS: '' }
  const lg = track(
    fork(new URL('./lib/loadgen.mjs', import.meta.url).pathname, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: lgEnv,
    }),
  )
  let seq = 0
  const pending = new Map()
  lg.on('message', (m) => {
    const p = pending.get(m.id)
    if (!p) return
    pending.delete(m.id)
    if (m.ok) p.resolve(m.result)
    else p.reject(new Error(`loadgen: ${m.error}`))
  })
  lg.once('exit', (code) => {
    for (const p of pending.values()) p.reject(new Error(`loadgen exited (${code})`))
    pending.clear()
  })
  await new Promise((resolve, reject) => {
    lg.once('message', (m) => (m.ready ? resolve() : reject(new Error('loadgen: bad hello'))))
    lg.once('exit', (c) => reject(new Error(`loadgen exited (${c}) at start`)))
  })
  const call = (cmd, o = {}, timeoutMs = 600_000) =>
    new Promise((resolve, reject) => {
      const id = ++seq
      const t = setTimeout(() => {
        pending.delete(id)
        reject(new Error(`loadgen ${cmd}: no answer in ${timeoutMs} ms`))
      }, timeoutMs)
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(t)
          resolve(v)
        },
        reject: (e) => {
          clearTimeout(t)
          reject(e)
        },
      })
      lg.send({ id, cmd, target, ...o })
    })
  const loadgen = { name: 'loadgen', pid: lg.pid }
  const all = [
    ...pathProcs.map((p) => ({ name: p.name, pid: p.pid })),
    loadgen,
    { name: 'backend', pid: backend.pid },
  ]
  try {
    // first connection: with retries (pushes, links and routes are asynchronous)
    const deadline = Date.now() + 60_000
    for (let i = 0; ; i++) {
      try {
        await call('setup', { iterations: 1, warmup: 2 }, 40_000)
        break
      } catch (err) {
        if (Date.now() > deadline || i > 30) throw err
        await sleep(500)
      }
    }
    const r = { path, description: note, loadavg: os.loadavg().map((x) => +x.toFixed(2)) }
    r.processes = all.map((p) => p.name)
    r.rssIdleKiB = rssSnapshot(all)

    r.errors = []
    // each test on its own: a failure is recorded and the other tests still run
    const attempt = async (test, fn) => {
      try {
        return await fn()
      } catch (err) {
        const msg = String(err?.message ?? err).split('\n')[0]
        r.errors.push({ test, error: msg })
        log(`${path}: ${test} FAILED: ${msg}`)
        return null
      }
    }
    // the loadgen precomputes the expected digests now, outside the CPU and profile windows
    for (const [bytes, streams] of [
      [S.bulk, 1],
      [S.parallel, 8],
      [S.profileBulk, 1],
    ])
      await call('prepare', { bytes, streams })
    const c0 = cpuSnapshot(all)
    r.bulk1 = await attempt('bulk1', () => call('bulk', { bytes: S.bulk, streams: 1 }))
    const c1 = cpuSnapshot(all)
    if (r.bulk1) {
      const cpuBy = Object.fromEntries(Object.keys(c0).map((k) => [k, +(c1[k] - c0[k]).toFixed(2)]))
      const gib = r.bulk1.bytes / 1024 ** 3
      const cpuAll = Object.values(cpuBy).reduce((a, b) => a + b, 0)
      const cpuPath = pathProcs.reduce((a, p) => a + (cpuBy[p.name] ?? 0), 0)
      r.cpu = {
        secPerGiB: +(cpuAll / gib).toFixed(2),
        pathSecPerGiB: +(cpuPath / gib).toFixed(2),
        bySecPerGiB: Object.fromEntries(Object.entries(cpuBy).map(([k, v]) => [k, +(v / gib).toFixed(2)])),
      }
      log(`${path}: single stream done (${r.bulk1.gbitPerSec.toFixed(2)} Gbit/s)`)
    }
    r.bulk8 = await attempt('bulk8', () => call('bulk', { bytes: S.parallel, streams: 8 }))
    r.pingpong = await attempt('pingpong', () =>
      call('pingpong', { iterations: S.pings, warmup: Math.min(200, S.pings / 5), size: 64 }),
    )
    r.setup = await attempt('setup', () => call('setup', { iterations: S.setups, warmup: 5 }))
    r.sha256Ok = Boolean(r.bulk1?.sha256Ok && r.bulk8?.sha256Ok)

    // paused reader: the backend streams, the loadgen stops reading; RSS of every process
    r.pausedReader = await attempt('pausedReader', async () => {
      const before = rssSnapshot(all)
      await call('pauseStart', { readBytes: S.pausedRead })
      await sleep(QUICK ? 800 : 2000)
      const paused = rssSnapshot(all)
      await sleep(QUICK ? 400 : 1000)
      const paused2 = rssSnapshot(all)
      await call('pauseEnd')
      return {
        rssBeforeKiB: before,
        rssPausedKiB: paused2,
        growthWhilePausedKiB: Object.fromEntries(Object.keys(paused).map((k) => [k, paused2[k] - paused[k]])),
      }
    })

    // CPU profiles of the Node processes of the path during one more single-stream transfer and
    // (nullport-sdk) during connection setups
    if (profDir && (path === 'nullport-sdk' || path === 'nullport-tunnel')) {
      const nodes = [...pathProcs.map((p) => ({ name: p.name, pid: p.pid })), loadgen]
      const runs = [['bulk1', () => call('bulk', { bytes: S.profileBulk, streams: 1 })]]
      if (path === 'nullport-sdk') runs.push(['setup', () => call('setup', { iterations: 300, warmup: 0 })])
      for (const [test, fn] of runs) {
        const before = new Set(readdirSync(profDir))
        for (const p of nodes) process.kill(p.pid, 'SIGUSR2')
        await sleep(300)
        const pr = await attempt(`profile-${test}`, fn)
        for (const p of nodes) process.kill(p.pid, 'SIGUSR2')
        await sleep(1500)
        const files = readdirSync(profDir).filter((f) => !before.has(f) && f.endsWith('.cpuprofile'))
        const outDir = join(OUT, 'profiles')
        mkdirSync(outDir, { recursive: true })
        for (const f of files) {
          const proc = f.replace(/-\d+\.cpuprofile$/, '').replace(`-${path}`, '')
          const s = summarize(join(profDir, f), 15)
          const keep = `${path}-${test}-${proc}.cpuprofile`
          copyFileSync(join(profDir, f), join(outDir, keep))
          rmSync(join(profDir, f))
          result.profiles.push({
            path,
            test,
            process: proc,
            gbitPerSecWhileProfiling: pr?.gbitPerSec ? +pr.gbitPerSec.toFixed(2) : null,
            setupP50msWhileProfiling: pr?.p50ms ? +pr.p50ms.toFixed(2) : null,
            ...s,
            file: `profiles/${keep}`,
          })
        }
        log(`${path}: ${files.length} CPU profiles (${test})`)
      }
    }

    // router memory per idle circuit (the SDK path only: circuits are cheap to open there)
    if (path === 'nullport-sdk') {
      const router = pathProcs[0]
      await sleep(300)
      const m0 = rssSnapshot(all)
      const o = await attempt('idleCircuits', () =>
        call('idleOpen', { count: S.idle, service: 'bench-idle', concurrency: 64 }, 900_000),
      )
      if (o) {
        await sleep(1000)
        const m1 = rssSnapshot(all)
        await call('idleClose')
        r.idleCircuits = {
          circuits: o.opened,
          failed: o.failed,
          firstError: o.firstError,
          openSeconds: +o.seconds.toFixed(1),
          routerRssDeltaKiB: m1[router.name] - m0[router.name],
          routerKiBPerCircuit: o.opened ? +((m1[router.name] - m0[router.name]) / o.opened).toFixed(2) : null,
          rssDeltaKiB: Object.fromEntries(Object.keys(m0).map((k) => [k, m1[k] - m0[k]])),
        }
        log(
          `${path}: ${o.opened} idle circuits, router +${r.idleCircuits.routerRssDeltaKiB} KiB (${r.idleCircuits.routerKiBPerCircuit} KiB/circuit)`,
        )
      }
    }
    return r
  } finally {
    lg.send({ cmd: 'exit' })
    await Promise.race([new Promise((r) => lg.once('exit', r)), sleep(5000)])
    if (lg.exitCode === null) lg.kill('SIGKILL')
    await stopPeers?.()
  }
}
