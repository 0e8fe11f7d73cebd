#!/usr/bin/env node
// One edge router in its own process through the programmatic API (startRouter), so the bench can
// raise maxCircuitsPerConnection (10,000 idle circuits share one SDK connection) and run it with
// node flags such as --cpu-prof. Usage: node router-proc.mjs IDENTITY_FILE [MAX_CIRCUITS]
// Prints {"ready":true,"address":"127.0.0.1:PORT","id":...}; SIGTERM stops it cleanly (so a
// --cpu-prof profile is written).
import './gc-first.mjs'

// loaded after gc-first.mjs has run: loading a large module graph already grows V8's young generation
const { startRouter } = await import('../../packages/router/dist/src/index.js')

const [identity, maxCircuits = '20000'] = process.argv.slice(2)
const handle = await startRouter({
  identity,
  listen: '127.0.0.1:0',
  advertise: '127.0.0.1',
  logLevel: 'warn',
  maxCircuitsPerConnection: Number(maxCircuits),
  maxConnections: 20_000,
  // experiments only: NULLPORT_BENCH_ROUTER_MAX_QUEUED=BYTES (default: the router's own)
  ...(process.env.NULLPORT_BENCH_ROUTER_MAX_QUEUED
    ? { maxQueuedBytesPerCircuit: Number(process.env.NULLPORT_BENCH_ROUTER_MAX_QUEUED) }
    : {}),
})
await handle.ready
process.stdout.write(`${JSON.stringify({ ready: true, address: handle.address, id: handle.id })}\n`)
let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  const t = setTimeout(() => process.exit(0), 5000)
  await handle.stop().catch(() => {})
  clearTimeout(t)
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
