/**
 * Prometheus metrics of one router (prom-client, own registry), served as plain HTTP
 * `GET /metrics` when `metricsListen` is set. Names are stable:
 * nullport_router_circuits, nullport_router_connections{kind}, nullport_router_forwarded_bytes_total,
 * nullport_router_dials_total{result}, nullport_router_link_latency_ms{peer},
 * nullport_router_cert_expiry_seconds (seconds until the router certificate expires; negative once expired),
 * nullport_router_preauth_connections (not yet through the TLS handshake),
 * nullport_router_preauth_dropped_total{reason="deadline"|"per-address"},
 * nullport_router_limit{name="maxConnections"|"handshakeTimeoutMs"|"maxPreAuthPerAddress"}.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import {
  type HostPort,
  listenMetrics,
  type MetricsServer,
  type PreAuthLimits,
  type PreAuthStats,
} from '@nullport/protocol'

export interface MetricsSource {
  readonly id: string
  readonly bytesForwarded: number
  circuitCount(): number
  connectionCounts(): { sdk: number; router: number }
  linkLatencies(): Array<{ routerId: string; latencyMs: number }>
  /** Epoch ms the router's current certificate expires. */
  certExpiresAt(): number
  /** The pre-auth guard's counters and the limits it applies. */
  preAuth(): { stats: PreAuthStats; limits: PreAuthLimits; maxConnections: number }
}

export type DialResult = 'success' | 'refused' | 'failed' | 'timeout'

export class RouterMetrics {
  readonly registry = new Registry()
  private readonly dials: Counter<'result'>
  private server: MetricsServer | null = null

  constructor(src: MetricsSource) {
    this.registry.setDefaultLabels({ router: src.id })
    new Gauge({
      name: 'nullport_router_circuits',
      help: 'Circuits through this router',
      registers: [this.registry],
      collect() {
        this.set(src.circuitCount())
      },
    })
    new Gauge({
      name: 'nullport_router_connections',
      help: 'Open TLS connections by peer kind',
      labelNames: ['kind'],
      registers: [this.registry],
      collect() {
        const c = src.connectionCounts()
        this.set({ kind: 'sdk' }, c.sdk)
        this.set({ kind: 'router' }, c.router)
      },
    })
    let lastBytes = 0
    new Counter({
      name: 'nullport_router_forwarded_bytes_total',
      help: 'DATA payload bytes forwarded',
      registers: [this.registry],
      collect() {
        const now = src.bytesForwarded
        if (now > lastBytes) this.inc(now - lastBytes)
        lastBytes = now
      },
    })
    this.dials = new Counter({
      name: 'nullport_router_dials_total',
      help: 'Dials received from SDKs by result',
      labelNames: ['result'],
      registers: [this.registry],
    })
    new Gauge({
      name: 'nullport_router_link_latency_ms',
      help: 'Measured link round-trip latency in ms',
      labelNames: ['peer'],
      registers: [this.registry],
      collect() {
        this.reset()
        for (const l of src.linkLatencies()) this.set({ peer: l.routerId }, l.latencyMs)
      },
    })

    new Gauge({
      name: 'nullport_router_cert_expiry_seconds',
      help: 'Seconds until the router certificate in use expires (renewed automatically)',
      registers: [this.registry],
      collect() {
        this.set(Math.round((src.certExpiresAt() - Date.now()) / 1000))
      },
    })
    this.preAuthMetrics(src)
  }

  private preAuthMetrics(src: MetricsSource): void {
    new Gauge({
      name: 'nullport_router_preauth_connections',
      help: 'Accepted connections that have not finished the TLS handshake yet',
      registers: [this.registry],
      collect() {
        this.set(src.preAuth().stats.pending)
      },
    })
    const dropped = { deadline: 0, 'per-address': 0 }
    new Counter({
      name: 'nullport_router_preauth_dropped_total',
      help: 'Unauthenticated connections destroyed, by reason (deadline, per-address cap)',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        const s = src.preAuth().stats
        const now = { deadline: s.timedOut, 'per-address': s.refusedPerAddress }
        for (const r of ['deadline', 'per-address'] as const) {
          this.inc({ reason: r }, Math.max(0, now[r] - dropped[r]))
          dropped[r] = Math.max(dropped[r], now[r])
        }
      },
    })
    new Gauge({
      name: 'nullport_router_limit',
      help: 'Configured connection limits (maxConnections, handshakeTimeoutMs, maxPreAuthPerAddress)',
      labelNames: ['name'],
      registers: [this.registry],
      collect() {
        const p = src.preAuth()
        this.set({ name: 'maxConnections' }, p.maxConnections)
        this.set({ name: 'handshakeTimeoutMs' }, p.limits.deadlineMs)
        this.set({ name: 'maxPreAuthPerAddress' }, p.limits.perAddress)
      },
    })
  }

  dial(result: DialResult): void {
    this.dials.inc({ result })
  }

  /** Serves GET /metrics; resolves to the bound host:port. */
  async listen(hp: HostPort): Promise<string> {
    const r = this.registry
    this.server = await listenMetrics(hp.host, hp.port, async () => ({
      contentType: r.contentType,
      body: await r.metrics(),
    }))
    return this.server.address
  }

  async close(): Promise<void> {
    const s = this.server
    this.server = null
    await s?.close()
  }
}
