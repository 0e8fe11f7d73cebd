/**
 * PKI helpers (ECDSA P-256 throughout), used by the controller (network CA, identity and router
 * certificates), the CLI (`nullport pki create ...`), enrollment (CSRs), and every TLS peer
 * (chain verification). Certificates and keys cross module boundaries as PEM strings.
 *
 * One module per concept: defaults.ts (types, lifetimes), keys.ts, pem.ts, sans.ts, issuer.ts,
 * ca.ts (root and intermediate CAs), csr.ts, leaf.ts (issued certificates), verify.ts (chains),
 * cert-ids.ts (fingerprints, SPIFFE ids), renewal.ts. internal.ts is not exported.
 */
export { createIntermediateCa, createRootCa } from './ca.js'
export {
  certFingerprint,
  fingerprintSha256,
  hasUriSan,
  makeSpiffeId,
  parseSpiffeId,
  parseSubjectAltName,
  type SpiffeKind,
  type SubjectAltName,
  spiffeIdFromSan,
  spiffeIdOf,
  uriSans,
} from './cert-ids.js'
export { createCsr, type ParsedCsr, parseCsr } from './csr.js'
export {
  type CertUsage,
  DEFAULT_BACKDATE_SECONDS,
  DEFAULT_INTERMEDIATE_CA_DAYS,
  DEFAULT_ROOT_CA_DAYS,
  type IssuedPem,
  MAX_CHAIN_LENGTH,
} from './defaults.js'
export { generateKeyPem, publicKeyPemOf } from './keys.js'
export { createLeaf, issueCertificate } from './leaf.js'
export { splitPem } from './pem.js'
export * from './renewal.js'
export { isValidDnsName } from './sans.js'
export { type VerifiedChain, verifyCaChain, verifyChain } from './verify.js'
