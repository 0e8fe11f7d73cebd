/**
 * Frame layout of the Nullport data-plane protocol, version 1 (full spec: docs/protocol.md).
 *
 * ```
 *  0       1       2               4                               8                              12
 *  +-------+-------+---------------+-------------------------------+-------------------------------+
 *  |  ver  | type  |     flags     |          circuit id           |        payload length         |
 *  |  u8   |  u8   |   u16 (BE)    |           u32 (BE)            |           u32 (BE)            |
 *  +-------+-------+---------------+-------------------------------+-------------------------------+
 *  |                             payload (length bytes)  ...                                       |
 *  +-----------------------------------------------------------------------------------------------+
 * ```
 *
 * Circuit ids are per connection. The side that opened the TLS connection allocates odd ids,
 * the side that accepted it even ids; 0 is the connection itself (hello, ping, bind control).
 * Every hop (SDK <-> router, router <-> router) has its own ids; routers rewrite them.
 */
import type { TerminatorPrecedence } from '../terminator-options.js'

export const PROTOCOL_VERSION = 1
export const HEADER_SIZE = 12
/** Largest payload of any frame. A decoder rejects a larger length before allocating anything. */
export const MAX_PAYLOAD = 128 * 1024
/** Largest payload of a DATA frame an SDK sends (plaintext chunk size is smaller when e2e adds a tag). */
export const MAX_DATA_PAYLOAD = 64 * 1024
/** Largest payload of a control frame (JSON). */
export const MAX_CONTROL_PAYLOAD = 64 * 1024
/** Initial per-circuit send window in bytes (of DATA payload), end to end. */
export const INITIAL_WINDOW = 4 * 1024 * 1024

/** Wire numbers; kept in ranges and never reused. */
export const FrameType = {
  // 0x0_: connection
  HELLO: 0x01,
  HELLO_ACK: 0x02,
  PING: 0x03,
  PONG: 0x04,
  GOAWAY: 0x05,
  // 0x1_: circuit setup
  DIAL: 0x10,
  DIAL_SUCCESS: 0x11,
  DIAL_FAILED: 0x12,
  // 0x2_: hosting
  BIND: 0x20,
  BIND_SUCCESS: 0x21,
  BIND_FAILED: 0x22,
  UNBIND: 0x23,
  // 0x3_: circuit data
  DATA: 0x30,
  HALF_CLOSE: 0x31,
  CLOSE: 0x32,
  WINDOW_UPDATE: 0x33,
} as const
export type FrameTypeName = keyof typeof FrameType
export type FrameTypeNumber = (typeof FrameType)[FrameTypeName]

/** Flag bits. Unknown bits set: the decoder rejects the frame. */
export const FrameFlag = {
  /** DATA: payload is an end-to-end encrypted record. */
  E2E: 0x0001,
} as const

/** Connection hello. The TLS client sends HELLO first; the server answers HELLO_ACK. */
export interface HelloPayload {
  /** Highest protocol version the sender speaks. */
  version: number
  role: 'sdk' | 'router'
  /** Sender's software, for logs. */
  agent: string
}
export interface HelloAckPayload {
  version: number
  role: 'router'
  /** Router id of the acceptor. */
  routerId: string
}

/** Certificate chain and signed ephemeral key of one end of a circuit (absent when e2e is off). */
export interface E2EHello {
  /** Base64 of the 32-byte X25519 public key. */
  publicKey: string
  /** PEM chain of the signer: leaf, then intermediate. */
  certChain: string
  /** Base64 ECDSA P-256 SHA-256 signature (DER) over the transcript (docs/security.md). */
  signature: string
  /** Base64 16 random bytes, chosen by the dialer and echoed by nobody else. */
  nonce: string
}

/** DIAL: SDK -> router (circuit setup). Router -> router and router -> hosting SDK carry the extra fields. */
export interface DialPayload {
  service: string
  /** Set by routers: who dialed (verified from the dialer's TLS certificate by the first router). */
  dialer?: { id: string; name: string }
  /** Set by routers: the chosen terminator and host identity. */
  terminatorId?: string
  hostIdentityId?: string
  /** Optional caller data for host.v1 forwarding (tunnelers): {protocol, address, port}. */
  appData?: { protocol?: 'tcp' | 'udp'; address?: string; port?: number; sourceAddress?: string }
  e2e?: E2EHello
  /** Circuit id assigned by the first router, for logs and revocation (hex, 16 bytes). */
  circuitTag?: string
}

export interface DialSuccessPayload {
  /** The host identity that accepted, as the router knows it; the dialer checks the e2e cert names it. */
  hostIdentity: { id: string; name: string }
  e2e?: E2EHello
  circuitTag: string
}

export interface DialFailedPayload {
  code: string
  message: string
}

export interface BindPayload {
  /** Client-chosen id (unique per connection) that BIND_SUCCESS/BIND_FAILED/UNBIND refer to. */
  bindId: number
  service: string
  cost: number
  precedence: TerminatorPrecedence
  maxConnections: number
}
export interface BindSuccessPayload {
  bindId: number
  terminatorId: string
}
export interface BindFailedPayload {
  bindId: number
  code: string
  message: string
}
export interface UnbindPayload {
  bindId: number
  /** Set when the router unbinds (revocation): why. */
  code?: string
  message?: string
}

export interface ClosePayload {
  /** Empty for a normal close; a code when the circuit is aborted. */
  code?: string
  message?: string
}

export interface GoawayPayload {
  code: string
  message: string
}

/** A decoded frame: a discriminated union by `type`. DATA keeps its payload as bytes. */
export type Frame =
  | { type: typeof FrameType.HELLO; circuitId: 0; flags: number; payload: HelloPayload }
  | { type: typeof FrameType.HELLO_ACK; circuitId: 0; flags: number; payload: HelloAckPayload }
  | { type: typeof FrameType.PING; circuitId: 0; flags: number; payload: Uint8Array }
  | { type: typeof FrameType.PONG; circuitId: 0; flags: number; payload: Uint8Array }
  | { type: typeof FrameType.GOAWAY; circuitId: 0; flags: number; payload: GoawayPayload }
  | { type: typeof FrameType.DIAL; circuitId: number; flags: number; payload: DialPayload }
  | { type: typeof FrameType.DIAL_SUCCESS; circuitId: number; flags: number; payload: DialSuccessPayload }
  | { type: typeof FrameType.DIAL_FAILED; circuitId: number; flags: number; payload: DialFailedPayload }
  | { type: typeof FrameType.BIND; circuitId: 0; flags: number; payload: BindPayload }
  | { type: typeof FrameType.BIND_SUCCESS; circuitId: 0; flags: number; payload: BindSuccessPayload }
  | { type: typeof FrameType.BIND_FAILED; circuitId: 0; flags: number; payload: BindFailedPayload }
  | { type: typeof FrameType.UNBIND; circuitId: 0; flags: number; payload: UnbindPayload }
  | { type: typeof FrameType.DATA; circuitId: number; flags: number; payload: Uint8Array }
  | { type: typeof FrameType.HALF_CLOSE; circuitId: number; flags: number; payload: Uint8Array }
  | { type: typeof FrameType.CLOSE; circuitId: number; flags: number; payload: ClosePayload }
  | { type: typeof FrameType.WINDOW_UPDATE; circuitId: number; flags: number; payload: { credit: number } }
