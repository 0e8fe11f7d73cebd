import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { test } from 'node:test'
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls'
import { isProtocolError } from '../src/errors.js'
import {
  encodeFrame,
  type Frame,
  FrameConnection,
  FrameDecoder,
  FrameFlag,
  FrameType,
  frameBytesOf,
} from '../src/frames/index.js'
import { createIntermediateCa, createLeaf, createRootCa } from '../src/pki/index.js'

/** A connected pair of real TCP sockets on 127.0.0.1 (server side accepted on port 0). */
async function socketPair(): Promise<{ client: Socket; server: Socket; listener: Server }> {
  const listener = createServer()
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  const addr = listener.address()
  assert.ok(addr && typeof addr === 'object')
  const accepted = once(listener, 'connection') as Promise<[Socket]>
  const client = connect(addr.port, '127.0.0.1')
  await once(client, 'connect')
  const [server] = await accepted
  return { client, server, listener }
}

function collect(conn: FrameConnection): Frame[] {
  const frames: Frame[] = []
  conn.on('frame', (f: Frame) => frames.push(f))
  return frames
}

test('frames flow both ways; large DATA streams arrive intact and in order with backpressure', async () => {
  const { client, server, listener } = await socketPair()
  const a = new FrameConnection(client)
  const b = new FrameConnection(server)
  a.on('error', (e) => assert.fail(e))
  b.on('error', (e) => assert.fail(e))

  const got = collect(b)
  b.once('frame', (f: Frame) => {
    if (f.type === FrameType.HELLO) {
      b.send({
        type: FrameType.HELLO_ACK,
        circuitId: 0,
        flags: 0,
        payload: { version: 1, role: 'router', routerId: 'r1' },
      })
    }
  })
  const ackP = once(a, 'frame') as Promise<[Frame]>
  a.send({
    type: FrameType.HELLO,
    circuitId: 0,
    flags: 0,
    payload: { version: 1, role: 'sdk', agent: 'test' },
  })
  const [ack] = await ackP
  assert.deepEqual(ack, {
    type: FrameType.HELLO_ACK,
    circuitId: 0,
    flags: 0,
    payload: { version: 1, role: 'router', routerId: 'r1' },
  })
  assert.deepEqual(got, [
    { type: FrameType.HELLO, circuitId: 0, flags: 0, payload: { version: 1, role: 'sdk', agent: 'test' } },
  ])

  // Stream 32 MiB of DATA in chunks of assorted sizes (both sendData paths), honouring write().
  const total = 32 * 1024 * 1024
  const sentHash = createHash('sha256')
  const recvHash = createHash('sha256')
  let received = 0
  let drains = 0
  const done = new Promise<void>((resolve) => {
    b.on('frame', (f: Frame) => {
      if (f.type !== FrameType.DATA) return
      assert.equal(f.circuitId, 1)
      assert.equal(f.flags, FrameFlag.E2E)
      recvHash.update(f.payload)
      received += f.payload.byteLength
      if (received === total) resolve()
    })
  })
  a.on('drain', () => drains++)
  let sent = 0
  let i = 0
  while (sent < total) {
    const size = Math.min(total - sent, [65536, 100, 1023, 1024, 30000][i++ % 5]!)
    const chunk = Buffer.alloc(size, i & 0xff)
    sentHash.update(chunk)
    sent += size
    if (!a.sendData(1, FrameFlag.E2E, chunk)) {
      assert.equal(a.writableNeedDrain, true)
      await once(a, 'drain')
    }
  }
  await done
  assert.equal(recvHash.digest('hex'), sentHash.digest('hex'))
  assert.ok(drains > 0, 'write() returned false at least once and drain was re-emitted')

  // HALF_CLOSE via sendData, then a normal close.
  a.sendData(1, 0, Buffer.alloc(0), FrameType.HALF_CLOSE)
  const [hc] = (await once(b, 'frame')) as [Frame]
  assert.equal(hc.type, FrameType.HALF_CLOSE)

  const closes = [once(a, 'close'), once(b, 'close')]
  a.close()
  await Promise.all(closes)
  assert.equal(a.send({ type: FrameType.PING, circuitId: 0, flags: 0, payload: Buffer.alloc(8) }), false)
  listener.close()
})

test('garbage from the peer: GOAWAY with the error code, socket destroyed, error and close once', async () => {
  const { client, server, listener } = await socketPair()
  const conn = new FrameConnection(server)
  const errors: Error[] = []
  let closes = 0
  const frames = collect(conn)
  conn.on('error', (e: Error) => errors.push(e))
  conn.on('close', () => closes++)

  // A valid PING, then a frame with version 9.
  const rawIn: Buffer[] = []
  client.on('data', (c: Buffer) => rawIn.push(c))
  client.on('error', () => {})
  client.write(encodeFrame({ type: FrameType.PING, circuitId: 0, flags: 0, payload: Buffer.alloc(8, 1) }))
  client.write(Buffer.from([9, 0x30, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc]))
  await once(client, 'close')
  if (closes === 0) await once(conn, 'close')

  assert.equal(frames.length, 1)
  assert.equal(frames[0]?.type, FrameType.PING)
  assert.equal(errors.length, 1)
  assert.ok(isProtocolError(errors[0], 'ERR_FRAME_VERSION'))
  assert.equal(closes, 1)
  assert.ok(server.destroyed)

  const fromServer = new FrameDecoder().push(Buffer.concat(rawIn))
  assert.equal(fromServer.length, 1)
  const goaway = fromServer[0]!
  assert.equal(goaway.type, FrameType.GOAWAY)
  assert.equal(goaway.type === FrameType.GOAWAY && goaway.payload.code, 'ERR_FRAME_VERSION')
  // Later garbage or socket errors do not emit a second error.
  await new Promise((r) => setImmediate(r))
  assert.equal(errors.length, 1)
  listener.close()
})

test('an oversized length is refused before the payload arrives, and close(code) sends GOAWAY', async () => {
  const { client, server, listener } = await socketPair()
  const conn = new FrameConnection(server, { maxPayload: 1024 })
  const errP = once(conn, 'error') as Promise<[Error]>
  client.on('error', () => {})
  const rawIn: Buffer[] = []
  client.on('data', (c: Buffer) => rawIn.push(c))
  // Header only: DATA of 2000 bytes.
  client.write(Buffer.from([1, 0x30, 0, 0, 0, 0, 0, 1, 0, 0, 0x07, 0xd0]))
  const [err] = await errP
  assert.ok(isProtocolError(err, 'ERR_FRAME_TOO_LARGE'))
  await once(client, 'close')
  const [g] = new FrameDecoder().push(Buffer.concat(rawIn))
  assert.ok(g?.type === FrameType.GOAWAY && g.payload.code === 'ERR_FRAME_TOO_LARGE')

  // Graceful close with a code, initiated locally.
  const pair = await socketPair()
  const a = new FrameConnection(pair.client)
  const b = new FrameConnection(pair.server)
  const bFrames = collect(b)
  const closed = [once(a, 'close'), once(b, 'close')]
  a.close('ERR_SHUTTING_DOWN', 'router stopping')
  await Promise.all(closed)
  assert.deepEqual(bFrames, [
    {
      type: FrameType.GOAWAY,
      circuitId: 0,
      flags: 0,
      payload: { code: 'ERR_SHUTTING_DOWN', message: 'router stopping' },
    },
  ])
  listener.close()
  pair.listener.close()
})

test('destroy(err) emits the error once and close once', async () => {
  const { client, server, listener } = await socketPair()
  const a = new FrameConnection(client)
  const b = new FrameConnection(server)
  const errs: Error[] = []
  a.on('error', (e: Error) => errs.push(e))
  b.on('error', () => {})
  const closed = [new Promise((r) => a.once('close', r)), new Promise((r) => b.once('close', r))]
  a.destroy(new Error('boom'))
  a.destroy(new Error('again'))
  await Promise.all(closed)
  assert.deepEqual(
    errs.map((e) => e.message),
    ['boom'],
  )
  listener.close()
})

test('over real mutual TLS: frames flow, and garbage inside TLS gets a GOAWAY', async () => {
  const root = await createRootCa({ commonName: 'test root' })
  const inter = await createIntermediateCa({
    issuerCertPem: root.certPem,
    issuerKeyPem: root.keyPem,
    commonName: 'test inter',
  })
  const issuer = { issuerCertPem: inter.certPem, issuerKeyPem: inter.keyPem, lifetimeSeconds: 600 }
  const srv = await createLeaf({ ...issuer, commonName: 'router', usage: 'server', ip: ['127.0.0.1'] })
  const cli = await createLeaf({
    ...issuer,
    commonName: 'sdk',
    usage: 'client',
    uris: ['spiffe://nullport/identity/id_1'],
  })
  const server = createTlsServer({
    key: srv.keyPem,
    cert: srv.certPem + inter.certPem,
    ca: root.certPem,
    requestCert: true,
    rejectUnauthorized: true,
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const dialTls = async (): Promise<[TLSSocket, FrameConnection]> => {
    const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>
    const c = tlsConnect({
      host: '127.0.0.1',
      port,
      key: cli.keyPem,
      cert: cli.certPem + inter.certPem,
      ca: root.certPem,
    })
    await once(c, 'secureConnect')
    const [s] = await accepted
    return [c, new FrameConnection(s)]
  }

  // Frames over TLS, both sendData paths.
  const [c1, s1] = await dialTls()
  const a = new FrameConnection(c1)
  const got = collect(s1)
  a.send({
    type: FrameType.HELLO,
    circuitId: 0,
    flags: 0,
    payload: { version: 1, role: 'sdk', agent: 'tls-test' },
  })
  a.sendData(1, 0, Buffer.alloc(100, 1))
  a.sendData(1, FrameFlag.E2E, Buffer.alloc(65536, 2))
  a.sendDataParts(1, FrameFlag.E2E, [Buffer.alloc(1000, 4), Buffer.alloc(16, 5)])
  const closed = new Promise((r) => s1.once('close', r))
  a.close()
  await closed
  assert.deepEqual(
    got.map((f) => [f.type, f.type === FrameType.DATA ? f.payload.byteLength : 0]),
    [
      [FrameType.HELLO, 0],
      [FrameType.DATA, 100],
      [FrameType.DATA, 65536],
      [FrameType.DATA, 1016],
    ],
  )
  assert.deepEqual(got[3]?.payload, Buffer.concat([Buffer.alloc(1000, 4), Buffer.alloc(16, 5)]))

  // Garbage inside the TLS stream: the server answers GOAWAY and closes.
  const [c2, s2] = await dialTls()
  const errs: Error[] = []
  s2.on('error', (e: Error) => errs.push(e))
  const rawIn: Buffer[] = []
  c2.on('data', (d: Buffer) => rawIn.push(d))
  c2.on('error', () => {})
  c2.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'))
  await once(c2, 'close')
  const [g] = new FrameDecoder().push(Buffer.concat(rawIn))
  assert.ok(g?.type === FrameType.GOAWAY && g.payload.code === 'ERR_FRAME_VERSION', JSON.stringify(g))
  assert.equal(errs.length, 1)
  server.close()
})

test('frameBytesOf: decoder payloads (in place and assembled) sit behind their own header; others do not', () => {
  const frames: Frame[] = [
    { type: FrameType.DATA, circuitId: 7, flags: FrameFlag.E2E, payload: Buffer.alloc(3000, 1) },
    { type: FrameType.DATA, circuitId: 9, flags: 0, payload: Buffer.alloc(70_000, 2) },
    { type: FrameType.HALF_CLOSE, circuitId: 9, flags: 0, payload: Buffer.alloc(16, 3) },
    { type: FrameType.DATA, circuitId: 11, flags: 0, payload: Buffer.alloc(1, 4) },
  ]
  const stream = Buffer.concat(frames.map((f) => encodeFrame(f)))
  // whole stream in one chunk (decoded in place), and in 1000-byte chunks (assembled)
  for (const size of [stream.length, 1000, 7]) {
    for (const reuseAssembly of [false, true]) {
      const d = new FrameDecoder({ reuseAssembly })
      const out: Frame[] = []
      for (let i = 0; i < stream.length; i += size) {
        const got = d.push(Buffer.from(stream.subarray(i, i + size)))
        for (const f of got) {
          // check now: a transient (reused) payload is valid until the next push
          const raw = frameBytesOf(f.payload as Uint8Array, f.type)
          assert.ok(raw, `chunk ${size}: frame ${out.length} has its header in front`)
          assert.deepEqual(raw, encodeFrame(frames[out.length]!))
          out.push(f)
        }
      }
      assert.equal(out.length, frames.length)
    }
  }
  // a payload that did not come from a decoder, and a control frame's payload: null
  assert.equal(frameBytesOf(Buffer.alloc(100), FrameType.DATA), null)
  const big = Buffer.alloc(200)
  assert.equal(frameBytesOf(big.subarray(50, 150), FrameType.DATA), null)
  const ping = new FrameDecoder().push(
    encodeFrame({ type: FrameType.PING, circuitId: 0, flags: 0, payload: Buffer.alloc(8) }),
  )[0]!
  assert.equal(frameBytesOf(ping.payload as Uint8Array, FrameType.PING), null)
})

test('forwardData relays frames from one connection to another under a new circuit id, intact', async () => {
  const ab = await socketPair()
  const bc = await socketPair()
  const a = new FrameConnection(ab.client)
  const bIn = new FrameConnection(ab.server)
  const bOut = new FrameConnection(bc.client)
  const c = new FrameConnection(bc.server)
  for (const x of [a, bIn, bOut, c]) x.on('error', (e) => assert.fail(e))
  // the relay: every DATA from circuit 5 goes out as circuit 8 with the E2E flag kept
  let flushed = 0
  bIn.on('frame', (f: Frame) => {
    if (f.type === FrameType.DATA || f.type === FrameType.HALF_CLOSE)
      bOut.forwardData(8, f.flags, f.payload as Uint8Array, f.type, () => flushed++)
  })
  const received: Frame[] = []
  const hash = createHash('sha256')
  let bytes = 0
  const done = new Promise<void>((resolve) =>
    c.on('frame', (f: Frame) => {
      received.push(f)
      if (f.type === FrameType.DATA) {
        hash.update(f.payload as Uint8Array)
        bytes += (f.payload as Uint8Array).byteLength
      }
      if (f.type === FrameType.HALF_CLOSE) resolve()
    }),
  )
  const sent = createHash('sha256')
  let total = 0
  for (let i = 0; i < 300; i++) {
    const n = 1 + ((i * 7919) % 65_000)
    const p = Buffer.alloc(n, i & 0xff)
    p[0] = i & 0xff
    sent.update(p)
    total += n
    a.sendData(5, i % 2 ? FrameFlag.E2E : 0, p)
  }
  a.sendData(5, 0, Buffer.from('end'), FrameType.HALF_CLOSE)
  await done
  assert.equal(bytes, total)
  assert.equal(hash.digest('hex'), sent.digest('hex'))
  assert.ok(received.every((f) => f.circuitId === 8))
  assert.deepEqual(
    received.slice(0, 4).map((f) => f.flags),
    [0, FrameFlag.E2E, 0, FrameFlag.E2E],
  )
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(flushed, received.length, 'every forwarded frame reported flushed once')
  // a bad circuit id is refused before anything is written
  assert.throws(
    () => bOut.forwardData(0, 0, Buffer.alloc(4), FrameType.DATA),
    (e: unknown) => isProtocolError(e),
  )
  for (const x of [ab, bc]) {
    x.client.destroy()
    x.server.destroy()
    x.listener.close()
  }
})
