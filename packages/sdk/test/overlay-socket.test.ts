import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { describe, it } from 'node:test'
import { E2E_OVERHEAD, type Frame, FrameFlag, FrameType, MAX_DATA_PAYLOAD } from '@nullport/protocol'
import { isSdkError, SdkError } from '../src/errors.js'
import { fakeE2EPair, socketPair } from './helpers/frame-pipe.js'

function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    s.on('data', (b: Buffer) => parts.push(b))
    s.on('end', () => resolve(Buffer.concat(parts)))
    s.on('error', reject)
  })
}

function frameTypes(frames: Frame[]): number[] {
  return frames.map((f) => f.type)
}

describe('OverlaySocket data and half-close', () => {
  it('carries bytes both ways, half-closes each direction and then closes the circuit once', async () => {
    const { a, b, la, lb } = socketPair()
    const fromA = randomBytes(300_000)
    const fromB = randomBytes(200_000)
    const gotB = collect(b)
    const gotA = collect(a)
    const closed = Promise.all([once(a, 'close'), once(b, 'close')])
    a.end(fromA)
    // b can still write after a's end (a's readable side is open until b ends).
    b.end(fromB)
    assert.deepEqual(await gotB, fromA)
    assert.deepEqual(await gotA, fromB)
    await closed
    assert.equal(a.bytesWritten, fromA.length)
    assert.equal(b.bytesRead, fromA.length)
    assert.equal(b.bytesWritten, fromB.length)
    assert.equal(a.bytesRead, fromB.length)
    assert.ok(la.released && lb.released, 'both ends released the circuit id')
    assert.equal(frameTypes(la.sent).filter((t) => t === FrameType.HALF_CLOSE).length, 1)
    // DATA records never exceed the largest DATA payload
    for (const f of la.sent)
      if (f.type === FrameType.DATA) assert.ok(f.payload.byteLength <= MAX_DATA_PAYLOAD)
  })

  it('half-open: with allowHalfOpen the reader sees end while it keeps writing', async () => {
    const { a, b } = socketPair({ allowHalfOpen: true })
    a.end('question')
    const [q] = await Promise.all([collect(b)])
    assert.equal(q.toString(), 'question')
    assert.equal(b.readyState, 'writeOnly')
    const answer = collect(a)
    b.end('answer')
    assert.equal((await answer).toString(), 'answer')
  })

  it('coalesces corked small writes into one record', async () => {
    const { a, b, la } = socketPair()
    const got = collect(b)
    a.cork()
    for (let i = 0; i < 100; i++) a.write(`line ${i}\n`)
    process.nextTick(() => a.uncork())
    await new Promise((r) => setImmediate(r))
    a.end()
    const text = (await got).toString()
    assert.equal(text.split('\n').length, 101)
    const dataFrames = la.sent.filter((f) => f.type === FrameType.DATA)
    assert.ok(dataFrames.length < 10, `expected coalesced records, got ${dataFrames.length}`)
  })
})

describe('OverlaySocket flow control', () => {
  it('a paused reader blocks its sender after one window; reading returns credit and all bytes arrive', async () => {
    const window = 256 * 1024
    const { a, b, la } = socketPair({ window })
    b.pause()
    const chunk = randomBytes(16 * 1024)
    let written = 0
    while (a.write(chunk)) {
      written += chunk.length
      if (written > 10 * window) break
    }
    written += chunk.length
    assert.ok(
      written <= window + 2 * 64 * 1024 + chunk.length,
      `write() returned false after ${written} bytes`,
    )
    // Let every frame in flight arrive.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r))
    assert.equal(a.sendCredit, 0, 'the sender used its whole window and waits for credit')
    const sentData = la.sent
      .filter((f) => f.type === FrameType.DATA)
      .reduce((n, f) => n + (f.payload as Buffer).length, 0)
    assert.equal(sentData, window, 'no DATA beyond the window')
    assert.ok(b.receiveQueued + b.readableLength <= window, 'the receiver holds at most one window')
    let drained = false
    a.once('drain', () => {
      drained = true
    })
    const h = createHash('sha256')
    let n = 0
    b.on('data', (d: Buffer) => {
      h.update(d)
      n += d.length
    })
    b.resume()
    const expect = createHash('sha256')
    for (let i = 0; i < written / chunk.length; i++) expect.update(chunk)
    await once(a, 'drain').catch(() => undefined)
    assert.ok(drained || a.writableLength === 0)
    a.end()
    await once(b, 'end')
    assert.equal(n, written)
    assert.equal(h.digest('hex'), expect.digest('hex'))
    // credit came back in batches (window/4), not per frame
    const updates = la.peer!.sent.filter((f) => f.type === FrameType.WINDOW_UPDATE)
    for (const u of updates) assert.ok((u.payload as { credit: number }).credit >= window / 4)
  })

  it('the write callback is held until credit arrives (like secret-stream)', async () => {
    const window = 64 * 1024
    const { a, b } = socketPair({ window })
    b.pause()
    let called = false
    a.write(randomBytes(window * 2), () => {
      called = true
    })
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r))
    assert.equal(called, false)
    b.resume()
    b.on('data', () => undefined)
    for (let i = 0; i < 50 && !called; i++) await new Promise((r) => setImmediate(r))
    assert.equal(called, true)
    a.destroy()
    b.destroy()
  })

  it('a congested router connection holds writes until it drains', async () => {
    const { a, b, la } = socketPair()
    b.on('data', () => undefined)
    la.congested = true
    let done = false
    a.write(Buffer.alloc(1000), () => {
      done = true
    })
    await new Promise((r) => setImmediate(r))
    // the first record went out (the buffer was full only after it); the next waits
    a.write(Buffer.alloc(1000), () => undefined)
    await new Promise((r) => setImmediate(r))
    const before = la.sent.filter((f) => f.type === FrameType.DATA).length
    la.drain()
    await new Promise((r) => setImmediate(r))
    assert.ok(done)
    assert.ok(la.sent.filter((f) => f.type === FrameType.DATA).length > before || before === 2)
    a.destroy()
    b.destroy()
  })

  it('a peer that sends beyond the window is cut off with ERR_FLOW_CONTROL', async () => {
    const window = 64 * 1024
    const { a, b, lb } = socketPair({ window })
    b.pause()
    const errB = once(b, 'error')
    const errA = once(a, 'error')
    // Bypass a's accounting: inject DATA straight into b, more than one window.
    for (let i = 0; i < 3; i++) {
      b.handleFrame({ type: FrameType.DATA, circuitId: 1, flags: 0, payload: Buffer.alloc(window / 2) })
    }
    const [e] = await errB
    assert.ok(isSdkError(e, 'ERR_FLOW_CONTROL'))
    const close = lb.sent.find((f) => f.type === FrameType.CLOSE)
    assert.equal((close?.payload as { code?: string } | undefined)?.code, 'ERR_FLOW_CONTROL')
    const [ea] = await errA
    assert.ok(isSdkError(ea, 'ERR_FLOW_CONTROL'), 'the sender learns the code too')
  })

  it('credit beyond what was owed is a flow-control violation', async () => {
    const { a, b } = socketPair({ window: 64 * 1024 })
    b.on('error', () => undefined)
    const err = once(a, 'error')
    a.handleFrame({ type: FrameType.WINDOW_UPDATE, circuitId: 1, flags: 0, payload: { credit: 1 } })
    const [e] = await err
    assert.ok(isSdkError(e, 'ERR_FLOW_CONTROL'))
  })
})

describe('OverlaySocket close and destroy', () => {
  it('destroy() fails pending write callbacks, ends the stream and closes; the peer sees a clean end (like a FIN)', async () => {
    const { a, b, la } = socketPair({ window: 64 * 1024 })
    b.pause()
    let cbErr: Error | null | undefined
    a.write(randomBytes(256 * 1024), (err) => {
      cbErr = err
    })
    await new Promise((r) => setImmediate(r))
    const got = collect(b)
    a.destroy()
    await once(a, 'close')
    assert.ok(cbErr instanceof Error, 'the held write callback failed')
    const types = la.sent.map((f) => f.type)
    assert.deepEqual(types.slice(-2), [FrameType.HALF_CLOSE, FrameType.CLOSE])
    b.resume()
    const data = await got
    assert.equal(data.length, 64 * 1024, 'the peer read what was sent (one window), then end')
    b.destroy()
  })

  it('destroy(err) aborts: the peer sees the code', async () => {
    const { a, b } = socketPair()
    a.on('error', () => undefined)
    const errB = once(b, 'error')
    a.destroy(new SdkError('ERR_E2E_VERIFY_FAILED', 'x'))
    const [e] = await errB
    assert.ok(isSdkError(e, 'ERR_E2E_VERIFY_FAILED'))
  })

  it('a CLOSE before the end of stream (no HALF_CLOSE) is ERR_CIRCUIT_RESET', async () => {
    const { a } = socketPair()
    const err = once(a, 'error')
    a.handleFrame({ type: FrameType.CLOSE, circuitId: 1, flags: 0, payload: {} })
    const [e] = await err
    assert.ok(isSdkError(e, 'ERR_CIRCUIT_RESET'))
  })

  it('a CLOSE with a code (revocation) destroys the socket with that code', async () => {
    const { a } = socketPair()
    const err = once(a, 'error')
    a.handleFrame({
      type: FrameType.CLOSE,
      circuitId: 1,
      flags: 0,
      payload: { code: 'ERR_NO_DIAL_PERMISSION', message: 'policy removed' },
    })
    const [e] = await err
    assert.ok(isSdkError(e, 'ERR_NO_DIAL_PERMISSION'))
  })

  it('a CLOSE after the peer ended is graceful', async () => {
    const { a, b } = socketPair({ allowHalfOpen: true })
    const got = collect(a)
    b.end('bye')
    assert.equal((await got).toString(), 'bye')
    a.handleFrame({ type: FrameType.CLOSE, circuitId: 1, flags: 0, payload: {} })
    a.end()
    await once(a, 'close')
    assert.equal(a.errored, null)
    b.destroy()
  })
})

describe('OverlaySocket with end-to-end records', () => {
  it('seals every DATA record (E2E flag, plaintext chunks of MAX_DATA_PAYLOAD - E2E_OVERHEAD) and the end of stream', async () => {
    const { a, b, la } = socketPair({ e2e: fakeE2EPair() })
    const data = randomBytes(200_000)
    const got = collect(b)
    a.end(data)
    assert.deepEqual(await got, data)
    for (const f of la.sent.filter((x) => x.type === FrameType.DATA)) {
      assert.equal(f.flags & FrameFlag.E2E, FrameFlag.E2E)
      assert.ok((f.payload as Buffer).length <= MAX_DATA_PAYLOAD)
    }
    const first = la.sent.find((x) => x.type === FrameType.DATA)!
    assert.equal((first.payload as Buffer).length, MAX_DATA_PAYLOAD, 'full records use the whole payload')
    assert.equal(MAX_DATA_PAYLOAD - E2E_OVERHEAD, 64 * 1024 - 16)
    const hc = la.sent.find((x) => x.type === FrameType.HALF_CLOSE)!
    assert.equal(hc.flags & FrameFlag.E2E, FrameFlag.E2E)
    b.destroy()
  })

  it('a flipped byte is detected by the receiver (ERR_E2E_DECRYPT_FAILED) and the sender learns it', async () => {
    const { a, b, la } = socketPair({ e2e: fakeE2EPair() })
    la.tap = (f) => {
      if (f.type === FrameType.DATA) (f.payload as Buffer)[3] ^= 0x01
      return f
    }
    b.on('data', () => undefined)
    const eb = once(b, 'error')
    const ea = once(a, 'error')
    a.write(Buffer.from('attack at dawn'))
    const [e1] = await eb
    const [e2] = await ea
    assert.ok(isSdkError(e1, 'ERR_E2E_DECRYPT_FAILED'))
    assert.ok(isSdkError(e2, 'ERR_E2E_DECRYPT_FAILED'))
  })

  it('an end of stream without its authenticated record is refused (ERR_E2E_TRUNCATED)', async () => {
    const { a, b, la } = socketPair({ e2e: fakeE2EPair() })
    la.tap = (f) => (f.type === FrameType.HALF_CLOSE ? { ...f, flags: 0, payload: Buffer.alloc(0) } : f)
    b.on('data', () => undefined)
    a.on('error', () => undefined)
    const eb = once(b, 'error')
    a.end('x')
    const [e] = await eb
    assert.ok(isSdkError(e, 'ERR_E2E_TRUNCATED'))
  })

  it('plaintext DATA on an encrypted circuit is refused', async () => {
    const { a, b } = socketPair({ e2e: fakeE2EPair() })
    a.on('error', () => undefined)
    const eb = once(b, 'error')
    b.handleFrame({ type: FrameType.DATA, circuitId: 1, flags: 0, payload: Buffer.from('plain') })
    const [e] = await eb
    assert.ok(isSdkError(e, 'ERR_E2E_DECRYPT_FAILED'))
  })
})
