import type { HostV1 } from '@nullport/protocol'
import { compileIntercept, normalizeName } from './intercept.js'
import { cidrContains, parseIp } from './ip.js'

/** Where a hosted circuit goes on the underlay. */
export type HostTarget =
  | { ok: true; protocol: 'tcp' | 'udp'; address: string; port: number }
  | { ok: false; code: 'ERR_HOST_TARGET_NOT_ALLOWED' | 'ERR_HOST_CONFIG' | 'ERR_UNSUPPORTED'; reason: string }

export interface AppData {
  protocol?: 'tcp' | 'udp'
  address?: string
  port?: number
  sourceAddress?: string
}

/** True when `address` (name or IP) is in host.v1 `allowedAddresses` (names, `*.domain`, IPs, CIDRs). */
export function addressAllowed(allowed: string[] | undefined, address: string): boolean {
  if (!allowed || allowed.length === 0) return false
  const rule = compileIntercept('', { protocols: ['tcp'], addresses: allowed, portRanges: [] })
  const ip = parseIp(address)
  if (ip) return rule.cidrs.some((c) => cidrContains(c, ip))
  const n = normalizeName(address)
  if (!n) return false
  if (rule.names.has(n)) return true
  return rule.wildcards.some((d) => n.length > d.length + 1 && n.endsWith(`.${d}`))
}

/**
 * The underlay target of one circuit from the host.v1 config and the dialer's appData. Forwarded
 * fields must be present and inside the allowed lists; fixed fields ignore appData.
 */
export function resolveHostTarget(cfg: HostV1, appData: AppData | undefined): HostTarget {
  let protocol: 'tcp' | 'udp'
  if (cfg.forwardProtocol) {
    const p = appData?.protocol
    if (!p)
      return {
        ok: false,
        code: 'ERR_HOST_TARGET_NOT_ALLOWED',
        reason: 'host.v1 forwards the protocol, but the dialer sent none',
      }
    if (!cfg.allowedProtocols?.includes(p)) {
      return {
        ok: false,
        code: 'ERR_HOST_TARGET_NOT_ALLOWED',
        reason: `protocol ${p} is not in host.v1 allowedProtocols`,
      }
    }
    protocol = p
  } else protocol = cfg.protocol ?? 'tcp'
  if (protocol !== 'tcp')
    return {
      ok: false,
      code: 'ERR_UNSUPPORTED',
      reason: `protocol ${protocol} is not supported by this tunneler (tcp only)`,
    }

  let address: string
  if (cfg.forwardAddress) {
    const a = appData?.address
    if (!a)
      return {
        ok: false,
        code: 'ERR_HOST_TARGET_NOT_ALLOWED',
        reason: 'host.v1 forwards the address, but the dialer sent none',
      }
    if (!addressAllowed(cfg.allowedAddresses, a)) {
      return {
        ok: false,
        code: 'ERR_HOST_TARGET_NOT_ALLOWED',
        reason: `address ${a} is not in host.v1 allowedAddresses`,
      }
    }
    address = a
  } else if (typeof cfg.address === 'string' && cfg.address.length > 0) address = cfg.address
  else return { ok: false, code: 'ERR_HOST_CONFIG', reason: 'host.v1 has neither address nor forwardAddress' }

  let port: number
  if (cfg.forwardPort) {
    const p = appData?.port
    if (typeof p !== 'number')
      return {
        ok: false,
        code: 'ERR_HOST_TARGET_NOT_ALLOWED',
        reason: 'host.v1 forwards the port, but the dialer sent none',
      }
    if (!(cfg.allowedPortRanges ?? []).some((r) => p >= r.low && p <= r.high)) {
      return {
        ok: false,
        code: 'ERR_HOST_TARGET_NOT_ALLOWED',
        reason: `port ${p} is not in host.v1 allowedPortRanges`,
      }
    }
    port = p
  } else if (Number.isInteger(cfg.port) && cfg.port! > 0 && cfg.port! <= 65535) port = cfg.port!
  else return { ok: false, code: 'ERR_HOST_CONFIG', reason: 'host.v1 has neither port nor forwardPort' }
  return { ok: true, protocol, address, port }
}

/** host.v1 listenOptions.connectTimeout ("5s", "500ms") / connectTimeoutSeconds, in ms; default 5000. */
export function hostConnectTimeoutMs(cfg: HostV1): number {
  const lo = cfg.listenOptions
  if (lo?.connectTimeoutSeconds && lo.connectTimeoutSeconds > 0)
    return Math.min(lo.connectTimeoutSeconds, 600) * 1000
  const m = typeof lo?.connectTimeout === 'string' ? /^(\d+)(ms|s|m)$/.exec(lo.connectTimeout) : null
  if (m) {
    const v = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60000)
    if (v > 0) return Math.min(v, 600_000)
  }
  return 5000
}
