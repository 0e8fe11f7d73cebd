/**
 * Which service a (host, port) goes to: the intercept.v1 addresses of the services this identity
 * may Dial (names, `*.domain` wildcards, IP addresses, IPv4 CIDR blocks, with their port
 * ranges), or a service's own name (any port). Anything else is not intercepted, and the HTTP
 * clients of the SDK refuse it (ERR_NOT_INTERCEPTED): they never send it to the network.
 */
import { isIP } from 'node:net'
import { type ClientService, type InterceptV1, policyAdvisorCommand } from '@nullport/protocol'
import type { Context } from '../context.js'
import { SdkError } from '../errors.js'

/** How a destination matched. */
export interface InterceptTarget {
  /** The service to dial. */
  service: string
  /** `address`: an intercept.v1 name or IP; `wildcard`/`cidr`: a `*.domain` or CIDR entry; `name`: the service name. */
  kind: 'address' | 'wildcard' | 'cidr' | 'name'
  /** Dial timeout from intercept.v1 `dialOptions.connectTimeoutSeconds`, in ms. */
  timeoutMs?: number
}

interface Rule {
  service: string
  ports: Array<{ low: number; high: number }>
  timeoutMs?: number
}

interface Cidr4 {
  net: number
  mask: number
  bits: number
  rule: Rule
}

/** A compiled lookup table over a service list. */
export class InterceptTable {
  private readonly exact = new Map<string, Rule[]>()
  private readonly wildcards: Array<{ suffix: string; rule: Rule }> = []
  private readonly cidrs: Cidr4[] = []
  private readonly names = new Map<string, string>()

  constructor(services: readonly ClientService[]) {
    for (const s of services) {
      if (!s.permissions.includes('Dial')) continue
      this.names.set(s.name.toLowerCase(), s.name)
      const cfg = s.config?.['intercept.v1'] as Partial<InterceptV1> | undefined
      if (!cfg || typeof cfg !== 'object') continue
      if (Array.isArray(cfg.protocols) && cfg.protocols.length > 0 && !cfg.protocols.includes('tcp')) continue
      const ports = (Array.isArray(cfg.portRanges) ? cfg.portRanges : []).filter(
        (r) =>
          r &&
          Number.isInteger(r.low) &&
          Number.isInteger(r.high) &&
          r.low >= 0 &&
          r.high <= 65535 &&
          r.low <= r.high,
      )
      const rule: Rule = { service: s.name, ports }
      const cts = cfg.dialOptions?.connectTimeoutSeconds
      if (typeof cts === 'number' && cts > 0 && cts <= 3600) rule.timeoutMs = Math.round(cts * 1000)
      for (const raw of Array.isArray(cfg.addresses) ? cfg.addresses : []) {
        if (typeof raw !== 'string') continue
        const a = raw.trim().toLowerCase()
        if (a.startsWith('*.') && a.length > 2) {
          this.wildcards.push({ suffix: normalizeHost(a.slice(1)), rule })
          continue
        }
        const slash = a.indexOf('/')
        if (slash > 0) {
          const c = parseCidr4(a.slice(0, slash), a.slice(slash + 1))
          if (c) this.cidrs.push({ ...c, rule })
          continue
        }
        const key = normalizeHost(a)
        if (!key) continue
        const list = this.exact.get(key)
        if (list) list.push(rule)
        else this.exact.set(key, [rule])
      }
    }
    // Longest suffix / prefix first: the most specific entry wins.
    this.wildcards.sort((x, y) => y.suffix.length - x.suffix.length)
    this.cidrs.sort((x, y) => y.bits - x.bits)
  }

  /**
   * The service for `host:port`, or null. `host` may be a name, an IP, or `[v6]`; `port` the
   * destination port. Precedence: an exact intercept address, then a service name, then the
   * longest `*.domain`, then the longest CIDR block.
   */
  match(host: string, port: number): InterceptTarget | null {
    const h = normalizeHost(host)
    if (!h) return null
    for (const r of this.exact.get(h) ?? []) {
      if (inPorts(r, port)) return target(r, 'address')
    }
    const byName = this.names.get(h)
    if (byName) return { service: byName, kind: 'name' }
    for (const w of this.wildcards) {
      if (h.endsWith(w.suffix) && h.length > w.suffix.length && inPorts(w.rule, port)) {
        return target(w.rule, 'wildcard')
      }
    }
    if (isIP(h) === 4 && this.cidrs.length > 0) {
      const ip = ipv4ToInt(h)
      for (const c of this.cidrs) {
        if ((ip & c.mask) >>> 0 === c.net && inPorts(c.rule, port)) return target(c.rule, 'cidr')
      }
    }
    return null
  }

  /** Services whose intercept addresses match `host` on some other port (for error messages). */
  servicesOnOtherPorts(host: string): string[] {
    const h = normalizeHost(host)
    if (!h) return []
    const out = new Set<string>()
    for (const r of this.exact.get(h) ?? []) out.add(r.service)
    for (const w of this.wildcards)
      if (h.endsWith(w.suffix) && h.length > w.suffix.length) out.add(w.rule.service)
    return [...out]
  }
}

function target(r: Rule, kind: InterceptTarget['kind']): InterceptTarget {
  return r.timeoutMs === undefined
    ? { service: r.service, kind }
    : { service: r.service, kind, timeoutMs: r.timeoutMs }
}

function inPorts(r: Rule, port: number): boolean {
  if (r.ports.length === 0) return true
  for (const p of r.ports) if (port >= p.low && port <= p.high) return true
  return false
}

/** Lower case, no brackets around IPv6, no trailing dot. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase()
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1)
  if (h.endsWith('.')) h = h.slice(0, -1)
  return h
}

function ipv4ToInt(ip: string): number {
  const p = ip.split('.').map(Number)
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0
}

function parseCidr4(ip: string, bitsText: string): { net: number; mask: number; bits: number } | null {
  if (isIP(ip) !== 4 || !/^\d{1,2}$/.test(bitsText)) return null
  const bits = Number(bitsText)
  if (bits > 32) return null
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  return { net: (ipv4ToInt(ip) & mask) >>> 0, mask, bits }
}

const tables = new WeakMap<Context, InterceptTable>()

/** The context's intercept table, rebuilt when its service list changes. */
export function interceptTable(ctx: Context): InterceptTable {
  let t = tables.get(ctx)
  if (t) return t
  t = new InterceptTable(ctx.services())
  tables.set(ctx, t)
  ctx.once('services', () => tables.delete(ctx))
  return t
}

/** Default port of a URL protocol. */
export function defaultPort(protocol: string): number {
  return protocol === 'https:' || protocol === 'wss:' ? 443 : 80
}

/**
 * Resolves `host:port` to a service, or throws ERR_NOT_INTERCEPTED naming what would make it
 * match (fail closed: the caller sends nothing to the network).
 */
export function resolveIntercept(ctx: Context, host: string, port: number): InterceptTarget {
  const table = interceptTable(ctx)
  const t = table.match(host, port)
  if (t) return t
  const me = ctx.identity.name
  const advisor = (svc: string): string => `\`${policyAdvisorCommand(me, svc)}\``
  const other = table.servicesOnOtherPorts(host)
  const services = ctx.services()
  let reason: 'port' | 'no-dial' | 'no-services' | 'no-match'
  let service: string | undefined
  let why: string
  if (other.length > 0) {
    reason = 'port'
    why = `service ${other.join(', ')} intercepts ${host} but not port ${port} (see its intercept.v1 portRanges)`
  } else {
    // The service list holds what this identity may Dial or Bind: a Bind-only service that
    // intercepts the host means the Dial policy is missing.
    const bindOnly = services.filter((s) => !s.permissions.includes('Dial'))
    const hit =
      bindOnly.length > 0
        ? new InterceptTable(bindOnly.map((s) => ({ ...s, permissions: ['Dial' as const] }))).match(
            host,
            port,
          )
        : null
    if (hit) {
      reason = 'no-dial'
      service = hit.service
      why = `service ${hit.service} intercepts ${host} but identity ${me} has no Dial policy for it: run ${advisor(hit.service)}`
    } else if (services.length === 0) {
      reason = 'no-services'
      why = `identity ${me} may dial no service (its service list is empty): run ${advisor('SERVICE')} for the service that intercepts ${host}`
    } else {
      reason = 'no-match'
      why = `no service that identity ${me} may dial has ${host} in its intercept.v1 addresses or as its name: check the service's intercept.v1 config (\`nullport edge list services\`, \`nullport edge list configs\`)`
    }
  }
  throw new SdkError(
    'ERR_NOT_INTERCEPTED',
    `${host}:${port} is not an overlay address: ${why}; refused, nothing was sent to the network`,
    { host, port, identity: me, reason, ...(service ? { service } : {}) },
  )
}

/**
 * True when `host` is none of the overlay's business for this identity: no service it can see
 * (Dial or Bind) intercepts the host, on any port. Only such destinations may go to the network
 * as usual (the register hook's passthrough); a host that a service intercepts on another port,
 * or that a service this identity may only Bind intercepts, is refused instead (fail closed).
 */
export function isForeignDestination(ctx: Context, host: string, port: number): boolean {
  try {
    resolveIntercept(ctx, host, port)
    return false
  } catch (err) {
    const e = err as SdkError
    const reason = (e.details as { reason?: unknown } | undefined)?.reason
    return e.code === 'ERR_NOT_INTERCEPTED' && (reason === 'no-match' || reason === 'no-services')
  }
}

/**
 * After resolveIntercept() refused a host that matched nothing this identity can see: asks a
 * connected router, with the same check ctx.dial() relies on for names outside the service list,
 * whether `host` is a service this identity may not dial (the service list shows only services it
 * may Dial or Bind). Resolves to the error to throw: `err` itself, or a clearer ERR_NOT_INTERCEPTED.
 * The real address is never contacted.
 */
export async function explainNotIntercepted(ctx: Context, err: unknown): Promise<unknown> {
  if (!(err instanceof SdkError) || err.code !== 'ERR_NOT_INTERCEPTED') return err
  const d = err.details as { host?: unknown; port?: unknown; reason?: unknown }
  const host = typeof d.host === 'string' ? normalizeHost(d.host) : ''
  if ((d.reason !== 'no-match' && d.reason !== 'no-services') || !host || isIP(host) !== 0) return err
  const me = ctx.identity.name
  try {
    const probe = await ctx.dial(host, { timeoutMs: 5000 })
    // The service list was out of date: the identity may dial it now. Do not use this circuit.
    probe.destroy()
    return new SdkError(
      'ERR_NOT_INTERCEPTED',
      `${host}:${d.port} was not an overlay address when this request started (service ${host} became dialable just now): retry`,
      { ...err.details, service: host, reason: 'stale' },
    )
  } catch (e) {
    if ((e as SdkError).code !== 'ERR_NO_DIAL_PERMISSION') return err
    return new SdkError(
      'ERR_NOT_INTERCEPTED',
      `${host}:${d.port} is not an overlay address: service ${host} exists but identity ${me} has no Dial policy for it: run \`${policyAdvisorCommand(me, host)}\`; refused, nothing was sent to the network`,
      { ...err.details, service: host, reason: 'no-dial' },
    )
  }
}
