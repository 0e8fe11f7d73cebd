#!/usr/bin/env node
// Bounded memory soak of a quickstart process: what a red-team session does to it, repeated
// for a fixed time, with the quickstart's RSS sampled from /proc. Rounds of: failed and
// successful logins (management API), pre-auth connections to the controller and the router that
// are dropped half-way (TCP only, a partial TLS ClientHello), and SDK dials through the demo
// service (a new context per round: its router connection opens and closes). At the end RSS is
// sampled again after the quickstart has been idle for a while, so growth that is released
// shows as such.
// Usage: node bench/soak.mjs [--seconds 120] [--idle 20]
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:https'

const args = process.argv.slice(2)
const opt = (n, d) => {
  const i = args.indexOf(`--${n}`)
  return i >= 0 ? Number(args[i + 1]) : d
}
const SECONDS = opt('seconds', 120)
const IDLE = opt('idle', 20)
const root = new URL('..', import.meta.url).pathname
const home = mkdtempSync(join(tmpdir(), 'nullport-soak-'))
const { loadContext } = await import(join(root, 'packages/sdk/dist/src/index.js'))

const qs = spawn(
  process.execPath,
  [join(root, 'packages/cli/dist/src/bin.js'), 'quickstart', '--demo', '--home', home],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NULLPORT_HOME: home },
  },
)
const stop = () => qs.kill('SIGKILL')
process.on('exit', stop)
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130))
let out = ''
await new Promise((resolve, reject) => {
  qs.stdout.on('data', (d) => {
    out += d
    if (/Ctrl-C stops everything/.test(out)) resolve()
  })
  qs.once('exit', (c) => reject(new Error(`quickstart exited ${c}\n${out}`)))
})
const ctrl = new URL(out.match(/controller {2}(https:\/\/\S+)/)[1])
const routerAddr = out.match(/listening on (\S+)/)[1]
const [rHost, rPort] = [
  routerAddr.slice(0, routerAddr.lastIndexOf(':')),
  Number(routerAddr.slice(routerAddr.lastIndexOf(':') + 1)),
]
const password = readFileSync(join(home, 'admin.password'), 'utf8').trim()
const ca = readFileSync(join(home, 'controller', 'pki', 'ca-bundle.pem'), 'utf8')
const clientFile = join(home, 'demo', 'family.tools.client.json')
const service = (out.match(/service (\S+): /) ?? [])[1] ?? 'family.tools'

const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${qs.pid}/status`, 'utf8'))[1])
function login(username, pw, ip) {
  return new Promise((resolve) => {
    const body = JSON.stringify({ username, password: pw })
    const req = request(
      {
        host: ctrl.hostname,
        port: ctrl.port,
        path: '/edge/management/v1/authenticate',
        method: 'POST',
        ca,
        localAddress: ip,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode))
      },
    )
    req.on('error', () => resolve(0))
    req.end(body)
  })
}
function halfOpen(host, port, ip) {
  return new Promise((resolve) => {
    const s = connect({ host, port, localAddress: ip })
    s.on('error', () => resolve())
    s.on('connect', () => {
      s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
      setTimeout(() => {
        s.destroy()
        resolve()
      }, 20)
    })
  })
}

const samples = [{ t: 0, rssKiB: rssKiB(), phase: 'start' }]
const t0 = Date.now()
let rounds = 0
let dials = 0
let dialFailures = 0
while (Date.now() - t0 < SECONDS * 1000) {
  rounds++
  const ip = `127.0.${1 + (rounds % 200)}.${2 + (rounds % 250)}`
  const work = []
  for (let i = 0; i < 10; i++) work.push(login(`nobody-${rounds}-${i}`, 'wrong-password', ip))
  work.push(login('admin', password, '127.0.0.1'))
  for (let i = 0; i < 20; i++)
    work.push(halfOpen(ctrl.hostname, Number(ctrl.port), ip), halfOpen(rHost, rPort, ip))
  await Promise.all(work)
  try {
    const ctx = await loadContext(clientFile)
    try {
      for (let i = 0; i < 5; i++) {
        const s = await ctx.dial(service)
        s.end(`GET / HTTP/1.1\r\nhost: ${service}\r\nconnection: close\r\n\r\n`)
        for await (const _ of s) {
        }
        dials++
      }
    } finally {
      await ctx.close()
    }
  } catch {
    dialFailures++
  }
  if (rounds % 10 === 0)
    samples.push({ t: Math.round((Date.now() - t0) / 1000), rssKiB: rssKiB(), phase: 'load' })
}
samples.push({ t: Math.round((Date.now() - t0) / 1000), rssKiB: rssKiB(), phase: 'end of load' })
await new Promise((r) => setTimeout(r, IDLE * 1000))
globalThis.gc?.()
samples.push({ t: Math.round((Date.now() - t0) / 1000), rssKiB: rssKiB(), phase: `after ${IDLE} s idle` })
const mib = (k) => (k / 1024).toFixed(1)
console.log(
  `soak: ${rounds} rounds in ${SECONDS} s (each: 10 failed logins from a rotating address, 1 admin login, 40 half-open pre-auth connections, a new SDK context with 5 dials): ${dials} dials, ${dialFailures} rounds with a dial failure`,
)
console.log('| t (s) | phase | quickstart RSS MiB |\n|---|---|---|')
for (const s of samples) console.log(`| ${s.t} | ${s.phase} | ${mib(s.rssKiB)} |`)
stop()
rmSync(home, { recursive: true, force: true })
