/**
 * Data plane (f): the dialer and the host use different edge routers (edge router policies give
 * the dialer only r1 and the host only r2); the circuit crosses the r1 <-> r2 link, end to end
 * encrypted, with equal sha256 on both ends.
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
  type TestNetwork,
} from '@nullport/testkit'

const SIZE = 64 * 1024 * 1024

describe('dataplane: dialer and host on different routers', () => {
  let net: TestNetwork
  let host: HostProcess
  let dialer: Context

  before(async () => {
    net = await startLinkedNetwork()
    const h = await net.identity('host-f', { roleAttributes: ['hosts'] })
    const d = await net.identity('dialer-f', { roleAttributes: ['dialers'] })
    await net.service('far')
    await net.policy('Bind', ['#hosts'], ['@far'])
    await net.policy('Dial', ['#dialers'], ['@far'])
    host = await spawnHost(net, h.path, 'far')
    dialer = await loadContext(d.path)
  })

  after(async () => {
    await dialer?.close()
    await host?.stop()
    await net?.close()
  })

  it('crosses the link between r1 and r2 with equal sha256 both ways', async () => {
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
    // The link and its route appear shortly after both routers are up: retry while the router
    // says there is no route yet (each attempt is answered, none is timed).
    let socket: OverlaySocket | null = null
    for (let attempt = 0; socket === null; attempt++) {
      try {
        socket = await dialer.dial('far', { allowHalfOpen: true })
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
    assert.equal(socket.routerId, r1!.id, 'the dialer is connected through r1')
    assert.equal(socket.remoteIdentity.name, 'host-f')
    const conn = await host.waitFor((e) => e.event === 'connection')
    assert.equal(conn.routerId, r2!.id, 'the host received the circuit through r2')
    assert.equal(conn.encrypted, true)

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
    socket.write(`${JSON.stringify({ cmd: 'exchange', size: SIZE })}\n`)
    const tx = createHash('sha256')
    const next = hostStream(SIZE + 1)
    let left = SIZE
    await new Promise<void>((resolve) => {
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
      pump()
    })
    await ended
    const done = await host.waitFor((e) => e.event === 'exchange-done')
    assert.equal(rxBytes, SIZE)
    assert.equal(done.rxBytes, SIZE)
    assert.equal(rx.digest('hex'), done.txHash)
    assert.equal(tx.digest('hex'), done.rxHash)
  })
})
