/**
 * What the Tunneler hands each frontend (SOCKS5, HTTP proxy, local ports): one object shared by
 * all client connections of all listeners.
 */
import type { Socket } from 'node:net'
import type { Context, OverlaySocket } from '@nullport/sdk'
import type { ConnectionTable } from '../connections.js'
import type { InterceptMatch } from '../intercept.js'
import type { TunnelLogger } from '../log.js'
import type { ResolvedTunnelOptions } from '../options.js'

/** A destination after fake DNS addresses were mapped back to names, matched against the intercept table. */
export interface Route {
  match: InterceptMatch
  /** The host name (or IP) the destination stands for. */
  name: string
}

export interface FrontendEnv {
  readonly ctx: Context
  readonly log: TunnelLogger
  readonly options: ResolvedTunnelOptions
  readonly connections: ConnectionTable
  /** Resolves a destination: fake DNS addresses back to their names, then the intercept table. */
  route(host: string, port: number): Route
}

/** `address:port` of a client socket, for logs and appData. */
export function clientAddress(s: Socket): string {
  return `${s.remoteAddress ?? '?'}:${s.remotePort ?? 0}`
}

/**
 * Dials `service` for a client of `host:port`, telling the host where the client wanted to go
 * (appData, for host.v1 forward* options). intercept.v1's connectTimeoutSeconds wins over the
 * tunneler's dialTimeoutMs.
 */
export function dialService(
  env: FrontendEnv,
  service: string,
  host: string,
  port: number,
  client: Socket,
  timeoutSeconds: number | undefined,
): Promise<OverlaySocket> {
  return env.ctx.dial(service, {
    appData: { protocol: 'tcp', address: host, port, sourceAddress: clientAddress(client) },
    timeoutMs: timeoutSeconds ? timeoutSeconds * 1000 : env.options.dialTimeoutMs,
    allowHalfOpen: true,
  })
}
