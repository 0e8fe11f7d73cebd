// Markdown table and SVG chart from a bench result (bench/run.mjs).

const f = (n, d = 2) => (n === undefined || n === null || Number.isNaN(n) ? 'n/a' : Number(n).toFixed(d))
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : 'n/a')

function get(p, key) {
  switch (key) {
    case 'bulk1':
      return p.bulk1?.gbitPerSec
    case 'bulk8':
      return p.bulk8?.gbitPerSec
    case 'rtt50':
      return p.pingpong?.p50us
    case 'rtt99':
      return p.pingpong?.p99us
    case 'setup50':
      return p.setup?.p50ms
    case 'setup99':
      return p.setup?.p99ms
    case 'cpu':
      return p.cpu?.secPerGiB
  }
}

export function renderMarkdown(r) {
  const ok = r.paths.filter((p) => !p.error)
  const direct = ok.find((p) => p.path === 'direct')
  const stunnel = ok.find((p) => p.path === 'stunnel')
  const L = []
  L.push(`# Nullport bench: ${r.quick ? 'quick' : 'full'} run, ${r.startedAt}`)
  L.push('')
  L.push(
    `Machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memGiB} GiB, Node ${r.machine.node}; ` +
      `load average at start ${r.machine.loadavgStart.join(' / ')}, at end ${r.machine.loadavgEnd?.join(' / ')} ` +
      '(the machine is shared: compare ratios within this run, not absolute figures across runs). ' +
      `Duration ${r.durationSec} s. Loopback only, TCP_NODELAY on every hop, one P-256 PKI for the peers.`,
  )
  L.push('')
  L.push(
    `Sizes: single stream ${r.sizes.bulk / 2 ** 20} MiB, 8 streams ${r.sizes.parallel / 2 ** 20} MiB in total (sha256 checked at the receiver), ` +
      `${r.sizes.pings} x 64-byte ping-pong, ${r.sizes.setups} connection setups (connect + first byte back). ` +
      'Ratios: to direct TCP, then to the stunnel pair (throughput: higher is better; latency and CPU: lower is better).',
  )
  L.push('')
  L.push(
    '| path | 1 stream Gbit/s | 8 streams Gbit/s | RTT p50 / p99 us | setup p50 / p99 ms | CPU s/GiB (all procs) | sha256 |',
  )
  L.push('|---|---|---|---|---|---|---|')
  for (const p of r.paths) {
    if (p.error) {
      L.push(`| ${p.path} | failed: ${String(p.error).split('\n')[0].slice(0, 120)} | | | | | |`)
      continue
    }
    const failed = (key) => {
      const test = { bulk1: 'bulk1', bulk8: 'bulk8', rtt50: 'pingpong', setup50: 'setup', cpu: 'bulk1' }[key]
      const e = (p.errors ?? []).find((x) => x.test === test)
      if (!e) return null
      const code = /\b(ERR_[A-Z_]+|E[A-Z]{4,})\b/.exec(e.error)?.[1]
      const after = /after (\d+) bytes/.exec(e.error)?.[1]
      return `failed (${code ?? e.error.replace(/^loadgen: (Error: )?/, '').slice(0, 60)}${after ? ` after ${Math.round(after / 2 ** 20)} MiB` : ''})`
    }
    const cell = (key, d) => {
      const v = get(p, key)
      if (v === undefined || v === null) return failed(key) ?? 'n/a'
      if (p.path === 'direct') return f(v, d)
      const parts = [
        direct ? ratio(v, get(direct, key)) : null,
        stunnel && p.path !== 'stunnel' ? ratio(v, get(stunnel, key)) : null,
      ].filter(Boolean)
      return `${f(v, d)} (${parts.join(', ')})`
    }
    const two = (k1, k2, d) => {
      const v1 = get(p, k1)
      const v2 = get(p, k2)
      if (v1 === undefined || v1 === null) return failed(k1) ?? 'n/a'
      if (p.path === 'direct') return `${f(v1, d)} / ${f(v2, d)}`
      const parts = [
        direct ? ratio(v1, get(direct, k1)) : null,
        stunnel && p.path !== 'stunnel' ? ratio(v1, get(stunnel, k1)) : null,
      ].filter(Boolean)
      return `${f(v1, d)} / ${f(v2, d)} (p50 ${parts.join(', ')})`
    }
    L.push(
      `| ${p.path} | ${cell('bulk1', 2)} | ${cell('bulk8', 2)} | ${two('rtt50', 'rtt99', 0)} | ${two('setup50', 'setup99', 2)} | ${cell('cpu', 2)} | ${p.sha256Ok ? 'ok' : (p.errors ?? []).some((e) => e.test.startsWith('bulk')) ? 'transfer failed' : 'MISMATCH'} |`,
    )
  }
  for (const s of r.skipped) L.push(`| ${s.path} | skipped: ${s.reason} | | | | | |`)
  L.push('')
  if (direct?.pingpong) {
    L.push(
      'Added round trip over direct (p50): ' +
        ok
          .filter((p) => p.path !== 'direct' && p.pingpong)
          .map((p) => `${p.path} +${f(p.pingpong.p50us - direct.pingpong.p50us, 0)} us`)
          .join(', ') +
        '.',
    )
    L.push('')
  }
  L.push('Paths:')
  for (const p of ok)
    L.push(
      `- ${p.path}: ${p.description} (load average when it started: ${p.loadavg.join(' / ')}; ${p.seconds} s)`,
    )
  L.push('')
  const idle = ok.find((p) => p.idleCircuits)
  if (idle) {
    const ic = idle.idleCircuits
    L.push(
      `## Router memory per idle circuit\n\n${ic.circuits} idle circuits (${idle.path}, one SDK connection each side, e2e on; opened in ${ic.openSeconds} s${ic.failed ? `, ${ic.failed} failed: ${ic.firstError}` : ''}): ` +
        `router RSS +${ic.routerRssDeltaKiB} KiB = **${f(ic.routerKiBPerCircuit, 2)} KiB per circuit** (target < 4). ` +
        `RSS deltas of the other processes: ${Object.entries(ic.rssDeltaKiB)
          .map(([k, v]) => `${k} ${v >= 0 ? '+' : ''}${v} KiB`)
          .join(', ')}.`,
    )
    L.push('')
  }
  L.push('## RSS (MiB) while one reader is paused\n')
  L.push(
    'The backend streams 64 KiB chunks with backpressure; the load generator reads 1 MiB and then stops reading. RSS of every process of the path after the pause (growth during the last second in brackets).\n',
  )
  L.push('| path | processes |')
  L.push('|---|---|')
  for (const p of ok) {
    const pr = p.pausedReader
    if (!pr) continue
    L.push(
      `| ${p.path} | ${Object.entries(pr.rssPausedKiB)
        .map(
          ([k, v]) =>
            `${k} ${f(v / 1024, 1)} (${pr.growthWhilePausedKiB[k] >= 0 ? '+' : ''}${pr.growthWhilePausedKiB[k]} KiB)`,
        )
        .join(', ')} |`,
    )
  }
  L.push('')
  L.push('## CPU seconds per GiB by process (single-stream transfer)\n')
  for (const p of ok.filter((x) => x.cpu))
    L.push(
      `- ${p.path}: ${Object.entries(p.cpu.bySecPerGiB)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')} (path processes only: ${p.cpu.pathSecPerGiB})`,
    )
  L.push('')
  if (r.profiles.length) {
    L.push(
      '## CPU profiles (self time, top functions) during a single-stream transfer (bulk1) and 300 connection setups (setup)\n',
    )
    for (const pr of r.profiles) {
      L.push(
        `### ${pr.path} / ${pr.test ?? 'bulk1'} / ${pr.process} (${pr.sampledMs} ms sampled, ${pr.busyPct}% busy, ${pr.test === 'setup' ? `setup p50 ${pr.setupP50msWhileProfiling} ms` : `${pr.gbitPerSecWhileProfiling} Gbit/s`} while profiling; ${pr.file})\n`,
      )
      for (const t of pr.top.slice(0, 10)) L.push(`- ${t.pct}% ${t.fn}`)
      L.push('')
    }
  }
  const targets = []
  const sdk = ok.find((p) => p.path === 'nullport-sdk')
  const target = (label, fn) => {
    try {
      const [met, detail] = fn()
      targets.push(`${label}: ${met ? 'met' : 'NOT met'} (${detail})`)
    } catch {
      targets.push(`${label}: not measured (a test failed)`)
    }
  }
  if (sdk && stunnel)
    target('single stream >= stunnel', () => [
      sdk.bulk1.gbitPerSec >= stunnel.bulk1.gbitPerSec,
      `${f(sdk.bulk1.gbitPerSec)} vs ${f(stunnel.bulk1.gbitPerSec)} Gbit/s`,
    ])
  if (sdk && stunnel && direct)
    target("added RTT <= stunnel's", () => {
      const a = sdk.pingpong.p50us - direct.pingpong.p50us
      const b = stunnel.pingpong.p50us - direct.pingpong.p50us
      return [a <= b, `+${f(a, 0)} vs +${f(b, 0)} us p50`]
    })
  if (sdk) {
    target('8 streams >= 1 stream', () => [
      sdk.bulk8.gbitPerSec >= sdk.bulk1.gbitPerSec,
      `${f(sdk.bulk8.gbitPerSec)} vs ${f(sdk.bulk1.gbitPerSec)} Gbit/s`,
    ])
    target('setup p50 < 1 ms', () => [sdk.setup.p50ms < 1, `${f(sdk.setup.p50ms)} ms`])
    target('< 4 KiB router memory per idle circuit', () => [
      sdk.idleCircuits.routerKiBPerCircuit < 4,
      `${f(sdk.idleCircuits.routerKiBPerCircuit)} KiB`,
    ])
  }
  if (targets.length) {
    L.push('## Targets (nullport-sdk, e2e on)\n')
    for (const t of targets) L.push(`- ${t}`)
    L.push('')
  }
  const errs = ok.filter((p) => p.errors?.length)
  if (errs.length) {
    L.push('## Failed tests\n')
    for (const p of errs) for (const e of p.errors) L.push(`- ${p.path} / ${e.test}: ${e.error}`)
    L.push('')
  }
  for (const n of r.notes) L.push(`Note: ${n}\n`)
  return `${L.join('\n')}\n`
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')

/** Grouped horizontal bars: throughput (1 and 8 streams) and RTT p50 per path. */
export function renderSvg(r) {
  const ok = r.paths.filter((p) => !p.error)
  const W = 900
  const rowH = 34
  const left = 170
  const panelW = 320
  const top = 60
  const H = top + ok.length * rowH + 50
  const maxT = Math.max(1e-9, ...ok.flatMap((p) => [p.bulk1?.gbitPerSec ?? 0, p.bulk8?.gbitPerSec ?? 0]))
  const maxR = Math.max(1e-9, ...ok.map((p) => p.pingpong?.p50us ?? 0))
  const o = []
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  )
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  o.push(
    `<text x="10" y="20" font-size="15" font-weight="bold">Nullport bench (${r.quick ? 'quick' : 'full'}) ${esc(r.startedAt)}; load avg ${r.machine.loadavgStart.join('/')}</text>`,
  )
  o.push(`<text x="${left}" y="45">throughput Gbit/s (dark: 1 stream, light: 8 streams)</text>`)
  o.push(`<text x="${left + panelW + 80}" y="45">64-byte round trip p50 (us)</text>`)
  ok.forEach((p, i) => {
    const y = top + i * rowH
    o.push(`<text x="${left - 8}" y="${y + 18}" text-anchor="end">${esc(p.path)}</text>`)
    const g1 = p.bulk1?.gbitPerSec ?? 0
    const g8 = p.bulk8?.gbitPerSec ?? 0
    const rt = p.pingpong?.p50us ?? 0
    const w1 = (g1 / maxT) * panelW
    const w8 = (g8 / maxT) * panelW
    o.push(`<rect x="${left}" y="${y + 2}" width="${w1.toFixed(1)}" height="13" fill="#2b6cb0"/>`)
    o.push(`<rect x="${left}" y="${y + 16}" width="${w8.toFixed(1)}" height="13" fill="#90cdf4"/>`)
    o.push(
      `<text x="${left + Math.max(w1, w8) + 4}" y="${y + 20}">${p.bulk1 ? g1.toFixed(2) : 'failed'} / ${p.bulk8 ? g8.toFixed(2) : 'failed'}</text>`,
    )
    const x2 = left + panelW + 80
    const wr = (rt / maxR) * 220
    o.push(`<rect x="${x2}" y="${y + 6}" width="${wr.toFixed(1)}" height="18" fill="#dd6b20"/>`)
    o.push(`<text x="${x2 + wr + 4}" y="${y + 20}">${p.pingpong ? rt.toFixed(0) : 'failed'}</text>`)
  })
  o.push(
    `<text x="10" y="${H - 15}" fill="#555">one machine, ${r.machine.cpus} cores, loopback; all paths in one run; see latest.md for ratios, setup, CPU and memory</text>`,
  )
  o.push('</svg>')
  return `${o.join('\n')}\n`
}
