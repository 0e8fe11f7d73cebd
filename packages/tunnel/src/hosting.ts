/**
 * Hosting: the services this identity may Bind that have a host.v1 config are listened on
 * (ctx.listen); each incoming circuit gets its underlay TCP connection before it is accepted.
 */
import { connect as netConnect, type Socket } from 'node:net'
import type { ClientService, HostV1 } from '@nullport/protocol'
import type { Context, IncomingDial, OverlayServer, OverlaySocket } from '@nullport/sdk'
import type { ConnectionTable } from './connections.js'
import { TunnelError } from './errors.js'
import { hostConnectTimeoutMs, resolveHostTarget } from './host-target.js'
import type { TunnelLogger } from './log.js'
import { splice } from './splice.js'

/** One hosted service. */
export interface HostedService {
  service: string
  /** The host.v1 config as JSON: a changed config re-hosts the service. */
  key: string
  server: OverlayServer
  config: HostV1
  /** The last hosting failure (`CODE: message`), null while listening. */
  error: string | null
}

/** The hosted services by name, kept in line with the SDK's service list. */
export class Hosting {
  private readonly hosted = new Map<string, HostedService>()

  constructor(
    private readonly ctx: Context,
    private readonly conns: ConnectionTable,
    private readonly log: TunnelLogger,
  ) {}

  services(): IterableIterator<HostedService> {
    return this.hosted.values()
  }

  /** Hosts what `list` asks for: starts new services, re-hosts changed host.v1, stops the rest. */
  reconcile(list: ClientService[]): void {
    const want = new Map<string, { cfg: HostV1; key: string }>()
    for (const s of list) {
      if (!s.permissions.includes('Bind')) continue
      const cfg = s.config['host.v1']
      if (!cfg || typeof cfg !== 'object') continue
      want.set(s.name, { cfg: cfg as HostV1, key: JSON.stringify(cfg) })
    }
    for (const [name, h] of this.hosted) {
      const w = want.get(name)
      if (w && w.key === h.key) continue
      this.hosted.delete(name)
      this.log.info(
        { service: name },
        w ? 'host.v1 changed: re-hosting' : 'no longer hosting (Bind policy or host.v1 removed)',
      )
      void h.server.close()
    }
    for (const [name, w] of want) {
      if (this.hosted.has(name)) continue
      this.host(name, w.cfg, w.key)
    }
  }

  private host(service: string, cfg: HostV1, key: string): void {
    const lo = cfg.listenOptions ?? {}
    const connectTimeout = hostConnectTimeoutMs(cfg)
    let server: OverlayServer
    try {
      server = this.ctx.listen(service, {
        ...(lo.cost !== undefined ? { cost: lo.cost } : {}),
        ...(lo.precedence !== undefined ? { precedence: lo.precedence } : {}),
        ...(lo.maxConnections !== undefined ? { maxConnections: lo.maxConnections } : {}),
        allowHalfOpen: true,
        admit: (dial: IncomingDial) => this.admit(service, cfg, dial, connectTimeout),
      })
    } catch (err) {
      this.log.error({ err, service }, 'cannot host service')
      return
    }
    const h: HostedService = { service, key, server, config: cfg, error: null }
    this.hosted.set(service, h)
    server.on('listening', () => {
      h.error = null
      this.log.info({ service, terminators: server.address().terminators.length }, 'hosting service')
    })
    server.on('error', (err: Error & { code?: string }) => {
      h.error = `${err.code ?? 'ERR'}: ${err.message}`
      this.log.warn({ err, code: err.code, service }, 'hosting failed')
    })
    server.on('clientError', (err: Error & { code?: string }) =>
      this.conns.refuse(err.code ?? 'ERR_DIAL_FAILED', { service, err }, 'incoming dial refused'),
    )
    server.on('connection', (overlay: OverlaySocket, dial: IncomingDial, underlay: unknown) => {
      this.onHostConnection(service, overlay, dial, underlay as Socket)
    })
  }

  /** Opens the underlay connection for an incoming circuit before it is accepted. */
  private admit(service: string, cfg: HostV1, dial: IncomingDial, timeoutMs: number): Promise<Socket> {
    const t = resolveHostTarget(cfg, dial.appData)
    if (!t.ok) {
      this.conns.refuse(
        t.code,
        { service, dialer: dial.dialer.name, appData: dial.appData, reason: t.reason },
        'hosted dial refused',
      )
      return Promise.reject(
        new TunnelError(t.code, `${t.reason} (service ${service}, dialer ${dial.dialer.name})`),
      )
    }
    return new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ host: t.address, port: t.port, allowHalfOpen: true, noDelay: true })
      const timer = setTimeout(() => {
        s.destroy()
        this.conns.refuse(
          'ERR_UNDERLAY_TIMEOUT',
          { service, target: `${t.address}:${t.port}`, timeoutMs },
          'underlay connect timed out',
        )
        reject(
          new TunnelError(
            'ERR_UNDERLAY_TIMEOUT',
            `the host of ${service} could not reach ${t.address}:${t.port} within ${timeoutMs} ms`,
          ),
        )
      }, timeoutMs)
      s.once('connect', () => {
        clearTimeout(timer)
        s.removeAllListeners('error')
        s.on('error', (err) => this.log.debug({ err, service }, 'underlay socket error'))
        s.pause()
        resolve(s)
      })
      s.once('error', (err: Error & { code?: string }) => {
        clearTimeout(timer)
        s.destroy()
        this.conns.refuse(
          'ERR_UNDERLAY_UNREACHABLE',
          { service, target: `${t.address}:${t.port}`, cause: err.code ?? err.message },
          'underlay unreachable',
        )
        reject(
          new TunnelError(
            'ERR_UNDERLAY_UNREACHABLE',
            `the host of ${service} cannot reach ${t.address}:${t.port} (${err.code ?? err.message}): start the server there or fix host.v1`,
          ),
        )
      })
    })
  }

  private onHostConnection(
    service: string,
    overlay: OverlaySocket,
    dial: IncomingDial,
    underlay: Socket,
  ): void {
    const rec = this.conns.track(
      'host',
      service,
      `${dial.dialer.name} (${dial.circuitTag.slice(0, 8)})`,
      `${underlay.remoteAddress}:${underlay.remotePort}`,
      underlay,
      overlay,
    )
    splice(underlay, overlay, rec, this.conns, this.log)
  }

  /** Stops hosting every service (their circuits close with their servers). */
  close(): void {
    for (const h of this.hosted.values()) void h.server.close()
    this.hosted.clear()
  }
}
