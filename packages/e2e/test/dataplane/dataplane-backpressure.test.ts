/**
 * Data plane (d): two circuits on one router connection, one reader paused. The paused circuit's
 * sender (the hosting process) is blocked (write() returned false, no 'drain'), the other circuit
 * keeps transferring, and the memory of every process (hosting SDK, dialing SDK, router) stays
 * bounded meanwhile.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { INITIAL_WINDOW } from '@nullport/protocol'
import { type Context, loadContext } from '@nullport/sdk'
import { type HostProcess, spawnHost, startNetwork, type TestNetwork } from '@nullport/testkit'

const MiB = 1024 * 1024
/** What the unpaused circuit moves while the paused one is blocked. */
const MOVE = 256 * MiB
/** Allowed RSS growth of any process meanwhile (an unbounded buffer would grow by MOVE). */
const RSS_GROWTH_LIMIT = 96 * MiB

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024
}

describe('dataplane: a paused reader stops only its own sender', () => {
  let net: TestNetwork
  let host: HostProcess
  let dialer: Context

  before(async () => {
    net = await startNetwork({ routers: [{ name: 'r1' }] })
    const h = await net.identity('host-d')
    const d = await net.identity('dialer-d')
    await net.service('firehose')
    await net.policy('Bind', ['@host-d'], ['@firehose'])
    await net.policy('Dial', ['@dialer-d'], ['@firehose'])
    host = await spawnHost(net, h.path, 'firehose')
    dialer = await loadContext(d.path)
  })

  after(async () => {
    await dialer?.close()
    await host?.stop()
    await net?.close()
  })

  it('keeps the other circuit at full speed with bounded memory in host, dialer and router', async (t) => {
    const routerPid = net.routers[0]!.process!.pid!
    // circuit A: its reader never reads
    const a = await dialer.dial('firehose')
    a.on('error', () => undefined)
    a.write(`${JSON.stringify({ cmd: 'flood', report: true })}\n`)
    const connA = await host.waitFor((e) => e.event === 'connection')
    // circuit B: read everything
    const b = await dialer.dial('firehose')
    b.on('error', () => undefined)
    assert.equal(b.routerId, a.routerId, 'both circuits use the same router connection')
    b.write(`${JSON.stringify({ cmd: 'flood' })}\n`)
    const connB = await host.waitFor((e) => e.event === 'connection' && e.id !== connA.id)
    assert.notEqual(connA.id, connB.id)
    let bBytes = 0
    const progress: Array<() => void> = []
    b.on('data', (d: Buffer) => {
      bBytes += d.length
      for (const f of progress.splice(0)) f()
    })
    const bReached = (n: number): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => {
          if (bBytes >= n) resolve()
          else progress.push(check)
        }
        check()
      })

    // A's sender has used its whole window and is blocked
    const blocked = await host.waitFor(
      (e) => e.event === 'blocked' && e.id === connA.id && (e.sent as number) >= INITIAL_WINDOW,
      60_000,
    )
    const eventsBefore = host.events.length
    const base = {
      host: await host.rss(),
      router: await rssOf(routerPid),
      dialer: process.memoryUsage().rss,
    }
    const peak = { ...base }
    const start = bBytes
    for (let step = 1; step <= 16; step++) {
      await bReached(start + (MOVE * step) / 16)
      peak.host = Math.max(peak.host, await host.rss())
      peak.router = Math.max(peak.router, await rssOf(routerPid))
      peak.dialer = Math.max(peak.dialer, process.memoryUsage().rss)
    }
    assert.ok(bBytes - start >= MOVE, 'B moved 256 MiB while A was blocked')
    // A stayed blocked: no 'drain' for A since, and the dialer holds at most one window of A
    const aDrained = host.events.slice(eventsBefore).some((e) => e.event === 'drain' && e.id === connA.id)
    assert.equal(aDrained, false, "A's sender stayed blocked while B transferred")
    assert.ok(
      a.receiveQueued + a.readableLength <= INITIAL_WINDOW,
      'the paused reader buffers at most one window',
    )
    for (const k of ['host', 'router', 'dialer'] as const) {
      const growth = peak[k] - base[k]
      assert.ok(growth < RSS_GROWTH_LIMIT, `${k} RSS grew by ${(growth / MiB).toFixed(1)} MiB`)
    }
    t.diagnostic(
      `A blocked after ${((blocked.sent as number) / MiB).toFixed(1)} MiB; RSS growth while B moved 256 MiB: host ${((peak.host - base.host) / MiB).toFixed(1)} MiB, router ${((peak.router - base.router) / MiB).toFixed(1)} MiB, dialer ${((peak.dialer - base.dialer) / MiB).toFixed(1)} MiB`,
    )

    // reading A again unblocks its sender
    a.on('data', () => undefined)
    await host.waitFor(
      (e) => e.event === 'drain' && e.id === connA.id && host.events.indexOf(e) >= eventsBefore,
    )
    a.destroy()
    b.destroy()
    await host.waitFor((e) => e.event === 'closed' && e.id === connA.id)
    await host.waitFor((e) => e.event === 'closed' && e.id === connB.id)
  })
})
