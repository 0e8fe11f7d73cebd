/**
 * An in-process stand-in for the controller's fabric API (HTTPS, client certs, SSE stream), with
 * a real PKI (root, intermediate, leaf certificates with SPIFFE ids). Lets the router's tests run
 * without the controller: they edit the policy data directly and it is pushed as `change`
 * batches exactly as the controller does.
 *
 * @example
 * const fake = new FakeController()
 * await fake.init()
 * await fake.start()
 * const rc = await fake.issue('router', 'r1', 'r1')
 * fake.addRouter(rc)
 * const router = await startRouter({ identity: fake.identityFile(rc), listen: '127.0.0.1:0' })
 */
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type tls from 'node:tls'
import {
  createIntermediateCa,
  createLeaf,
  createRootCa,
  type DataChange,
  type DataEntity,
  fingerprintSha256,
  type IdentityFile,
  makeSpiffeId,
  type PolicySnapshot,
  type RouterEvent,
  type RouteTable,
  spiffeIdFromSan,
  type Terminator,
} from '@nullport/protocol'

export const TD = 'nullport'
const NOW = '2026-01-01T00:00:00.000Z'

export interface Cred {
  id: string
  name: string
  certPem: string
  keyPem: string
  fingerprint: string
}

export class FakeController {
  caBundle = ''
  private rootPem = { certPem: '', keyPem: '' }
  private interPem = { certPem: '', keyPem: '' }
  private server: https.Server | null = null
  url = ''
  port = 0
  snapshot: PolicySnapshot = {
    version: 1,
    identities: [],
    services: [],
    routers: [],
    servicePolicies: [],
    edgeRouterPolicies: [],
    serviceEdgeRouterPolicies: [],
    terminators: [],
  }
  private streams = new Map<string, ServerResponse>()
  links = new Map<string, Array<{ routerId: string; latencyMs: number }>>()
  circuits = new Map<string, unknown>()
  online = new Map<string, string>()
  requests: string[] = []
  private termSeq = 0

  async init(): Promise<void> {
    this.rootPem = await createRootCa({ commonName: 'test root' })
    this.interPem = await createIntermediateCa({
      issuerCertPem: this.rootPem.certPem,
      issuerKeyPem: this.rootPem.keyPem,
      commonName: 'test intermediate',
    })
    this.caBundle = `${this.rootPem.certPem.trim()}\n${this.interPem.certPem.trim()}\n`
  }

  async issue(
    kind: 'identity' | 'router',
    id: string,
    name: string,
    opts: { lifetimeSeconds?: number } = {},
  ): Promise<Cred> {
    const leaf = await createLeaf({
      issuerCertPem: this.interPem.certPem,
      issuerKeyPem: this.interPem.keyPem,
      commonName: name,
      usage: 'both',
      ip: ['127.0.0.1'],
      uris: [makeSpiffeId(TD, kind, id)],
      lifetimeSeconds: opts.lifetimeSeconds ?? 3600,
    })
    return {
      id,
      name,
      certPem: `${leaf.certPem.trim()}\n${this.interPem.certPem.trim()}\n`,
      keyPem: leaf.keyPem,
      fingerprint: fingerprintSha256(leaf.certPem),
    }
  }

  /** A certificate from another CA with the same SPIFFE id. */
  async foreign(kind: 'identity' | 'router', id: string): Promise<Cred> {
    const root = await createRootCa({ commonName: 'foreign root' })
    const leaf = await createLeaf({
      issuerCertPem: root.certPem,
      issuerKeyPem: root.keyPem,
      commonName: id,
      usage: 'both',
      uris: [makeSpiffeId(TD, kind, id)],
      lifetimeSeconds: 3600,
    })
    return {
      id,
      name: id,
      certPem: leaf.certPem,
      keyPem: leaf.keyPem,
      fingerprint: fingerprintSha256(leaf.certPem),
    }
  }

  identityFile(c: Cred): IdentityFile {
    return {
      version: 1,
      kind: 'router',
      id: c.id,
      name: c.name,
      controller: this.url,
      cert: c.certPem,
      key: c.keyPem,
      ca: this.caBundle,
      trustDomain: TD,
    }
  }

  async start(port = 0): Promise<void> {
    const server = await createLeaf({
      issuerCertPem: this.interPem.certPem,
      issuerKeyPem: this.interPem.keyPem,
      commonName: 'controller',
      usage: 'server',
      ip: ['127.0.0.1'],
      lifetimeSeconds: 3600,
    })
    this.server = https.createServer(
      {
        cert: `${server.certPem.trim()}\n${this.interPem.certPem.trim()}\n`,
        key: server.keyPem,
        ca: this.caBundle,
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => void this.handle(req, res),
    )
    this.server.listen(port, '127.0.0.1')
    await once(this.server, 'listening')
    this.port = (this.server.address() as AddressInfo).port
    this.url = `https://127.0.0.1:${this.port}`
  }

  /** Simulates a controller outage: closes the server and every stream. */
  async stop(): Promise<void> {
    for (const s of this.streams.values()) s.destroy()
    this.streams.clear()
    const srv = this.server
    this.server = null
    if (srv) {
      srv.closeAllConnections()
      await new Promise<void>((r) => srv.close(() => r()))
    }
  }

  private routerOf(req: IncomingMessage): string | null {
    const sock = req.socket as tls.TLSSocket
    if (!sock.authorized) return null
    const cert = sock.getPeerX509Certificate()
    const who = spiffeIdFromSan(cert?.subjectAltName, TD)
    return who?.kind === 'router' ? who.id : null
  }

  private send(res: ServerResponse, ev: RouterEvent): void {
    res.write(`event: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`)
  }

  private async body(req: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const t = Buffer.concat(chunks).toString('utf8')
    return t ? (JSON.parse(t) as Record<string, unknown>) : {}
  }

  private json(res: ServerResponse, status: number, data: unknown): void {
    res
      .writeHead(status, { 'content-type': 'application/json' })
      .end(JSON.stringify(status < 300 ? { data } : { error: data }))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const routerId = this.routerOf(req)
    this.requests.push(`${req.method} ${req.url}`)
    if (!routerId)
      return this.json(res, 401, { code: 'UNAUTHORIZED', message: 'router certificate required' })
    const url = req.url ?? ''
    if (req.method === 'GET' && url === '/fabric/v1/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      this.streams.get(routerId)?.destroy()
      this.streams.set(routerId, res)
      res.on('close', () => {
        if (this.streams.get(routerId) === res) this.streams.delete(routerId)
      })
      this.send(res, { type: 'snapshot', snapshot: structuredClone(this.snapshot) })
      const rt = this.routesFor(routerId)
      this.send(res, { type: 'routes', routes: rt })
      return
    }
    const b = await this.body(req)
    if (req.method === 'POST' && url === '/fabric/v1/online') {
      this.online.set(routerId, String(b.advertise))
      const r = this.snapshot.routers.find((x) => x.id === routerId)
      if (r && r.advertise !== b.advertise)
        this.upsert({ entity: 'router', data: { ...r, advertise: String(b.advertise) } })
      return this.json(res, 200, { ok: true })
    }
    if (req.method === 'POST' && url === '/fabric/v1/terminators') {
      const existing = this.snapshot.terminators.find(
        (t) => t.serviceId === b.serviceId && t.identityId === b.identityId && t.routerId === routerId,
      )
      const t: Terminator = {
        id: existing?.id ?? `t${++this.termSeq}`,
        serviceId: String(b.serviceId),
        routerId,
        identityId: String(b.identityId),
        cost: Number(b.cost ?? 0),
        precedence: (b.precedence as Terminator['precedence']) ?? 'default',
        createdAt: NOW,
      }
      this.upsert({ entity: 'terminator', data: t })
      return this.json(res, 201, t)
    }
    const mt = /^\/fabric\/v1\/terminators\/(.+)$/.exec(url)
    if (req.method === 'DELETE' && mt) {
      const id = decodeURIComponent(mt[1]!)
      if (!this.snapshot.terminators.some((t) => t.id === id))
        return this.json(res, 404, { code: 'NOT_FOUND', message: 'no such terminator' })
      this.remove('terminator', id)
      return this.json(res, 200, { id })
    }
    if (req.method === 'POST' && url === '/fabric/v1/links') {
      this.links.set(routerId, (b.peers as Array<{ routerId: string; latencyMs: number }>) ?? [])
      for (const [rid, s] of this.streams) this.send(s, { type: 'routes', routes: this.routesFor(rid) })
      return this.json(res, 200, { ok: true })
    }
    if (req.method === 'POST' && url === '/fabric/v1/circuits') {
      for (const c of (b.circuits as Array<{ tag: string }>) ?? []) this.circuits.set(c.tag, c)
      return this.json(res, 200, { ok: true })
    }
    const mc = /^\/fabric\/v1\/circuits\/(.+)$/.exec(url)
    if (req.method === 'DELETE' && mc) {
      this.circuits.delete(mc[1]!)
      return this.json(res, 200, { ok: true })
    }
    return this.json(res, 404, { code: 'NOT_FOUND', message: `${req.method} ${url}` })
  }

  /** Writes raw bytes to a router's event stream (limit tests). */
  sendRaw(routerId: string, text: string): boolean {
    const s = this.streams.get(routerId)
    if (!s) return false
    s.write(text)
    return true
  }

  /** Per router: next hops that replace the computed ones (multi-hop tests). */
  routeOverrides = new Map<string, Record<string, string>>()

  /** Pushes the current routes to every connected router. */
  pushRoutes(): void {
    for (const [rid, s] of this.streams) this.send(s, { type: 'routes', routes: this.routesFor(rid) })
  }

  /** Direct links (next hop = destination), then `routeOverrides`. */
  routesFor(routerId: string): RouteTable {
    const rt = this.directRoutes(routerId)
    for (const [dest, hop] of Object.entries(this.routeOverrides.get(routerId) ?? {})) {
      rt.nextHop[dest] = hop
      rt.cost[dest] = (rt.cost[dest] ?? 0) + 1
    }
    return rt
  }

  private directRoutes(routerId: string): RouteTable {
    const nextHop: Record<string, string> = {}
    const cost: Record<string, number> = {}
    for (const [from, peers] of this.links) {
      for (const p of peers) {
        if (from === routerId) {
          nextHop[p.routerId] = p.routerId
          cost[p.routerId] = p.latencyMs
        } else if (p.routerId === routerId) {
          nextHop[from] = from
          cost[from] = p.latencyMs
        }
      }
    }
    return { version: Date.now(), nextHop, cost }
  }

  private listOf(entity: DataEntity['entity']): Array<{ id: string }> {
    const map: Record<DataEntity['entity'], keyof PolicySnapshot> = {
      identity: 'identities',
      service: 'services',
      router: 'routers',
      servicePolicy: 'servicePolicies',
      edgeRouterPolicy: 'edgeRouterPolicies',
      serviceEdgeRouterPolicy: 'serviceEdgeRouterPolicies',
      terminator: 'terminators',
    }
    return this.snapshot[map[entity]] as unknown as Array<{ id: string }>
  }

  private broadcast(changes: DataChange[]): void {
    for (const s of this.streams.values()) this.send(s, { type: 'change', changes })
  }

  upsert(e: DataEntity): void {
    const list = this.listOf(e.entity)
    const i = list.findIndex((x) => x.id === e.data.id)
    if (i >= 0) list[i] = e.data
    else list.push(e.data)
    const version = ++this.snapshot.version
    this.broadcast([{ op: 'upsert', version, ...e } as DataChange])
  }

  remove(entity: DataEntity['entity'], id: string): void {
    const list = this.listOf(entity)
    const i = list.findIndex((x) => x.id === id)
    if (i >= 0) list.splice(i, 1)
    const version = ++this.snapshot.version
    this.broadcast([{ op: 'delete', version, entity, id }])
  }

  // convenience builders
  addIdentity(c: Cred, roleAttributes: string[] = [], disabled = false): void {
    this.upsert({
      entity: 'identity',
      data: { id: c.id, name: c.name, roleAttributes, disabled, certFingerprints: [c.fingerprint] },
    })
  }
  addRouter(c: Cred): void {
    this.upsert({
      entity: 'router',
      data: {
        id: c.id,
        name: c.name,
        roleAttributes: [],
        disabled: false,
        advertise: null,
        cost: 0,
        certFingerprints: [c.fingerprint],
      },
    })
  }
  addService(id: string, name: string): void {
    this.upsert({
      entity: 'service',
      data: { id, name, roleAttributes: [], encryptionRequired: false, terminatorStrategy: 'smartrouting' },
    })
  }
  addServicePolicy(id: string, type: 'Dial' | 'Bind', identityRoles: string[], serviceRoles: string[]): void {
    this.upsert({
      entity: 'servicePolicy',
      data: {
        id,
        name: id,
        type,
        semantic: 'AnyOf',
        identityRoles,
        serviceRoles,
        postureCheckRoles: [],
        createdAt: NOW,
        updatedAt: NOW,
      },
    })
  }
  allowAllRouters(): void {
    this.upsert({
      entity: 'edgeRouterPolicy',
      data: {
        id: 'erp-all',
        name: 'erp-all',
        semantic: 'AnyOf',
        identityRoles: ['#all'],
        edgeRouterRoles: ['#all'],
        createdAt: NOW,
        updatedAt: NOW,
      },
    })
    this.upsert({
      entity: 'serviceEdgeRouterPolicy',
      data: {
        id: 'serp-all',
        name: 'serp-all',
        semantic: 'AnyOf',
        serviceRoles: ['#all'],
        edgeRouterRoles: ['#all'],
        createdAt: NOW,
        updatedAt: NOW,
      },
    })
  }
}
