/**
 * The router's control stream: an oversized SSE line drops the stream and the router resyncs
 * from a fresh snapshot (with backoff); a change that arrives while it was away is applied; the
 * backoff is jittered, exponential and capped.
 */
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { Backoff, FrameType } from '@nullport/protocol'
import { FakeController, RawClient } from '@nullport/testkit'
import pino from 'pino'
import { startRouter } from '../src/index.js'

test('backoff: exponential with jitter in [ceil/2, ceil], capped, reset', () => {
  const lo = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 })
  assert.deepEqual(
    [lo.next(), lo.next(), lo.next(), lo.next(), lo.next(), lo.next()],
    [50, 100, 200, 400, 500, 500],
  )
  const hi = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 })
  assert.deepEqual([hi.next(), hi.next(), hi.next(), hi.next(), hi.next()], [100, 200, 400, 800, 1000])
  hi.reset()
  assert.equal(hi.next(), 100)
  assert.throws(() => new Backoff({ initialMs: 0 }))
  assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }))
})

test('an oversized event line drops the stream; the router resyncs and applies what changed', async () => {
  const fake = new FakeController()
  await fake.init()
  await fake.start()
  const rc = await fake.issue('router', 'r1', 'r1')
  const d = await fake.issue('identity', 'd', 'dialer')
  fake.addRouter(rc)
  fake.addIdentity(d, ['x'])
  fake.allowAllRouters()
  const router = await startRouter({
    identity: fake.identityFile(rc),
    listen: '127.0.0.1:0',
    logLevel: 'silent',
    maxSseLineBytes: 4096,
    reconnectBaseMs: 50,
    reconnectMaxMs: 100,
  })
  const c: RawClient[] = []
  try {
    await router.ready
    const streams = () => fake.requests.filter((r) => r === 'GET /fabric/v1/stream').length
    assert.equal(streams(), 1)
    assert.ok(fake.sendRaw('r1', `event: change\ndata: ${'x'.repeat(10_000)}\n\n`))
    // while the router reconnects, a service and a policy appear (it must learn them from the snapshot)
    fake.addService('s', 'late')
    fake.addServicePolicy('p', 'Dial', ['#x'], ['@s'])
    const deadline = Date.now() + 5000
    while (streams() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    assert.ok(streams() >= 2, 'the router reconnected')
    await new Promise((r) => setTimeout(r, 200))
    assert.ok(
      fake.requests.filter((r) => r === 'POST /fabric/v1/online').length >= 2,
      'online again after reconnecting',
    )
    const cl = await RawClient.connect(router.address, d, fake.caBundle)
    c.push(cl)
    const cid = cl.dial('late')
    const f = await cl.next((x) => x.circuitId === cid)
    // authorized (the policy is known): it fails only for lack of a terminator
    assert.equal((f.payload as { code: string }).code, 'ERR_NO_TERMINATORS')
    assert.equal(f.type, FrameType.DIAL_FAILED)
  } finally {
    for (const x of c) x.close()
    await router.stop()
    await fake.stop()
  }
})

test('stop() closes the controller stream without warning that it was lost', async () => {
  const fake = new FakeController()
  await fake.init()
  await fake.start()
  const rc = await fake.issue('router', 'r1', 'r1')
  fake.addRouter(rc)
  const lines: Array<{ level: number; msg: string }> = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l))
      cb()
    },
  })
  const router = await startRouter({
    identity: fake.identityFile(rc),
    listen: '127.0.0.1:0',
    logger: pino({ level: 'info' }, sink),
  })
  try {
    await router.ready
    assert.ok(lines.some((l) => l.msg === 'controller stream open'))
  } finally {
    await router.stop()
    await fake.stop()
  }
  await new Promise((r) => setTimeout(r, 200))
  assert.ok(lines.some((l) => l.msg === 'router stopped'))
  const lost = lines.filter((l) => /controller stream lost/.test(l.msg))
  assert.deepEqual(lost, [], 'a deliberate stop is not a lost stream')
  assert.deepEqual(
    lines.filter((l) => l.level >= 40),
    [],
    'no warning or error during a deliberate stop',
  )
})
