/**
 * PKI helpers (ECDSA P-256 throughout), used by the controller (network CA, identity and router
 * certificates), the CLI (`nullport pki create ...`), enrollment (CSRs), and every TLS peer
 * (chain verification). Certificates and keys cross module boundaries as PEM strings.
 *
 * OWNER: pki helper. Signatures here are the contract; implementations live in ./pki.ts.
 */
export * from './pki.js'
export * from './renewal.js'
