/**
 * One owner per circuit: the router connection that receives DIAL_SUCCESS (dialer) or DIAL (host)
 * owns the circuit from that frame on, so frames that arrive in the same read are neither dropped
 * nor reordered. A fake router (real TLS, real frame codec) writes several frames in ONE socket
 * write; a fake controller serves the context its services and routers.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  dialerFinish,
  dialerHello,
  type E2ESession,
  type Frame,
  FrameFlag,
  FrameType,
  hostAccept,
} from '@nullport/protocol'
import { waitFor } from '@nullport/testkit'
import { type Context, loadContext } from '../src/context.js'
import { isSdkError } from '../src/errors.js'
import type { OverlaySocket } from '../src/overlay-socket.js'
import {
  circuitTag,
  FakeController,
  FakeRouter,
  identity,
  makePki,
  type Pki,
  type RouterPeer,
  service,
  type TestIdentity,
} from './helpers/fake-network.js'

function collect(s: OverlaySocket): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = []
    s.on('data', (b: Buffer) => parts.push(b))
    s.on('end', () => resolve(Buffer.concat(parts).toString()))
    s.on('error', reject)
  })
}

const data = (circuitId: number, payload: Uint8Array, e2e: boolean): Frame => ({
  type: FrameType.DATA,
  circuitId,
  flags: e2e ? FrameFlag.E2E : 0,
  payload,
})
const halfClose = (circuitId: number, payload: Uint8Array, e2e: boolean): Frame => ({
  type: FrameType.HALF_CLOSE,
  circuitId,
  flags: e2e ? FrameFlag.E2E : 0,
  payload,
})

describe('circuit ownership: frames in the same read as the circuit opening', () => {
  let pki: Pki
  let alice: TestIdentity
  let bob: TestIdentity
  let carol: TestIdentity
  let controller: FakeController
  let router: FakeRouter
  const contexts: Context[] = []

  before(async () => {
    pki = await makePki()
    alice = await identity(pki, 'alice')
    bob = await identity(pki, 'bob')
    carol = await identity(pki, 'carol')
    controller = await FakeController.start(pki)
    router = await FakeRouter.start(pki, 'r1')
    controller.routers = [router.info]
    controller.services = [
      service('secure', ['Dial', 'Bind'], ['r1'], true),
      service('plain', ['Dial', 'Bind'], ['r1'], false),
    ]
  })
  after(async () => {
    for (const c of contexts) await c.close()
    await router.close()
    await controller.close()
  })

  /** The connection of the latest BIND (the hosting context of the running test). */
  function boundPeer(): RouterPeer {
    const p = router.peers.filter((x) => x.frames.some((f) => f.type === FrameType.BIND)).at(-1)
    assert.ok(p, 'a hosting context bound a service')
    return p
  }

  async function context(who: TestIdentity): Promise<Context> {
    const ctx = await loadContext(who.file(controller.url), { pingIntervalMs: 60_000 })
    contexts.push(ctx)
    return ctx
  }

  for (const e2e of [true, false]) {
    it(`dialer (${e2e ? 'e2e' : 'plain'}): DATA in the same write as DIAL_SUCCESS reaches the application, in order`, async () => {
      const svc = e2e ? 'secure' : 'plain'
      // The "host" is played by the router: it answers DIAL with DIAL_SUCCESS and the first DATA
      // record in one write; after the dialer's first DATA it sends the second record and the end.
      const sessions = new Map<number, E2ESession | null>()
      router.onFrame = (peer: RouterPeer, f: Frame) => {
        if (f.type === FrameType.DIAL) {
          let session: E2ESession | null = null
          let hello: ReturnType<typeof hostAccept>['hello'] | undefined
          if (e2e) {
            assert.ok(f.payload.e2e, 'the dialer offers e2e')
            const r = hostAccept({
              service: svc,
              own: { certChainPem: bob.leaf.cert, keyPem: bob.leaf.key },
              caPem: pki.caBundle,
              dialerHello: f.payload.e2e,
            })
            session = r.session
            hello = r.hello
          }
          sessions.set(f.circuitId, session)
          const first = Buffer.from('hello ')
          peer.sendTogether([
            {
              type: FrameType.DIAL_SUCCESS,
              circuitId: f.circuitId,
              flags: 0,
              payload: {
                hostIdentity: { id: bob.id, name: bob.name },
                circuitTag: circuitTag(),
                ...(hello ? { e2e: hello } : {}),
              },
            },
            data(f.circuitId, session ? session.sealer.seal(first) : first, e2e),
          ])
          return
        }
        if (f.type === FrameType.DATA && sessions.has(f.circuitId)) {
          const session = sessions.get(f.circuitId) ?? null
          const got = Buffer.from(session ? session.opener.open(f.payload) : f.payload).toString()
          assert.equal(got, 'ping')
          const second = Buffer.from('world')
          peer.sendTogether([
            data(f.circuitId, session ? session.sealer.seal(second) : second, e2e),
            halfClose(f.circuitId, session ? session.sealer.sealEnd() : Buffer.alloc(0), e2e),
          ])
        }
      }
      const ctx = await context(alice)
      const socket = await ctx.dial(svc)
      assert.equal(socket.encrypted, e2e)
      assert.equal(socket.remoteIdentity.id, bob.id)
      const text = collect(socket)
      socket.end('ping')
      assert.equal(await text, 'hello world')
    })
  }

  it('dialer: a CLOSE {code} in the same write as DIAL_SUCCESS fails the dial with that code', async () => {
    router.onFrame = (peer: RouterPeer, f: Frame) => {
      if (f.type !== FrameType.DIAL) return
      peer.sendTogether([
        {
          type: FrameType.DIAL_SUCCESS,
          circuitId: f.circuitId,
          flags: 0,
          payload: { hostIdentity: { id: bob.id, name: bob.name }, circuitTag: circuitTag() },
        },
        {
          type: FrameType.CLOSE,
          circuitId: f.circuitId,
          flags: 0,
          payload: { code: 'ERR_REVOKED', message: 'the dial policy was removed' },
        },
      ])
    }
    const ctx = await context(alice)
    await assert.rejects(ctx.dial('plain'), (err: unknown) => {
      assert.ok(isSdkError(err, 'ERR_REVOKED'), String(err))
      assert.match(err.message, /the dial policy was removed/)
      return true
    })
  })

  it('host: DATA and HALF_CLOSE written together right after DIAL_SUCCESS reach the accepted socket', async () => {
    const ctx = await context(bob)
    const server = ctx.listen('secure')
    const received: Promise<string>[] = []
    server.on('connection', (s: OverlaySocket) => received.push(collect(s)))
    await new Promise((resolve) => server.once('listening', resolve))
    const peer = boundPeer()
    const { hello, state } = dialerHello({
      service: 'secure',
      own: { certChainPem: carol.leaf.cert, keyPem: carol.leaf.key },
    })
    router.onFrame = (p: RouterPeer, f: Frame) => {
      if (f.type !== FrameType.DIAL_SUCCESS || f.circuitId !== 2) return
      assert.ok(f.payload.e2e)
      const session = dialerFinish({
        state,
        caPem: pki.caBundle,
        hostHello: f.payload.e2e,
        expectedHostId: bob.id,
      })
      p.sendTogether([
        data(2, session.sealer.seal(Buffer.from('first data')), true),
        halfClose(2, session.sealer.sealEnd(), true),
      ])
    }
    peer.send({
      type: FrameType.DIAL,
      circuitId: 2,
      flags: 0,
      payload: {
        service: 'secure',
        dialer: { id: carol.id, name: carol.name },
        circuitTag: circuitTag(),
        e2e: hello,
      },
    })
    await waitFor(() => received.length === 1, { what: "the server's connection" })
    assert.equal(await received[0], 'first data')
    await server.close()
  })

  it('host: a CLOSE in the same read as the DIAL, while admit() runs, ends that dial; the circuit id is free again', async () => {
    const ctx = await context(bob)
    let admits = 0
    let releaseFirst: ((v: unknown) => void) | null = null
    let firstDestroyed = false
    const server = ctx.listen('plain', {
      admit: () => {
        admits++
        if (admits > 1) return 'second'
        return new Promise((resolve) => {
          releaseFirst = resolve
        })
      },
    })
    const accepted: unknown[] = []
    server.on('connection', (_s: OverlaySocket, _dial: unknown, admitted: unknown) => accepted.push(admitted))
    await new Promise((resolve) => server.once('listening', resolve))
    const peer = boundPeer()
    const answers: Frame[] = []
    router.onFrame = (_p, f) => {
      if (f.circuitId === 2) answers.push(f)
    }
    const dial: Frame = {
      type: FrameType.DIAL,
      circuitId: 2,
      flags: 0,
      payload: { service: 'plain', dialer: { id: carol.id, name: carol.name }, circuitTag: circuitTag() },
    }
    // The dialer gave up at once: the router sends the DIAL and its CLOSE together.
    peer.sendTogether([
      dial,
      { type: FrameType.CLOSE, circuitId: 2, flags: 0, payload: { code: 'ERR_DIAL_TIMEOUT' } },
    ])
    await waitFor(() => releaseFirst !== null, { what: 'admit() to be called' })
    releaseFirst!({ destroy: () => (firstDestroyed = true) })
    await waitFor(() => firstDestroyed || accepted.length > 0, { what: 'the first dial to be settled' })
    assert.equal(firstDestroyed, true, 'the admitted value of a dial closed during admit() is destroyed')
    assert.deepEqual(accepted, [], 'no connection for a circuit the router closed')
    // The router may reuse the id: a new DIAL on it is accepted.
    peer.send({ ...dial, payload: { ...dial.payload, circuitTag: circuitTag() } } as Frame)
    await waitFor(() => accepted.length === 1, { what: 'the second dial on the same circuit id' })
    assert.deepEqual(accepted, ['second'])
    await waitFor(() => answers.some((f) => f.type === FrameType.DIAL_SUCCESS), { what: 'DIAL_SUCCESS' })
    assert.deepEqual(
      answers.map((f) => f.type),
      [FrameType.DIAL_SUCCESS],
      'one answer on circuit 2: the DIAL_SUCCESS of the second dial (nothing for the closed one)',
    )
    server.destroyAll(undefined)
  })
})
