/** The tunneler's open connections and its refusal counts (what `nullport tunnel status` lists). */
import type { Socket } from 'node:net'
import type { OverlaySocket } from '@nullport/sdk'
import type { TunnelLogger } from './log.js'

/** One open connection, for the status endpoint. */
export interface ConnRecord {
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

/** Open connections by id, and how many connections were refused, by code. */
export class ConnectionTable {
  private readonly conns = new Map<number, ConnRecord>()
  private nextId = 1
  private readonly refusals = new Map<string, number>()

  constructor(private readonly log: TunnelLogger) {}

  /** Records an open connection (splice() removes it when both sides closed). */
  track(
    kind: ConnRecord['kind'],
    service: string,
    client: string,
    target: string,
    tcp: Socket,
    overlay: OverlaySocket | null,
  ): ConnRecord {
    const rec: ConnRecord = {
      id: this.nextId++,
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

  untrack(id: number): void {
    this.conns.delete(id)
  }

  /** Counts a refused connection or dial under its code and logs it (warn). */
  refuse(code: string, fields: Record<string, unknown>, msg: string): void {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1)
    this.log.warn({ code, ...fields }, msg)
  }

  open(): IterableIterator<ConnRecord> {
    return this.conns.values()
  }

  refusalCounts(): Record<string, number> {
    return Object.fromEntries(this.refusals)
  }

  /** Destroys both sides of every open connection. */
  destroyAll(): void {
    for (const c of this.conns.values()) {
      c.tcp.destroy()
      c.overlay?.destroy()
    }
    this.conns.clear()
  }
}
