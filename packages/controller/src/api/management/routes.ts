/**
 * Management API `/edge/management/v1` (admins). Every route has a JSON Schema (TypeBox) for its
 * params, query and body (additionalProperties false); authentication runs after the body limit.
 */
import { type TSchema, Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ControllerContext } from '../../core/context.js'
import type { ListQuery } from '../../core/query.js'
import type { EntityType } from '../../core/entities/kind.js'
import type { Actor } from '../../core/write.js'
import { requireAdmin } from '../common/auth.js'
import { ErrorSchema, envelope, IdParams, ListQuerySchema, ok } from '../common/envelope.js'
import * as S from './schemas.js'

const errors = {
  400: ErrorSchema,
  401: ErrorSchema,
  403: ErrorSchema,
  404: ErrorSchema,
  409: ErrorSchema,
  413: ErrorSchema,
  429: ErrorSchema,
}

const ENTITIES: Array<{
  type: EntityType
  tag: string
  create: TSchema
  patch: TSchema
  view: TSchema
  reEnroll?: 'identity' | 'router'
}> = [
  {
    type: 'identities',
    tag: 'Identities',
    create: S.IdentityCreate,
    patch: S.IdentityPatch,
    view: S.IdentityView,
    reEnroll: 'identity',
  },
  { type: 'services', tag: 'Services', create: S.ServiceCreate, patch: S.ServicePatch, view: S.ServiceView },
  {
    type: 'config-types',
    tag: 'Configs',
    create: S.ConfigTypeCreate,
    patch: S.ConfigTypePatch,
    view: S.ConfigTypeView,
  },
  { type: 'configs', tag: 'Configs', create: S.ConfigCreate, patch: S.ConfigPatch, view: S.ConfigView },
  {
    type: 'service-policies',
    tag: 'Policies',
    create: S.ServicePolicyCreate,
    patch: S.ServicePolicyPatch,
    view: S.ServicePolicyView,
  },
  {
    type: 'edge-routers',
    tag: 'Edge routers',
    create: S.RouterCreate,
    patch: S.RouterPatch,
    view: S.RouterView,
    reEnroll: 'router',
  },
  {
    type: 'edge-router-policies',
    tag: 'Policies',
    create: S.EdgeRouterPolicyCreate,
    patch: S.EdgeRouterPolicyPatch,
    view: S.EdgeRouterPolicyView,
  },
  {
    type: 'service-edge-router-policies',
    tag: 'Policies',
    create: S.ServiceEdgeRouterPolicyCreate,
    patch: S.ServiceEdgeRouterPolicyPatch,
    view: S.ServiceEdgeRouterPolicyView,
  },
]

function actorOf(req: FastifyRequest): Actor {
  return req.auth
    ? { id: req.auth.identity.id, name: req.auth.identity.name }
    : { id: null, name: 'anonymous' }
}

const security: Array<Record<string, string[]>> = [{ bearer: [] }, { ztSession: [] }]

export async function managementRoutes(
  app: FastifyInstance,
  opts: { ctx: ControllerContext },
): Promise<void> {
  const { ctx } = opts
  const core = ctx.core
  const auth = requireAdmin(core)

  app.post(
    '/authenticate',
    {
      schema: {
        tags: ['Authentication'],
        summary: 'Username/password login; returns a session token (rate limited on failures)',
        querystring: Type.Object(
          { method: Type.Optional(Type.Literal('password')) },
          { additionalProperties: false },
        ),
        body: Type.Object(
          {
            username: Type.String({ minLength: 1, maxLength: 255 }),
            password: Type.String({ minLength: 1, maxLength: 1024 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: envelope(
            Type.Object({
              token: Type.String(),
              expiresAt: Type.String(),
              identity: Type.Object({ id: Type.String(), name: Type.String(), isAdmin: Type.Boolean() }),
            }),
          ),
          ...errors,
        },
      },
    },
    async (req) => {
      const b = req.body as { username: string; password: string }
      const r = await core.authenticatePassword(b.username, b.password, req.ip)
      return ok(r)
    },
  )

  // everything below requires an admin session
  app.register(async (authed) => {
    authed.addHook('preValidation', auth)

    authed.get(
      '/current-api-session',
      {
        schema: {
          tags: ['Authentication'],
          security,
          response: {
            200: envelope(
              Type.Object({ id: Type.String(), identity: Type.Object({}, { additionalProperties: true }) }),
            ),
            ...errors,
          },
        },
      },
      async (req) => ok({ id: req.auth!.sessionId, identity: req.auth!.identity }),
    )
    authed.delete(
      '/current-api-session',
      {
        schema: {
          tags: ['Authentication'],
          summary: 'Logout',
          security,
          response: { 200: envelope(Type.Object({})), ...errors },
        },
      },
      async (req) => {
        await core.deleteSession(req.auth!.sessionId, actorOf(req))
        return ok({})
      },
    )

    for (const e of ENTITIES) {
      const base = `/${e.type}`
      authed.get(
        base,
        {
          schema: {
            tags: [e.tag],
            summary: `List ${e.type}`,
            security,
            querystring: ListQuerySchema,
            response: { 200: envelope(e.view, true), ...errors },
          },
        },
        async (req) => {
          const r = await core.list(e.type, req.query as ListQuery)
          return ok(r.data, { pagination: r.pagination })
        },
      )
      authed.get(
        `${base}/:id`,
        {
          schema: {
            tags: [e.tag],
            summary: `Get one of ${e.type} by id or name`,
            security,
            params: IdParams,
            response: { 200: envelope(e.view), ...errors },
          },
        },
        async (req) => ok(await core.get(e.type, (req.params as { id: string }).id)),
      )
      authed.post(
        base,
        {
          schema: {
            tags: [e.tag],
            summary: `Create one of ${e.type}`,
            security,
            body: e.create,
            response: { 201: envelope(e.view), ...errors },
          },
        },
        async (req, reply) => {
          const r = await core.create(e.type, req.body as Record<string, unknown>, actorOf(req))
          reply.status(201)
          return ok(r.data, r.warnings.length > 0 ? { warnings: r.warnings } : {})
        },
      )
      authed.patch(
        `${base}/:id`,
        {
          schema: {
            tags: [e.tag],
            summary: `Update one of ${e.type} (only the given fields)`,
            security,
            params: IdParams,
            body: e.patch,
            response: { 200: envelope(e.view), ...errors },
          },
        },
        async (req) => {
          const r = await core.update(
            e.type,
            (req.params as { id: string }).id,
            req.body as Record<string, unknown>,
            actorOf(req),
          )
          return ok(r.data, r.warnings.length > 0 ? { warnings: r.warnings } : {})
        },
      )
      authed.delete(
        `${base}/:id`,
        {
          schema: {
            tags: [e.tag],
            summary: `Delete one of ${e.type}`,
            security,
            params: IdParams,
            response: { 200: envelope(Type.Object({ id: Type.String(), name: Type.String() })), ...errors },
          },
        },
        async (req) => ok(await core.remove(e.type, (req.params as { id: string }).id, actorOf(req))),
      )
      if (e.reEnroll) {
        const kind = e.reEnroll
        authed.post(
          `${base}/:id/re-enroll`,
          {
            schema: {
              tags: [e.tag],
              summary:
                'Issue a new enrollment token; the old token and current certificates are revoked at once',
              security,
              params: IdParams,
              response: { 200: envelope(e.view), ...errors },
            },
          },
          async (req) => {
            const r = await core.reEnroll(kind, (req.params as { id: string }).id, actorOf(req))
            return ok(r.data)
          },
        )
      }
    }

    authed.get(
      '/identities/:id/services',
      {
        schema: {
          tags: ['Identities'],
          summary:
            'What this identity may Dial or Bind, with configs by type and the routers it may use for each (the client API answer, from the policy index)',
          security,
          params: IdParams,
          response: { 200: envelope(Type.Object({}, { additionalProperties: true }), true), ...errors },
        },
      },
      async (req) => {
        const identity = await core.get('identities', (req.params as { id: string }).id)
        const list = await core.clientServices(identity.id as string)
        return ok(list, { pagination: { limit: list.length, offset: 0, totalCount: list.length } })
      },
    )

    authed.get(
      '/terminators',
      {
        schema: {
          tags: ['Fabric'],
          summary: 'List terminators (filter fields: id, serviceId, routerId, identityId)',
          security,
          querystring: ListQuerySchema,
          response: { 200: envelope(S.TerminatorView, true), ...errors },
        },
      },
      async (req) => {
        const r = await core.listTerminators(req.query as ListQuery)
        return ok(r.data, { pagination: r.pagination })
      },
    )

    authed.get(
      '/policy-advisor/identities/:identity/services/:service',
      {
        schema: {
          tags: ['Policies'],
          summary:
            'Explains whether an identity may dial/bind a service, through which routers, and what is missing',
          security,
          params: Type.Object(
            {
              identity: Type.String({ minLength: 1, maxLength: 255 }),
              service: Type.String({ minLength: 1, maxLength: 255 }),
            },
            { additionalProperties: false },
          ),
          response: { 200: envelope(S.AdvisorView), ...errors },
        },
      },
      async (req) => {
        const p = req.params as { identity: string; service: string }
        return ok(await core.policyAdvisor(p.identity, p.service))
      },
    )

    authed.get(
      '/audit-log',
      {
        schema: {
          tags: ['Audit'],
          summary: 'Audit log, newest first',
          security,
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
              offset: Type.Optional(Type.Integer({ minimum: 0 })),
              entityId: Type.Optional(Type.String({ maxLength: 255 })),
              entityType: Type.Optional(Type.String({ maxLength: 64 })),
              actor: Type.Optional(Type.String({ maxLength: 255 })),
            },
            { additionalProperties: false },
          ),
          response: { 200: envelope(S.AuditView, true), ...errors },
        },
      },
      async (req) => {
        const r = await core.auditLog(req.query as ListQuery & { entityId?: string })
        return ok(r.data, { pagination: r.pagination })
      },
    )
  })
}
