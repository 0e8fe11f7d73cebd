/**
 * @nullport/router: the edge router. `startRouter()` runs one; the CLI's `nullport router run`
 * wraps it with a config file.
 */

export * from './circuits/circuit-table.js'
export * from './config.js'
export * from './errors.js'
export type { ForwardEnd, RouterTestHooks, StartRouterOptions } from './options.js'
export type { CertificateInfo, RenewOptions } from './renew.js'
export type { RouterHandle, RouterStats } from './router.js'
export { startRouter } from './router.js'
export * from './terminators/strategy.js'
export { ROUTER_VERSION } from './version.js'
