/**
 * @nullport/protocol: what every Nullport component shares: the data-plane wire format, end-to-end
 * encryption, PKI helpers, the policy engine, the data model and identity files.
 */

export * from './e2e/index.js'
export * from './errors.js'
export * from './frames/index.js'
export * from './gc.js'
export * from './identity-file.js'
export * from './model.js'
export * from './pki/index.js'
export * from './policy/index.js'
export * from './sse.js'
export * from './net/preauth-guard.js'
