import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Terminator } from '@nullport/protocol'
import {
  bestPrecedenceClass,
  randomStrategy,
  smartRouting,
  strategyFor,
  type TerminatorCandidate,
  weightedStrategy,
} from '../src/index.js'

function cand(
  id: string,
  cost: number,
  precedence: Terminator['precedence'],
  routeCost = 0,
  activeCircuits = 0,
): TerminatorCandidate {
  return {
    terminator: { id, serviceId: 's', routerId: 'r', identityId: 'i', cost, precedence, createdAt: '' },
    routeCost,
    activeCircuits,
  }
}
const ctx = (r = 0) => ({ serviceId: 's', dialerId: 'd', random: () => r })

test('precedence classes: required beats default beats failed, whatever the cost', () => {
  const cs = [cand('f', 0, 'failed'), cand('d', 50, 'default'), cand('q', 900, 'required')]
  assert.deepEqual(
    bestPrecedenceClass(cs).map((c) => c.terminator.id),
    ['q'],
  )
  for (const s of [smartRouting, randomStrategy, weightedStrategy]) {
    assert.equal(s.select(cs, ctx(0.99))?.terminator.id, 'q', s.name)
  }
  assert.equal(
    smartRouting.select([cand('f', 0, 'failed'), cand('d', 50, 'default')], ctx())?.terminator.id,
    'd',
  )
  assert.equal(smartRouting.select([cand('f', 0, 'failed')], ctx())?.terminator.id, 'f')
})

test('smartrouting: lowest cost + route cost, ties to the least loaded', () => {
  const cs = [cand('a', 10, 'default', 30), cand('b', 20, 'default', 5), cand('c', 1, 'default', 100)]
  assert.equal(smartRouting.select(cs, ctx())?.terminator.id, 'b')
  const tie = [cand('x', 5, 'default', 0, 3), cand('y', 5, 'default', 0, 1), cand('z', 5, 'default', 0, 2)]
  assert.equal(smartRouting.select(tie, ctx(0.99))?.terminator.id, 'y')
})

test('no candidates: undefined', () => {
  for (const s of [smartRouting, randomStrategy, weightedStrategy])
    assert.equal(s.select([], ctx()), undefined)
})

test('random picks uniformly within the best class', () => {
  const cs = [cand('a', 0, 'default'), cand('b', 99, 'default'), cand('c', 0, 'failed')]
  assert.equal(randomStrategy.select(cs, ctx(0))?.terminator.id, 'a')
  assert.equal(randomStrategy.select(cs, ctx(0.99))?.terminator.id, 'b')
})

test('weighted favours cheap terminators in proportion to 1/(1+cost)', () => {
  const cs = [cand('cheap', 0, 'default'), cand('dear', 9, 'default')]
  // weights 1 and 0.1: r * 1.1 < 1 -> cheap
  assert.equal(weightedStrategy.select(cs, ctx(0.5))?.terminator.id, 'cheap')
  assert.equal(weightedStrategy.select(cs, ctx(0.95))?.terminator.id, 'dear')
  let seed = 1
  const rnd = () => {
    seed = (seed * 16807) % 2147483647
    return seed / 2147483647
  }
  let cheap = 0
  for (let i = 0; i < 2000; i++)
    if (weightedStrategy.select(cs, { ...ctx(), random: rnd })?.terminator.id === 'cheap') cheap++
  assert.ok(cheap > 1650 && cheap < 1990, `cheap chosen ${cheap} of 2000`)
})

test('strategyFor maps service strategies; unknown and sticky fall back to smartrouting', () => {
  assert.equal(strategyFor('random').name, 'random')
  assert.equal(strategyFor('weighted').name, 'weighted')
  assert.equal(strategyFor('smartrouting').name, 'smartrouting')
  assert.equal(strategyFor('sticky').name, 'smartrouting')
  assert.equal(strategyFor('__proto__').name, 'smartrouting')
  assert.equal(strategyFor(undefined).name, 'smartrouting')
})
