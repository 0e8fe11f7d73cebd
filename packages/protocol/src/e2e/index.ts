/**
 * End-to-end encryption of circuits (design: docs/security.md). OWNER: protocol helper.
 *
 * Handshake: each end makes an ephemeral X25519 key and signs the transcript with its identity
 * key (ECDSA P-256, the key of its network certificate). The dialer's hello goes in DIAL, the
 * host's in DIAL_SUCCESS. Each end verifies the other's chain to the network CA and checks the
 * SPIFFE identity. Keys: HKDF-SHA256 over the X25519 secret, salted with the transcript hash,
 * one key per direction; AES-256-GCM records with implicit counter nonces, so a dropped,
 * reordered, replayed or altered record fails to open. The end of stream is an authenticated
 * record too, so a router cannot truncate a stream undetected.
 */
export * from './e2e.js'
export { e2eEphemeralPoolTarget } from './x25519.js'
