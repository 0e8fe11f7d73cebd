import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Backoff } from '../src/index.js'

test('half jitter: delays in [ceil/2, ceil], doubling from initialMs up to maxMs', () => {
  const lo = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 })
  assert.deepEqual(
    Array.from({ length: 6 }, () => lo.next()),
    [50, 100, 200, 400, 500, 500],
  )
  const hi = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 })
  assert.deepEqual(
    Array.from({ length: 6 }, () => hi.next()),
    [100, 200, 400, 800, 1000, 1000],
  )
  assert.equal(hi.attempts, 6)
})

test('defaults: 250 ms initial, 30 s cap, factor 2, half jitter', () => {
  const b = new Backoff({ random: () => 0.5 })
  assert.equal(b.initialMs, 250)
  assert.equal(b.maxMs, 30_000)
  assert.equal(b.factor, 2)
  assert.equal(b.jitter, 'half')
  assert.equal(b.next(), 188) // 125 + 62.5
  for (let i = 0; i < 100; i++) b.next()
  assert.equal(b.next(), 22_500)
})

test('no jitter and full jitter, other factors', () => {
  const none = new Backoff({ initialMs: 200, maxMs: 10_000, jitter: 'none' })
  assert.deepEqual(
    Array.from({ length: 8 }, () => none.next()),
    [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000],
  )
  const full = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 'full', random: () => 0 })
  assert.deepEqual([full.next(), full.next()], [0, 0])
  const full1 = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 'full', random: () => 0.5 })
  assert.deepEqual([full1.next(), full1.next(), full1.next()], [50, 100, 200])
  const three = new Backoff({ initialMs: 10, maxMs: 1000, factor: 3, jitter: 'none' })
  assert.deepEqual(
    Array.from({ length: 6 }, () => three.next()),
    [10, 30, 90, 270, 810, 1000],
  )
  const flat = new Backoff({ initialMs: 50, maxMs: 50, factor: 1, jitter: 'none' })
  assert.deepEqual([flat.next(), flat.next()], [50, 50])
})

test('reset starts again from the initial delay; peekCeiling does not count', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 10_000, jitter: 'none' })
  b.next()
  b.next()
  assert.equal(b.peekCeiling(), 400)
  assert.equal(b.peekCeiling(), 400)
  assert.equal(b.attempts, 2)
  b.reset()
  assert.equal(b.attempts, 0)
  assert.equal(b.next(), 100)
})

test('many attempts stay finite and capped', () => {
  const b = new Backoff({ initialMs: 1, maxMs: 5000, factor: 1000, jitter: 'none' })
  for (let i = 0; i < 1000; i++) assert.equal(Number.isFinite(b.next()), true)
  assert.equal(b.next(), 5000)
})

test('options out of range throw RangeError naming the option', () => {
  assert.throws(() => new Backoff({ initialMs: 0 }), /initialMs/)
  assert.throws(() => new Backoff({ initialMs: Number.NaN }), /initialMs/)
  assert.throws(() => new Backoff({ initialMs: 100, maxMs: 50 }), /maxMs/)
  assert.throws(() => new Backoff({ factor: 0.5 }), /factor/)
  assert.throws(() => new Backoff({ jitter: 'some' as never }), /jitter/)
})
