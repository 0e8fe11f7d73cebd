import { type ClientService, type InterceptV1, policyAdvisorCommand } from '@nullport/protocol'
import { type Cidr, cidrContains, type IpBytes, parseCidr, parseIp } from './ip.js'

/** One intercepted service, as the tunneler matches it. */
export interface InterceptRule {
  service: string
  protocols: Set<'tcp' | 'udp'>
  /** Exact host names (lower case, no trailing dot). */
  names: Set<string>
  /** `*.example.com` as `example.com` (matches any name below it, not the domain itself). */
  wildcards: string[]
  /** Addresses and CIDR blocks. */
  cidrs: Cidr[]
  portRanges: Array<{ low: number; high: number }>
  /** Addresses of the config that were ignored (invalid), for logs. */
  invalid: string[]
  dialOptions: { connectTimeoutSeconds?: number }
}

/** Result of matching a destination. */
export type InterceptMatch =
  | { ok: true; service: string; rule: InterceptRule; kind: 'name' | 'wildcard' | 'ip' | 'cidr' }
  | {
      ok: false
      /** `no-service`: nothing intercepts the address; `port`: something does, not on this port/protocol. */
      reason: 'no-service' | 'port'
      /** Services that intercept the address (for `port`). */
      services: string[]
    }

const NAME_RE = /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/

/** Lower-cases a host name and strips a trailing dot; null when it is not a valid host name. */
export function normalizeName(name: string): string | null {
  let n = name.toLowerCase()
  if (n.endsWith('.')) n = n.slice(0, -1)
  if (n.length === 0 || n.length > 253 || !NAME_RE.test(n)) return null
  return n
}

function validPortRange(r: unknown): r is { low: number; high: number } {
  if (!r || typeof r !== 'object') return false
  const { low, high } = r as { low: unknown; high: unknown }
  return (
    Number.isInteger(low) &&
    Number.isInteger(high) &&
    (low as number) >= 0 &&
    (high as number) <= 65535 &&
    (low as number) <= (high as number)
  )
}

/** Builds the match rule of one intercept.v1 config. Invalid entries are skipped (listed in `invalid`). */
export function compileIntercept(service: string, cfg: Partial<InterceptV1>): InterceptRule {
  const rule: InterceptRule = {
    service,
    protocols: new Set(
      (Array.isArray(cfg.protocols) ? cfg.protocols : []).filter((p) => p === 'tcp' || p === 'udp'),
    ),
    names: new Set(),
    wildcards: [],
    cidrs: [],
    portRanges: (Array.isArray(cfg.portRanges) ? cfg.portRanges : []).filter(validPortRange),
    invalid: [],
    dialOptions: {},
  }
  const cts = cfg.dialOptions?.connectTimeoutSeconds
  if (typeof cts === 'number' && cts > 0 && cts <= 3600) rule.dialOptions.connectTimeoutSeconds = cts
  for (const raw of Array.isArray(cfg.addresses) ? cfg.addresses : []) {
    if (typeof raw !== 'string') continue
    const a = raw.trim()
    const cidr = parseCidr(a)
    if (cidr) {
      rule.cidrs.push(cidr)
      continue
    }
    if (a.startsWith('*.')) {
      const d = normalizeName(a.slice(2))
      if (d) rule.wildcards.push(d)
      else rule.invalid.push(raw)
      continue
    }
    const n = normalizeName(a)
    if (n) rule.names.add(n)
    else rule.invalid.push(raw)
  }
  return rule
}

function portOk(rule: InterceptRule, port: number, protocol: 'tcp' | 'udp'): boolean {
  if (!rule.protocols.has(protocol)) return false
  return rule.portRanges.some((r) => port >= r.low && port <= r.high)
}

/**
 * The intercept side's table: which Dial-able service intercepts a destination (host name or IP,
 * port). The most specific address wins: exact name, then the longest wildcard domain, then an
 * exact IP, then the longest CIDR prefix; among equals, the service name sorting first (stable).
 * A destination whose address matches but whose port or protocol does not is refused (`port`).
 */
export class InterceptTable {
  readonly rules: InterceptRule[]
  constructor(rules: InterceptRule[]) {
    this.rules = [...rules].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0))
  }

  /** Builds the table from an SDK service list: services with Dial permission and an intercept.v1 config. */
  static fromServices(services: ClientService[]): InterceptTable {
    const rules: InterceptRule[] = []
    for (const s of services) {
      if (!s.permissions.includes('Dial')) continue
      const cfg = s.config['intercept.v1']
      if (!cfg || typeof cfg !== 'object') continue
      rules.push(compileIntercept(s.name, cfg as Partial<InterceptV1>))
    }
    return new InterceptTable(rules)
  }

  /** True when some service intercepts this host name (any port): used to answer DNS. */
  interceptsName(host: string): boolean {
    const n = normalizeName(host)
    if (!n) return false
    return this.rules.some((r) => nameScore(r, n) > 0)
  }

  /** Matches a destination. `host` is a host name or an IP literal. */
  match(host: string, port: number, protocol: 'tcp' | 'udp' = 'tcp'): InterceptMatch {
    const ip = parseIp(host)
    let best: { rule: InterceptRule; score: number; kind: 'name' | 'wildcard' | 'ip' | 'cidr' } | null = null
    const addressOnly: string[] = []
    if (ip) {
      for (const r of this.rules) {
        const s = ipScore(r, ip)
        if (s < 0) continue
        if (!portOk(r, port, protocol)) {
          addressOnly.push(r.service)
          continue
        }
        if (!best || s > best.score) best = { rule: r, score: s, kind: s === ip.length * 8 ? 'ip' : 'cidr' }
      }
    } else {
      const n = normalizeName(host)
      if (n) {
        for (const r of this.rules) {
          const s = nameScore(r, n)
          if (s <= 0) continue
          if (!portOk(r, port, protocol)) {
            addressOnly.push(r.service)
            continue
          }
          if (!best || s > best.score) best = { rule: r, score: s, kind: s === 1e6 ? 'name' : 'wildcard' }
        }
      }
    }
    if (best) return { ok: true, service: best.rule.service, rule: best.rule, kind: best.kind }
    if (addressOnly.length > 0) return { ok: false, reason: 'port', services: addressOnly }
    return { ok: false, reason: 'no-service', services: [] }
  }
}

/** Why `name:port` is not intercepted for `identity`: the refusal code and a message naming the fix. */
export function interceptRefusal(
  identity: string,
  name: string,
  port: number,
  m: Extract<InterceptMatch, { ok: false }>,
): { code: 'ERR_PORT_NOT_INTERCEPTED' | 'ERR_NO_INTERCEPT'; text: string } {
  if (m.reason === 'port') {
    return {
      code: 'ERR_PORT_NOT_INTERCEPTED',
      text: `${name}:${port} is not intercepted: service(s) ${m.services.join(', ')} intercept ${name}, but not port ${port}/tcp. Fix: use an intercepted port, or add it to the portRanges of their intercept.v1 config.`,
    }
  }
  return {
    code: 'ERR_NO_INTERCEPT',
    text: `${name}:${port} is not intercepted for identity ${identity}: no service it may Dial has an intercept.v1 address matching ${name}. Fix: create a service with an intercept.v1 config for ${name} and a Dial policy for ${identity} (\`${policyAdvisorCommand(identity, 'SERVICE')}\` explains access).`,
  }
}

/** 1e6 for an exact name, the wildcard domain's length for a wildcard match, 0 for none. */
function nameScore(r: InterceptRule, n: string): number {
  if (r.names.has(n)) return 1e6
  let best = 0
  for (const d of r.wildcards) {
    if (n.length > d.length + 1 && n.endsWith(d) && n.charCodeAt(n.length - d.length - 1) === 46) {
      if (d.length > best) best = d.length
    }
  }
  return best
}

/** The longest matching prefix length, -1 for none. */
function ipScore(r: InterceptRule, ip: IpBytes): number {
  let best = -1
  for (const c of r.cidrs) if (c.prefix > best && cidrContains(c, ip)) best = c.prefix
  return best
}
