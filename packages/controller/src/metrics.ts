/**
 * Prometheus metrics of the controller (prom-client, own registry), served as plain HTTP
 * `GET /metrics` on `metricsListen` when it is set (keep it on a private address: the numbers
 * describe the network). Names are stable:
 * nullport_controller_preauth_connections (accepted, not yet through TLS and one request head),
 * nullport_controller_preauth_dropped_total{reason="deadline"|"per-address"},
 * nullport_controller_limit{name} (maxConnections, preAuthTimeoutMs, maxPreAuthPerAddress,
 * headersTimeoutMs, requestTimeoutMs, bodyLimit).
 */
import { listenMetrics, type MetricsServer, type PreAuthStats } from '@nullport/protocol'
import { Counter, Gauge, Registry } from 'prom-client'
import type { ControllerConfig } from './config.js'

export interface ControllerMetricsSource {
  config: ControllerConfig
  /** The HTTPS listener's pre-auth guard counters. */
  preAuth(): PreAuthStats
}

export class ControllerMetrics {
  readonly registry = new Registry()
  private server: MetricsServer | null = null

  constructor(src: ControllerMetricsSource) {
    new Gauge({
      name: 'nullport_controller_preauth_connections',
      help: 'Accepted connections that have not finished TLS and sent one complete request head',
      registers: [this.registry],
      collect() {
        this.set(src.preAuth().pending)
      },
    })
    const seen = { deadline: 0, 'per-address': 0 }
    new Counter({
      name: 'nullport_controller_preauth_dropped_total',
      help: 'Unauthenticated connections destroyed, by reason (deadline, per-address cap)',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        const s = src.preAuth()
        const now = { deadline: s.timedOut, 'per-address': s.refusedPerAddress }
        for (const r of ['deadline', 'per-address'] as const) {
          this.inc({ reason: r }, Math.max(0, now[r] - seen[r]))
          seen[r] = Math.max(seen[r], now[r])
        }
      },
    })
    const c = src.config
    const limits: Record<string, number> = {
      maxConnections: c.maxConnections,
      preAuthTimeoutMs: c.preAuthTimeoutMs,
      maxPreAuthPerAddress: c.maxPreAuthPerAddress,
      headersTimeoutMs: c.headersTimeoutMs,
      requestTimeoutMs: c.requestTimeoutMs,
      bodyLimit: c.bodyLimit,
    }
    new Gauge({
      name: 'nullport_controller_limit',
      help: 'Configured limits of the HTTPS listener (docs/security.md)',
      labelNames: ['name'],
      registers: [this.registry],
      collect() {
        for (const [name, v] of Object.entries(limits)) this.set({ name }, v)
      },
    })
  }

  /** Serves GET /metrics on host:port; resolves to the bound address. */
  async listen(host: string, port: number): Promise<string> {
    const r = this.registry
    this.server = await listenMetrics(host, port, async () => ({
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
