import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type CircuitMeta, CircuitTable } from '../src/index.js'

const meta = (tag: string): CircuitMeta => ({
  tag,
  serviceId: 's',
  serviceName: 'svc',
  dialerId: 'd',
  dialerName: 'dialer',
  terminatorId: 't',
  terminatorRouterId: 'r',
  hostIdentityId: 'h',
})

test('maps (connection, id) to the other leg in both directions', () => {
  const t = new CircuitTable<string>()
  const c = t.open(meta('a'), 'sdk1', 1)
  const b = t.attach(c, 'host', 2)
  assert.equal(t.lookup('sdk1', 1)?.other(), b)
  assert.equal(t.lookup('host', 2)?.other(), c.a)
  assert.equal(t.lookup('host', 1), undefined)
  assert.equal(t.size, 1)
  assert.equal(t.countOn('sdk1'), 1)
  assert.deepEqual(t.circuitsOf('host'), [c])
})

test('the same id on different connections is a different circuit; reuse on one connection is refused', () => {
  const t = new CircuitTable<string>()
  const c1 = t.open(meta('1'), 'x', 1)
  const c2 = t.open(meta('2'), 'y', 1)
  assert.notEqual(c1, c2)
  assert.throws(() => t.open(meta('3'), 'x', 1), /already in use/)
  t.attach(c1, 'h', 2)
  assert.throws(() => t.attach(c2, 'h', 2), /already in use/)
  assert.throws(() => t.attach(c1, 'h', 4), /already has/)
})

test('remove drops both legs and is idempotent; a pending leg-less circuit removes cleanly', () => {
  const t = new CircuitTable<string>()
  const c = t.open(meta('a'), 'x', 1)
  assert.equal(c.a.other(), null)
  t.attach(c, 'h', 2)
  let fired = false
  c.timer = setTimeout(() => {
    fired = true
  }, 10)
  t.remove(c)
  t.remove(c)
  assert.equal(c.state, 'closed')
  assert.equal(t.size, 0)
  assert.equal(t.lookup('x', 1), undefined)
  assert.equal(t.lookup('h', 2), undefined)
  assert.equal(t.has('h', 2), false)
  const d = t.open(meta('b'), 'y', 3)
  t.remove(d)
  assert.equal(t.countOn('y'), 0)
  return new Promise<void>((r) =>
    setTimeout(() => {
      assert.equal(fired, false, 'the dial timer is cleared on remove')
      r()
    }, 30),
  )
})

test('flow accounting: a sender may send one window, credit from the far end raises it', () => {
  const t = new CircuitTable<string>({ window: 100 })
  const c = t.open(meta('a'), 'x', 1)
  const b = t.attach(c, 'h', 2)
  assert.equal(c.a.consume(60), true)
  assert.equal(c.a.consume(40), true)
  assert.equal(c.a.inWindow, 0)
  assert.equal(c.a.consume(1), false, 'one byte beyond the window is a violation')
  // the other direction is independent
  assert.equal(b.consume(100), true)
  // credit granted by the receiver (leg b) re-opens leg a
  c.a.inWindow += 50
  assert.equal(c.a.consume(49), true)
})
