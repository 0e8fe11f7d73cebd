#!/usr/bin/env node
// Tunnel benchmark: PostgreSQL (pgbench select-only and tpcb-like) and Redis (redis-benchmark)
// through the overlay (intercepting tunneler local port -> router -> hosting tunneler ->
// 127.0.0.1) versus direct, in one run, on this machine. Prints a table with the ratios, and
// the tunnelers' RSS afterwards.
//
// Usage: npm run build && node bench/tunnel.mjs [--seconds 5] [--clients 4]
//        [--requests 50000] [--json]
import { randomBytes } from 'node:crypto'
import { parseHostPort } from '../packages/protocol/dist/src/index.js'
import { runCommand, spawnTunnel, startTunnelNetwork } from '../packages/testkit/dist/src/index.js'

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? Number(args[i + 1]) : def
}
const SECONDS = opt('seconds', 5)
const CLIENTS = opt('clients', 4)
const REQUESTS = opt('requests', 50_000)
const JSON_OUT = args.includes('--json')
const db = `tunnel_bench_${randomBytes(4).toString('hex')}`

const net = await startTunnelNetwork()
let host
let client
const rows = []
const pg = (port) => ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres']
async function must(cmd, a, o) {
  const r = await runCommand(cmd, a, { timeoutMs: 300_000, ...o })
  if (r.code !== 0) throw new Error(`${cmd} ${a.join(' ')}: exit ${r.code}: ${r.stderr}`)
  return r.stdout
}
try {
  host = await spawnTunnel(['run', '-i', net.hostPath, '--status', '127.0.0.1:0'])
  for (const s of ['pg', 'redis', 'web'])
    await host.waitLog((l) => l.msg === 'hosting service' && l.service === s).catch(() => undefined)
  await new Promise((r) => setTimeout(r, 500))
  client = await spawnTunnel([
    'run',
    '-i',
    net.clientPath,
    '--no-host',
    '--proxy',
    'pg:0',
    '--proxy',
    'redis:0',
    '--socks',
    '127.0.0.1:0',
    '--status',
    '127.0.0.1:0',
  ])
  const pgTun = parseHostPort(client.addresses['proxy:pg']).port
  const redisTun = parseHostPort(client.addresses['proxy:redis']).port

  await must('psql', [...pg(5432), '-d', 'test', '-c', `create database ${db}`])
  await must('pgbench', [...pg(5432), '-i', '-s', '1', '-q', db])
  const tps = (out) => Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? Number.NaN)
  for (const [label, extra] of [
    ['pgbench select-only', ['-S']],
    ['pgbench tpcb-like', []],
  ]) {
    const direct = tps(
      await must('pgbench', [
        ...pg(5432),
        '-T',
        String(SECONDS),
        '-c',
        String(CLIENTS),
        '-j',
        '2',
        ...extra,
        db,
      ]),
    )
    const tunnel = tps(
      await must('pgbench', [
        ...pg(pgTun),
        '-T',
        String(SECONDS),
        '-c',
        String(CLIENTS),
        '-j',
        '2',
        ...extra,
        db,
      ]),
    )
    rows.push({ test: `${label} (${CLIENTS} clients, ${SECONDS}s)`, unit: 'TPS', direct, tunnel })
  }
  const redis = async (port) => {
    const out = await must('redis-benchmark', [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-n',
      String(REQUESTS),
      '-q',
      '-t',
      'ping,set,get,lpush,lpop',
    ])
    const res = {}
    for (const line of out.split(/\r|\n/)) {
      const m = /^([A-Z_]+)[^:]*: ([\d.]+) requests per second/.exec(line.trim())
      if (m) res[m[1]] = Number(m[2])
    }
    return res
  }
  const rd = await redis(6379)
  const rt = await redis(redisTun)
  for (const k of Object.keys(rd))
    rows.push({
      test: `redis-benchmark ${k} (50 clients, ${REQUESTS} req)`,
      unit: 'ops/s',
      direct: rd[k],
      tunnel: rt[k] ?? Number.NaN,
    })
  // bulk: one HTTP download, then 4 in parallel (curl, -o /dev/null)
  const MIB = opt('mib', 256)
  const curlSpeed = async (extra, url, n) => {
    const t0 = process.hrtime.bigint()
    await Promise.all(
      Array.from({ length: n }, () => must('curl', ['-sS', '-o', '/dev/null', ...extra, url])),
    )
    const s = Number(process.hrtime.bigint() - t0) / 1e9
    return (n * MIB) / s
  }
  for (const n of [1, 4]) {
    const direct = await curlSpeed([], `http://127.0.0.1:${net.httpPort}/big/${MIB}`, n)
    const tunnel = await curlSpeed(
      ['--socks5-hostname', client.addresses.socks],
      `http://bulk.web.test/big/${MIB}`,
      n,
    )
    rows.push({ test: `HTTP download ${n}x${MIB} MiB via SOCKS5`, unit: 'MiB/s', direct, tunnel })
  }
  const st = async (addr) =>
    JSON.parse(
      await must(process.execPath, [
        new URL('../packages/cli/bin/nullport.js', import.meta.url).pathname,
        'tunnel',
        'status',
        '--json',
        '--status',
        addr,
      ]),
    )
  const hs = await st(host.addresses.status)
  const cs = await st(client.addresses.status)
  const mem = {
    hostTunnelerRssMiB: +(hs.memory.rss / 1048576).toFixed(1),
    clientTunnelerRssMiB: +(cs.memory.rss / 1048576).toFixed(1),
  }
  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify({ rows, memory: mem }, null, 2)}\n`)
  } else {
    const w = Math.max(...rows.map((r) => r.test.length))
    const line = (a, b, c, d) => `${a.padEnd(w)}  ${b.padStart(12)}  ${c.padStart(12)}  ${d.padStart(7)}`
    console.log(line('test', 'direct', 'tunnel', 'ratio'))
    console.log('-'.repeat(w + 37))
    for (const r of rows)
      console.log(
        line(
          r.test,
          `${r.direct.toFixed(0)} ${r.unit}`,
          `${r.tunnel.toFixed(0)} ${r.unit}`,
          `${((100 * r.tunnel) / r.direct).toFixed(0)}%`,
        ),
      )
    console.log(
      `\ntunneler RSS after the run: host ${mem.hostTunnelerRssMiB} MiB, intercept ${mem.clientTunnelerRssMiB} MiB`,
    )
    console.log(
      '(one machine, 2 cores: controller, router, both tunnelers, PostgreSQL/Redis and the load generator share them)',
    )
  }
} finally {
  await runCommand('psql', [...pg(5432), '-d', 'test', '-c', `drop database if exists ${db}`])
  await client?.stop()
  await host?.stop()
  await net.close()
}
