import { once } from 'node:events'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ClientService, HostV1 } from '@nullport/protocol'
import type { Context, IncomingDial, OverlayServer, OverlaySocket } from '@nullport/sdk'
import { DnsServer, FakeIpPool } from './dns.js'
import { TunnelError } from './errors.js'
import { hostConnectTimeoutMs, resolveHostTarget } from './host.js'
import {
  BodyFramer,
  type BodyKind,
  forwardHead,
  headerValues,
  httpResponse,
  parseHttpRequestHead,
  proxyTarget,
  requestBodyKind,
} from './http-parser.js'
import { type InterceptMatch, InterceptTable } from './intercept.js'
import { cidrContains, parseIp } from './ip.js'
import { silentTunnelLogger, type TunnelLogger } from './log.js'
import {
  parseSocksGreeting,
  parseSocksRequest,
  SOCKS_MAX_HANDSHAKE,
  SOCKS_NO_ACCEPTABLE,
  SOCKS_NO_AUTH,
  SocksCommand,
  SocksReply,
  type SocksReplyCode,
  socksReply,
} from './socks.js'

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

/** One open connection, for the status endpoint. */
interface ConnRecord {
  id: number
  kind: 'socks' | 'http' | 'proxy' | 'host'
  service: string
  client: string
  target: string
  startedAt: string
  /** The local TCP side (client on the intercept side, underlay on the host side). */
  tcp: Socket
  overlay: OverlaySocket | null
}

interface HostedService {
  service: string
  key: string
  server: OverlayServer
  config: HostV1
  error: string | null
}

const POLICY_CODES = new Set([
  'ERR_SERVICE_NOT_FOUND',
  'ERR_NO_DIAL_PERMISSION',
  'ERR_IDENTITY_NOT_FOUND',
  'ERR_IDENTITY_DISABLED',
  'ERR_IDENTITY_REVOKED',
  'ERR_NO_EDGE_ROUTER_POLICY',
  'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
  'ERR_REVOKED',
  'ERR_CERT_REVOKED',
  'ERR_HOST_TARGET_NOT_ALLOWED',
])
const UNREACHABLE_CODES = new Set([
  'ERR_NO_TERMINATORS',
  'ERR_SERVICE_NOT_LISTENING',
  'ERR_NO_EDGE_ROUTERS',
  'ERR_NO_ROUTE',
  'ERR_DIAL_TIMEOUT',
  'ERR_ROUTER_UNREACHABLE',
  'ERR_ROUTER_CONNECTION_LOST',
  'ERR_UNDERLAY_TIMEOUT',
  'ERR_MAX_CONNECTIONS',
  'ERR_TERMINATOR_AT_CAPACITY',
  'ERR_PEER_GONE',
])

/** The code that explains a dial failure: a peer's own code (carried in details.remoteCode) wins. */
export function dialErrorCode(err: unknown): string {
  const e = err as { code?: unknown; details?: { remoteCode?: unknown } } | null
  const remote = e?.details?.remoteCode
  if (typeof remote === 'string' && remote.length > 0) return remote
  return typeof e?.code === 'string' ? e.code : 'ERR_DIAL_FAILED'
}

/** SOCKS reply and HTTP status for a dial failure code. */
export function classifyDialError(code: string): {
  socks: SocksReplyCode
  http: 403 | 502 | 504
  kind: string
} {
  if (POLICY_CODES.has(code)) return { socks: SocksReply.NOT_ALLOWED, http: 403, kind: 'refused by policy' }
  if (code === 'ERR_UNDERLAY_UNREACHABLE')
    return {
      socks: SocksReply.CONNECTION_REFUSED,
      http: 502,
      kind: 'the server behind the service refused the connection',
    }
  if (code === 'ERR_DIAL_TIMEOUT' || code === 'ERR_UNDERLAY_TIMEOUT')
    return { socks: SocksReply.HOST_UNREACHABLE, http: 504, kind: 'timed out' }
  if (UNREACHABLE_CODES.has(code))
    return { socks: SocksReply.HOST_UNREACHABLE, http: 502, kind: 'the service is unreachable' }
  return { socks: SocksReply.GENERAL_FAILURE, http: 502, kind: 'the dial failed' }
}

function addr(s: Socket): string {
  return `${s.remoteAddress ?? '?'}:${s.remotePort ?? 0}`
}

/**
 * The tunneler: intercepts (SOCKS5, HTTP proxy, local ports, DNS) the services its identity may
 * Dial that have intercept.v1, and hosts (ctx.listen -> underlay TCP) those it may Bind that
 * have host.v1. Follows the SDK's pushed service changes without restart. Every byte path is a
 * pair of stream pipes with backpressure: memory per connection is bounded by the stream
 * high-water marks and the circuit window.
 */
export class Tunneler {
  private readonly log: TunnelLogger
  private readonly opts: Required<
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
  private table = new InterceptTable([])
  readonly pool: FakeIpPool
  private readonly servers: Array<{ name: string; server: Server }> = []
  private dns: DnsServer | null = null
  private statusServer: HttpServer | null = null
  private readonly conns = new Map<number, ConnRecord>()
  private nextConnId = 1
  private readonly hosted = new Map<string, HostedService>()
  private readonly refusals = new Map<string, number>()
  private readonly addresses: Record<string, string> = {}
  private closed = false
  private readonly onServices = (list: ClientService[]): void => this.apply(list)

  constructor(
    private readonly ctx: Context,
    opts: TunnelOptions = {},
  ) {
    this.log = opts.logger ?? silentTunnelLogger
    this.opts = {
      ...opts,
      maxConnections: opts.maxConnections ?? 1024,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
      maxHeaderBytes: opts.maxHeaderBytes ?? 16_384,
      dialTimeoutMs: opts.dialTimeoutMs ?? 15_000,
      httpIdleTimeoutMs: opts.httpIdleTimeoutMs ?? 300_000,
      host: opts.host ?? true,
    }
    for (const [k, v] of Object.entries({
      maxConnections: this.opts.maxConnections,
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
      maxHeaderBytes: this.opts.maxHeaderBytes,
      dialTimeoutMs: this.opts.dialTimeoutMs,
      httpIdleTimeoutMs: this.opts.httpIdleTimeoutMs,
    })) {
      if (!Number.isInteger(v) || v <= 0)
        throw new TunnelError('ERR_TUNNEL_OPTION', `option ${k} must be a positive integer, got ${v}`)
    }
    try {
      this.pool = new FakeIpPool(opts.dnsRange ?? '100.64.0.0/10')
    } catch (err) {
      throw new TunnelError('ERR_TUNNEL_OPTION', `option dnsRange (--dns-range): ${(err as Error).message}`)
    }
  }

  /** Opens the listeners and starts hosting. Resolves with the bound addresses (`name -> host:port`). */
  async start(): Promise<Record<string, string>> {
    this.apply(this.ctx.services())
    this.ctx.on('services', this.onServices)
    try {
      if (this.opts.socks) await this.listenTcp('socks', this.opts.socks, (s) => this.onSocks(s))
      if (this.opts.httpProxy) await this.listenTcp('http', this.opts.httpProxy, (s) => this.onHttp(s))
      for (const p of this.opts.proxies ?? []) {
        await this.listenTcp(`proxy:${p.service}`, { host: p.host ?? '127.0.0.1', port: p.port }, (s) =>
          this.onLocalPort(s, p.service),
        )
      }
      if (this.opts.dns) {
        this.dns = new DnsServer(
          { ...this.opts.dns, ...(this.opts.dnsUpstream ? { upstream: this.opts.dnsUpstream } : {}) },
          (n) => this.table.interceptsName(n),
          this.pool,
          this.log.child({ component: 'dns' }),
        )
        try {
          const a = await this.dns.start()
          this.addresses.dns = `${a.host}:${a.port}`
        } catch (err) {
          throw new TunnelError(
            'ERR_TUNNEL_LISTEN',
            `cannot listen for DNS on ${this.opts.dns.host}:${this.opts.dns.port}: ${(err as Error).message} (choose another --dns address)`,
            {},
            { cause: err },
          )
        }
      }
      if (this.opts.status) await this.startStatus(this.opts.status)
    } catch (err) {
      await this.close()
      throw err
    }
    this.log.info({ addresses: this.addresses, identity: this.ctx.identity.name }, 'tunnel ready')
    return { ...this.addresses }
  }

  private async listenTcp(name: string, a: ListenAddress, onConn: (s: Socket) => void): Promise<void> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) => {
      s.on('error', (err) => this.log.debug({ err, client: addr(s), listener: name }, 'client socket error'))
      try {
        onConn(s)
      } catch (err) {
        this.log.error({ err, listener: name }, 'connection handler failed')
        s.destroy()
      }
    })
    server.maxConnections = this.opts.maxConnections
    server.on('drop', (d) =>
      this.refuse(
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
      typeof bound === 'object' && bound
        ? `${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`
        : String(bound)
    this.addresses[name] = text
    this.servers.push({ name, server })
    this.log.info({ listener: name, address: text }, `${name} listening`)
  }

  /** Bound addresses by listener name (`socks`, `http`, `dns`, `proxy:SERVICE`, `status`). */
  get boundAddresses(): Record<string, string> {
    return { ...this.addresses }
  }

  // ---------------------------------------------------------------------------------------------
  // service changes

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
    if (this.opts.host) this.reconcileHosting(list)
  }

  private reconcileHosting(list: ClientService[]): void {
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
      this.refuse(err.code ?? 'ERR_DIAL_FAILED', { service, err }, 'incoming dial refused'),
    )
    server.on('connection', (overlay: OverlaySocket, dial: IncomingDial, underlay: unknown) => {
      this.onHostConnection(service, overlay, dial, underlay as Socket)
    })
  }

  /** Opens the underlay connection for an incoming circuit before it is accepted. */
  private admit(service: string, cfg: HostV1, dial: IncomingDial, timeoutMs: number): Promise<Socket> {
    const t = resolveHostTarget(cfg, dial.appData)
    if (!t.ok) {
      this.refuse(
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
        this.refuse(
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
        this.refuse(
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
    const rec = this.track(
      'host',
      service,
      `${dial.dialer.name} (${dial.circuitTag.slice(0, 8)})`,
      `${underlay.remoteAddress}:${underlay.remotePort}`,
      underlay,
      overlay,
    )
    this.splice(underlay, overlay, rec)
  }

  // ---------------------------------------------------------------------------------------------
  // plumbing

  private track(
    kind: ConnRecord['kind'],
    service: string,
    client: string,
    target: string,
    tcp: Socket,
    overlay: OverlaySocket | null,
  ): ConnRecord {
    const rec: ConnRecord = {
      id: this.nextConnId++,
      kind,
      service,
      client,
      target,
      startedAt: new Date().toISOString(),
      tcp,
      overlay,
    }
    this.conns.set(rec.id, rec)
    return rec
  }

  /**
   * Joins a TCP socket and a circuit both ways with stream pipes: each direction follows the
   * reader's pace (pipe pauses the source when the destination's write() returns false), ends
   * propagate as half-closes, an error on either side destroys both.
   */
  private splice(tcp: Socket, overlay: Duplex, rec: ConnRecord): void {
    let done = false
    const finish = (err?: Error | null): void => {
      if (done) return
      done = true
      this.conns.delete(rec.id)
      if (err) {
        tcp.destroy()
        overlay.destroy()
      }
    }
    tcp.on('error', (err) => {
      this.log.debug({ err, service: rec.service, conn: rec.id }, 'tcp side error')
      overlay.destroy()
      finish(err)
    })
    overlay.on('error', (err: Error & { code?: string }) => {
      this.log.debug({ err, code: err.code, service: rec.service, conn: rec.id }, 'overlay side error')
      tcp.destroy()
      finish(err)
    })
    let closes = 0
    const onClose = (): void => {
      if (++closes === 2) finish()
    }
    // One side is gone. If the other still has bytes for it, nobody will read them: drop that
    // side too (a bounded window, never a leak). Otherwise just finish its write side.
    const settle = (other: Duplex): void => {
      if (other.destroyed) return
      if (!other.readableEnded) other.destroy()
      else if (!other.writableEnded) other.end()
    }
    tcp.once('close', () => {
      settle(overlay)
      onClose()
    })
    overlay.once('close', () => {
      settle(tcp)
      onClose()
    })
    tcp.pipe(overlay)
    overlay.pipe(tcp)
    tcp.resume()
  }

  private refuse(code: string, fields: Record<string, unknown>, msg: string): void {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1)
    this.log.warn({ code, ...fields }, msg)
  }

  /** Resolves a destination: fake DNS addresses back to their names, then the intercept table. */
  private resolve(host: string, port: number): { match: InterceptMatch; name: string } {
    let name = host
    const ip = parseIp(host)
    if (ip && ip.length === 4 && cidrContains(this.pool.range, ip)) {
      const n = this.pool.nameOf(host)
      if (n) name = n
    }
    return { match: this.table.match(name, port, 'tcp'), name }
  }

  private refusalText(
    name: string,
    port: number,
    m: Extract<InterceptMatch, { ok: false }>,
  ): { code: string; text: string } {
    const me = this.ctx.identity.name
    if (m.reason === 'port') {
      return {
        code: 'ERR_PORT_NOT_INTERCEPTED',
        text: `${name}:${port} is not intercepted: service(s) ${m.services.join(', ')} intercept ${name}, but not port ${port}/tcp. Fix: use an intercepted port, or add it to the portRanges of their intercept.v1 config.`,
      }
    }
    return {
      code: 'ERR_NO_INTERCEPT',
      text: `${name}:${port} is not intercepted for identity ${me}: no service it may Dial has an intercept.v1 address matching ${name}. Fix: create a service with an intercept.v1 config for ${name} and a Dial policy for ${me} (\`nullport edge policy-advisor identities ${me} SERVICE\` explains access).`,
    }
  }

  private async dialFor(
    service: string,
    host: string,
    port: number,
    client: Socket,
    timeoutSeconds: number | undefined,
  ): Promise<OverlaySocket> {
    return this.ctx.dial(service, {
      appData: { protocol: 'tcp', address: host, port, sourceAddress: addr(client) },
      timeoutMs: timeoutSeconds ? timeoutSeconds * 1000 : this.opts.dialTimeoutMs,
      allowHalfOpen: true,
    })
  }

  // ---------------------------------------------------------------------------------------------
  // SOCKS5

  private onSocks(s: Socket): void {
    const client = addr(s)
    let buf: Buffer = Buffer.alloc(0)
    let stage: 'greeting' | 'request' | 'dialing' = 'greeting'
    const timer = setTimeout(() => {
      this.refuse('ERR_MALFORMED_REQUEST', { listener: 'socks', client }, 'socks handshake timed out')
      s.destroy()
    }, this.opts.handshakeTimeoutMs)
    const stop = (): void => {
      clearTimeout(timer)
      s.off('data', onData)
      s.pause()
    }
    const replyAndClose = (code: SocksReplyCode): void => {
      stop()
      s.end(socksReply(code))
    }
    const onData = (d: Buffer): void => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d])
      if (buf.length > SOCKS_MAX_HANDSHAKE) {
        this.refuse('ERR_MALFORMED_REQUEST', { listener: 'socks', client }, 'socks handshake too long')
        stop()
        s.destroy()
        return
      }
      if (stage === 'greeting') {
        const g = parseSocksGreeting(buf)
        if (g.status === 'incomplete') return
        if (g.status === 'error') {
          this.refuse(
            'ERR_MALFORMED_REQUEST',
            { listener: 'socks', client, reason: g.reason },
            'malformed socks greeting',
          )
          stop()
          s.destroy()
          return
        }
        if (!g.methods.includes(SOCKS_NO_AUTH)) {
          this.refuse(
            'ERR_UNSUPPORTED',
            { listener: 'socks', client, methods: g.methods },
            'socks client offers no supported auth method (only no-auth)',
          )
          stop()
          s.end(Buffer.from([5, SOCKS_NO_ACCEPTABLE]))
          return
        }
        s.write(Buffer.from([5, SOCKS_NO_AUTH]))
        buf = buf.subarray(g.length)
        stage = 'request'
      }
      if (stage === 'request') {
        const r = parseSocksRequest(buf)
        if (r.status === 'incomplete') return
        if (r.status === 'error') {
          this.refuse(
            'ERR_MALFORMED_REQUEST',
            { listener: 'socks', client, reason: r.reason },
            'malformed socks request',
          )
          if (r.reply !== undefined) replyAndClose(r.reply)
          else {
            stop()
            s.destroy()
          }
          return
        }
        if (r.command !== SocksCommand.CONNECT) {
          this.refuse(
            'ERR_UNSUPPORTED',
            { listener: 'socks', client, command: r.command },
            'socks command not supported (CONNECT only)',
          )
          replyAndClose(SocksReply.COMMAND_NOT_SUPPORTED)
          return
        }
        stage = 'dialing'
        stop()
        const rest = buf.subarray(r.length)
        if (rest.length > 0) s.unshift(rest)
        void this.socksConnect(s, client, r.host, r.port)
      }
    }
    s.on('data', onData)
    s.resume()
  }

  private async socksConnect(s: Socket, client: string, host: string, port: number): Promise<void> {
    const { match, name } = this.resolve(host, port)
    if (!match.ok) {
      const { code, text } = this.refusalText(name, port, match)
      this.refuse(code, { listener: 'socks', client, host: name, port }, text)
      s.end(socksReply(SocksReply.NOT_ALLOWED))
      return
    }
    let overlay: OverlaySocket
    try {
      overlay = await this.dialFor(match.service, name, port, s, match.rule.dialOptions.connectTimeoutSeconds)
    } catch (err) {
      const code = dialErrorCode(err)
      const c = classifyDialError(code)
      this.refuse(
        code,
        {
          listener: 'socks',
          client,
          host: name,
          port,
          service: match.service,
          reply: c.socks,
          reason: (err as Error).message,
        },
        `socks dial failed: ${c.kind}`,
      )
      if (!s.destroyed) s.end(socksReply(c.socks))
      return
    }
    if (s.destroyed) {
      overlay.destroy()
      return
    }
    s.write(socksReply(SocksReply.SUCCEEDED))
    const rec = this.track('socks', match.service, client, `${name}:${port}`, s, overlay)
    this.log.debug({ conn: rec.id, service: match.service, client, target: rec.target }, 'socks connected')
    this.splice(s, overlay, rec)
  }

  // ---------------------------------------------------------------------------------------------
  // local ports

  private onLocalPort(s: Socket, service: string): void {
    const client = addr(s)
    const svc = this.ctx.services().find((x) => x.name === service)
    const ic = svc?.config['intercept.v1'] as
      | { addresses?: unknown; portRanges?: Array<{ low: number }> }
      | undefined
    const firstAddr = Array.isArray(ic?.addresses)
      ? ic.addresses.find((a) => typeof a === 'string' && !a.includes('*') && !a.includes('/'))
      : undefined
    const host = typeof firstAddr === 'string' ? firstAddr : service
    const port = ic?.portRanges?.[0]?.low ?? s.localPort ?? 0
    this.dialFor(service, host, port, s, undefined).then(
      (overlay) => {
        if (s.destroyed) {
          overlay.destroy()
          return
        }
        const rec = this.track('proxy', service, client, service, s, overlay)
        this.splice(s, overlay, rec)
      },
      (err: Error) => {
        const code = dialErrorCode(err)
        this.refuse(
          code,
          { listener: `proxy:${service}`, client, service, reason: err.message },
          'local port dial failed',
        )
        s.resetAndDestroy()
      },
    )
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP proxy

  private onHttp(s: Socket): void {
    const client = addr(s)
    const maxHead = this.opts.maxHeaderBytes
    let buf: Buffer = Buffer.alloc(0)
    let upstream: { key: string; overlay: OverlaySocket; rec: ConnRecord } | null = null
    let framer: BodyFramer | null = null
    let busy = false
    /** After CONNECT or an Upgrade: splice() owns both sockets. */
    let raw = false
    let timer: NodeJS.Timeout | null = setTimeout(() => {
      this.refuse('ERR_MALFORMED_REQUEST', { listener: 'http', client }, 'http proxy request head timed out')
      s.destroy()
    }, this.opts.handshakeTimeoutMs)
    const clearTimer = (): void => {
      if (timer) clearTimeout(timer)
      timer = null
    }
    const fail = (
      status: number,
      reason: string,
      body: string,
      code: string,
      fields: Record<string, unknown> = {},
    ): void => {
      this.refuse(code, { listener: 'http', client, status, ...fields }, body.split('\n')[0]!)
      clearTimer()
      s.off('data', onData)
      if (upstream) upstream.overlay.destroy()
      s.end(httpResponse(status, reason, `${body}\n`, { Connection: 'close', 'X-Nullport-Error': code }))
    }
    let waitingDrain = false
    const writeUp = (b: Buffer): void => {
      if (!upstream || b.length === 0) return
      if (!upstream.overlay.write(b) && !waitingDrain) {
        // the circuit is full: stop reading the client until it drains
        waitingDrain = true
        s.pause()
        upstream.overlay.once('drain', () => {
          waitingDrain = false
          if (!busy) s.resume()
        })
      }
    }
    const pump = (): void => {
      while (!busy && buf.length > 0) {
        if (framer) {
          const r = framer.consume(buf)
          if ('error' in r) {
            fail(400, 'Bad Request', `malformed request body: ${r.error}`, 'ERR_MALFORMED_REQUEST')
            return
          }
          writeUp(buf.subarray(0, r.used))
          buf = buf.subarray(r.used)
          if (framer.done) framer = null
          continue
        }
        const h = parseHttpRequestHead(buf, maxHead)
        if (h.status === 'incomplete') return
        if (h.status === 'error') {
          fail(
            h.httpStatus,
            h.httpStatus === 431
              ? 'Request Header Fields Too Large'
              : h.httpStatus === 505
                ? 'HTTP Version Not Supported'
                : 'Bad Request',
            `malformed proxy request: ${h.reason}`,
            h.httpStatus === 431 ? 'ERR_HEADER_TOO_LARGE' : 'ERR_MALFORMED_REQUEST',
          )
          return
        }
        clearTimer()
        const t = proxyTarget(h)
        if (t.status === 'error') {
          fail(
            t.httpStatus,
            t.httpStatus === 501 ? 'Not Implemented' : 'Bad Request',
            t.reason,
            t.httpStatus === 501 ? 'ERR_UNSUPPORTED' : 'ERR_MALFORMED_REQUEST',
          )
          return
        }
        const target = t.target
        const { match, name } = this.resolve(target.host, target.port)
        if (!match.ok) {
          const { code, text } = this.refusalText(name, target.port, match)
          fail(403, 'Forbidden', text, code, { host: name, port: target.port })
          return
        }
        let bodyKind: ReturnType<typeof requestBodyKind> = { kind: 'none' }
        if (target.kind === 'forward') {
          bodyKind = requestBodyKind(h)
          if (bodyKind.kind === 'error') {
            fail(400, 'Bad Request', `malformed proxy request: ${bodyKind.reason}`, 'ERR_MALFORMED_REQUEST')
            return
          }
        }
        buf = buf.subarray(h.length)
        const key = `${match.service}|${name}:${target.port}`
        const upgrade = target.kind === 'forward' && headerValues(h, 'upgrade').length > 0
        const send = (): void => {
          if (target.kind === 'connect') {
            // raw tunnel from here on
            raw = true
            s.setTimeout(0)
            s.off('data', onData)
            s.pause()
            const up = upstream!
            upstream = null
            s.write('HTTP/1.1 200 Connection Established\r\n\r\n')
            if (buf.length > 0) s.unshift(buf)
            buf = Buffer.alloc(0)
            this.splice(s, up.overlay, up.rec)
            return
          }
          writeUp(forwardHead(h, target))
          if (upgrade) {
            raw = true
            s.setTimeout(0)
            s.off('data', onData)
            s.pause()
            const up = upstream!
            upstream = null
            if (buf.length > 0) s.unshift(buf)
            buf = Buffer.alloc(0)
            up.overlay.unpipe(s)
            this.splice(s, up.overlay, up.rec)
            return
          }
          const f = new BodyFramer(bodyKind as BodyKind)
          framer = f.done ? null : f
        }
        if (
          upstream &&
          upstream.key === key &&
          !upstream.overlay.destroyed &&
          !upstream.overlay.writableEnded &&
          target.kind === 'forward'
        ) {
          send()
          continue
        }
        if (upstream) {
          // another origin on this connection: the previous response is complete (no pipelining across origins)
          const old = upstream
          upstream = null
          old.overlay.unpipe(s)
          old.overlay.destroy()
          this.conns.delete(old.rec.id)
        }
        busy = true
        s.pause()
        this.dialFor(match.service, name, target.port, s, match.rule.dialOptions.connectTimeoutSeconds).then(
          (overlay) => {
            busy = false
            if (s.destroyed) {
              overlay.destroy()
              return
            }
            const rec = this.track('http', match.service, client, `${name}:${target.port}`, s, overlay)
            upstream = { key, overlay, rec }
            if (target.kind === 'forward') {
              overlay.on('error', (err: Error & { code?: string }) => {
                this.log.debug({ err, code: err.code, conn: rec.id }, 'http upstream error')
                s.destroy()
              })
              overlay.once('close', () => {
                this.conns.delete(rec.id)
                if (upstream?.overlay === overlay) upstream = null
              })
              // the origin closing its side ends a close-delimited response: end the client too
              overlay.pipe(s)
            }
            send()
            if (!waitingDrain) s.resume()
            pump()
          },
          (err: Error) => {
            busy = false
            const code = dialErrorCode(err)
            const c = classifyDialError(code)
            const me = this.ctx.identity.name
            const fix =
              c.http === 403
                ? `Fix: \`nullport edge policy-advisor identities ${me} ${match.service}\` explains which policy is missing.`
                : code === 'ERR_UNDERLAY_UNREACHABLE'
                  ? 'Fix: start the server the hosting tunneler forwards to, or correct its host.v1 config.'
                  : code === 'ERR_NO_TERMINATORS'
                    ? `Fix: start a host for ${match.service} (\`nullport tunnel run\` with a Bind policy and host.v1).`
                    : 'Fix: check the routers and the hosting side.'
            fail(
              c.http,
              c.http === 403 ? 'Forbidden' : c.http === 504 ? 'Gateway Timeout' : 'Bad Gateway',
              `dial ${match.service} for ${name}:${target.port} failed (${code}: ${c.kind}): ${err.message}\n${fix}`,
              code,
              { service: match.service },
            )
          },
        )
        return
      }
    }
    const onData = (d: Buffer): void => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d])
      if (!framer && !busy && buf.length > maxHead * 2) {
        fail(
          431,
          'Request Header Fields Too Large',
          `proxy request head exceeds ${maxHead} bytes`,
          'ERR_HEADER_TOO_LARGE',
        )
        return
      }
      if (busy) s.pause()
      pump()
    }
    // an idle keep-alive connection (no bytes either way) is closed after httpIdleTimeoutMs
    s.setTimeout(this.opts.httpIdleTimeoutMs, () => {
      if (raw) return
      this.log.debug({ listener: 'http', client }, 'idle http proxy connection closed')
      s.destroy()
    })
    s.on('data', onData)
    s.on('end', () => {
      clearTimer()
      if (raw) return
      if (upstream) upstream.overlay.end()
      else if (!s.writableEnded) s.end()
    })
    s.on('close', () => {
      clearTimer()
      if (upstream) {
        upstream.overlay.destroy()
        this.conns.delete(upstream.rec.id)
      }
    })
    s.resume()
  }

  // ---------------------------------------------------------------------------------------------
  // status

  /** The status document (what `nullport tunnel status` prints). */
  status(): Record<string, unknown> {
    return {
      identity: this.ctx.identity,
      listeners: { ...this.addresses },
      intercepted: this.table.rules.map((r) => ({
        service: r.service,
        protocols: [...r.protocols],
        addresses: [
          ...r.names,
          ...r.wildcards.map((w) => `*.${w}`),
          ...r.cidrs.map((c) => `${c.bytes.length === 4 ? [...c.bytes].join('.') : 'ipv6'}/${c.prefix}`),
        ],
        portRanges: r.portRanges,
      })),
      hosted: [...this.hosted.values()].map((h) => ({
        service: h.service,
        listening: h.server.listening,
        terminators: h.server.address().terminators.length,
        connections: h.server.getConnections(),
        target: h.config.forwardAddress
          ? 'forwardAddress'
          : `${h.config.address ?? '?'}:${h.config.forwardPort ? 'forwardPort' : (h.config.port ?? '?')}`,
        error: h.error,
      })),
      connections: [...this.conns.values()].map((c) => ({
        id: c.id,
        kind: c.kind,
        service: c.service,
        client: c.client,
        target: c.target,
        startedAt: c.startedAt,
        bytesFromClient: c.kind === 'host' ? (c.overlay?.bytesRead ?? 0) : c.tcp.bytesRead,
        bytesToClient: c.kind === 'host' ? (c.overlay?.bytesWritten ?? 0) : c.tcp.bytesWritten,
      })),
      dns: this.dns ? { ...this.dns.stats, names: this.pool.entries } : null,
      refusals: Object.fromEntries(this.refusals),
      memory: { rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed },
    }
  }

  private async startStatus(a: ListenAddress): Promise<void> {
    const server = createHttpServer((req, res) => {
      if (req.method !== 'GET' || (req.url !== '/' && req.url !== '/status')) {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end('{"error":{"code":"NOT_FOUND","message":"GET /status"}}')
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: this.status() }))
    })
    server.headersTimeout = 5000
    server.requestTimeout = 5000
    try {
      server.listen(a.port, a.host)
      await once(server, 'listening')
    } catch (err) {
      throw new TunnelError(
        'ERR_TUNNEL_LISTEN',
        `cannot listen for status on ${a.host}:${a.port}: ${(err as Error).message} (use another --status address, or --no-status)`,
        {},
        { cause: err },
      )
    }
    const b = server.address()
    const text = typeof b === 'object' && b ? `${b.address}:${b.port}` : String(b)
    this.addresses.status = text
    this.statusServer = server
    this.log.info({ listener: 'status', address: text }, 'status listening')
  }

  /** Stops listening, closes hosted services and every connection. Does not close the context. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.ctx.off('services', this.onServices)
    for (const { server } of this.servers) server.close()
    for (const h of this.hosted.values()) void h.server.close()
    this.hosted.clear()
    for (const c of this.conns.values()) {
      c.tcp.destroy()
      c.overlay?.destroy()
    }
    this.conns.clear()
    await this.dns?.close()
    this.statusServer?.close()
    this.statusServer?.closeAllConnections()
    this.log.info({}, 'tunnel closed')
  }
}
