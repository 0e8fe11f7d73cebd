/**
 * Circuit reports: the circuits that entered the overlay at this router (an SDK dialed here) are
 * reported to the controller once open (`POST /fabric/v1/circuits`, batched over
 * `circuitReportIntervalMs`) and deleted once closed (`DELETE /fabric/v1/circuits/:tag`), best
 * effort, for `GET /circuits`. A circuit that opens and closes within one period is never sent.
 */
import type { RouterState } from '../state.js'
import type { Circuit } from './circuit-table.js'

interface CircuitReport {
  tag: string
  serviceId: string
  identityId: string
  hostIdentityId: string
  terminatorId: string
  routerId: string
  terminatorRouterId: string
  createdAt: string
}

export class CircuitReports {
  private readonly adds = new Map<string, CircuitReport>()
  private readonly deletes = new Set<string>()
  private timer: NodeJS.Timeout | null = null

  constructor(private readonly state: RouterState) {}

  start(): void {
    this.timer = setInterval(() => this.flush(), this.state.limits.circuitReportIntervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
  }

  /** An ingress circuit opened (DIAL_SUCCESS). */
  opened<P>(c: Circuit<P>): void {
    const m = c.meta
    this.adds.set(m.tag, {
      tag: m.tag,
      serviceId: m.serviceId,
      identityId: m.dialerId,
      hostIdentityId: m.hostIdentityId,
      terminatorId: m.terminatorId,
      routerId: this.state.id,
      terminatorRouterId: m.terminatorRouterId,
      createdAt: new Date(c.createdAt).toISOString(),
    })
  }

  /** An open ingress circuit closed. */
  closed<P>(c: Circuit<P>): void {
    if (this.adds.has(c.meta.tag)) this.adds.delete(c.meta.tag)
    else this.deletes.add(c.meta.tag)
  }

  private flush(): void {
    const s = this.state
    if (s.stopping) return
    if (this.adds.size > 0) {
      const circuits = [...this.adds.values()]
      this.adds.clear()
      s.fabric.request('POST', '/fabric/v1/circuits', { circuits }).catch((err: Error) => {
        s.log.debug({ err: err.message, count: circuits.length }, 'circuit report failed (best effort)')
      })
    }
    if (this.deletes.size > 0) {
      const tags = [...this.deletes].slice(0, 256)
      for (const tag of tags) {
        this.deletes.delete(tag)
        s.fabric.request('DELETE', `/fabric/v1/circuits/${tag}`).catch(() => {})
      }
    }
  }
}
