import { once } from 'node:events'
import type { Server as HttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { type ClientService, formatHostPort } from '@nullport/protocol'
import type { Context } from '@nullport/sdk'
import { ConnectionTable } from './connections.js'
import { DnsServer, FakeIpPool } from './dns.js'
import { TunnelError } from './errors.js'
import { clientAddress, type FrontendEnv, type Route } from './frontends/env.js'
import { handleHttpProxyConnection } from './frontends/http-proxy.js'
import { handleLocalPortConnection } from './frontends/local-port.js'
import { handleSocksConnection } from './frontends/socks.js'
import { Hosting } from './hosting.js'
import { InterceptTable } from './intercept.js'
import { cidrContains, parseIp } from './ip.js'
import { silentTunnelLogger, type TunnelLogger } from './log.js'
import {
  type ListenAddress,
  type ResolvedTunnelOptions,
  resolveTunnelOptions,
  type TunnelOptions,
} from './options.js'
import { startStatusServer, statusDocument } from './status.js'

/**
 * The tunneler: intercepts (SOCKS5, HTTP proxy, local ports, DNS) the services its identity may
 * Dial that have intercept.v1, and hosts (ctx.listen -> underlay TCP) those it may Bind that
 * have host.v1. Follows the SDK's pushed service changes without restart. Every byte path is a
 * pair of stream pipes with backpressure (splice.ts): memory per connection is bounded by the
 * stream high-water marks and the circuit window.
 *
 * It owns the listeners, the intercept table and the fake DNS pool; the frontends
 * (frontends/*.ts) serve client connections through a FrontendEnv, hosting.ts the Bind side,
 * connections.ts the open connections and refusal counts, status.ts the status document.
 */
export class Tunneler {
  private readonly log: TunnelLogger
  private readonly opts: ResolvedTunnelOptions
  private table = new InterceptTable([])
  readonly pool: FakeIpPool
  private readonly servers: Array<{ name: string; server: Server }> = []
  private dns: DnsServer | null = null
  private statusServer: HttpServer | null = null
  private readonly conns: ConnectionTable
  private readonly hosting: Hosting
  private readonly env: FrontendEnv
  private readonly addresses: Record<string, string> = {}
  private closed = false
  private readonly onServices = (list: ClientService[]): void => this.apply(list)

  constructor(
    private readonly ctx: Context,
    opts: TunnelOptions = {},
  ) {
    this.log = opts.logger ?? silentTunnelLogger
    this.opts = resolveTunnelOptions(opts)
    try {
      this.pool = new FakeIpPool(opts.dnsRange ?? '100.64.0.0/10')
    } catch (err) {
      throw new TunnelError('ERR_TUNNEL_OPTION', `option dnsRange (--dns-range): ${(err as Error).message}`)
    }
    this.conns = new ConnectionTable(this.log)
    this.hosting = new Hosting(ctx, this.conns, this.log)
    this.env = {
      ctx,
      log: this.log,
      options: this.opts,
      connections: this.conns,
      route: (host, port) => this.route(host, port),
    }
  }

  /** Opens the listeners and starts hosting. Resolves with the bound addresses (`name -> host:port`). */
  async start(): Promise<Record<string, string>> {
    this.apply(this.ctx.services())
    this.ctx.on('services', this.onServices)
    const env = this.env
    try {
      if (this.opts.socks)
        await this.listenTcp('socks', this.opts.socks, (s) => handleSocksConnection(env, s))
      if (this.opts.httpProxy)
        await this.listenTcp('http', this.opts.httpProxy, (s) => handleHttpProxyConnection(env, s))
      for (const p of this.opts.proxies ?? []) {
        await this.listenTcp(`proxy:${p.service}`, { host: p.host ?? '127.0.0.1', port: p.port }, (s) =>
          handleLocalPortConnection(env, s, p.service),
        )
      }
      if (this.opts.dns) await this.startDns(this.opts.dns)
      if (this.opts.status) {
        const { server, address } = await startStatusServer(this.opts.status, () => this.status())
        this.addresses.status = address
        this.statusServer = server
        this.log.info({ listener: 'status', address }, 'status listening')
      }
    } catch (err) {
      await this.close()
      throw err
    }
    this.log.info({ addresses: this.addresses, identity: this.ctx.identity.name }, 'tunnel ready')
    return { ...this.addresses }
  }

  private async listenTcp(name: string, a: ListenAddress, onConn: (s: Socket) => void): Promise<void> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) => {
      s.on('error', (err) =>
        this.log.debug({ err, client: clientAddress(s), listener: name }, 'client socket error'),
      )
      try {
        onConn(s)
      } catch (err) {
        this.log.error({ err, listener: name }, 'connection handler failed')
        s.destroy()
      }
    })
    server.maxConnections = this.opts.maxConnections
    server.on('drop', (d) =>
      this.conns.refuse(
        'ERR_TOO_MANY_CONNECTIONS',
        { listener: name, client: `${d?.remoteAddress}:${d?.remotePort}` },
        `${name}: maxConnections reached, connection dropped`,
      ),
    )
    try {
      server.listen(a.port, a.host)
      await once(server, 'listening')
    } catch (err) {
      throw new TunnelError(
        'ERR_TUNNEL_LISTEN',
        `cannot listen for ${name} on ${a.host}:${a.port}: ${(err as Error).message} (choose another address or port)`,
        { listener: name },
        { cause: err },
      )
    }
    server.on('error', (err) => this.log.error({ err, listener: name }, 'listener error'))
    const bound = server.address()
    const text =
      typeof bound === 'object' && bound ? formatHostPort(bound.address, bound.port) : String(bound)
    this.addresses[name] = text
    this.servers.push({ name, server })
    this.log.info({ listener: name, address: text }, `${name} listening`)
  }

  private async startDns(a: ListenAddress): Promise<void> {
    this.dns = new DnsServer(
      { ...a, ...(this.opts.dnsUpstream ? { upstream: this.opts.dnsUpstream } : {}) },
      (n) => this.table.interceptsName(n),
      this.pool,
      this.log.child({ component: 'dns' }),
    )
    try {
      const bound = await this.dns.start()
      this.addresses.dns = `${bound.host}:${bound.port}`
    } catch (err) {
      throw new TunnelError(
        'ERR_TUNNEL_LISTEN',
        `cannot listen for DNS on ${a.host}:${a.port}: ${(err as Error).message} (choose another --dns address)`,
        {},
        { cause: err },
      )
    }
  }

  /** Bound addresses by listener name (`socks`, `http`, `dns`, `proxy:SERVICE`, `status`). */
  get boundAddresses(): Record<string, string> {
    return { ...this.addresses }
  }

  /** A new service list: rebuilds the intercept table and reconciles hosting. */
  private apply(list: ClientService[]): void {
    if (this.closed) return
    const before = new Set(this.table.rules.map((r) => r.service))
    this.table = InterceptTable.fromServices(list)
    const after = new Set(this.table.rules.map((r) => r.service))
    for (const r of this.table.rules) {
      if (r.invalid.length > 0)
        this.log.warn({ service: r.service, invalid: r.invalid }, 'intercept.v1 addresses ignored (invalid)')
    }
    const added = [...after].filter((s) => !before.has(s))
    const removed = [...before].filter((s) => !after.has(s))
    if (added.length > 0 || removed.length > 0)
      this.log.info({ added, removed }, 'intercepted services changed')
    if (this.opts.host) this.hosting.reconcile(list)
  }

  /** Resolves a destination: fake DNS addresses back to their names, then the intercept table. */
  private route(host: string, port: number): Route {
    let name = host
    const ip = parseIp(host)
    if (ip && ip.length === 4 && cidrContains(this.pool.range, ip)) {
      const n = this.pool.nameOf(host)
      if (n) name = n
    }
    return { match: this.table.match(name, port, 'tcp'), name }
  }

  /** The status document (what `nullport tunnel status` prints). */
  status(): Record<string, unknown> {
    return statusDocument({
      identity: this.ctx.identity,
      listeners: this.addresses,
      intercept: this.table,
      hosted: this.hosting.services(),
      connections: this.conns,
      dns: this.dns,
      pool: this.pool,
    })
  }

  /** Stops listening, closes hosted services and every connection. Does not close the context. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.ctx.off('services', this.onServices)
    for (const { server } of this.servers) server.close()
    this.hosting.close()
    this.conns.destroyAll()
    await this.dns?.close()
    this.statusServer?.close()
    this.statusServer?.closeAllConnections()
    this.log.info({}, 'tunnel closed')
  }
}
