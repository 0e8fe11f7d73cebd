/** The status document (what `nullport tunnel status` prints) and the local HTTP server that serves it. */
import { once } from 'node:events'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import type { Context } from '@nullport/sdk'
import type { ConnectionTable } from './connections.js'
import type { DnsServer, FakeIpPool } from './dns.js'
import { TunnelError } from './errors.js'
import type { HostedService } from './hosting.js'
import type { InterceptTable } from './intercept.js'
import type { ListenAddress } from './options.js'

/** What the status document is made of, read at request time. */
export interface StatusSources {
  identity: Context['identity']
  listeners: Record<string, string>
  intercept: InterceptTable
  hosted: Iterable<HostedService>
  connections: ConnectionTable
  dns: DnsServer | null
  pool: FakeIpPool
}

/** The status document: listeners, intercepted and hosted services, open connections, DNS, refusals, memory. */
export function statusDocument(s: StatusSources): Record<string, unknown> {
  return {
    identity: s.identity,
    listeners: { ...s.listeners },
    intercepted: s.intercept.rules.map((r) => ({
      service: r.service,
      protocols: [...r.protocols],
      addresses: [
        ...r.names,
        ...r.wildcards.map((w) => `*.${w}`),
        ...r.cidrs.map((c) => `${c.bytes.length === 4 ? [...c.bytes].join('.') : 'ipv6'}/${c.prefix}`),
      ],
      portRanges: r.portRanges,
    })),
    hosted: [...s.hosted].map((h) => ({
      service: h.service,
      listening: h.server.listening,
      terminators: h.server.address().terminators.length,
      connections: h.server.getConnections(),
      target: h.config.forwardAddress
        ? 'forwardAddress'
        : `${h.config.address ?? '?'}:${h.config.forwardPort ? 'forwardPort' : (h.config.port ?? '?')}`,
      error: h.error,
    })),
    connections: [...s.connections.open()].map((c) => ({
      id: c.id,
      kind: c.kind,
      service: c.service,
      client: c.client,
      target: c.target,
      startedAt: c.startedAt,
      bytesFromClient: c.kind === 'host' ? (c.overlay?.bytesRead ?? 0) : c.tcp.bytesRead,
      bytesToClient: c.kind === 'host' ? (c.overlay?.bytesWritten ?? 0) : c.tcp.bytesWritten,
    })),
    dns: s.dns ? { ...s.dns.stats, names: s.pool.entries } : null,
    refusals: s.connections.refusalCounts(),
    memory: { rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed },
  }
}

/**
 * Serves `{"data": document()}` at `GET /` and `GET /status` (404 JSON otherwise). Resolves with
 * the server and its bound `host:port`.
 */
export async function startStatusServer(
  a: ListenAddress,
  document: () => Record<string, unknown>,
): Promise<{ server: HttpServer; address: string }> {
  const server = createHttpServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/' && req.url !== '/status')) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"error":{"code":"NOT_FOUND","message":"GET /status"}}')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: document() }))
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
  return { server, address: typeof b === 'object' && b ? `${b.address}:${b.port}` : String(b) }
}
