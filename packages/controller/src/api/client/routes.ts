/**
 * Client API `/edge/client/v1` for SDKs and tunnelers. Every route except `/enroll` needs the
 * identity's client certificate (mTLS, verified here at the application layer); when a session
 * token is also sent (`Authorization: Bearer` or `zt-session`), it must be a valid client session of
 * the same identity.
 */
import type { ClientEvent } from '@nullport/protocol'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { EdgeRuntime } from '../../edge/runtime.js'
import { SseStream } from '../../edge/sse.js'
import { checkEnrollRate, enroll, limitedEnroll } from '../../enrollment/enroll.js'
import { renewCertificate } from '../../enrollment/renew.js'
import { ControllerError } from '../../errors.js'
import { authenticatePeer, type PeerIdentity } from '../../pki/peer-auth.js'
import { sessionToken } from '../common/auth.js'
import { ErrorSchema, envelope, ok } from '../common/envelope.js'

declare module 'fastify' {
  interface FastifyRequest {
    peer?: PeerIdentity
  }
}

const PEM_MAX = 16 * 1024
export const EnrollBody = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 8192, description: 'the enrollment JWT' }),
    csr: Type.String({ minLength: 1, maxLength: PEM_MAX, description: 'PEM PKCS#10 CSR, ECDSA P-256' }),
  },
  { additionalProperties: false },
)
export const EnrollResult = Type.Object({
  cert: Type.String({ description: 'PEM: the issued certificate followed by the issuing intermediate' }),
  ca: Type.String({ description: 'PEM: network CA bundle (root, then intermediate)' }),
  id: Type.String(),
  name: Type.String(),
  controller: Type.String({ description: 'controller base URL' }),
  trustDomain: Type.String(),
})
export const RenewBody = Type.Object(
  {
    csr: Type.String({
      minLength: 1,
      maxLength: PEM_MAX,
      description: 'PEM PKCS#10 CSR for a new ECDSA P-256 key',
    }),
  },
  { additionalProperties: false },
)
export const RenewResult = Type.Object({
  cert: Type.String({ description: 'PEM: the new certificate followed by the issuing intermediate' }),
  ca: Type.String({ description: 'PEM: network CA bundle (root, then intermediate)' }),
  notAfter: Type.String({ description: 'ISO time the new certificate expires' }),
})
const Page = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1000 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  },
  { additionalProperties: false },
)
const ClientServiceSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  roleAttributes: Type.Array(Type.String()),
  encryptionRequired: Type.Boolean(),
  permissions: Type.Array(Type.Union([Type.Literal('Dial'), Type.Literal('Bind')])),
  config: Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown()), {
    description: 'config data by config type name',
  }),
  edgeRouterIds: Type.Array(Type.String()),
})
const ClientEdgeRouterSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  advertise: Type.String(),
  isOnline: Type.Boolean(),
})
const SessionSchema = Type.Object({
  token: Type.String(),
  expiresAt: Type.String(),
  identity: Type.Object({ id: Type.String(), name: Type.String() }),
})
const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema }

function page(q: unknown): { limit: number; offset: number } {
  const p = (q ?? {}) as { limit?: number; offset?: number }
  return { limit: p.limit ?? 1000, offset: p.offset ?? 0 }
}

export async function clientRoutes(app: FastifyInstance, rt: EdgeRuntime): Promise<void> {
  const { ctx, pki, signer } = rt
  const base = '/edge/client/v1'

  app.post(
    `${base}/enroll`,
    {
      schema: {
        tags: ['Enrollment'],
        summary: 'Enroll an identity: one-time token + CSR -> certificate',
        body: EnrollBody,
        response: { 200: envelope(EnrollResult), ...errors },
      },
      // before the body is read: an address that keeps failing cannot make us parse or verify more
      onRequest: async (req) => checkEnrollRate(rt.enrollLimiter, req.ip),
    },
    async (req) => {
      const body = req.body as { token: string; csr: string }
      return ok(
        await limitedEnroll(rt.enrollLimiter, req.ip, () => enroll(ctx, pki, signer, 'identity', body)),
      )
    },
  )

  /** Authenticates the certificate, and the session token when one is sent. */
  const auth = async (req: FastifyRequest): Promise<void> => {
    const peer = authenticatePeer(req, pki, ctx.policy, 'identity')
    const token = sessionToken(req)
    if (token) {
      const s = await ctx.core.verifySession(token, 'client')
      if (s.identity.id !== peer.id) {
        throw new ControllerError(
          'ERR_UNAUTHORIZED',
          'the session token belongs to another identity than the client certificate: authenticate again',
        )
      }
    }
    req.peer = peer
  }

  app.post(
    `${base}/authenticate`,
    {
      schema: {
        tags: ['Client'],
        summary: 'Authenticate with the client certificate (method=cert) -> session token',
        querystring: Type.Object({ method: Type.Literal('cert') }, { additionalProperties: false }),
        response: { 200: envelope(SessionSchema), ...errors },
      },
      onRequest: async (req) => {
        req.peer = authenticatePeer(req, pki, ctx.policy, 'identity')
      },
    },
    async (req) => {
      const peer = req.peer!
      const s = await ctx.core.createSession(peer.id, 'client', {
        method: 'cert',
        fingerprint: peer.fingerprint,
      })
      return ok({ token: s.token, expiresAt: s.expiresAt, identity: { id: peer.id, name: peer.name } })
    },
  )

  app.post(
    `${base}/current-identity/renew`,
    {
      schema: {
        tags: ['Client'],
        summary:
          'Renew the identity certificate: authenticated with the current one, a CSR for a new key -> a new certificate (the current one stays valid until it expires; older ones are revoked)',
        body: RenewBody,
        response: { 200: envelope(RenewResult), ...errors, 429: ErrorSchema },
      },
      // the certificate is checked before the body is read
      onRequest: auth,
    },
    async (req) =>
      ok(await renewCertificate(ctx, pki, rt.renewLimiter, req.peer!, req.body as { csr: string })),
  )

  app.get(
    `${base}/current-identity`,
    {
      schema: {
        tags: ['Client'],
        summary: 'The identity of the client certificate',
        response: { ...errors },
      },
      onRequest: auth,
    },
    async (req) => {
      const v = await ctx.core.get('identities', req.peer!.id)
      const pick = [
        'id',
        'name',
        'type',
        'roleAttributes',
        'isAdmin',
        'disabled',
        'defaultHostingCost',
        'defaultHostingPrecedence',
        'createdAt',
        'updatedAt',
      ]
      const data: Record<string, unknown> = {}
      for (const k of pick) if (k in v) data[k] = v[k]
      return ok(data)
    },
  )

  app.get(
    `${base}/services`,
    {
      schema: {
        tags: ['Client'],
        summary: 'Services this identity may Dial or Bind, with configs and usable router ids',
        querystring: Page,
        response: { 200: envelope(ClientServiceSchema, true), ...errors },
      },
      onRequest: auth,
    },
    async (req) => {
      const { limit, offset } = page(req.query)
      const all = await ctx.core.clientServices(req.peer!.id)
      return ok(all.slice(offset, offset + limit), { pagination: { limit, offset, totalCount: all.length } })
    },
  )

  app.get(
    `${base}/edge-routers`,
    {
      schema: {
        tags: ['Client'],
        summary: 'Edge routers this identity may use (edge router policies), with their address',
        querystring: Page,
        response: { 200: envelope(ClientEdgeRouterSchema, true), ...errors },
      },
      onRequest: auth,
    },
    async (req) => {
      const { limit, offset } = page(req.query)
      const all = await ctx.core.clientEdgeRouters(req.peer!.id)
      return ok(all.slice(offset, offset + limit), { pagination: { limit, offset, totalCount: all.length } })
    },
  )

  app.get(
    `${base}/events`,
    {
      schema: {
        tags: ['Client'],
        summary:
          'Server-sent events (ClientEvent): services-changed, routers-changed, revoked (then the stream ends), ping every 15 s',
        response: { ...errors },
      },
      onRequest: auth,
    },
    async (req, reply) => {
      const peer = req.peer!
      reply.hijack()
      const stream = new SseStream(reply.raw, {
        maxBuffered: rt.clientStreamMaxBuffered,
        pingIntervalMs: rt.pingIntervalMs,
        ping: (): ClientEvent => ({ type: 'ping', at: new Date().toISOString() }),
      })
      rt.clients.add(peer.id, peer.fingerprint, stream)
      // A revocation committed while this request was being authenticated.
      const cur = ctx.policy.identity(peer.id)
      if (!cur || cur.disabled || !(cur.certFingerprints ?? []).includes(peer.fingerprint)) {
        const ev: ClientEvent = {
          type: 'revoked',
          reason: 'the identity or its certificate is no longer valid',
        }
        stream.send('revoked', ev)
        stream.close('server')
        return
      }
      req.log.info({ identityId: peer.id }, 'client event stream open')
    },
  )
}
