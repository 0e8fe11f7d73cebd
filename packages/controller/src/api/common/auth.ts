/**
 * Management API authentication: `Authorization: Bearer TOKEN` or `zt-session: TOKEN`. Runs as a
 * preValidation hook, i.e. AFTER the body was read against bodyLimit (so an oversized body is a
 * 413 before authentication) and before schema validation.
 */
import type { FastifyRequest } from 'fastify'
import type { CoreService } from '../../core/service.js'
import { ControllerError } from '../../errors.js'

export interface AuthInfo {
  sessionId: string
  identity: { id: string; name: string; isAdmin: boolean }
}

declare module 'fastify' {
  interface FastifyRequest {
    auth?: AuthInfo
  }
}

export function sessionToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization
  if (typeof h === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h)
    if (m) return m[1]!
  }
  const z = req.headers['zt-session']
  if (typeof z === 'string' && z.trim() !== '') return z.trim()
  return null
}

export function requireAdmin(core: CoreService) {
  return async (req: FastifyRequest): Promise<void> => {
    const token = sessionToken(req)
    if (!token) throw new ControllerError('ERR_UNAUTHORIZED')
    const s = await core.verifySession(token, 'management')
    if (!s.identity.isAdmin)
      throw new ControllerError(
        'ERR_FORBIDDEN',
        `identity ${s.identity.name} is not an admin: the management API is for admins only`,
      )
    req.auth = { sessionId: s.sessionId, identity: s.identity }
  }
}
