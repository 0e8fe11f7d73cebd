/**
 * The unauthenticated well-known endpoints: the network CA bundle (EST cacerts) and the JWKS of
 * the enrollment-token signing key.
 */
import type { FastifyInstance } from 'fastify'
import type { EdgeRuntime } from '../edge/runtime.js'

export async function wellKnownRoutes(app: FastifyInstance, rt: EdgeRuntime): Promise<void> {
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
}
