/**
 * 100 MiB request and response bodies through the overlay (zitified http server, ctx.fetch and
 * the http agent), with SHA-256 checked end to end, and backpressure: while one side does not
 * read, the other side stops producing after a bounded amount (circuit window + stream buffers),
 * instead of buffering the whole body.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import http from 'node:http'
import { after, before, test } from 'node:test'
import { type Context, zitify } from '@nullport/sdk'
import { startWebNetwork, type WebNetwork, waitForService } from '@nullport/testkit'

const MiB = 1024 * 1024
const TOTAL = 100 * MiB
/** Bytes allowed in flight while the reader is stalled: 4 MiB circuit window + stream buffers. */
const BOUND = 16 * MiB
const BLOCK = randomBytes(MiB)

/** Block i: the random block with i in its first 4 bytes (so blocks differ). */
function block(i: number): Buffer {
  const b = Buffer.from(BLOCK)
  b.writeUInt32BE(i, 0)
  return b
}
const EXPECTED = (() => {
  const h = createHash('sha256')
  for (let i = 0; i < TOTAL / MiB; i++) h.update(block(i))
  return h.digest('hex')
})()

let fx: WebNetwork
let client: Context
let server: http.Server
let undo: () => void
/** Upload: the server holds the request body until this resolves. */
let releaseUpload: () => void = () => undefined
let uploadHeld: Promise<void> = Promise.resolve()
/** Download: bytes the server has written so far. */
let served = 0

async function waitStable(read: () => number, ms = 400): Promise<number> {
  let last = -1
  for (;;) {
    const v = read()
    if (v === last) return v
    last = v
    await new Promise((r) => setTimeout(r, ms))
  }
}

before(async () => {
  fx = await startWebNetwork([
    { name: 'bulk', intercept: { addresses: ['bulk.ziti'], portRanges: [{ low: 80, high: 80 }] } },
  ])
  client = await fx.context(fx.clientFile)
  await waitForService(client, 'bulk')
  undo = zitify({ '127.0.0.1:18380': { identity: fx.hostPath, service: 'bulk' } })
  server = http.createServer(async (req, res) => {
    if (req.url === '/upload') {
      req.pause()
      await uploadHeld
      const h = createHash('sha256')
      let n = 0
      req.on('data', (d: Buffer) => {
        h.update(d)
        n += d.length
      })
      req.on('end', () => res.end(JSON.stringify({ bytes: n, sha256: h.digest('hex') })))
      req.resume()
      return
    }
    if (req.url === '/download') {
      served = 0
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) })
      for (let i = 0; i < TOTAL / MiB; i++) {
        const b = block(i)
        served += b.length
        if (!res.write(b)) await once(res, 'drain')
      }
      res.end()
      return
    }
    res.statusCode = 404
    res.end()
  })
  server.listen(18380, '127.0.0.1')
  await once(server, 'listening')
})

after(async () => {
  undo?.()
  server?.closeAllConnections()
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
  await fx?.close()
})

test('100 MiB upload through ctx.fetch: sha256 equal, the sender stalls while the host does not read', {
  timeout: 120_000,
}, async (t) => {
  uploadHeld = new Promise<void>((r) => {
    releaseUpload = r
  })
  let produced = 0
  let i = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i === TOTAL / MiB) {
        controller.close()
        return
      }
      const b = block(i++)
      produced += b.length
      controller.enqueue(b)
    },
  })
  const pending = client.fetch('http://bulk.ziti/upload', { method: 'POST', body, duplex: 'half' } as never)
  const stalledAt = await waitStable(() => produced)
  t.diagnostic(`upload: ${stalledAt} bytes produced while the host did not read`)
  assert.ok(
    stalledAt < BOUND,
    `the client produced ${stalledAt} bytes while the host did not read (bound ${BOUND})`,
  )
  releaseUpload()
  const res = await pending
  assert.deepEqual(await res.json(), { bytes: TOTAL, sha256: EXPECTED })
})

test('100 MiB download through ctx.fetch: sha256 equal, the host stalls while the client does not read', {
  timeout: 120_000,
}, async (t) => {
  const res = await client.fetch('http://bulk.ziti/download')
  assert.equal(res.status, 200)
  const reader = res.body!.getReader()
  const h = createHash('sha256')
  let got = 0
  const first = await reader.read()
  h.update(first.value!)
  got += first.value!.length
  const stalledAt = await waitStable(() => served)
  t.diagnostic(`download: the host wrote ${stalledAt - got} bytes ahead of the reader`)
  assert.ok(
    stalledAt - got < BOUND,
    `the host wrote ${stalledAt - got} bytes ahead of the reader (bound ${BOUND})`,
  )
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    h.update(value)
    got += value.length
  }
  assert.equal(got, TOTAL)
  assert.equal(h.digest('hex'), EXPECTED)
})

test('100 MiB both ways through the http agent (http.request streaming)', { timeout: 120_000 }, async () => {
  uploadHeld = Promise.resolve()
  const agent = client.httpAgent()
  const up = await new Promise<{ bytes: number; sha256: string }>((resolve, reject) => {
    const req = http.request('http://bulk.ziti/upload', { method: 'POST', agent }, (res) => {
      let t = ''
      res.on('data', (d: Buffer) => {
        t += d
      })
      res.on('end', () => resolve(JSON.parse(t)))
    })
    req.on('error', reject)
    let i = 0
    const write = (): void => {
      while (i < TOTAL / MiB) {
        if (!req.write(block(i++))) {
          req.once('drain', write)
          return
        }
      }
      req.end()
    }
    write()
  })
  assert.deepEqual(up, { bytes: TOTAL, sha256: EXPECTED })
  const down = await new Promise<{ bytes: number; sha256: string }>((resolve, reject) => {
    http
      .get('http://bulk.ziti/download', { agent }, (res) => {
        const h = createHash('sha256')
        let n = 0
        res.on('data', (d: Buffer) => {
          h.update(d)
          n += d.length
        })
        res.on('end', () => resolve({ bytes: n, sha256: h.digest('hex') }))
        res.on('error', reject)
      })
      .on('error', reject)
  })
  assert.deepEqual(down, { bytes: TOTAL, sha256: EXPECTED })
  agent.destroy()
})
