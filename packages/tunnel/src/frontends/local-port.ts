/** The local-port frontend: every connection to a configured local port dials one service. */
import type { Socket } from 'node:net'
import { dialErrorCode } from '../dial-errors.js'
import { splice } from '../splice.js'
import { clientAddress, dialService, type FrontendEnv } from './env.js'

/**
 * Dials `service` for a new (paused) client socket and splices the two. The appData names the
 * service's first plain intercept.v1 address and port (the local port when it has none); a
 * failed dial resets the client connection.
 */
export function handleLocalPortConnection(env: FrontendEnv, s: Socket, service: string): void {
  const client = clientAddress(s)
  const svc = env.ctx.services().find((x) => x.name === service)
  const ic = svc?.config['intercept.v1'] as
    | { addresses?: unknown; portRanges?: Array<{ low: number }> }
    | undefined
  const firstAddr = Array.isArray(ic?.addresses)
    ? ic.addresses.find((a) => typeof a === 'string' && !a.includes('*') && !a.includes('/'))
    : undefined
  const host = typeof firstAddr === 'string' ? firstAddr : service
  const port = ic?.portRanges?.[0]?.low ?? s.localPort ?? 0
  dialService(env, service, host, port, s, undefined).then(
    (overlay) => {
      if (s.destroyed) {
        overlay.destroy()
        return
      }
      const rec = env.connections.track('proxy', service, client, service, s, overlay)
      splice(s, overlay, rec, env.connections, env.log)
    },
    (err: Error) => {
      const code = dialErrorCode(err)
      env.connections.refuse(
        code,
        { listener: `proxy:${service}`, client, service, reason: err.message },
        'local port dial failed',
      )
      s.resetAndDestroy()
    },
  )
}
