import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  DEFAULT_TERMINATOR_PRECEDENCE,
  DEFAULT_TERMINATOR_STRATEGY,
  encodeFrame,
  FrameDecoder,
  FrameType,
  isProtocolError,
  isTerminatorPrecedence,
  isTerminatorStrategy,
  type Service,
  TERMINATOR_PRECEDENCE_RANK,
  TERMINATOR_PRECEDENCES,
  TERMINATOR_STRATEGIES,
  type TerminatorPrecedence,
  type TerminatorStrategyName,
} from '../src/index.js'

test('the lists, in the order help texts show them, and their defaults', () => {
  assert.deepEqual([...TERMINATOR_STRATEGIES], ['smartrouting', 'weighted', 'random', 'sticky'])
  assert.deepEqual([...TERMINATOR_PRECEDENCES], ['default', 'required', 'failed'])
  assert.equal(TERMINATOR_STRATEGIES.join(', '), 'smartrouting, weighted, random, sticky')
  assert.equal(DEFAULT_TERMINATOR_STRATEGY, 'smartrouting')
  assert.equal(DEFAULT_TERMINATOR_PRECEDENCE, 'default')
  // the model's types are the derived ones
  const s: Service['terminatorStrategy'] = 'sticky' satisfies TerminatorStrategyName
  assert.ok(isTerminatorStrategy(s))
})

test('guards accept exactly the listed names', () => {
  for (const n of TERMINATOR_STRATEGIES) assert.equal(isTerminatorStrategy(n), true)
  for (const p of TERMINATOR_PRECEDENCES) assert.equal(isTerminatorPrecedence(p), true)
  for (const bad of ['', 'SmartRouting', 'least', 'toString', 1, null, undefined]) {
    assert.equal(isTerminatorStrategy(bad), false)
    assert.equal(isTerminatorPrecedence(bad), false)
  }
})

test('precedence rank: required before default before failed; every class ranked', () => {
  const sorted = [...TERMINATOR_PRECEDENCES].sort(
    (a, b) => TERMINATOR_PRECEDENCE_RANK[a] - TERMINATOR_PRECEDENCE_RANK[b],
  )
  assert.deepEqual(sorted, ['required', 'default', 'failed'] satisfies TerminatorPrecedence[])
  assert.ok(Object.isFrozen(TERMINATOR_PRECEDENCE_RANK))
})

test('BIND frames accept the listed precedences and refuse others', () => {
  const bind = (precedence: string) =>
    encodeFrame({
      type: FrameType.BIND,
      circuitId: 0,
      flags: 0,
      payload: { bindId: 1, service: 'db', cost: 0, precedence, maxConnections: 0 },
    } as never)
  for (const p of TERMINATOR_PRECEDENCES) {
    const frames = new FrameDecoder().push(bind(p))
    assert.equal(frames.length, 1)
    assert.equal((frames[0]!.payload as { precedence: string }).precedence, p)
  }
  assert.throws(
    () => bind('sometimes'),
    (e: unknown) => isProtocolError(e, 'ERR_FRAME_PAYLOAD'),
  )
})
