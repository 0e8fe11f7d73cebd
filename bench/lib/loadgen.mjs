#!/usr/bin/env node
// Load generator, forked by bench/run.mjs (one process per path, separate from the path under
// test). Commands come over IPC: {cmd, target, ...}; target is {kind:'tcp', port} or
// {kind:'sdk', identity, service} (then this process is the dialing app: the SDK dials the
// service through the router). Results go back as {ok, result} or {ok:false, error}.
import './gc-first.mjs'
import { createHash, randomBytes } from 'node:crypto'
import net from 'node:net'
import { performance } from 'node:perf_hooks'

const BLOCK = randomBytes(1024 * 1024) // the data sent: this random MiB, repeated
const CHUNK = 256 * 1024
let ctx = null
const held = []
let pausedSock = null

const expectedCache = new Map()
function expectedDigest(length) {
  if (!expectedCache.has(length)) {
    const h = createHash('sha256')
    let left = length
    while (left > 0) {
      const n = Math.min(left, BLOCK.byteLength)
      h.update(n === BLOCK.byteLength ? BLOCK : BLOCK.subarray(0, n))
      left -= n
    }
    expectedCache.set(length, h.digest('hex'))
  }
  return expectedCache.get(length)
}

async function sdkContext(identity) {
  if (!ctx) {
    const sdk = await import('../../packages/sdk/dist/src/index.js')
    ctx = await sdk.loadContext(identity)
  }
  return ctx
}

/** Opens a connection to the path's entry; resolves with a connected Duplex (noDelay). */
async function open(target, service) {
  if (target.kind === 'tcp') {
    const s = net.connect({ host: '127.0.0.1', port: target.port, noDelay: true })
    s.setNoDelay(true)
    await new Promise((resolve, reject) => {
      s.once('connect', resolve)
      s.once('error', reject)
    })
    return s
  }
  const c = await sdkContext(target.identity)
  return c.dial(service ?? target.service, { timeoutMs: 30_000 })
}

/** Reads exactly n bytes (resolves with a Buffer); rejects on close/error. */
function readN(s, n) {
  return new Promise((resolve, reject) => {
    const parts = []
    let got = 0
    const onData = (b) => {
      parts.push(b)
      got += b.byteLength
      if (got >= n) {
        cleanup()
        resolve(Buffer.concat(parts, got))
      }
    }
    const onEnd = () => {
      cleanup()
      reject(new Error(`connection closed after ${got} of ${n} bytes`))
    }
    const onErr = (e) => {
      cleanup()
      reject(e)
    }
    const cleanup = () => {
      s.off('data', onData)
      s.off('end', onEnd)
      s.off('close', onEnd)
      s.off('error', onErr)
    }
    s.on('data', onData)
    s.once('end', onEnd)
    s.once('close', onEnd)
    s.once('error', onErr)
  })
}

/** Sends `length` bytes to the sink, returns {seconds, ok, digest}. */
async function bulkOne(target, length, live) {
  const s = await open(target)
  live.add(s)
  let lastError = null
  s.on('error', (e) => {
    lastError = e
  })
  const why = () => (lastError ? ` (${lastError.code ?? ''} ${lastError.message})` : '')
  const header = Buffer.alloc(9)
  header[0] = 0x53 // 'S'
  header.writeBigUInt64BE(BigInt(length), 1)
  const digestP = readN(s, 32)
  digestP.catch(() => {})
  const t0 = performance.now()
  s.write(header)
  let sent = 0
  let off = 0
  while (sent < length) {
    const n = Math.min(CHUNK, length - sent, BLOCK.byteLength - off)
    const buf = BLOCK.subarray(off, off + n)
    off = (off + n) % BLOCK.byteLength
    sent += n
    if (!s.write(buf)) {
      await new Promise((resolve, reject) => {
        const ok = () => {
          s.off('close', bad)
          resolve()
        }
        const bad = () => {
          s.off('drain', ok)
          reject(new Error(`connection closed after ${sent} bytes written${why()}`))
        }
        s.once('drain', ok)
        s.once('close', bad)
      })
    }
  }
  const digest = (
    await digestP.catch((e) => {
      throw new Error(`${e.message}${why()}`)
    })
  )
    .subarray(0, 32)
    .toString('hex')
  const seconds = (performance.now() - t0) / 1000
  s.destroy()
  return { seconds, digest, expected: expectedDigest(length), ok: digest === expectedDigest(length) }
}

async function bulk(target, { bytes, streams }) {
  const per = Math.floor(bytes / streams)
  expectedDigest(per)
  const t0 = performance.now()
  const live = new Set()
  let res
  try {
    res = await Promise.all(Array.from({ length: streams }, () => bulkOne(target, per, live)))
  } catch (err) {
    for (const s of live) s.destroy() // the other streams stop too
    throw err
  }
  const seconds = (performance.now() - t0) / 1000
  return {
    bytes: per * streams,
    streams,
    seconds,
    gbitPerSec: (per * streams * 8) / seconds / 1e9,
    sha256: res.map((r) => ({ ok: r.ok, digest: r.digest, expected: r.expected, seconds: r.seconds })),
    sha256Ok: res.every((r) => r.ok),
  }
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]
}

async function pingpong(target, { iterations, warmup, size }) {
  const s = await open(target)
  s.on('error', () => {})
  s.write('E')
  const msg = Buffer.alloc(size, 0x61)
  const lat = []
  let pending = null
  let got = 0
  s.on('data', (b) => {
    got += b.byteLength
    if (got >= size && pending) {
      got -= size
      const r = pending
      pending = null
      r()
    }
  })
  for (let i = 0; i < warmup + iterations; i++) {
    const t0 = performance.now()
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('ping-pong: no echo within 10 s')), 10_000)
      pending = () => {
        clearTimeout(t)
        resolve()
      }
      s.write(msg)
    })
    if (i >= warmup) lat.push((performance.now() - t0) * 1000)
  }
  s.destroy()
  lat.sort((a, b) => a - b)
  return {
    iterations,
    size,
    p50us: pct(lat, 50),
    p99us: pct(lat, 99),
    meanUs: lat.reduce((a, b) => a + b, 0) / lat.length,
  }
}

async function setup(target, { iterations, warmup }) {
  const lat = []
  for (let i = 0; i < warmup + iterations; i++) {
    const t0 = performance.now()
    const s = await open(target)
    s.on('error', () => {})
    const first = readN(s, 1)
    s.write('H')
    await first
    const ms = performance.now() - t0
    s.destroy()
    if (i >= warmup) lat.push(ms)
  }
  lat.sort((a, b) => a - b)
  return {
    iterations,
    p50ms: pct(lat, 50),
    p99ms: pct(lat, 99),
    meanMs: lat.reduce((a, b) => a + b, 0) / lat.length,
  }
}

/** Opens n idle circuits (SDK) to `service`, holds them. */
async function idleOpen(target, { count, service, concurrency }) {
  const t0 = performance.now()
  let next = 0
  let failed = 0
  let firstError = null
  const worker = async () => {
    while (next < count) {
      next++
      try {
        const s = await open(target, service)
        s.on('error', () => {})
        held.push(s)
      } catch (err) {
        failed++
        firstError ??= String(err?.message ?? err)
        if (failed > 50) return
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { opened: held.length, failed, firstError, seconds: (performance.now() - t0) / 1000 }
}

async function idleClose() {
  const n = held.length
  for (const s of held.splice(0)) s.destroy()
  return { closed: n }
}

/** Starts a source stream, reads `readBytes`, then stops reading (paused reader). */
async function pauseStart(target, { readBytes }) {
  const s = await open(target)
  s.on('error', () => {})
  let got = 0
  await new Promise((resolve, reject) => {
    const onData = (b) => {
      got += b.byteLength
      if (got >= readBytes) {
        s.off('data', onData)
        s.pause()
        resolve()
      }
    }
    s.on('data', onData)
    s.once('close', () => reject(new Error('source closed')))
    s.write('R')
  })
  pausedSock = s
  return { read: got }
}

async function pauseEnd() {
  pausedSock?.destroy()
  pausedSock = null
  return {}
}

/** Computes the expected sha256 of a transfer ahead of time (outside CPU and profile windows). */
async function prepare(_target, { bytes, streams }) {
  expectedDigest(Math.floor(bytes / streams))
  return {}
}

const handlers = { prepare, bulk, pingpong, setup, idleOpen, idleClose, pauseStart, pauseEnd }

process.on('message', async (m) => {
  if (m.cmd === 'exit') {
    for (const s of held) s.destroy()
    pausedSock?.destroy()
    await ctx?.close().catch(() => {})
    process.exit(0)
  }
  try {
    if (m.target?.kind === 'sdk') await sdkContext(m.target.identity)
    const result = await handlers[m.cmd](m.target, m)
    process.send({ id: m.id, ok: true, result })
  } catch (err) {
    process.send({ id: m.id, ok: false, error: String(err?.stack ?? err) })
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ ready: true })
