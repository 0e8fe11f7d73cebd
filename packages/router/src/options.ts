/**
 * `startRouter()` options: the interface with its documented defaults, and their validation
 * (once, with messages naming the field): limits, addresses, the logger, and the router
 * identity the router starts from.
 */
import { X509Certificate } from 'node:crypto'
import {
  type Frame,
  formatHostPort,
  type HostPort,
  type IdentityFile,
  INITIAL_WINDOW,
  loadIdentityFile,
  spiffeIdFromSan,
} from '@nullport/protocol'
import pino, { type Logger } from 'pino'
import { parseHostPort } from './config.js'
import type { FabricClientOptions } from './control/fabric-client.js'
import { RouterError } from './errors.js'
import type { RenewOptions } from './renew.js'

/** One end of a forwarded frame, as test hooks see it. */
export interface ForwardEnd {
  kind: 'sdk' | 'router'
  /** Identity id or router id of the peer. */
  id: string
  name: string
  circuitId: number
}

/**
 * Programmatic test hooks. Never reachable from a config file or the CLI.
 */
export interface RouterTestHooks {
  /**
   * Called for every frame this router forwards on a circuit (DIAL, DIAL_SUCCESS, DIAL_FAILED, DATA,
   * HALF_CLOSE, WINDOW_UPDATE, CLOSE), with the circuit id already rewritten for `to`. Return the
   * frame to send (possibly modified), or null to drop it.
   */
  onForward?(frame: Frame, from: ForwardEnd, to: ForwardEnd): Frame | null
}

export interface StartRouterOptions {
  /** The router identity (object, or the path of the identity file written by `nullport router enroll`). */
  identity: IdentityFile | string
  /** `HOST:PORT` to listen on; port 0 lets the OS choose. Default `0.0.0.0:3022`. */
  listen?: string
  /** `HOST[:PORT]` to advertise; without a port (or port 0) the actual listen port. Default: the listen host (127.0.0.1 for 0.0.0.0). */
  advertise?: string
  /** Optional `HOST:PORT` for the Prometheus endpoint (`GET /metrics`). */
  metricsListen?: string
  /** A pino logger; default JSON to stdout at `logLevel`. */
  logger?: Logger
  /** Without `logger`: where the default logger writes its JSON lines (default stdout). */
  logDestination?: { write(line: string): void }
  /**
   * Automatic certificate renewal: once `fraction` (default 2/3) of the certificate's validity has
   * elapsed, the router gets a new certificate for a new key from the controller, switches to it
   * for new connections and, when started from an identity file path, rewrites that file. `false`
   * disables it (`renewCertificate()` still works). Default `{}`.
   */
  renew?: false | RenewOptions
  /** Default `info`. */
  logLevel?: string
  /** Most concurrent TLS connections accepted. Default 10000. */
  maxConnections?: number
  /** Most circuits per connection. Default 4096. */
  maxCircuitsPerConnection?: number
  /** Most binds per SDK connection. Default 256. */
  maxBindsPerConnection?: number
  /**
   * From TCP accept, the TLS handshake must finish within this (the socket is destroyed at it),
   * and then HELLO within this again (GOAWAY ERR_HANDSHAKE_TIMEOUT). Default 10000 ms.
   */
  handshakeTimeoutMs?: number
  /**
   * Connections one source address may hold before they finish TLS; more are
   * destroyed at accept (so one address cannot take `maxConnections`). Default 64.
   */
  maxPreAuthPerAddress?: number
  /** A dial without DIAL_SUCCESS/DIAL_FAILED within this fails with ERR_DIAL_TIMEOUT. Default 15000 ms. */
  dialTimeoutMs?: number
  /**
   * Bytes (payload + headers) of one circuit written toward a connection and not yet flushed by
   * its socket (counted per frame, released by the write callback) before the circuit is closed
   * with ERR_FLOW_CONTROL. Default 2 * INITIAL_WINDOW.
   */
  maxQueuedBytesPerCircuit?: number
  /** Link PING period. Default 5000 ms; a link missing 3 PONGs in a row is dropped. */
  linkPingIntervalMs?: number
  /**
   * SDK connections are PINGed this often; one that leaves PINGs unanswered for about six periods
   * is dropped (its circuits closed, its terminators deleted). Default 15000 ms.
   */
  sdkPingIntervalMs?: number
  /** Link latency is reported on change and at least this often. Default 30000 ms. */
  linkReportIntervalMs?: number
  /** Controller reconnect backoff (jittered, exponential). Defaults 250 ms .. 10000 ms. */
  reconnectBaseMs?: number
  reconnectMaxMs?: number
  /** Event stream idle limit (the controller pings). Default 60000 ms. */
  streamIdleTimeoutMs?: number
  /** SSE limits. Default 64 MiB each. */
  maxSseLineBytes?: number
  maxSseEventBytes?: number
  /** Circuit reports are batched over this period. Default 1000 ms. */
  circuitReportIntervalMs?: number
  /** Programmatic only. */
  testHooks?: RouterTestHooks
}

/** The validated limits and periods of one router (the option names, defaults applied). */
export interface RouterLimits {
  maxConnections: number
  maxCircuitsPerConnection: number
  maxBindsPerConnection: number
  handshakeTimeoutMs: number
  maxPreAuthPerAddress: number
  dialTimeoutMs: number
  maxQueuedBytesPerCircuit: number
  linkPingIntervalMs: number
  linkReportIntervalMs: number
  circuitReportIntervalMs: number
  sdkPingIntervalMs: number
}

/** Validates the limits (positive integers); throws ERR_ROUTER_CONFIG naming the option. */
export function resolveLimits(opts: StartRouterOptions): RouterLimits {
  const posInt = (v: number | undefined, d: number, field: string): number => {
    const x = v ?? d
    if (!Number.isInteger(x) || x <= 0)
      throw new RouterError(
        'ERR_ROUTER_CONFIG',
        `router option "${field}" must be a positive integer, got ${x}`,
        {
          field,
        },
      )
    return x
  }
  return {
    maxConnections: posInt(opts.maxConnections, 10_000, 'maxConnections'),
    maxCircuitsPerConnection: posInt(opts.maxCircuitsPerConnection, 4096, 'maxCircuitsPerConnection'),
    maxBindsPerConnection: posInt(opts.maxBindsPerConnection, 256, 'maxBindsPerConnection'),
    handshakeTimeoutMs: posInt(opts.handshakeTimeoutMs, 10_000, 'handshakeTimeoutMs'),
    maxPreAuthPerAddress: posInt(opts.maxPreAuthPerAddress, 64, 'maxPreAuthPerAddress'),
    dialTimeoutMs: posInt(opts.dialTimeoutMs, 15_000, 'dialTimeoutMs'),
    maxQueuedBytesPerCircuit: posInt(
      opts.maxQueuedBytesPerCircuit,
      2 * INITIAL_WINDOW,
      'maxQueuedBytesPerCircuit',
    ),
    linkPingIntervalMs: posInt(opts.linkPingIntervalMs, 5000, 'linkPingIntervalMs'),
    linkReportIntervalMs: posInt(opts.linkReportIntervalMs, 30_000, 'linkReportIntervalMs'),
    circuitReportIntervalMs: posInt(opts.circuitReportIntervalMs, 1000, 'circuitReportIntervalMs'),
    sdkPingIntervalMs: posInt(opts.sdkPingIntervalMs, 15_000, 'sdkPingIntervalMs'),
  }
}

/** The router's logger: `logger`, else pino JSON at `logLevel` to `logDestination` (default stdout). */
export function routerLogger(opts: StartRouterOptions, routerId: string): Logger {
  return (
    opts.logger ??
    (opts.logDestination
      ? pino({ level: opts.logLevel ?? 'info' }, opts.logDestination)
      : pino({ level: opts.logLevel ?? 'info' }))
  ).child({
    component: 'router',
    routerId,
  })
}

/** The fabric client's options from the router identity and options (defaults are the client's). */
export function fabricClientOptions(
  identity: IdentityFile,
  opts: StartRouterOptions,
  logger: Logger,
): FabricClientOptions {
  return {
    controller: identity.controller,
    certPem: identity.cert,
    keyPem: identity.key,
    caPem: identity.ca,
    logger,
    ...(opts.reconnectBaseMs !== undefined ? { reconnectBaseMs: opts.reconnectBaseMs } : {}),
    ...(opts.reconnectMaxMs !== undefined ? { reconnectMaxMs: opts.reconnectMaxMs } : {}),
    ...(opts.streamIdleTimeoutMs !== undefined ? { streamIdleTimeoutMs: opts.streamIdleTimeoutMs } : {}),
    ...(opts.maxSseLineBytes !== undefined ? { maxSseLineBytes: opts.maxSseLineBytes } : {}),
    ...(opts.maxSseEventBytes !== undefined ? { maxSseEventBytes: opts.maxSseEventBytes } : {}),
  }
}

/** `listen` (default `0.0.0.0:3022`); throws ERR_ROUTER_CONFIG. */
export function listenAddress(opts: StartRouterOptions): HostPort {
  return parseHostPort(opts.listen ?? '0.0.0.0:3022', 'listen', { allowPortZero: true })
}

/**
 * The `host:port` to advertise once the listener is bound to `port`: `advertise` (its port, or
 * the listen port when it has none or 0), else the listen host (127.0.0.1 for a wildcard).
 */
export function advertiseAddress(opts: StartRouterOptions, listen: HostPort, port: number): string {
  const adv = opts.advertise
    ? parseHostPort(opts.advertise, 'advertise', { portOptional: true, allowPortZero: true })
    : { host: listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host, port: 0 }
  return formatHostPort(adv.host, adv.port === 0 ? port : adv.port)
}

/** `metricsListen`, or null when the metrics endpoint is off; throws ERR_ROUTER_CONFIG. */
export function metricsListenAddress(opts: StartRouterOptions): HostPort | null {
  return opts.metricsListen
    ? parseHostPort(opts.metricsListen, 'metricsListen', { allowPortZero: true })
    : null
}

/**
 * The router identity of `identity` (an object or an identity file path), checked: a router
 * identity whose certificate parses, names `spiffe://<td>/router/<id>` and has not expired.
 * Throws ERR_ROUTER_IDENTITY with the fix.
 */
export async function loadRouterIdentity(identityOption: IdentityFile | string): Promise<IdentityFile> {
  let identity: IdentityFile
  try {
    identity = typeof identityOption === 'string' ? await loadIdentityFile(identityOption) : identityOption
  } catch (err) {
    const e = err as Error & { code?: string }
    if (e.code === 'ERR_IDENTITY_FILE_MISSING') {
      throw new RouterError(
        'ERR_ROUTER_IDENTITY',
        `router identity file ${String(identityOption)} cannot be read: enroll the router first with \`nullport router enroll ROUTER.jwt --advertise HOST:PORT -o router.json\``,
        { path: identityOption },
        { cause: err },
      )
    }
    throw err
  }
  if (identity.kind !== 'router') {
    throw new RouterError(
      'ERR_ROUTER_IDENTITY',
      `the identity file of ${identity.name} is a ${identity.kind} identity: enroll a router with \`nullport router enroll\``,
      {
        kind: identity.kind,
      },
    )
  }
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(identity.cert)
  } catch (err) {
    throw new RouterError(
      'ERR_ROUTER_IDENTITY',
      `the router certificate cannot be parsed: ${(err as Error).message}`,
      {},
      { cause: err },
    )
  }
  const s = spiffeIdFromSan(leaf.subjectAltName, identity.trustDomain)
  if (s?.kind !== 'router' || s.id !== identity.id) {
    throw new RouterError(
      'ERR_ROUTER_IDENTITY',
      `the router certificate does not name spiffe://${identity.trustDomain}/router/${identity.id}: re-enroll the router`,
      {},
    )
  }
  if (new Date(leaf.validTo).getTime() < Date.now()) {
    throw new RouterError(
      'ERR_ROUTER_IDENTITY',
      `the router certificate expired at ${leaf.validTo}: re-enroll the router (nullport edge re-enroll edge-router ${identity.name})`,
      {},
    )
  }
  return identity
}
