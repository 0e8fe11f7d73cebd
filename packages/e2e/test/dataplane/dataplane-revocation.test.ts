/**
 * Data plane (c): revoking access closes a live circuit within 1 s: deleting the Dial policy,
 * disabling the identity, deleting the identity.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type Context, loadContext, type OverlaySocket } from '@nullport/sdk'
import { type HostProcess, spawnHost, startNetwork, type TestNetwork } from '@nullport/testkit'

const BOUND_MS = 1000

describe('dataplane: revocation closes live circuits', () => {
  let net: TestNetwork
  let host: HostProcess
  const ctxs: Context[] = []

  before(async () => {
    net = await startNetwork({ routers: [{ name: 'r1' }] })
    const h = await net.identity('host-c')
    await net.service('revocable')
    await net.policy('Bind', ['@host-c'], ['@revocable'])
    host = await spawnHost(net, h.path, 'revocable')
    assert.equal(
      (await host.waitFor((e) => e.event === 'listening' || e.event === 'error')).event,
      'listening',
    )
  })

  after(async () => {
    for (const c of ctxs) await c.close()
    await host?.stop()
    await net?.close()
  })

  /** A dialer with its own Dial policy and one live circuit the host holds open. */
  async function liveCircuit(name: string): Promise<{
    socket: OverlaySocket
    policyId: string
    identityId: string
    hostConn: number
    ctx: Context
  }> {
    const ident = await net.identity(name)
    const p = await net.policy('Dial', [`@${name}`], ['@revocable'])
    const ctx = await loadContext(ident.path)
    ctxs.push(ctx)
    const socket = await ctx.dial('revocable')
    socket.on('error', () => undefined)
    socket.write(`${JSON.stringify({ cmd: 'hold' })}\n`)
    const conn = await host.waitFor(
      (e) => e.event === 'connection' && (e.remote as { name: string }).name === name,
    )
    await host.waitFor((e) => e.event === 'holding' && e.id === conn.id)
    return { socket, policyId: p.id, identityId: ident.id, hostConn: conn.id!, ctx }
  }

  async function closedWithin(
    socket: OverlaySocket,
    action: () => Promise<unknown>,
  ): Promise<{ ms: number; code: string | undefined }> {
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())))
    await action()
    const t0 = performance.now()
    // a guard against hanging forever (not the bound under test)
    let guard: NodeJS.Timeout | undefined
    const t1 = await Promise.race([
      closed,
      new Promise<never>((_, reject) => {
        guard = setTimeout(() => reject(new Error('the circuit was not closed at all (20 s)')), 20_000)
      }),
    ]).finally(() => clearTimeout(guard))
    return { ms: Math.max(0, t1 - t0), code: (socket.errored as { code?: string } | null)?.code }
  }

  it('deleting the Dial policy closes the circuit within 1 s, on both ends', async () => {
    const c = await liveCircuit('dialer-c1')
    const r = await closedWithin(c.socket, () => net.api('DELETE', `service-policies/${c.policyId}`))
    assert.ok(r.ms < BOUND_MS, `closed after ${r.ms.toFixed(0)} ms`)
    assert.ok(r.code, 'the dialer sees a revocation code')
    await host.waitFor((e) => e.event === 'closed' && e.id === c.hostConn, 5000)
  })

  it('disabling the identity closes the circuit within 1 s', async () => {
    const c = await liveCircuit('dialer-c2')
    const revoked = new Promise<Error & { code?: string }>((resolve) => c.ctx.once('revoked', resolve))
    const r = await closedWithin(c.socket, () =>
      net.api('PATCH', `identities/${c.identityId}`, { disabled: true }),
    )
    assert.ok(r.ms < BOUND_MS, `closed after ${r.ms.toFixed(0)} ms`)
    assert.ok(r.code)
    await host.waitFor((e) => e.event === 'closed' && e.id === c.hostConn, 5000)
    // the controller pushes 'revoked': the context closes everything and says why
    assert.equal((await revoked).code, 'ERR_IDENTITY_REVOKED')
    assert.equal(c.ctx.closed, true)
    await assert.rejects(c.ctx.dial('revocable'), /closed/)
  })

  it('deleting the identity closes the circuit within 1 s', async () => {
    const c = await liveCircuit('dialer-c3')
    const revoked = new Promise<Error & { code?: string }>((resolve) => c.ctx.once('revoked', resolve))
    const r = await closedWithin(c.socket, () => net.api('DELETE', `identities/${c.identityId}`))
    assert.ok(r.ms < BOUND_MS, `closed after ${r.ms.toFixed(0)} ms`)
    assert.ok(r.code)
    await host.waitFor((e) => e.event === 'closed' && e.id === c.hostConn, 5000)
    // the controller pushes 'revoked': the context closes everything and says why
    assert.equal((await revoked).code, 'ERR_IDENTITY_REVOKED')
    assert.equal(c.ctx.closed, true)
    await assert.rejects(c.ctx.dial('revocable'), /closed/)
  })
})
