/**
 * The edge half of the controller (OWNER: controller edge engineer): network PKI, enrollment,
 * client API, fabric API, pushes, routing. server.ts calls `createEdge(ctx)` before building the
 * HTTPS server (TLS material, enrollment signing) and `registerEdgeRoutes(app, ctx)` to add routes.
 * `app` is an encapsulated Fastify context whose routes are documented in /openapi/client.json.
 */
import type { FastifyInstance } from 'fastify'
import { clientRoutes } from './api/client/routes.js'
import { fabricRoutes } from './api/fabric/routes.js'
import type { ControllerContext, EdgeModule } from './core/context.js'
import { EdgeRuntime, type EdgeRuntimeOptions } from './push/edge-runtime.js'

export { EdgeRuntime, type EdgeRuntimeOptions }

/** Opens (or creates) the network PKI in DATA/pki and starts following the change feed. */
export async function createEdge(ctx: ControllerContext, o: EdgeRuntimeOptions = {}): Promise<EdgeModule> {
  return EdgeRuntime.create(ctx, o)
}

export async function registerEdgeRoutes(app: FastifyInstance, ctx: ControllerContext): Promise<void> {
  const rt = ctx.edge
  if (!(rt instanceof EdgeRuntime))
    throw new Error('registerEdgeRoutes: ctx.edge must come from createEdge()')

  app.get(
    '/.well-known/est/cacerts',
    { schema: { tags: ['Well-known'], summary: 'Network CA bundle (root, then intermediate), PEM' } },
    async (_req, reply) => {
      reply.type('application/pem-certificate-chain')
      return rt.pki.caBundlePem
    },
  )
  app.get(
    '/.well-known/jwks.json',
    { schema: { tags: ['Well-known'], summary: 'The enrollment-token signing key(s), JWKS' } },
    async (_req, reply) => {
      reply.type('application/json')
      return rt.signer.jwks()
    },
  )
  await clientRoutes(app, rt)
  await fabricRoutes(app, rt)
}
