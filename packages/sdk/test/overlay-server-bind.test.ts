/**
 * OverlayServer bind retries, against stand-in router connections: a transient refusal (the router
 * has not heard of a just-created service yet, has no policy data, or cannot reach the controller)
 * is retried with backoff and at once when the service list changes, with one bind in flight per
 * router (no duplicate terminators); a permanent refusal still surfaces as 'error'.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { describe, it } from 'node:test'
import type { ClientService, E2EOwnIdentity } from '@nullport/protocol'
import { waitFor } from '@nullport/testkit'
import { isSdkError } from '../src/errors.js'
import { OverlayServer, type ServerHost } from '../src/overlay-server.js'
import type { BindHandler, RouterConnection } from '../src/router-connection.js'

interface FakeConn {
  routerId: string
  routerName: string
  ready: boolean
  binds: Array<{ bindId: number; handler: BindHandler }>
  unbinds: number[]
  bind(service: string, o: unknown, handler: BindHandler): number
  unbind(bindId: number): void
}

function fakeConn(id: string): FakeConn {
  let next = 1
  const c: FakeConn = {
    routerId: id,
    routerName: id,
    ready: true,
    binds: [],
    unbinds: [],
    bind(_service, _o, handler) {
      const bindId = next++
      c.binds.push({ bindId, handler })
      return bindId
    },
    unbind(bindId) {
      c.unbinds.push(bindId)
    },
  }
  return c
}

function fakeHost(conns: FakeConn[], svc: ClientService | undefined): ServerHost {
  return {
    identity: { id: 'h1', name: 'host-1' },
    e2eOwn: {} as E2EOwnIdentity,
    caPem: '',
    logger: {},
    serviceInfo: () => svc,
    readyRouters: () => conns as unknown as RouterConnection[],
    removeServer: () => undefined,
  }
}

const asConn = (c: FakeConn): RouterConnection => c as unknown as RouterConnection

describe('OverlayServer: bind retries', () => {
  for (const code of ['ERR_SERVICE_NOT_FOUND', 'ERR_NOT_READY', 'ERR_CONTROLLER_UNAVAILABLE']) {
    it(`retries a bind refused with ${code} and then listens`, async () => {
      const r1 = fakeConn('r1')
      const server = new OverlayServer(fakeHost([r1], undefined), 'fresh.svc')
      const errors: unknown[] = []
      server.on('error', (e) => errors.push(e))
      server.reconcile()
      assert.equal(r1.binds.length, 1)
      const first = r1.binds[0]!
      first.handler.onBindFailed(asConn(r1), first.bindId, code, 'not yet')
      // while the retry is pending, reconciles (a router reconnect elsewhere) do not bind twice
      server.reconcile()
      assert.equal(r1.binds.length, 1, 'no second bind before the backoff')
      await waitFor(() => r1.binds.length === 2)
      const second = r1.binds[1]!
      second.handler.onBindSuccess(asConn(r1), second.bindId, 'term-1')
      assert.equal(server.listening, true)
      assert.deepEqual(server.address().terminators, [
        { routerId: 'r1', routerName: 'r1', terminatorId: 'term-1' },
      ])
      assert.deepEqual(errors, [], 'a transient refusal is not an error')
      server.reconcile(true)
      assert.equal(r1.binds.length, 2, 'bound routers are not bound again')
      await server.close()
      assert.deepEqual(r1.unbinds, [second.bindId])
    })
  }

  it('retries at once when the service list changes, and stops retrying after close()', async () => {
    const r1 = fakeConn('r1')
    const server = new OverlayServer(fakeHost([r1], undefined), 'fresh.svc')
    server.reconcile()
    r1.binds[0]!.handler.onBindFailed(asConn(r1), r1.binds[0]!.bindId, 'ERR_SERVICE_NOT_FOUND', 'x')
    server.reconcile(true) // services changed
    assert.equal(r1.binds.length, 2, 'immediate retry on a services change')
    r1.binds[1]!.handler.onBindFailed(asConn(r1), r1.binds[1]!.bindId, 'ERR_SERVICE_NOT_FOUND', 'x')
    await server.close()
    await new Promise((r) => setTimeout(r, 1200))
    assert.equal(r1.binds.length, 2, 'no retry after close()')
  })

  it('surfaces a permanent refusal (ERR_NO_BIND_PERMISSION) as error, without retrying', async () => {
    const r1 = fakeConn('r1')
    const server = new OverlayServer(fakeHost([r1], undefined), 'secret.svc')
    server.reconcile()
    const got = once(server, 'error')
    r1.binds[0]!.handler.onBindFailed(asConn(r1), r1.binds[0]!.bindId, 'ERR_NO_BIND_PERMISSION', 'no')
    const [err] = (await got) as [Error]
    assert.ok(isSdkError(err))
    assert.equal(err.code, 'ERR_NO_BIND_PERMISSION')
    assert.match(err.message, /policy-advisor identities host-1 secret\.svc/)
    await new Promise((r) => setTimeout(r, 1200))
    assert.equal(r1.binds.length, 1, 'not retried until the service list changes')
    await server.close()
  })
})
