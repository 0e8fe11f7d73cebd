#!/usr/bin/env node
// A hosting SDK app in its own process: binds services on the overlay (ctx.listen, outbound to
// the router) and forwards every circuit to the backend over TCP (TCP_NODELAY), or, for `idle`
// services, just holds the circuit open (router memory per idle circuit).
// Usage: node sdk-host.mjs IDENTITY_FILE BACKEND_PORT 'name:pipe,name2:idle'
// Prints {"ready":true} once every service is listening; SIGTERM closes the context.
import './gc-first.mjs'
import { once } from 'node:events'
import net from 'node:net'

// loaded after gc-first.mjs has run: loading a large module graph already grows V8's young generation
const { loadContext } = await import('../../packages/sdk/dist/src/index.js')

const [identity, backendPort, spec] = process.argv.slice(2)
const ctx = await loadContext(identity)
const held = new Set()
const servers = []
for (const item of spec.split(',')) {
  const [name, mode] = item.split(':')
  const server = ctx.listen(name, { maxConnections: 0 })
  server.on('error', (err) =>
    process.stdout.write(`${JSON.stringify({ error: String(err), service: name })}\n`),
  )
  server.on('clientError', () => {})
  server.on('connection', (socket) => {
    socket.on('error', () => {})
    if (mode === 'idle') {
      held.add(socket)
      socket.once('close', () => held.delete(socket))
      return
    }
    const tcp = net.connect({ host: '127.0.0.1', port: Number(backendPort), noDelay: true })
    tcp.setNoDelay(true)
    tcp.on('error', () => socket.destroy())
    socket.on('close', () => tcp.destroy())
    tcp.on('close', () => socket.destroy())
    socket.pipe(tcp)
    tcp.pipe(socket)
  })
  servers.push(server)
  if (!server.listening) await once(server, 'listening')
}
process.stdout.write(`${JSON.stringify({ ready: true })}\n`)
let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  const t = setTimeout(() => process.exit(0), 5000)
  for (const s of held) s.destroy()
  await ctx.close().catch(() => {})
  clearTimeout(t)
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
