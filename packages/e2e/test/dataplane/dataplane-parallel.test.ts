/**
 * Data plane: parallel streams. 8 circuits multiplexed on ONE SDK connection per side each move
 * 64 MiB both ways at the same time, end to end encrypted, through a real router process, then
 * across a link between two routers; sha256 must be equal at every receiver.
 *
 * Regression: the router used to count every byte forwarded while the next hop's socket was
 * backed up (reset only on 'drain', which rarely fires with several busy circuits), so a circuit
 * that never had more than its window outstanding was aborted with ERR_FLOW_CONTROL.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { type Context, isSdkError, loadContext, type OverlaySocket } from '@nullport/sdk'
import {
  type HostProcess,
  hostStream,
  spawnHost,
  startLinkedNetwork,
  startNetwork,
  type TestNetwork,
} from '@nullport/testkit'

const STREAMS = 8
const SIZE = 64 * 1024 * 1024

/** Dials `service`, retrying while the overlay has no route yet (links come up shortly after the routers). */
async function dialRetry(dialer: Context, service: string): Promise<OverlaySocket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await dialer.dial(service, { allowHalfOpen: true })
    } catch (err) {
      if (
        attempt > 100 ||
        !isSdkError(err) ||
        !['ERR_NO_ROUTE', 'ERR_NO_TERMINATORS', 'ERR_DIAL_FAILED'].includes(err.code)
      ) {
        throw err
      }
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}

interface StreamResult {
  size: number
  rxBytes: number
  rxHash: string
  txHash: string
}

/** One exchange on an open socket: sends `size` bytes while reading what the host sends. */
async function exchange(socket: OverlaySocket, size: number): Promise<StreamResult> {
  const rx = createHash('sha256')
  let rxBytes = 0
  const ended = new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      rx.update(d)
      rxBytes += d.length
    })
    socket.on('end', resolve)
    socket.on('error', reject)
  })
  socket.write(`${JSON.stringify({ cmd: 'exchange', size })}\n`)
  const tx = createHash('sha256')
  const next = hostStream(size + 1) // a different stream than the host's
  let left = size
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (left > 0) {
        const b = next(Math.min(left, 1 << 20))
        left -= b.length
        tx.update(b)
        if (!socket.write(b)) {
          socket.once('drain', pump)
          return
        }
      }
      socket.end(resolve)
    }
    socket.once('error', reject)
    pump()
  })
  await ended
  return { size, rxBytes, rxHash: rx.digest('hex'), txHash: tx.digest('hex') }
}

function expectedHostHash(size: number): string {
  const h = createHash('sha256')
  const s = hostStream(size)
  for (let l = size; l > 0; l -= 1 << 20) h.update(s(Math.min(l, 1 << 20)))
  return h.digest('hex')
}

/** 8 concurrent exchanges on one context; checks every hash against the host's report. */
async function parallel(dialer: Context, host: HostProcess, service: string): Promise<void> {
  // distinct sizes (and so distinct host streams, seeded by size & 255) identify each circuit
  const sizes = Array.from({ length: STREAMS }, (_, i) => SIZE + 17 * (i + 1))
  const sockets = await Promise.all(sizes.map(() => dialRetry(dialer, service)))
  const routers = new Set(sockets.map((s) => s.routerId))
  assert.equal(routers.size, 1, 'every circuit shares one SDK connection (one router)')
  const results = await Promise.all(sockets.map((s, i) => exchange(s, sizes[i]!)))
  for (const r of results) {
    const done = await host.waitFor((e) => e.event === 'exchange-done' && e.rxBytes === r.size, 60_000)
    assert.equal(r.rxBytes, r.size, 'host -> dialer: every byte arrived')
    assert.equal(r.rxHash, done.txHash, 'host -> dialer: equal sha256')
    assert.equal(done.txHash, expectedHostHash(r.size))
    assert.equal(r.txHash, done.rxHash, 'dialer -> host: equal sha256')
  }
  const errors = host.events.filter((e) => e.event === 'socket-error')
  assert.deepEqual(errors, [], 'no circuit failed on the host side')
}

describe('dataplane: 8 parallel streams on one SDK connection', () => {
  describe('through one router', () => {
    let net: TestNetwork
    let host: HostProcess
    let dialer: Context

    before(async () => {
      net = await startNetwork({ routers: [{ name: 'r1' }] })
      const h = await net.identity('host-p')
      const d = await net.identity('dialer-p')
      await net.service('par')
      await net.policy('Bind', ['@host-p'], ['@par'])
      await net.policy('Dial', ['@dialer-p'], ['@par'])
      host = await spawnHost(net, h.path, 'par')
      dialer = await loadContext(d.path)
    })

    after(async () => {
      await dialer?.close()
      await host?.stop()
      await net?.close()
    })

    it(`moves ${STREAMS} x 64 MiB each way concurrently with equal sha256`, async () => {
      assert.equal(
        (await host.waitFor((e) => e.event === 'listening' || e.event === 'error')).event,
        'listening',
      )
      await parallel(dialer, host, 'par')
    })
  })

  describe('across a link between two routers', () => {
    let net: TestNetwork
    let host: HostProcess
    let dialer: Context

    before(async () => {
      net = await startLinkedNetwork()
      const h = await net.identity('host-q', { roleAttributes: ['hosts'] })
      const d = await net.identity('dialer-q', { roleAttributes: ['dialers'] })
      await net.service('far-par')
      await net.policy('Bind', ['#hosts'], ['@far-par'])
      await net.policy('Dial', ['#dialers'], ['@far-par'])
      host = await spawnHost(net, h.path, 'far-par')
      dialer = await loadContext(d.path)
    })

    after(async () => {
      await dialer?.close()
      await host?.stop()
      await net?.close()
    })

    it(`moves ${STREAMS} x 64 MiB each way concurrently across r1 -> r2 with equal sha256`, async () => {
      const [r1, r2] = net.routers
      const listening = await host.waitFor((e) => e.event === 'listening' || e.event === 'error')
      assert.equal(listening.event, 'listening')
      const terms = (listening.address as { terminators: Array<{ routerId: string }> }).terminators
      assert.deepEqual(
        terms.map((t) => t.routerId),
        [r2!.id],
        'the host is bound on r2 only',
      )
      assert.deepEqual(
        dialer.edgeRouters().map((r) => r.id),
        [r1!.id],
        'the dialer may use r1 only',
      )
      await parallel(dialer, host, 'far-par')
    })
  })
})
