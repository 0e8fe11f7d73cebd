export { answerDns, type DnsDecision, DnsServer, type DnsServerOptions, FakeIpPool } from './dns.js'
export { classifyDialError, dialErrorCode } from './dial-errors.js'
export * from './errors.js'
export { addressAllowed, type HostTarget, hostConnectTimeoutMs, resolveHostTarget } from './host-target.js'
export * from './http-parser.js'
export {
  compileIntercept,
  type InterceptMatch,
  type InterceptRule,
  InterceptTable,
  normalizeName,
} from './intercept.js'
export { type Cidr, cidrContains, formatIp, parseCidr, parseIp } from './ip.js'
export { createTunnelLogger, silentTunnelLogger, type TunnelLogger } from './log.js'
export type { ListenAddress, TunnelOptions } from './options.js'
export * from './socks-parser.js'
export { Tunneler } from './tunneler.js'
