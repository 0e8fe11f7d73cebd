/**
 * A blocked event loop is reported, not silent: StallWatch fires once per stall with its length,
 * and a context emits 'stall' (option stallWarningMs; false disables it, bad values are refused).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadContext } from '../src/context.js'
import { isSdkError } from '../src/errors.js'
import { type StallReport, StallWatch } from '../src/stall-watch.js'
import { FakeController, FakeRouter, identity, makePki, service } from './helpers/fake-network.js'

function block(ms: number): void {
  const end = Date.now() + ms
  while (Date.now() < end) {
    // busy: the event loop cannot run
  }
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('stall watch', () => {
  it('reports a blocked loop with its length', async () => {
    const reports: StallReport[] = []
    const w = new StallWatch(300, (r) => reports.push(r))
    w.start()
    try {
      await tick(200)
      const before = reports.length
      block(900)
      await tick(300)
      // one report for this stall (a busy machine may add its own, never fewer)
      assert.ok(reports.length > before, JSON.stringify(reports))
      const longest = Math.max(...reports.map((r) => r.lagMs))
      assert.ok(longest >= 600, `longest lag ${longest}`)
    } finally {
      w.stop()
    }
  })

  it("a context emits 'stall'; the option is validated", async () => {
    const pki = await makePki()
    const alice = await identity(pki, 'alice')
    const controller = await FakeController.start(pki)
    const router = await FakeRouter.start(pki, 'r1')
    controller.routers = [router.info]
    controller.services = [service('plain', ['Dial'], ['r1'], false)]
    try {
      await assert.rejects(
        loadContext(alice.file(controller.url), { stallWarningMs: 0 }),
        (e: unknown) => isSdkError(e, 'ERR_INVALID_OPTION') && /stallWarningMs/.test((e as Error).message),
      )
      const ctx = await loadContext(alice.file(controller.url), {
        stallWarningMs: 300,
        pingIntervalMs: 60_000,
      })
      try {
        const stalled = new Promise<StallReport>((r) => ctx.once('stall', r))
        block(900)
        const r = await stalled
        assert.ok(r.lagMs >= 300, `lag ${r.lagMs}`)
      } finally {
        await ctx.close()
      }
    } finally {
      await router.close()
      await controller.close()
    }
  })
})
