/**
 * The router's one TLS listener, for SDKs and for links from other routers alike (mTLS: a client
 * certificate chaining to the network CA is required). Each accepted connection is bounded
 * (`maxConnections`; until mutual TLS is done, the pre-auth guard `state.preAuth`: a deadline
 * of `handshakeTimeoutMs` from TCP accept and `maxPreAuthPerAddress` per source address; then
 * HELLO within `handshakeTimeoutMs`, else GOAWAY ERR_HANDSHAKE_TIMEOUT), authenticated by the one
 * certificate check once the policy data is there, and handed to the dispatch.
 */
import type { Socket } from 'node:net'
import tls from 'node:tls'
import { FrameConnection, type HostPort } from '@nullport/protocol'
import type { RouterState } from '../state.js'
import { certificateSubject, checkCertificate } from './certificate-check.js'
import type { Dispatch } from './dispatch.js'
import { Peer } from './peer.js'

export class Acceptor {
  private server: tls.Server | null = null

  constructor(
    private readonly state: RouterState,
    private readonly dispatch: Dispatch,
  ) {}

  /** Binds the listener; resolves to the bound port. */
  async listen(hp: HostPort): Promise<number> {
    const s = this.state
    const server = tls.createServer({
      cert: s.identity.cert,
      key: s.identity.key,
      ca: s.identity.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      // the pre-auth guard (state.preAuth) ends a stalled handshake at handshakeTimeoutMs and
      // counts it; Node's own timer is only a backstop
      handshakeTimeout: s.limits.handshakeTimeoutMs + 1000,
    })
    server.maxConnections = s.limits.maxConnections
    server.on('connection', (raw: Socket) => s.preAuth.admit(raw))
    server.on('secureConnection', (socket) => this.onSecureConnection(socket))
    server.on('tlsClientError', (err, socket) => {
      // a failed or timed-out handshake closes the socket (Node only reports it)
      socket.destroy()
      s.log.info(
        {
          code: 'ERR_CERT_INVALID',
          err: err.message,
          remote: `${socket.remoteAddress}:${socket.remotePort}`,
        },
        'TLS handshake refused',
      )
    })
    server.on('error', (err) => s.log.error({ err }, 'listener error'))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(hp.port, hp.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.server = server
    const addr = server.address()
    return typeof addr === 'object' && addr ? addr.port : hp.port
  }

  /** New connections use these credentials (certificate renewal); open ones keep theirs. */
  setSecureContext(ctx: tls.SecureContextOptions): void {
    this.server?.setSecureContext(ctx)
  }

  /** Stops accepting; resolves once the listener closed (open connections are the caller's). */
  close(): Promise<void> {
    const server = this.server
    this.state.preAuth.close()
    return server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve()
  }

  private onSecureConnection(socket: tls.TLSSocket): void {
    const s = this.state
    // mTLS is done (a certificate chaining to the network CA): the connection leaves the
    // pre-auth guard; HELLO has its own timer below, answered with a coded GOAWAY
    s.preAuth.authenticated(socket)
    if (s.stopping) {
      socket.destroy()
      return
    }
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 15_000)
    const conn = new FrameConnection(socket)
    const peer = new Peer(conn, true, s.table, s.log)
    s.peers.add(peer)
    this.dispatch.attach(peer)
    peer.timer = setTimeout(() => {
      if (!s.isReady) {
        peer.refuse(
          'ERR_NOT_READY',
          'the router has no policy data yet (controller unreachable): retry later',
        )
      } else {
        peer.refuse('ERR_HANDSHAKE_TIMEOUT', `no HELLO within ${s.limits.handshakeTimeoutMs} ms`)
      }
    }, s.limits.handshakeTimeoutMs)
    if (s.peers.size > s.limits.maxConnections) {
      peer.refuse(
        'ERR_TOO_MANY_CONNECTIONS',
        `the router serves at most ${s.limits.maxConnections} connections: try another router`,
      )
      return
    }
    const cert = socket.getPeerX509Certificate()
    if (!cert) {
      peer.refuse('ERR_CERT_INVALID', 'a client certificate is required')
      return
    }
    const authenticate = (): void => {
      if (peer.state !== 'auth') return
      const subject = certificateSubject(cert, s.trustDomain)
      if (!subject) {
        peer.refuse(
          'ERR_CERT_INVALID',
          `the certificate has no spiffe://${s.trustDomain}/identity|router/ID URI`,
        )
        return
      }
      const r = checkCertificate(s.index!, subject, null)
      if (!r.ok) {
        peer.refuse(r.code, r.message)
        return
      }
      peer.kind = subject.kind
      peer.entityId = subject.id
      peer.name = r.name
      peer.fingerprint = subject.fingerprint
      this.dispatch.authenticated(peer)
    }
    const failed = (err: unknown): void => {
      s.log.error({ err, ...peer.describe() }, 'authentication failed')
      peer.conn.destroy()
    }
    if (s.isReady) {
      try {
        authenticate()
      } catch (err) {
        failed(err)
      }
    } else s.ready.then(authenticate).catch(failed)
  }
}
