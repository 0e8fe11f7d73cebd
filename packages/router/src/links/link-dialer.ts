/**
 * Outbound links: of every pair of enabled routers with an advertised address, the one with the
 * smaller id dials the other (mTLS with the router certificates; the far end must present the
 * certificate of the router it is expected to be) and dials again with backoff when the attempt
 * fails or the link goes down. Which routers to link to follows the policy data.
 */
import { isIP } from 'node:net'
import tls from 'node:tls'
import {
  Backoff,
  certFingerprint,
  FrameConnection,
  FrameType,
  PROTOCOL_VERSION,
  spiffeIdFromSan,
  tryParseHostPort,
} from '@nullport/protocol'
import { checkPeer } from '../connections/certificate-check.js'
import type { Dispatch } from '../connections/dispatch.js'
import { Peer } from '../connections/peer.js'
import type { RouterState } from '../state.js'
import { ROUTER_AGENT } from '../version.js'

interface LinkDial {
  routerId: string
  backoff: Backoff
  timer: NodeJS.Timeout | null
  connecting: boolean
  peer: Peer | null
}

export class LinkDialer {
  private readonly dials = new Map<string, LinkDial>()

  constructor(
    private readonly state: RouterState,
    private readonly dispatch: Dispatch,
  ) {}

  /** Follows the policy data: dials the routers this one should link to, drops the others. */
  refresh(): void {
    const s = this.state
    if (!s.index || s.stopping) return
    const desired = new Map<string, string>()
    for (const r of s.routerList.values()) {
      if (r.id === s.id || r.disabled || !r.advertise) continue
      if (s.id < r.id) desired.set(r.id, r.advertise)
    }
    for (const [id, d] of this.dials) {
      if (!desired.has(id)) {
        if (d.timer) clearTimeout(d.timer)
        this.dials.delete(id)
        d.peer?.conn.close('ERR_ROUTER_NOT_FOUND', 'router no longer linked')
      }
    }
    for (const id of desired.keys()) {
      let d = this.dials.get(id)
      if (!d) {
        d = {
          routerId: id,
          backoff: new Backoff({ initialMs: 250, maxMs: 10_000 }),
          timer: null,
          connecting: false,
          peer: null,
        }
        this.dials.set(id, d)
      }
      if (!d.peer && !d.connecting && !d.timer) this.dial(d)
    }
  }

  stop(): void {
    for (const d of this.dials.values()) if (d.timer) clearTimeout(d.timer)
  }

  private schedule(d: LinkDial): void {
    if (this.state.stopping || d.timer || this.dials.get(d.routerId) !== d) return
    const delay = d.backoff.next()
    d.timer = setTimeout(() => {
      d.timer = null
      this.dial(d)
    }, delay)
    d.timer.unref()
  }

  private dial(d: LinkDial): void {
    const s = this.state
    if (s.stopping || !s.index) return
    const r = s.index.router(d.routerId)
    if (!r?.advertise || r.disabled) return
    const hp = tryParseHostPort(r.advertise)
    if (!hp.ok) {
      s.log.warn({ peerRouter: r.id, advertise: r.advertise }, 'router advertises an invalid address')
      return
    }
    d.connecting = true
    const expected = r.id
    const socket = tls.connect({
      host: hp.host,
      port: hp.port,
      cert: s.identity.cert,
      key: s.identity.key,
      ca: s.identity.ca,
      ...(isIP(hp.host) ? {} : { servername: hp.host }),
      minVersion: 'TLSv1.2',
      checkServerIdentity: (_host, cert) => {
        const sp = spiffeIdFromSan(cert.subjectaltname, s.trustDomain)
        if (sp?.kind !== 'router' || sp.id !== expected) {
          return new Error(
            `the router at ${r.advertise} is not ${expected} (certificate names ${sp ? `${sp.kind}/${sp.id}` : 'nothing'})`,
          )
        }
        return undefined
      },
    })
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 15_000)
    const conn = new FrameConnection(socket)
    const peer = new Peer(conn, false, s.table, s.log)
    peer.kind = 'router'
    peer.entityId = expected
    peer.name = r.name
    peer.state = 'hello'
    this.dispatch.attach(peer)
    peer.timer = setTimeout(() => {
      peer.refuse('ERR_HANDSHAKE_TIMEOUT', 'link handshake timed out')
    }, s.limits.handshakeTimeoutMs)
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate()
      if (cert) peer.fingerprint = certFingerprint(cert)
      s.peers.add(peer)
      const v = checkPeer(s.index!, peer)
      if (!v.ok) {
        peer.refuse(v.code, v.message)
        return
      }
      peer.send({
        type: FrameType.HELLO,
        circuitId: 0,
        flags: 0,
        payload: { version: PROTOCOL_VERSION, role: 'router', agent: ROUTER_AGENT },
      })
    })
    conn.once('close', () => {
      d.connecting = false
      if (peer.state !== 'ready' && d.peer !== peer) {
        // never became a link
        s.peers.delete(peer)
        s.log.debug({ peerRouter: expected }, 'link attempt failed')
        this.schedule(d)
      }
    })
    d.peer = null
    peer.onReady = (): void => {
      d.connecting = false
      d.peer = peer
      d.backoff.reset()
    }
    peer.onDown = (): void => {
      if (d.peer !== peer) return
      d.peer = null
      this.schedule(d)
    }
  }
}
