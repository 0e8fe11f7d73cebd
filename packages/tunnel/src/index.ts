export { answerDns, type DnsDecision, DnsServer, type DnsServerOptions, FakeIpPool } from './dns.js'
export * from './errors.js'
export { addressAllowed, type HostTarget, hostConnectTimeoutMs, resolveHostTarget } from './host.js'
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
export * from './socks.js'
export {
  classifyDialError,
  dialErrorCode,
  type ListenAddress,
  Tunneler,
  type TunnelOptions,
} from './tunnel.js'
