/**
 * A circuit closes like a TCP connection: when the peer has ended its stream (HALF_CLOSE, the end
 * authenticated with e2e) and the circuit is then closed, even with a code such as ERR_PEER_GONE
 * (the peer's connection went away after it had finished), the socket emits 'end' and 'close',
 * never 'error'; `remoteClose` tells how it closed. A close before the end of stream is an
 * 'error' with the code. A fake router (real TLS, real frame codec) plays the host.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type E2ESession, type Frame, FrameFlag, FrameType, hostAccept } from '@nullport/protocol'
import { type Context, loadContext } from '../src/context.js'
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

describe('close semantics: a clean close is end + close whatever the CLOSE code', () => {
  let pki: Pki
  let alice: TestIdentity
  let bob: TestIdentity
  let controller: FakeController
  let router: FakeRouter
  const contexts: Context[] = []

  before(async () => {
    pki = await makePki()
    alice = await identity(pki, 'alice')
    bob = await identity(pki, 'bob')
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

  /** The fake host answers the dial, then after 'ping' sends 'pong' and `tail` in one write. */
  function host(e2e: boolean, svc: string, withEnd: boolean): void {
    const sessions = new Map<number, E2ESession | null>()
    router.onFrame = (peer: RouterPeer, f: Frame) => {
      const flags = e2e ? FrameFlag.E2E : 0
      if (f.type === FrameType.DIAL) {
        let session: E2ESession | null = null
        let hello: ReturnType<typeof hostAccept>['hello'] | undefined
        if (e2e) {
          const r = hostAccept({
            service: svc,
            own: { certChainPem: bob.leaf.cert, keyPem: bob.leaf.key },
            caPem: pki.caBundle,
            dialerHello: f.payload.e2e!,
          })
          session = r.session
          hello = r.hello
        }
        sessions.set(f.circuitId, session)
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
        ])
        return
      }
      if (f.type === FrameType.DATA && sessions.has(f.circuitId)) {
        const s = sessions.get(f.circuitId) ?? null
        const pong = Buffer.from('pong')
        const frames: Frame[] = [
          { type: FrameType.DATA, circuitId: f.circuitId, flags, payload: s ? s.sealer.seal(pong) : pong },
        ]
        if (withEnd)
          frames.push({
            type: FrameType.HALF_CLOSE,
            circuitId: f.circuitId,
            flags,
            payload: s ? s.sealer.sealEnd() : Buffer.alloc(0),
          })
        frames.push({
          type: FrameType.CLOSE,
          circuitId: f.circuitId,
          flags: 0,
          payload: { code: 'ERR_PEER_GONE', message: 'the connection of the other end was lost' },
        })
        peer.sendTogether(frames)
      }
    }
  }

  async function dialAndWatch(
    svc: string,
  ): Promise<{ events: string[]; socket: import('../src/overlay-socket.js').OverlaySocket }> {
    const ctx = await loadContext(alice.file(controller.url), { pingIntervalMs: 60_000 })
    contexts.push(ctx)
    const socket = await ctx.dial(svc)
    const events: string[] = []
    socket.on('data', (b: Buffer) => events.push(`data:${b.toString()}`))
    socket.on('end', () => events.push('end'))
    socket.on('error', (e: Error & { code?: string }) => events.push(`error:${e.code}`))
    // not events.once: it rejects on 'error'
    const closed = new Promise<void>((r) => socket.once('close', () => r()))
    socket.write('ping')
    await closed
    return { events, socket }
  }

  for (const e2e of [true, false]) {
    const svc = e2e ? 'secure' : 'plain'
    it(`${svc}: end of stream, then CLOSE ERR_PEER_GONE: data, end, close, no error`, async () => {
      host(e2e, svc, true)
      const { events, socket } = await dialAndWatch(svc)
      assert.deepEqual(events, ['data:pong', 'end'])
      assert.equal(socket.remoteClose?.code, 'ERR_PEER_GONE')
    })

    it(`${svc}: CLOSE ERR_PEER_GONE before the end of stream is an error with the code`, async () => {
      host(e2e, svc, false)
      const { events } = await dialAndWatch(svc)
      assert.deepEqual(events, ['data:pong', 'error:ERR_PEER_GONE'])
    })
  }
})
