import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SseParser } from '@nullport/protocol'

const b = (s: string) => Buffer.from(s, 'utf8')

test('parses events with LF and CRLF, multi-line data, comments, split across chunks', () => {
  const p = new SseParser()
  const text =
    ': keep-alive\nevent: snapshot\ndata: {"a":\ndata: 1}\n\r\nevent: ping\r\ndata: x\r\n\r\ndata: plain\n\n'
  const all = []
  for (let i = 0; i < text.length; i += 3) all.push(...p.push(b(text.slice(i, i + 3))))
  assert.deepEqual(all, [
    { event: 'snapshot', data: '{"a":\n1}' },
    { event: 'ping', data: 'x' },
    { event: 'message', data: 'plain' },
  ])
})

test('a blank line without data dispatches nothing; id is kept', () => {
  const p = new SseParser()
  assert.deepEqual(p.push(b('event: x\n\nid: 7\ndata: y\n\n')), [{ event: 'message', data: 'y', id: '7' }])
})

test('a line longer than the limit fails before buffering more, and the parser stays failed', () => {
  const p = new SseParser({ maxLineBytes: 64, maxEventBytes: 1024 })
  p.push(b('data: '))
  assert.throws(
    () => p.push(Buffer.alloc(100, 0x61)),
    (e: Error & { code?: string }) => e.code === 'ERR_SSE_LINE_TOO_LONG',
  )
  assert.throws(
    () => p.push(b('\n\n')),
    (e: Error & { code?: string }) => e.code === 'ERR_SSE_LINE_TOO_LONG',
  )
  // a line that ends inside one chunk is limited too
  const q = new SseParser({ maxLineBytes: 16, maxEventBytes: 1024 })
  assert.throws(
    () => q.push(b(`data: ${'x'.repeat(40)}\n`)),
    (e: Error & { code?: string }) => e.code === 'ERR_SSE_LINE_TOO_LONG',
  )
})

test('an event whose data lines add up beyond the limit fails', () => {
  const p = new SseParser({ maxLineBytes: 64, maxEventBytes: 100 })
  assert.throws(
    () => {
      for (let i = 0; i < 10; i++) p.push(b(`data: ${'y'.repeat(30)}\n`))
    },
    (e: Error & { code?: string }) => e.code === 'ERR_SSE_EVENT_TOO_LARGE',
  )
})

test('many events in one chunk', () => {
  const p = new SseParser()
  const n = 1000
  const evs = p.push(b('data: 1\n\n'.repeat(n)))
  assert.equal(evs.length, n)
})
