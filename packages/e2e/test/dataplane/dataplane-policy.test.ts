/**
 * Data plane (b): an identity without a Dial policy is refused with a code that names the fix,
 * and the host never learns of the attempt; an authorized dial still works.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type Context, isSdkError, loadContext } from '@nullport/sdk'
import { type HostProcess, spawnHost, startNetwork, type TestNetwork } from '@nullport/testkit'

describe('dataplane: Dial policy', () => {
  let net: TestNetwork
  let host: HostProcess
  const ctxs: Context[] = []

  before(async () => {
    net = await startNetwork({ routers: [{ name: 'r1' }] })
    const h = await net.identity('host-b')
    await net.identity('allowed-b')
    await net.identity('denied-b')
    await net.service('guarded')
    await net.policy('Bind', ['@host-b'], ['@guarded'])
    await net.policy('Dial', ['@allowed-b'], ['@guarded'])
    host = await spawnHost(net, h.path, 'guarded')
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

  it('refuses an identity with no Dial policy (ERR_NO_DIAL_PERMISSION naming policy-advisor); the host sees nothing', async () => {
    const denied = await loadContext(`${net.dir}/denied-b.json`)
    ctxs.push(denied)
    assert.equal(
      denied.services().find((s) => s.name === 'guarded'),
      undefined,
      'the service is not listed to it',
    )
    await assert.rejects(denied.dial('guarded'), (err: unknown) => {
      assert.ok(isSdkError(err), String(err))
      assert.equal(err.code, 'ERR_NO_DIAL_PERMISSION')
      assert.match(err.message, /identity denied-b has no Dial policy for service guarded/)
      assert.match(err.message, /nullport edge policy-advisor identities denied-b guarded/)
      return true
    })
    // A Bind-only identity (the service IS listed to it) is refused locally with the same code.
    const hostCtx = await loadContext(`${net.dir}/host-b.json`)
    ctxs.push(hostCtx)
    const listed = hostCtx.services().find((s) => s.name === 'guarded')
    assert.deepEqual(listed?.permissions, ['Bind'])
    await assert.rejects(hostCtx.dial('guarded'), (err: unknown) => isSdkError(err, 'ERR_NO_DIAL_PERMISSION'))
    // A service that does not exist at all
    await assert.rejects(denied.dial('no-such-service'), (err: unknown) => {
      assert.ok(isSdkError(err))
      assert.ok(['ERR_SERVICE_NOT_FOUND', 'ERR_NO_DIAL_PERMISSION'].includes(err.code), err.code)
      return true
    })

    // Then an authorized dial: it is the host's FIRST connection, so the refused ones never reached it.
    const allowed = await loadContext(`${net.dir}/allowed-b.json`)
    ctxs.push(allowed)
    const s = await allowed.dial('guarded')
    s.write(`${JSON.stringify({ cmd: 'hold' })}\n`)
    const conn = await host.waitFor((e) => e.event === 'connection')
    assert.equal(conn.id, 1)
    assert.equal((conn.remote as { name: string }).name, 'allowed-b')
    await host.waitFor((e) => e.event === 'holding')
    assert.equal(host.events.filter((e) => e.event === 'connection').length, 1)
    assert.equal(host.events.filter((e) => e.event === 'clientError').length, 0)
    s.destroy()
  })

  it('a dial to a service without a host fails fast with ERR_NO_TERMINATORS', async () => {
    await net.service('unhosted')
    await net.policy('Dial', ['@allowed-b'], ['@unhosted'])
    const allowed = ctxs.find((c) => c.identity.name === 'allowed-b')!
    // the policy change is pushed: wait until the service shows up
    while (!allowed.services().some((s) => s.name === 'unhosted')) {
      await new Promise((r) => allowed.once('services', r))
    }
    await assert.rejects(allowed.dial('unhosted'), (err: unknown) => {
      assert.ok(isSdkError(err), String(err))
      assert.equal(err.code, 'ERR_NO_TERMINATORS')
      assert.match(err.message, /^service unhosted has no host: no identity is bound to it/)
      assert.match(err.message, /policy-advisor identities HOST unhosted/)
      return true
    })
  })
})
