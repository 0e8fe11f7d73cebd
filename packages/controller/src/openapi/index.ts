/**
 * OpenAPI 3 documents: one @fastify/swagger instance per API, each in its own encapsulated
 * context so it sees only that API's routes. Served at /openapi/management.json and
 * /openapi/client.json (the client one documents the edge module's routes: client API, enroll,
 * well-known endpoints).
 */
import swagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'

export const CONTROLLER_VERSION = '0.1.0'

export async function registerSwagger(
  app: FastifyInstance,
  o: { title: string; description: string; include?: (url: string) => boolean },
): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: o.title, description: o.description, version: CONTROLLER_VERSION },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'session token from POST /authenticate' },
          ztSession: { type: 'apiKey', in: 'header', name: 'zt-session' },
        },
      },
    },
    transform: ({ schema, url }) => {
      const s = (schema ?? {}) as Record<string, unknown>
      const hide = s.hide === true || (o.include !== undefined && !o.include(url))
      return { schema: { ...s, hide } as typeof schema, url }
    },
  })
}
