/**
 * @nullport/protocol: what every Nullport component shares: the data-plane wire format, end-to-end
 * encryption, PKI helpers, the policy engine, the data model, identity files, and the shared
 * vocabulary (data-plane error codes, backoff, HOST:PORT, atomic files, the controller's HTTPS
 * JSON client and event streams, terminator options).
 */

export * from './backoff.js'
export * from './control/event-stream.js'
export * from './control/https-json.js'
export * from './control/sse.js'
export * from './e2e/index.js'
export * from './errors.js'
export * from './frames/index.js'
export * from './fs/atomic.js'
export * from './gc.js'
export * from './identity-file.js'
export * from './model.js'
export * from './net/host-port.js'
export * from './net/metrics-server.js'
export * from './net/preauth-guard.js'
export * from './pki/index.js'
export * from './policy/index.js'
export * from './terminator-options.js'
export * from './wire-codes.js'
