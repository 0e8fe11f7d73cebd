/**
 * @nullport/sdk: dial and host services on a Nullport overlay from Node.js, with no listening
 * port, policy checked by routers, and end-to-end encryption between the two SDKs.
 */

export type { BackoffOptions } from '@nullport/protocol'
export { Context, loadContext } from './context.js'
export type { ContextOptions } from './context-options.js'
export type { DialOptions } from './dialer.js'
export * from './enroll.js'
export * from './errors.js'
// HTTP, zitify, serve (src/http, zitify.ts, serve.ts; also adds ctx.fetch/dispatcher/httpAgent/httpsAgent/serve)
export * from './http/index.js'
export type { Logger } from './logger.js'
export {
  type IncomingDial,
  type ListenOptions,
  OverlayServer,
  type TerminatorInfo,
} from './overlay-server.js'
export {
  type CircuitLink,
  OverlaySocket,
  type OverlaySocketInit,
  type PeerIdentity,
} from './overlay-socket.js'
export type { CertificateInfo, RenewOption } from './renew.js'
export { type ServeHandle, type ServeOptions, serve } from './serve.js'
export { type ZitifyBinding, type ZitifyBindings, type ZitifyOptions, zitify } from './zitify.js'
