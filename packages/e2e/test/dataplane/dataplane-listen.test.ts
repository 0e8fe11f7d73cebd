/**
 * Data plane: OverlayServer lifecycle. address() names the real terminators, maxConnections is
 * enforced (the extra dial fails with a code, the host keeps its connections), close() unbinds at
 * once (new dials: ERR_NO_TERMINATORS) and resolves only once the open connections have ended.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { after, before, describe, it } from 'node:test'
import { type Context, isSdkError, loadContext, type OverlaySocket } from '@nullport/sdk'
import { startNetwork, type TestNetwork } from '@nullport/testkit'

describe('dataplane: listen options and server lifecycle', () => {
  let net: TestNetwork
  let host: Context
  let dialer: Context

  before(async () => {
    net = await startNetwork({ routers: [{ name: 'r1' }] })
    const h = await net.identity('host-l')
    const d = await net.identity('dialer-l')
    await net.service('limited')
    await net.policy('Bind', ['@host-l'], ['@limited'])
    await net.policy('Dial', ['@dialer-l'], ['@limited'])
    host = await loadContext(h.path)
    dialer = await loadContext(d.path)
  })

  after(async () => {
    await dialer?.close()
    await host?.close()
    await net?.close()
  })

  it('enforces maxConnections, reports truthful addresses, and closes gracefully', async () => {
    const server = host.listen('limited', { maxConnections: 2, cost: 5 })
    const accepted: OverlaySocket[] = []
    server.on('connection', (s: OverlaySocket) => {
      accepted.push(s)
      s.on('data', (d: Buffer) => s.write(d))
      s.on('end', () => s.end())
    })
    await once(server, 'listening')
    const addr = server.address()
    assert.equal(addr.service, 'limited')
    assert.equal(addr.terminators.length, 1)
    assert.equal(addr.terminators[0]!.routerId, net.routers[0]!.id)
    const listed = await net.api<Array<{ id: string }>>('GET', 'terminators')
    assert.ok(
      listed.some((t) => t.id === addr.terminators[0]!.terminatorId),
      'the terminator id is the one the controller lists',
    )

    const a = await dialer.dial('limited')
    const b = await dialer.dial('limited')
    assert.equal(server.getConnections(), 2)
    await assert.rejects(dialer.dial('limited'), (err: unknown) => {
      assert.ok(isSdkError(err), String(err))
      // the router tracks the count and refuses first (the host would answer the same code):
      // a full host is not "no host"
      assert.equal(err.code, 'ERR_MAX_CONNECTIONS', err.message)
      assert.match(err.message, /maxConnections/)
      return true
    })
    assert.equal(accepted.length, 2, 'the host accepted no third connection')
    a.write('still works')
    assert.equal(String((await once(a, 'data'))[0]), 'still works')

    // close(): unbinds at once, resolves after the connections end
    let closed = false
    const closing = server.close().then(() => {
      closed = true
    })
    await assert.rejects(dialer.dial('limited'), (err: unknown) => {
      assert.ok(isSdkError(err), String(err))
      assert.ok(['ERR_NO_TERMINATORS', 'ERR_SERVICE_NOT_LISTENING'].includes(err.code), err.code)
      return true
    })
    assert.equal(closed, false, 'close() waits for open connections')
    assert.equal(server.address().terminators.length, 0)
    a.end()
    b.end()
    a.resume()
    b.resume()
    await closing
    assert.equal(closed, true)
    assert.equal(server.getConnections(), 0)
  })

  it('listen() right after creating the service and policies binds once the router has heard of them', async () => {
    await net.service('fresh')
    await net.policy('Bind', ['@host-l'], ['@fresh'])
    await net.policy('Dial', ['@dialer-l'], ['@fresh'])
    // no wait: the router (and this SDK) may not have the service yet; the bind is retried
    const server = host.listen('fresh')
    const errors: Error[] = []
    server.on('error', (e: Error) => errors.push(e))
    server.on('connection', (s: OverlaySocket) => {
      s.on('data', (d: Buffer) => s.write(d))
      s.on('end', () => s.end())
    })
    await once(server, 'listening')
    assert.equal(server.address().terminators.length, 1, 'one terminator, not one per attempt')
    const s = await dialer.dial('fresh')
    s.write('hello')
    assert.equal(String((await once(s, 'data'))[0]), 'hello')
    s.end()
    s.resume()
    assert.deepEqual(errors, [])
    const listed = await net.api<Array<{ service?: { name?: string }; serviceId?: string }>>(
      'GET',
      'terminators',
    )
    const svc = await net.api<Array<{ id: string }>>('GET', 'services?filter=name%20%3D%20%22fresh%22')
    assert.equal(listed.filter((t) => t.serviceId === svc[0]!.id).length, 1, 'no duplicate terminators')
    await server.close()
  })

  it('a dial to a service nobody hosts says so once, naming the fix', async () => {
    await net.service('nohost')
    await net.policy('Dial', ['@dialer-l'], ['@nohost'])
    let err: (Error & { code?: string }) | undefined
    for (let i = 0; i < 100; i++) {
      err = await dialer.dial('nohost').then(
        (s) => {
          s.destroy()
          return new Error('dial succeeded')
        },
        (e: Error & { code?: string }) => e,
      )
      if (err.code !== 'ERR_SERVICE_NOT_FOUND' && err.code !== 'ERR_NO_DIAL_PERMISSION') break
      await new Promise((r) => setTimeout(r, 100)) // the router has not heard of it yet
    }
    assert.equal(err?.code, 'ERR_NO_TERMINATORS', err?.message)
    assert.equal(
      err.message,
      'service nohost has no host: no identity is bound to it (start the hosting app, or check its Bind policy with `nullport edge policy-advisor identities HOST nohost`)',
    )
  })

  it('refuses to listen without a Bind policy (ERR_NO_BIND_PERMISSION naming policy-advisor)', async () => {
    const server = dialer.listen('limited')
    const [err] = (await once(server, 'error')) as [Error & { code?: string }]
    assert.equal(err.code, 'ERR_NO_BIND_PERMISSION')
    assert.match(err.message, /policy-advisor identities dialer-l limited/)
    await server.close()
  })
})
