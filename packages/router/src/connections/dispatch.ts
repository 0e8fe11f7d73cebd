/**
 * Per-connection event dispatch: the frames of one connection by its state (held back until its
 * certificate is checked, then the HELLO handshake, then by frame type to the part that owns the
 * message), and the end of the connection (its circuits, bindings and link go). Once a
 * connection is ready, each frame type has one handler, registered by type in the constructor;
 * DATA, the hot path, is dispatched before the table with one direct call to the forwarder.
 */
import { type Frame, FrameType, PROTOCOL_VERSION } from '@nullport/protocol'
import type { Dialer } from '../circuits/dialer.js'
import type { Forwarder } from '../circuits/forwarder.js'
import type { Keepalive } from '../links/keepalive.js'
import type { Links } from '../links/links.js'
import type { RouterState } from '../state.js'
import type { Terminators } from '../terminators/terminators.js'
import type { Peer } from './peer.js'

type FrameOf<T extends Frame['type']> = Extract<Frame, { type: T }>
type Handler = (peer: Peer, f: Frame) => void

/** Frames a connection may send before its certificate check finished. */
const MAX_EARLY_FRAMES = 8

export class Dispatch {
  /** Handlers of a ready connection's frames, indexed by frame type (DATA is not in it). */
  private readonly handlers: Array<Handler | undefined> = new Array<Handler | undefined>(256).fill(undefined)

  constructor(
    private readonly state: RouterState,
    private readonly forwarder: Forwarder,
    dialer: Dialer,
    private readonly terminators: Terminators,
    private readonly keepalive: Keepalive,
    private readonly links: Links,
  ) {
    const log = state.log
    this.handle(FrameType.WINDOW_UPDATE, (peer, f) =>
      forwarder.onWindowUpdate(peer, f.circuitId, f.payload.credit),
    )
    this.handle(FrameType.HALF_CLOSE, (peer, f) =>
      forwarder.onData(peer, f.circuitId, f.flags, f.payload, FrameType.HALF_CLOSE),
    )
    this.handle(FrameType.CLOSE, (peer, f) => forwarder.onClose(peer, f))
    this.handle(FrameType.DIAL, (peer, f) => dialer.onDial(peer, f.circuitId, f.payload))
    this.handle(FrameType.DIAL_SUCCESS, (peer, f) => dialer.onDialAnswer(peer, f))
    this.handle(FrameType.DIAL_FAILED, (peer, f) => dialer.onDialAnswer(peer, f))
    this.handle(FrameType.BIND, (peer, f) => {
      if (peer.kind !== 'sdk') peer.refuse('ERR_PROTOCOL', 'BIND is only accepted from SDK connections')
      else void terminators.onBind(peer, f.payload)
    })
    this.handle(FrameType.UNBIND, (peer, f) => {
      if (peer.kind !== 'sdk') peer.refuse('ERR_PROTOCOL', 'UNBIND is only accepted from SDK connections')
      else terminators.onUnbind(peer, f.payload.bindId)
    })
    this.handle(FrameType.PING, (peer, f) => keepalive.onPing(peer, f.payload))
    this.handle(FrameType.PONG, (peer, f) => keepalive.onPong(peer, f.payload))
    this.handle(FrameType.GOAWAY, (peer, f) => {
      peer.draining = true
      log.info({ code: f.payload.code, message: f.payload.message, ...peer.describe() }, 'peer sent GOAWAY')
    })
  }

  private handle<T extends Frame['type']>(type: T, h: (peer: Peer, f: FrameOf<T>) => void): void {
    this.handlers[type] = h as Handler
  }

  /** Takes over a new connection's events: its frames, errors and end. */
  attach(peer: Peer): void {
    const conn = peer.conn
    conn.on('frame', (f: Frame) => {
      try {
        this.onFrame(peer, f)
      } catch (err) {
        // A bug must cost one connection, never the router.
        this.state.log.error(
          { err, type: f.type, ...peer.describe() },
          'frame handler failed; closing the connection',
        )
        peer.refuse('ERR_PROTOCOL', 'internal error while handling a frame')
        peer.conn.destroy()
      }
    })
    conn.on('error', (err: Error & { code?: string }) => {
      this.state.log.info(
        { code: err.code ?? 'ERR_CONNECTION', err: err.message, ...peer.describe() },
        'connection error',
      )
    })
    conn.on('close', () => this.onPeerClose(peer))
  }

  /** One frame of `peer`. */
  onFrame(peer: Peer, f: Frame): void {
    if (peer.state !== 'ready') {
      this.beforeReady(peer, f)
      return
    }
    if (f.type === FrameType.DATA) {
      this.forwarder.onData(peer, f.circuitId, f.flags, f.payload, FrameType.DATA)
      return
    }
    const h = this.handlers[f.type]
    if (h) h(peer, f)
    else peer.refuse('ERR_PROTOCOL', `unexpected frame type 0x${f.type.toString(16)} after HELLO`)
  }

  /** The certificate check passed: frames that arrived meanwhile are handled now. */
  authenticated(peer: Peer): void {
    peer.state = 'hello'
    const early = peer.early
    peer.early = []
    for (const f of early) this.onFrame(peer, f)
  }

  private beforeReady(peer: Peer, f: Frame): void {
    if (peer.state === 'auth') {
      if (peer.early.length >= MAX_EARLY_FRAMES)
        peer.refuse('ERR_PROTOCOL', 'too many frames before authentication finished')
      else peer.early.push(f)
    } else if (peer.state === 'hello') this.onHello(peer, f)
  }

  /** The handshake: an inbound connection sends HELLO (answered with HELLO_ACK), an outbound link receives HELLO_ACK. */
  private onHello(peer: Peer, f: Frame): void {
    if (peer.inbound) {
      if (f.type !== FrameType.HELLO) {
        peer.refuse('ERR_PROTOCOL', 'the first frame must be HELLO')
        return
      }
      if (f.payload.role !== peer.kind) {
        peer.refuse(
          'ERR_HELLO',
          `HELLO role "${f.payload.role}" does not match the certificate (a ${peer.kind === 'sdk' ? 'identity' : 'router'} certificate)`,
        )
        return
      }
      peer.send({
        type: FrameType.HELLO_ACK,
        circuitId: 0,
        flags: 0,
        payload: { version: PROTOCOL_VERSION, role: 'router', routerId: this.state.id },
      })
      this.markReady(peer)
      return
    }
    // Outbound link: waiting for HELLO_ACK.
    if (f.type === FrameType.GOAWAY) {
      this.state.log.warn(
        { code: f.payload.code, message: f.payload.message, ...peer.describe() },
        'link refused by peer',
      )
      return
    }
    if (f.type !== FrameType.HELLO_ACK || f.payload.routerId !== peer.entityId) {
      peer.refuse('ERR_PROTOCOL', 'expected HELLO_ACK from the linked router')
      return
    }
    this.markReady(peer)
  }

  private markReady(peer: Peer): void {
    peer.state = 'ready'
    if (peer.timer) clearTimeout(peer.timer)
    peer.timer = null
    if (peer.kind === 'router') {
      this.links.register(peer)
      this.keepalive.watchLink(peer)
    }
    this.state.log.debug({ ...peer.describe() }, 'connection ready')
  }

  private onPeerClose(peer: Peer): void {
    const wasReady = peer.state === 'ready'
    peer.state = 'closed'
    if (peer.timer) clearTimeout(peer.timer)
    if (peer.pingTimer) clearInterval(peer.pingTimer)
    this.state.peers.delete(peer)
    this.forwarder.peerGone(peer)
    this.terminators.peerGone(peer)
    if (peer.kind === 'router' && wasReady) this.links.peerGone(peer)
    this.state.log.debug({ ...peer.describe() }, 'connection closed')
  }
}
