#!/usr/bin/env node
// HTTP benchmark: one app (node:http, small JSON and 64 KiB responses) served directly on a TCP
// port and, in the same process, on the overlay through zitify (real controller and router
// processes, end-to-end encryption on). The load comes from a separate process (this script
// with --load): keep-alive undici Agents, closed loop with N concurrent requests, a warm-up,
// then requests/s and latency percentiles. Direct and overlay run back to back in one run, and
// the table shows the overlay/direct ratios.
//
// Usage: npx tsc -b packages/cli && node bench/http.mjs [--seconds 5] [--cases /:1,/:32,/64k:8] [--json]
import { fork } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import { performance } from 'node:perf_hooks'

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : def
}
const SECONDS = Number(opt('seconds', 5))
const JSON_OUT = args.includes('--json')
// --cases /:1,/:32,/64k:8 (path:concurrency)
const CASES = String(opt('cases', '/:1,/:32,/64k:8'))
  .split(',')
  .map((c) => {
    const [path, n] = c.split(':')
    return [path === '/64k' ? '/64k' : '/', Number(n) || 1]
  })

if (args.includes('--load')) await loadProcess()
else await main()

// ------------------------------------------------------------------------------------------------
// load generator (child process)

async function loadProcess() {
  const { Agent, request } = await import('undici')
  const sdk = await import('../packages/sdk/dist/src/index.js')
  let ctx = null
  process.on('message', async (m) => {
    if (m.type === 'init') {
      ctx = await sdk.loadContext(m.identity)
      process.send({ type: 'ready' })
      return
    }
    if (m.type === 'close') {
      await ctx?.close()
      process.exit(0)
    }
    if (m.type !== 'run') return
    const dispatcher =
      m.target === 'overlay'
        ? sdk.overlayDispatcher(ctx, { connections: m.concurrency, keepAliveTimeout: 60_000 })
        : new Agent({ connections: m.concurrency, keepAliveTimeout: 60_000 })
    const url = m.target === 'overlay' ? `http://bench.ziti${m.path}` : `http://127.0.0.1:${m.port}${m.path}`
    const one = async () => {
      const t0 = performance.now()
      const res = await request(url, { dispatcher })
      for await (const _ of res.body) {
        // drain
      }
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`)
      return performance.now() - t0
    }
    const phase = async (ms, record) => {
      const lat = []
      const end = performance.now() + ms
      const worker = async () => {
        while (performance.now() < end) {
          const l = await one()
          if (record) lat.push(l)
        }
      }
      const t0 = performance.now()
      await Promise.all(Array.from({ length: m.concurrency }, worker))
      return { lat, elapsed: performance.now() - t0 }
    }
    await phase(1000, false) // warm-up: connections, JIT
    const { lat, elapsed } = await phase(m.seconds * 1000, true)
    lat.sort((a, b) => a - b)
    const pct = (p) => lat[Math.min(lat.length - 1, Math.floor((lat.length * p) / 100))]
    await dispatcher.close()
    process.send({
      type: 'result',
      requests: lat.length,
      rps: (lat.length * 1000) / elapsed,
      p50: pct(50),
      p99: pct(99),
    })
  })
}

// ------------------------------------------------------------------------------------------------
// main: network, app, runs, table

async function main() {
  const { startWebNetwork, waitForService } = await import('../packages/testkit/dist/src/index.js')
  const { zitify } = await import('../packages/sdk/dist/src/index.js')
  const small = Buffer.from(
    JSON.stringify({ tools: [{ id: 1, name: 'drill', owner: 'ann', borrowedBy: null }] }),
  )
  const big = Buffer.alloc(64 * 1024, 120)
  const app = (req, res) => {
    const body = req.url === '/64k' ? big : small
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
    res.end(body)
  }
  const fx = await startWebNetwork([
    { name: 'bench', intercept: { addresses: ['bench.ziti'], portRanges: [{ low: 80, high: 80 }] } },
  ])
  let load
  const servers = []
  try {
    const direct = http.createServer({ keepAliveTimeout: 60_000 }, app)
    direct.listen(0, '127.0.0.1')
    await once(direct, 'listening')
    servers.push(direct)
    const undo = zitify({ '127.0.0.1:18580': { identity: fx.hostPath, service: 'bench' } })
    const overlay = http.createServer({ keepAliveTimeout: 60_000 }, app)
    overlay.listen(18580, '127.0.0.1')
    await once(overlay, 'listening')
    servers.push(overlay)
    undo()

    load = fork(new URL(import.meta.url).pathname, ['--load'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const next = (type) =>
      new Promise((resolve, reject) => {
        const on = (m) => {
          if (m.type === type) {
            load.off('message', on)
            resolve(m)
          }
        }
        load.on('message', on)
        load.once('exit', (code) => reject(new Error(`load process exited (${code})`)))
      })
    load.send({ type: 'init', identity: fx.clientPath })
    await next('ready')
    const ctx = await fx.context(fx.clientFile)
    await waitForService(ctx, 'bench')
    await ctx.close()

    const port = direct.address().port
    const rows = []
    for (const [path, concurrency] of CASES) {
      const r = {}
      for (const target of ['direct', 'overlay']) {
        load.send({ type: 'run', target, port, path, concurrency, seconds: SECONDS })
        r[target] = await next('result')
      }
      rows.push({ path, concurrency, direct: r.direct, overlay: r.overlay })
    }
    load.send({ type: 'close' })
    await once(load, 'exit')
    load = null

    if (JSON_OUT) {
      console.log(JSON.stringify({ seconds: SECONDS, rows }, null, 2))
    } else {
      const f = (n, d = 0) => n.toFixed(d)
      const head = [
        'request',
        'conc',
        'direct req/s',
        'overlay req/s',
        'ratio',
        'direct p50/p99 ms',
        'overlay p50/p99 ms',
        'p99 ratio',
      ]
      const lines = rows.map((x) => [
        `GET ${x.path === '/' ? 'small JSON' : '64 KiB'}`,
        String(x.concurrency),
        f(x.direct.rps),
        f(x.overlay.rps),
        f(x.overlay.rps / x.direct.rps, 2),
        `${f(x.direct.p50, 2)} / ${f(x.direct.p99, 2)}`,
        `${f(x.overlay.p50, 2)} / ${f(x.overlay.p99, 2)}`,
        f(x.overlay.p99 / x.direct.p99, 1),
      ])
      const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
      const row = (cells) => cells.map((c, i) => c.padStart(w[i])).join('  ')
      console.log(
        `HTTP through the overlay vs direct (keep-alive, ${SECONDS} s per run, load from a separate process)`,
      )
      console.log(row(head))
      for (const l of lines) console.log(row(l))
    }
  } finally {
    load?.kill('SIGKILL')
    for (const s of servers) {
      s.closeAllConnections()
      s.close()
    }
    await fx.close()
  }
}
