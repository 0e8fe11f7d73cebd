/**
 * Fabric API `/fabric/v1` for edge routers (mTLS with a router certificate; the router id is the
 * certificate's SPIFFE id). `/enroll` is the only route without a certificate.
 */

import type { PolicySnapshot, RouterEvent, TerminatorPrecedence } from '@nullport/protocol'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { CircuitReport } from '../../edge/circuit-registry.js'
import type { EdgeRuntime } from '../../edge/runtime.js'
import { SseStream } from '../../edge/sse.js'
import { checkEnrollRate, enroll, limitedEnroll } from '../../enrollment/enroll.js'
import { renewCertificate } from '../../enrollment/renew.js'
import { ControllerError } from '../../errors.js'
import { certCoversHost, parseHostPort } from '../../pki/network-pki.js'
import { authenticatePeer, peerCertificate } from '../../pki/peer-auth.js'
import { MAX_LINK_LATENCY_MS, MAX_LINK_PEERS } from '../../routing/route-manager.js'
import { EnrollResult, RenewBody, RenewResult } from '../client/routes.js'
import { requireAdmin } from '../common/auth.js'
import { ErrorSchema, envelope, ok } from '../common/envelope.js'
import { Precedence } from '../common/terminator-options.js'

const Id = Type.String({ minLength: 1, maxLength: 255 })
const Advertise = Type.String({
  minLength: 3,
  maxLength: 300,
  description: 'HOST:PORT (IPv6 as [addr]:port)',
})
const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema }

const RouterEnrollBody = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 8192 }),
    csr: Type.String({ minLength: 1, maxLength: 16384 }),
    advertise: Advertise,
  },
  { additionalProperties: false },
)
const OnlineBody = Type.Object(
  { advertise: Advertise, version: Type.Optional(Type.String({ maxLength: 64 })) },
  { additionalProperties: false },
)
const TerminatorBody = Type.Object(
  {
    serviceId: Id,
    identityId: Id,
    cost: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    precedence: Type.Optional(Precedence),
  },
  { additionalProperties: false },
)
const TerminatorSchema = Type.Object({
  id: Type.String(),
  serviceId: Type.String(),
  routerId: Type.String(),
  identityId: Type.String(),
  cost: Type.Number(),
  precedence: Precedence,
  createdAt: Type.String(),
})
const LinksBody = Type.Object(
  {
    peers: Type.Array(
      Type.Object(
        { routerId: Id, latencyMs: Type.Number({ minimum: 0, maximum: MAX_LINK_LATENCY_MS }) },
        { additionalProperties: false },
      ),
      { maxItems: MAX_LINK_PEERS },
    ),
  },
  { additionalProperties: false },
)
const CircuitItem = Type.Object(
  {
    tag: Type.String({ minLength: 1, maxLength: 128 }),
    serviceId: Id,
    identityId: Id,
    hostIdentityId: Type.Optional(Id),
    terminatorId: Type.Optional(Id),
    routerId: Type.Optional(Id),
    terminatorRouterId: Type.Optional(Id),
    createdAt: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
)
const CircuitsBody = Type.Object(
  { circuits: Type.Array(CircuitItem, { maxItems: 1000 }) },
  { additionalProperties: false },
)

export async function fabricRoutes(app: FastifyInstance, rt: EdgeRuntime): Promise<void> {
  const { ctx, pki, signer } = rt
  const base = '/fabric/v1'
  const auth = async (req: FastifyRequest): Promise<void> => {
    req.peer = authenticatePeer(req, pki, ctx.policy, 'router')
  }
  const actor = (req: FastifyRequest) => ({ id: req.peer!.id, name: `router:${req.peer!.name}` })
  /** The policy data changes only with its version: routers connecting at one version share a snapshot. */
  let lastSnapshot: PolicySnapshot | null = null

  app.post(
    `${base}/enroll`,
    {
      schema: {
        tags: ['Enrollment'],
        summary: 'Enroll an edge router: one-time token + CSR + advertised address -> certificate',
        body: RouterEnrollBody,
        response: { 200: envelope(EnrollResult), ...errors },
      },
      // before the body is read: an address that keeps failing cannot make us parse or verify more
      onRequest: async (req) => checkEnrollRate(rt.enrollLimiter, req.ip),
    },
    async (req) => {
      const body = req.body as { token: string; csr: string; advertise: string }
      return ok(await limitedEnroll(rt.enrollLimiter, req.ip, () => enroll(ctx, pki, signer, 'router', body)))
    },
  )

  app.post(
    `${base}/renew`,
    {
      schema: {
        tags: ['Fabric'],
        summary:
          'Renew the router certificate: authenticated with the current one, a CSR for a new key -> a new certificate (the current one stays valid until it expires; older ones are revoked)',
        body: RenewBody,
        response: { 200: envelope(RenewResult), ...errors, 429: ErrorSchema },
      },
      // the certificate is checked before the body is read
      onRequest: auth,
    },
    async (req) =>
      ok(await renewCertificate(ctx, pki, rt.renewLimiter, req.peer!, req.body as { csr: string })),
  )

  app.get(`${base}/stream`, { onRequest: auth }, async (req, reply) => {
    const peer = req.peer!
    await ctx.core.routerStreamOpened(peer.id)
    reply.hijack()
    const stream = new SseStream(reply.raw, {
      maxBuffered: rt.routerStreamMaxBuffered,
      pingIntervalMs: rt.pingIntervalMs,
      ping: (): RouterEvent => ({ type: 'ping', at: new Date().toISOString() }),
    })
    // Snapshot and attach in the same tick: no change batch can fall between them.
    if (!lastSnapshot || lastSnapshot.version !== ctx.policy.version) lastSnapshot = ctx.policy.snapshot()
    const snapshot = lastSnapshot
    rt.routers.attach(peer.id, peer.fingerprint, stream, snapshot, rt.routes.current(peer.id), (reason) =>
      rt.presence.disconnected(peer.id, reason),
    )
    rt.presence.connected(peer.id)
    req.log.info({ routerId: peer.id, version: snapshot.version }, 'router stream open')
  })

  app.post(`${base}/online`, { schema: { body: OnlineBody }, onRequest: auth }, async (req) => {
    const body = req.body as { advertise: string; version?: string }
    const hp = parseHostPort(body.advertise)
    if (!hp) {
      throw new ControllerError('ERR_VALIDATION', 'advertise: must be HOST:PORT', { path: '$.advertise' })
    }
    const cert = peerCertificate(req)
    if (cert && !certCoversHost(cert, hp.host)) {
      req.log.info(
        { routerId: req.peer!.id, advertise: body.advertise },
        'the router advertises a host its certificate does not name (peers verify its SPIFFE id, so links and SDKs still work; re-enroll it to update the SANs)',
      )
    }
    await ctx.core.setRouterStatus(req.peer!.id, {
      isOnline: true,
      advertise: body.advertise,
      ...(body.version !== undefined ? { version: body.version } : {}),
    })
    rt.presence.announced(req.peer!.id)
    return ok({ id: req.peer!.id, name: req.peer!.name, advertise: body.advertise, isOnline: true })
  })

  app.post(
    `${base}/terminators`,
    {
      schema: { body: TerminatorBody, response: { 201: envelope(TerminatorSchema), ...errors } },
      onRequest: auth,
    },
    async (req, reply) => {
      const body = req.body as {
        serviceId: string
        identityId: string
        cost?: number
        precedence?: TerminatorPrecedence
      }
      const term = await ctx.core.bindTerminator(req.peer!.id, body, actor(req))
      reply.status(201)
      return ok(term)
    },
  )

  app.delete(
    `${base}/terminators/:id`,
    { schema: { params: Type.Object({ id: Id }) }, onRequest: auth },
    async (req) => {
      const { id } = req.params as { id: string }
      await ctx.core.unbindTerminator(req.peer!.id, id, actor(req))
      return ok({ id })
    },
  )

  app.post(`${base}/links`, { schema: { body: LinksBody }, onRequest: auth }, async (req) => {
    const body = req.body as { peers: Array<{ routerId: string; latencyMs: number }> }
    const peers = body.peers.filter((p) => ctx.policy.router(p.routerId) !== undefined)
    rt.routes.setLinks(req.peer!.id, peers)
    rt.routePush.schedule()
    return ok({ accepted: peers.length, ignored: body.peers.length - peers.length })
  })

  app.post(`${base}/circuits`, { schema: { body: CircuitsBody }, onRequest: auth }, async (req) => {
    const body = req.body as {
      circuits: Array<Partial<CircuitReport> & { tag: string; serviceId: string; identityId: string }>
    }
    const routerId = req.peer!.id
    const now = new Date().toISOString()
    const n = rt.circuits.add(
      routerId,
      body.circuits.map((c) => ({ ...c, routerId: c.routerId ?? routerId, createdAt: c.createdAt ?? now })),
    )
    return ok({ accepted: n })
  })

  app.delete(
    `${base}/circuits/:tag`,
    {
      schema: { params: Type.Object({ tag: Type.String({ minLength: 1, maxLength: 128 }) }) },
      onRequest: auth,
    },
    async (req) => {
      const { tag } = req.params as { tag: string }
      if (!rt.circuits.remove(req.peer!.id, tag))
        throw new ControllerError('ERR_NOT_FOUND', `no circuit ${tag} reported by this router`, { tag })
      return ok({ tag })
    },
  )

  // Read side for admins (kept in memory by this module).
  app.get(
    '/edge/management/v1/circuits',
    {
      schema: {
        hide: true,
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            offset: Type.Optional(Type.Integer({ minimum: 0 })),
            serviceId: Type.Optional(Id),
            routerId: Type.Optional(Id),
            identityId: Type.Optional(Id),
          },
          { additionalProperties: false },
        ),
      },
      preValidation: requireAdmin(ctx.core),
    },
    async (req) => {
      const q = req.query as {
        limit?: number
        offset?: number
        serviceId?: string
        routerId?: string
        identityId?: string
      }
      const limit = q.limit ?? 100
      const offset = q.offset ?? 0
      const r = rt.circuits.list({
        limit,
        offset,
        ...(q.serviceId !== undefined ? { serviceId: q.serviceId } : {}),
        ...(q.routerId !== undefined ? { routerId: q.routerId } : {}),
        ...(q.identityId !== undefined ? { identityId: q.identityId } : {}),
      })
      return ok(r.data, { pagination: { limit, offset, totalCount: r.totalCount } })
    },
  )

  app.get(
    '/edge/management/v1/links',
    { schema: { hide: true }, preValidation: requireAdmin(ctx.core) },
    async () => ok(rt.routes.links()),
  )
}
