/**
 * @nullport/router: the edge router. `startRouter()` runs one; the CLI's `nullport router run`
 * wraps it with a config file.
 */

export * from './backoff.js'
export * from './circuit-table.js'
export * from './config.js'
export * from './errors.js'
export type { CertificateInfo, RenewOptions } from './renew.js'
export type { ForwardEnd, RouterHandle, RouterStats, RouterTestHooks, StartRouterOptions } from './router.js'
export { ROUTER_VERSION, startRouter } from './router.js'
export * from './sse.js'
export * from './strategy.js'
