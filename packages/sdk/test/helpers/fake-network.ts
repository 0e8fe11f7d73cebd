/**
 * A stand-in network for SDK tests that need a real Context: a fake controller (HTTPS, mTLS, the
 * client API endpoints a context uses: authenticate, services, edge-routers, events) and a fake
 * edge router (TLS, the real frame codec) whose test code decides what to answer and can write
 * several frames in ONE socket write (as a real router may, when frames arrive together).
 */
import { randomBytes } from 'node:crypto'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import {
  type ClientEdgeRouter,
  type ClientService,
  createIntermediateCa,
  createLeaf,
  createRootCa,
  encodeFrame,
  type Frame,
  FrameConnection,
  FrameType,
  type IdentityFile,
} from '@nullport/protocol'

export const TRUST_DOMAIN = 'nullport'

export interface Pki {
  caBundle: string
  issuer: { certPem: string; keyPem: string }
}

export async function makePki(): Promise<Pki> {
  const root = await createRootCa({ commonName: 'test root' })
  const inter = await createIntermediateCa({
    issuerCertPem: root.certPem,
    issuerKeyPem: root.keyPem,
    commonName: 'test intermediate',
  })
  return { caBundle: root.certPem + inter.certPem, issuer: inter }
}

export interface Leaf {
  cert: string
  key: string
}

export async function leaf(p: Pki, cn: string, uri: string, usage: 'client' | 'server'): Promise<Leaf> {
  const l = await createLeaf({
    issuerCertPem: p.issuer.certPem,
    issuerKeyPem: p.issuer.keyPem,
    commonName: cn,
    usage,
    uris: [uri],
    ip: ['127.0.0.1'],
    lifetimeSeconds: 3600,
  })
  return { cert: l.certPem + p.issuer.certPem, key: l.keyPem }
}

/** An enrolled identity: its identity file content and its e2e credentials. */
export interface TestIdentity {
  id: string
  name: string
  leaf: Leaf
  file(controller: string): IdentityFile
}

export async function identity(p: Pki, name: string): Promise<TestIdentity> {
  const id = `${name}-id`
  const l = await leaf(p, name, `spiffe://${TRUST_DOMAIN}/identity/${id}`, 'client')
  return {
    id,
    name,
    leaf: l,
    file: (controller) => ({
      version: 1,
      kind: 'identity',
      id,
      name,
      controller,
      cert: l.cert,
      key: l.key,
      ca: p.caBundle,
      trustDomain: TRUST_DOMAIN,
    }),
  }
}

/** The client API of a controller, answering every identity with the same services and routers. */
export class FakeController {
  readonly server: https.Server
  services: ClientService[] = []
  routers: ClientEdgeRouter[] = []
  private readonly streams = new Set<import('node:http').ServerResponse>()

  private constructor(server: https.Server) {
    this.server = server
  }

  static async start(p: Pki): Promise<FakeController> {
    const creds = await leaf(p, 'controller', `spiffe://${TRUST_DOMAIN}/controller/c1`, 'server')
    const server = https.createServer({
      cert: creds.cert,
      key: creds.key,
      ca: p.caBundle,
      requestCert: true,
      rejectUnauthorized: true,
    })
    const c = new FakeController(server)
    server.on('request', (req, res) => c.handle(req, res))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return c
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  private handle(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://x')
    const san = (req.socket as tls.TLSSocket).getPeerCertificate().subjectaltname ?? ''
    const id = /identity\/([^,\s]+)/.exec(san)?.[1] ?? 'unknown'
    const json = (body: unknown): void => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    const list = (items: unknown[]): void =>
      json({ data: items, meta: { pagination: { limit: 1000, offset: 0, totalCount: items.length } } })
    req.resume()
    switch (url.pathname) {
      case '/edge/client/v1/authenticate':
        json({
          data: {
            token: `t-${id}`,
            expiresAt: new Date(Date.now() + 3600_000).toISOString(),
            identity: { id, name: id },
          },
        })
        return
      case '/edge/client/v1/services':
        list(this.services)
        return
      case '/edge/client/v1/edge-routers':
        list(this.routers)
        return
      case '/edge/client/v1/events':
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write(': open\n\n')
        this.streams.add(res)
        res.on('close', () => this.streams.delete(res))
        return
      default:
        res.writeHead(404, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { code: 'ERR_NOT_FOUND', message: url.pathname } }))
    }
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/** One SDK connection at the fake router. */
export class RouterPeer {
  readonly frames: Frame[] = []
  constructor(
    readonly socket: tls.TLSSocket,
    readonly conn: FrameConnection,
  ) {}

  send(f: Frame): void {
    this.conn.send(f)
  }

  /** Writes the frames encoded back to back in ONE socket write (so they arrive in one read). */
  sendTogether(frames: Frame[]): void {
    this.socket.write(Buffer.concat(frames.map((f) => encodeFrame(f))))
  }
}

/**
 * A TLS edge router stand-in: answers HELLO, PING and BIND (BIND_SUCCESS) itself and passes every
 * other frame to `onFrame`.
 */
export class FakeRouter {
  readonly id: string
  readonly server: tls.Server
  readonly peers: RouterPeer[] = []
  onFrame: (peer: RouterPeer, f: Frame) => void = () => undefined
  onPeer: (peer: RouterPeer) => void = () => undefined

  private constructor(id: string, server: tls.Server) {
    this.id = id
    this.server = server
  }

  static async start(p: Pki, id: string): Promise<FakeRouter> {
    const creds = await leaf(p, id, `spiffe://${TRUST_DOMAIN}/router/${id}`, 'server')
    let router: FakeRouter | null = null
    const server = tls.createServer(
      { cert: creds.cert, key: creds.key, ca: p.caBundle, requestCert: true, rejectUnauthorized: true },
      (socket) => router?.accept(socket),
    )
    router = new FakeRouter(id, server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return router
  }

  get advertise(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  get info(): ClientEdgeRouter {
    return { id: this.id, name: this.id, advertise: this.advertise, isOnline: true }
  }

  private accept(socket: tls.TLSSocket): void {
    const conn = new FrameConnection(socket)
    const peer = new RouterPeer(socket, conn)
    this.peers.push(peer)
    conn.on('error', () => undefined)
    conn.on('frame', (f: Frame) => {
      peer.frames.push(f)
      switch (f.type) {
        case FrameType.HELLO:
          conn.send({
            type: FrameType.HELLO_ACK,
            circuitId: 0,
            flags: 0,
            payload: { version: 1, role: 'router', routerId: this.id },
          })
          this.onPeer(peer)
          return
        case FrameType.PING:
          conn.send({ type: FrameType.PONG, circuitId: 0, flags: 0, payload: f.payload })
          return
        case FrameType.BIND:
          conn.send({
            type: FrameType.BIND_SUCCESS,
            circuitId: 0,
            flags: 0,
            payload: { bindId: f.payload.bindId, terminatorId: `t-${f.payload.bindId}` },
          })
          return
        default:
          this.onFrame(peer, f)
      }
    })
  }

  async close(): Promise<void> {
    for (const p of this.peers) p.socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

export function circuitTag(): string {
  return randomBytes(16).toString('hex')
}

export function service(
  name: string,
  permissions: Array<'Dial' | 'Bind'>,
  routerIds: string[],
  encryptionRequired = true,
): ClientService {
  return {
    id: `${name}-id`,
    name,
    roleAttributes: [],
    encryptionRequired,
    permissions,
    config: {},
    edgeRouterIds: routerIds,
  }
}
