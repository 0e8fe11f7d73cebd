import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isProtocolError, SseParser } from '../src/index.js'

describe('SseParser', () => {
  it('parses events split anywhere, CRLF, comments, multi-line data', () => {
    const p = new SseParser()
    const text =
      ': hi\r\nevent: services-changed\r\ndata: {"type":"services-changed",\r\ndata: "version":3}\r\n\r\nevent: ping\ndata: {}\n\n'
    const out = []
    for (let i = 0; i < text.length; i += 3) out.push(...p.push(Buffer.from(text.slice(i, i + 3))))
    assert.equal(out.length, 2)
    assert.equal(out[0]!.event, 'services-changed')
    assert.deepEqual(JSON.parse(out[0]!.data), { type: 'services-changed', version: 3 })
    assert.equal(out[1]!.event, 'ping')
  })
  it('is bounded: an endless line throws before buffering more', () => {
    const p = new SseParser({ maxLineBytes: 1024, maxEventBytes: 4096 })
    assert.throws(
      () => {
        for (let i = 0; i < 100; i++) p.push(Buffer.alloc(100, 0x61))
      },
      (e: unknown) => isProtocolError(e, 'ERR_SSE_LINE_TOO_LONG'),
    )
  })
  it('is bounded: an event too large throws', () => {
    const p = new SseParser({ maxLineBytes: 1024, maxEventBytes: 2048 })
    assert.throws(
      () => {
        for (let i = 0; i < 100; i++) p.push(Buffer.from(`data: ${'x'.repeat(500)}\n`))
      },
      (e: unknown) => isProtocolError(e, 'ERR_SSE_EVENT_TOO_LARGE'),
    )
  })
})

describe('SseParser failure is sticky', () => {
  it('keeps failing after a limit was hit (the caller must drop the stream)', () => {
    const p = new SseParser({ maxLineBytes: 64, maxEventBytes: 1024 })
    assert.throws(() => p.push(Buffer.alloc(100, 0x61)))
    assert.throws(
      () => p.push(Buffer.from('data: {}\n\n')),
      (e: unknown) => isProtocolError(e, 'ERR_SSE_LINE_TOO_LONG'),
    )
  })
})
