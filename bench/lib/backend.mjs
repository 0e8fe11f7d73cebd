#!/usr/bin/env node
// The backend every path forwards to: one TCP port on 127.0.0.1, TCP_NODELAY, a mode byte first:
//   'S' + u64 length: sink; hashes exactly that many bytes (sha256, in a worker thread so reading
//        and hashing overlap; at most 32 MiB queued, the socket pauses above that) and answers the
//        32-byte digest.
//   'E': echo (every byte after the mode byte comes back).
//   'H': hello: one byte back at once (connection setup = connect + this first byte).
//   'R': source: writes 64 KiB chunks with backpressure until the peer goes (at most 4 GiB).
// Prints {"ready":true,"port":N} when listening. Usage: node backend.mjs [port]
import { createHash } from 'node:crypto'
import net from 'node:net'
import { isMainThread, parentPort, Worker } from 'node:worker_threads'

if (!isMainThread) {
  // hashing worker: messages {id, op:'new'|'data'|'end', buf}
  const hashes = new Map()
  parentPort.on('message', (m) => {
    if (m.op === 'new') hashes.set(m.id, createHash('sha256'))
    else if (m.op === 'data') {
      hashes.get(m.id).update(m.buf)
      parentPort.postMessage({ id: m.id, op: 'ack', n: m.buf.byteLength })
    } else if (m.op === 'end') {
      const d = hashes.get(m.id).digest()
      hashes.delete(m.id)
      parentPort.postMessage({ id: m.id, op: 'digest', d })
    }
  })
} else {
  const worker = new Worker(new URL(import.meta.url))
  worker.unref()
  const sinks = new Map()
  let nextId = 1
  worker.on('message', (m) => {
    const s = sinks.get(m.id)
    if (!s) return
    if (m.op === 'ack') {
      s.queued -= m.n
      if (s.paused && s.queued < 8 * 1024 * 1024) {
        s.paused = false
        s.socket.resume()
      }
    } else if (m.op === 'digest') {
      sinks.delete(m.id)
      s.socket.write(Buffer.from(m.d))
    }
  })
  const MAX_QUEUED = 32 * 1024 * 1024
  const HASH_IN_MAIN = process.env.BENCH_HASH !== 'worker'
  const chunk = Buffer.alloc(64 * 1024, 0x5a)
  const SOURCE_LIMIT = 4 * 1024 ** 3

  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true)
    socket.on('error', () => {})
    let mode = null
    let header = Buffer.alloc(0)
    let sink = null
    const onSinkData = (buf) => {
      const take = Math.min(buf.byteLength, sink.remaining)
      if (take > 0) {
        const part = take === buf.byteLength ? buf : buf.subarray(0, take)
        sink.remaining -= take
        if (sink.hash) {
          sink.hash.update(part)
          if (sink.remaining === 0 && !sink.ended) {
            sink.ended = true
            sinks.delete(sink.id)
            socket.write(sink.hash.digest())
          }
          return
        }
        sink.queued += take
        worker.postMessage({ id: sink.id, op: 'data', buf: part })
        if (sink.queued > MAX_QUEUED && !sink.paused) {
          sink.paused = true
          socket.pause()
        }
      }
      if (sink.remaining === 0 && !sink.ended) {
        sink.ended = true
        worker.postMessage({ id: sink.id, op: 'end' })
      }
    }
    socket.on('data', (buf) => {
      if (mode === 'E') {
        socket.write(buf)
        return
      }
      if (mode === 'S' && sink) {
        onSinkData(buf)
        return
      }
      if (mode !== null) return // H and R ignore input
      header = header.byteLength ? Buffer.concat([header, buf]) : buf
      mode = String.fromCharCode(header[0])
      if (mode === 'E') {
        if (header.byteLength > 1) socket.write(header.subarray(1))
      } else if (mode === 'H') {
        socket.write('h')
      } else if (mode === 'R') {
        let sent = 0
        const pump = () => {
          while (sent < SOURCE_LIMIT && !socket.destroyed) {
            sent += chunk.byteLength
            if (!socket.write(chunk)) {
              socket.once('drain', pump)
              return
            }
          }
        }
        pump()
      } else if (mode === 'S') {
        if (header.byteLength < 9) {
          mode = null // wait for the whole length
          return
        }
        const length = Number(header.readBigUInt64BE(1))
        sink = { id: nextId++, remaining: length, queued: 0, paused: false, ended: false, socket, hash: null }
        sinks.set(sink.id, sink)
        if (HASH_IN_MAIN) sink.hash = createHash('sha256')
        else worker.postMessage({ id: sink.id, op: 'new' })
        if (length === 0 && HASH_IN_MAIN) {
          sink.ended = true
          socket.write(sink.hash.digest())
        } else if (length === 0) {
          sink.ended = true
          worker.postMessage({ id: sink.id, op: 'end' })
        } else if (header.byteLength > 9) onSinkData(header.subarray(9))
      } else {
        socket.destroy()
      }
      header = Buffer.alloc(0)
    })
    socket.on('close', () => {
      if (sink && sinks.has(sink.id) && !sink.ended) {
        sinks.delete(sink.id)
        if (!sink.hash) worker.postMessage({ id: sink.id, op: 'end' })
      }
    })
  })
  server.maxConnections = 20_000
  server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`)
  })
  process.on('SIGTERM', () => process.exit(0))
}
