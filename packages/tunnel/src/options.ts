import { TunnelError } from './errors.js'
import type { TunnelLogger } from './log.js'

/** `host:port` to listen on. */
export interface ListenAddress {
  host: string
  port: number
}

/** Options of a Tunneler. Every listener is off unless given. */
export interface TunnelOptions {
  /** SOCKS5 listener (no-auth, CONNECT). */
  socks?: ListenAddress
  /** HTTP proxy listener (CONNECT and absolute-URI requests). */
  httpProxy?: ListenAddress
  /** DNS server (UDP and TCP) answering intercepted names from `dnsRange`. */
  dns?: ListenAddress
  /** Upstream resolver for names that are not intercepted; default none (REFUSED). */
  dnsUpstream?: ListenAddress
  /** Reserved range for DNS answers. Default 100.64.0.0/10. */
  dnsRange?: string
  /** Local ports: each connection to host:port dials the service. */
  proxies?: Array<{ service: string; host?: string; port: number }>
  /** JSON status over HTTP. */
  status?: ListenAddress
  /** Host the services this identity may Bind that have a host.v1 config. Default true. */
  host?: boolean
  /** Most concurrent client connections per listener. Default 1024. */
  maxConnections?: number
  /** SOCKS/HTTP handshake must complete within this many ms. Default 10000. */
  handshakeTimeoutMs?: number
  /** Most bytes of an HTTP proxy request head. Default 16384. */
  maxHeaderBytes?: number
  /** Overlay dial timeout, ms (intercept.v1 dialOptions.connectTimeoutSeconds wins). Default 15000. */
  dialTimeoutMs?: number
  /** An HTTP proxy connection (not CONNECT) idle this long, in ms, is closed. Default 300000. */
  httpIdleTimeoutMs?: number
  logger?: TunnelLogger
}

/** TunnelOptions with every default filled in. */
export type ResolvedTunnelOptions = Required<
  Pick<
    TunnelOptions,
    | 'maxConnections'
    | 'handshakeTimeoutMs'
    | 'maxHeaderBytes'
    | 'dialTimeoutMs'
    | 'host'
    | 'httpIdleTimeoutMs'
  >
> &
  TunnelOptions

/** Fills in the defaults and checks the numeric limits once (the message names the option). */
export function resolveTunnelOptions(opts: TunnelOptions): ResolvedTunnelOptions {
  const resolved: ResolvedTunnelOptions = {
    ...opts,
    maxConnections: opts.maxConnections ?? 1024,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
    maxHeaderBytes: opts.maxHeaderBytes ?? 16_384,
    dialTimeoutMs: opts.dialTimeoutMs ?? 15_000,
    httpIdleTimeoutMs: opts.httpIdleTimeoutMs ?? 300_000,
    host: opts.host ?? true,
  }
  for (const [k, v] of Object.entries({
    maxConnections: resolved.maxConnections,
    handshakeTimeoutMs: resolved.handshakeTimeoutMs,
    maxHeaderBytes: resolved.maxHeaderBytes,
    dialTimeoutMs: resolved.dialTimeoutMs,
    httpIdleTimeoutMs: resolved.httpIdleTimeoutMs,
  })) {
    if (!Number.isInteger(v) || v <= 0)
      throw new TunnelError('ERR_TUNNEL_OPTION', `option ${k} must be a positive integer, got ${v}`)
  }
  return resolved
}
