import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server, type Socket } from 'node:net'
import * as dnsPacket from 'dns-packet'
import { normalizeName } from './intercept.js'
import { type Cidr, formatIp, parseCidr } from './ip.js'
import type { TunnelLogger } from './log.js'

/**
 * Stable addresses for intercepted names, from a reserved IPv4 range (default 100.64.0.0/10,
 * RFC 6598). A name's address is derived from a hash of the name (so it stays the same across
 * restarts unless two names collide), with linear probing on collisions. Bounded: at most
 * `maxEntries` names; the least recently used is forgotten beyond that.
 */
export class FakeIpPool {
  readonly range: Cidr
  private readonly size: number
  private readonly base: number
  private readonly maxEntries: number
  private readonly byName = new Map<string, number>()
  private readonly byIp = new Map<number, string>()

  constructor(range = '100.64.0.0/10', maxEntries = 65536) {
    const c = parseCidr(range)
    if (c === null || c.bytes.length !== 4 || c.prefix > 24 || c.prefix < 8) {
      throw new Error(`fake IP range must be an IPv4 CIDR from /8 to /24, got ${range}`)
    }
    this.range = c
    this.size = 2 ** (32 - c.prefix)
    const b = c.bytes
    this.base = (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) & (~(this.size - 1) >>> 0)
    this.maxEntries = Math.min(maxEntries, this.size - 2)
  }

  get entries(): number {
    return this.byName.size
  }

  /** The address of `name` (allocated if new). */
  addressOf(name: string): string {
    const n = name.toLowerCase().replace(/\.$/, '')
    const have = this.byName.get(n)
    if (have !== undefined) {
      this.byName.delete(n)
      this.byName.set(n, have)
      return formatU32(have)
    }
    if (this.byName.size >= this.maxEntries) {
      const oldest = this.byName.keys().next().value as string
      const ip = this.byName.get(oldest)!
      this.byName.delete(oldest)
      this.byIp.delete(ip)
    }
    let off = fnv1a(n) % this.size
    for (;;) {
      // skip the range's first and last address
      if (off === 0 || off === this.size - 1) {
        off = (off + 1) % this.size
        continue
      }
      const ip = (this.base + off) >>> 0
      if (!this.byIp.has(ip)) {
        this.byIp.set(ip, n)
        this.byName.set(n, ip)
        return formatU32(ip)
      }
      off = (off + 1) % this.size
    }
  }

  /** The name an address was given to, or undefined. */
  nameOf(ip: string): string | undefined {
    const p = ip.split('.')
    if (p.length !== 4) return undefined
    const v = ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0
    return this.byIp.get(v)
  }
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

function formatU32(v: number): string {
  return formatIp(Uint8Array.from([(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]))
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const

/** What to do with one DNS message. */
export type DnsDecision =
  | { action: 'reply'; reply: Buffer; name: string; qtype: string; intercepted: boolean; rcode: number }
  | { action: 'forward'; id: number; name: string; qtype: string }
  | { action: 'drop'; reason: string }

const DNS_TTL = 60

/**
 * Answers one DNS query (pure, no I/O). Intercepted names: A from the pool, AAAA and every
 * other type an empty NOERROR. Other names: `forward` when an upstream is configured, else
 * REFUSED. Malformed packets, responses and multi-question queries are dropped or refused.
 */
export function answerDns(
  msg: Buffer,
  intercepts: (name: string) => boolean,
  pool: FakeIpPool,
  hasUpstream: boolean,
): DnsDecision {
  if (msg.length < 12 || msg.length > 4096) return { action: 'drop', reason: 'size' }
  let q: dnsPacket.DecodedPacket
  try {
    q = dnsPacket.decode(msg)
  } catch {
    return { action: 'drop', reason: 'malformed' }
  }
  if (q.type !== 'query') return { action: 'drop', reason: 'not a query' }
  const id = q.id ?? 0
  const rd = q.flag_rd ? dnsPacket.RECURSION_DESIRED : 0
  const opcode = ((q.flags ?? 0) >> 11) & 0xf
  const questions = q.questions ?? []
  const reply = (rcode: number, answers: dnsPacket.Answer[] = [], aa = false): Buffer =>
    dnsPacket.encode({
      type: 'response',
      id,
      flags: rd | dnsPacket.RECURSION_AVAILABLE | (aa ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | rcode,
      questions,
      answers,
    })
  if (opcode !== 0) {
    return {
      action: 'reply',
      reply: reply(RCODE.NOTIMP),
      name: '',
      qtype: '',
      intercepted: false,
      rcode: RCODE.NOTIMP,
    }
  }
  if (questions.length !== 1) {
    return {
      action: 'reply',
      reply: reply(RCODE.FORMERR),
      name: '',
      qtype: '',
      intercepted: false,
      rcode: RCODE.FORMERR,
    }
  }
  const question = questions[0]!
  const name = normalizeName(question.name) ?? question.name.toLowerCase()
  const qtype = String(question.type)
  if (normalizeName(question.name) !== null && intercepts(name) && (question.class ?? 'IN') === 'IN') {
    if (qtype === 'A') {
      const ip = pool.addressOf(name)
      return {
        action: 'reply',
        reply: reply(RCODE.NOERROR, [{ type: 'A', name: question.name, ttl: DNS_TTL, data: ip }], true),
        name,
        qtype,
        intercepted: true,
        rcode: RCODE.NOERROR,
      }
    }
    // AAAA (and anything else) for an intercepted name: empty NOERROR, never an A record.
    return {
      action: 'reply',
      reply: reply(RCODE.NOERROR, [], true),
      name,
      qtype,
      intercepted: true,
      rcode: 0,
    }
  }
  if (hasUpstream) return { action: 'forward', id, name, qtype }
  return {
    action: 'reply',
    reply: reply(RCODE.REFUSED),
    name,
    qtype,
    intercepted: false,
    rcode: RCODE.REFUSED,
  }
}

/** Options of the DNS server. */
export interface DnsServerOptions {
  host: string
  port: number
  /** Upstream resolver `ip:port` (UDP) for names that are not intercepted; default none (REFUSED). */
  upstream?: { host: string; port: number }
  /** Most queries waiting for the upstream at once (more are answered SERVFAIL). Default 1024. */
  maxPending?: number
  /** Upstream timeout, ms. Default 3000. */
  upstreamTimeoutMs?: number
  /** Most concurrent TCP connections. Default 64. */
  maxTcpConnections?: number
}

interface Pending {
  reply: (b: Buffer) => void
  originalId: number
  timer: NodeJS.Timeout
}

/** Bytes of answers one TCP DNS client may leave unread before it is disconnected. */
const DNS_TCP_MAX_PENDING_BYTES = 1024 * 1024

/** DNS over UDP and TCP on one address (the same port). */
export class DnsServer {
  private udp: UdpSocket | null = null
  private tcp: Server | null = null
  private upstreamSock: UdpSocket | null = null
  private readonly pending = new Map<number, Pending>()
  private readonly tcpConns = new Set<Socket>()
  private nextId = Math.floor(Math.random() * 65536)
  readonly stats = { queries: 0, intercepted: 0, forwarded: 0, refused: 0, dropped: 0 }

  constructor(
    private readonly opts: DnsServerOptions,
    private readonly intercepts: (name: string) => boolean,
    readonly pool: FakeIpPool,
    private readonly log: TunnelLogger,
  ) {}

  async start(): Promise<{ host: string; port: number }> {
    const udp = createSocket(this.opts.host.includes(':') ? 'udp6' : 'udp4')
    this.udp = udp
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(this.opts.port, this.opts.host, () => {
        udp.off('error', reject)
        resolve()
      })
    })
    udp.on('error', (err) => this.log.warn({ err, code: 'ERR_DNS_SOCKET' }, 'dns udp socket error'))
    udp.on('message', (msg, rinfo) => {
      this.handle(msg, (b) => udp.send(b, rinfo.port, rinfo.address))
    })
    const port = udp.address().port
    const tcp = createServer((s) => this.onTcp(s))
    this.tcp = tcp
    tcp.maxConnections = this.opts.maxTcpConnections ?? 64
    await new Promise<void>((resolve) => {
      tcp.once('error', (err) => {
        this.log.warn({ err }, 'dns tcp listener not available (UDP only)')
        this.tcp = null
        resolve()
      })
      tcp.listen(port, this.opts.host, () => resolve())
    })
    if (this.opts.upstream) {
      const up = createSocket(this.opts.upstream.host.includes(':') ? 'udp6' : 'udp4')
      this.upstreamSock = up
      up.on('error', (err) => this.log.warn({ err }, 'dns upstream socket error'))
      up.on('message', (msg) => this.onUpstream(msg))
      await new Promise<void>((r) => up.bind(0, r))
    }
    return { host: this.opts.host, port }
  }

  private onTcp(s: Socket): void {
    this.tcpConns.add(s)
    s.setTimeout(10_000, () => s.destroy())
    s.on('error', () => undefined)
    s.on('close', () => this.tcpConns.delete(s))
    let buf: Buffer = Buffer.alloc(0)
    // A client that sends queries but does not read the answers: stop reading its queries until
    // the answers drain (and cut it off if answers to queries already read still pile up).
    let waitingDrain = false
    s.on('drain', () => {
      waitingDrain = false
      s.resume()
    })
    s.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d])
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0)
        if (buf.length < 2 + len) break
        const msg = buf.subarray(2, 2 + len)
        buf = buf.subarray(2 + len)
        this.handle(msg, (b) => {
          if (s.destroyed) return
          const l = Buffer.alloc(2)
          l.writeUInt16BE(b.length)
          if (s.writableLength > DNS_TCP_MAX_PENDING_BYTES) {
            this.stats.dropped++
            s.destroy()
            return
          }
          if (!s.write(Buffer.concat([l, b])) && !waitingDrain) {
            waitingDrain = true
            s.pause()
          }
        })
      }
      if (buf.length > 2 + 4096) {
        this.stats.dropped++
        s.destroy()
      }
    })
  }

  private handle(msg: Buffer, reply: (b: Buffer) => void): void {
    this.stats.queries++
    const d = answerDns(msg, this.intercepts, this.pool, this.upstreamSock !== null)
    if (d.action === 'drop') {
      this.stats.dropped++
      this.log.debug({ reason: d.reason }, 'dns message dropped')
      return
    }
    if (d.action === 'reply') {
      if (d.intercepted) this.stats.intercepted++
      else if (d.rcode === 5) {
        this.stats.refused++
        this.log.info(
          { code: 'ERR_NO_INTERCEPT', name: d.name, qtype: d.qtype },
          'dns query refused: not intercepted and no upstream',
        )
      }
      reply(d.reply)
      return
    }
    // forward
    const maxPending = this.opts.maxPending ?? 1024
    if (this.pending.size >= maxPending || !this.upstreamSock || !this.opts.upstream) {
      this.stats.dropped++
      return
    }
    let id = this.nextId
    while (this.pending.has(id)) id = (id + 1) & 0xffff
    this.nextId = (id + 1) & 0xffff
    const copy = Buffer.from(msg)
    copy.writeUInt16BE(id, 0)
    const timer = setTimeout(() => this.pending.delete(id), this.opts.upstreamTimeoutMs ?? 3000)
    timer.unref()
    this.pending.set(id, { reply, originalId: d.id, timer })
    this.stats.forwarded++
    this.upstreamSock.send(copy, this.opts.upstream.port, this.opts.upstream.host)
  }

  private onUpstream(msg: Buffer): void {
    if (msg.length < 12) return
    const id = msg.readUInt16BE(0)
    const p = this.pending.get(id)
    if (!p) return
    this.pending.delete(id)
    clearTimeout(p.timer)
    const copy = Buffer.from(msg)
    copy.writeUInt16BE(p.originalId, 0)
    p.reply(copy)
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) clearTimeout(p.timer)
    this.pending.clear()
    for (const s of this.tcpConns) s.destroy()
    const closes: Promise<void>[] = []
    if (this.udp) {
      const u = this.udp
      closes.push(new Promise((r) => u.close(() => r())))
    }
    if (this.upstreamSock) {
      const u = this.upstreamSock
      closes.push(new Promise((r) => u.close(() => r())))
    }
    if (this.tcp) {
      const t = this.tcp
      closes.push(new Promise((r) => t.close(() => r())))
    }
    this.udp = null
    this.upstreamSock = null
    this.tcp = null
    await Promise.all(closes)
  }
}
