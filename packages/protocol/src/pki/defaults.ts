/** Public types and defaults of the PKI helpers. */

export type CertUsage = 'client' | 'server' | 'both'

export interface IssuedPem {
  certPem: string
  keyPem: string
}

/** Default lifetimes (days) of `createRootCa` and `createIntermediateCa`. */
export const DEFAULT_ROOT_CA_DAYS = 3650
export const DEFAULT_INTERMEDIATE_CA_DAYS = 1825
/** Default backdating of notBefore, in seconds (clock skew between machines). */
export const DEFAULT_BACKDATE_SECONDS = 60
/** Longest accepted certificate path (leaf + intermediates + root) and chainPem length. */
export const MAX_CHAIN_LENGTH = 5
