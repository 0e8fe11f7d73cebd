/**
 * Data plane: a router restart. Live circuits fail with ERR_ROUTER_CONNECTION_LOST (never a
 * plain fallback); both SDKs reconnect with backoff, the host re-binds once (the controller
 * lists one terminator, not two), and dials work again.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type RouterHandle, startRouter } from '@nullport/router'
import { type Context, isSdkError, loadContext, type OverlayServer, type OverlaySocket } from '@nullport/sdk'
import { startNetwork, type TestNetwork } from '@nullport/testkit'

describe('dataplane: router restart', () => {
  let net: TestNetwork
  let host: Context
  let dialer: Context
  let server: OverlayServer
  let restarted: RouterHandle | null = null

  before(async () => {
    net = await startNetwork({ routers: [{ name: 'r1', inProcess: true }] })
    const h = await net.identity('host-r')
    const d = await net.identity('dialer-r')
    await net.service('sturdy')
    await net.policy('Bind', ['@host-r'], ['@sturdy'])
    await net.policy('Dial', ['@dialer-r'], ['@sturdy'])
    host = await loadContext(h.path, { reconnect: { initialMs: 100, maxMs: 1000 } })
    dialer = await loadContext(d.path, { reconnect: { initialMs: 100, maxMs: 1000 } })
    server = host.listen('sturdy')
    server.on('connection', (s: OverlaySocket) => {
      s.on('error', () => undefined)
      s.on('data', (b: Buffer) => s.write(b))
    })
    await once(server, 'listening')
  })

  after(async () => {
    await dialer?.close()
    await host?.close()
    await restarted?.stop()
    await net?.close()
  })

  async function echo(s: OverlaySocket, text: string): Promise<string> {
    s.write(text)
    const [d] = await once(s, 'data')
    return String(d)
  }

  it('fails live circuits with ERR_ROUTER_CONNECTION_LOST, reconnects, re-binds once, dials again', async () => {
    const r1 = net.routers[0]!
    const s1 = await dialer.dial('sturdy')
    assert.equal(await echo(s1, 'before'), 'before')

    // keep the router's identity and address, stop it, start it again on the same address
    const identity = join(net.dir, 'r1.identity.json')
    await copyFile(r1.identityPath, identity)
    const address = r1.address
    const lost = new Promise<Error>((resolve) => s1.once('error', resolve))
    await r1.stop()
    net.routers.splice(0, 1)
    const err = await lost
    assert.ok(isSdkError(err, 'ERR_ROUTER_CONNECTION_LOST'), String(err))
    assert.equal(server.address().terminators.length, 0, 'no terminator while the router is down')

    const rebound = once(server, 'bound')
    restarted = await startRouter({ identity, listen: address, advertise: address, logLevel: 'warn' })
    await restarted.ready
    const [info] = (await rebound) as [{ routerId: string; terminatorId: string }]
    assert.equal(info.routerId, r1.id)
    assert.deepEqual(
      server.address().terminators.map((t) => t.terminatorId),
      [info.terminatorId],
    )

    // the dialer reconnects by itself (backoff) or when it dials; the route may take a moment
    let s2: OverlaySocket | null = null
    for (let attempt = 0; s2 === null; attempt++) {
      try {
        s2 = await dialer.dial('sturdy')
      } catch (e) {
        if (attempt > 50 || !isSdkError(e)) throw e
        await new Promise((r) => setTimeout(r, 200))
      }
    }
    assert.equal(await echo(s2, 'after'), 'after')
    const terms = await net.api<Array<{ serviceId: string; identityId: string }>>('GET', 'terminators')
    assert.equal(
      terms.filter((t) => t.identityId === host.identity.id).length,
      1,
      'the host has one terminator after re-binding',
    )
    s2.destroy()
  })
})
