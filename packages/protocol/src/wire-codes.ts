/**
 * The data-plane error codes: every `code` a router, an SDK or a tunneler puts in DIAL_FAILED,
 * BIND_FAILED, CLOSE, UNBIND or GOAWAY, plus the SDK's local dial failures a tunneler reports to
 * its clients. One row per code: its category, which side sends it, the fix hint a refusal
 * message carries, and how a failed dial is reported to a SOCKS / HTTP proxy client.
 *
 * Codes are never renamed or reused (peers and applications match on them).
 *
 * @example
 * const info = wireCode('ERR_NO_DIAL_PERMISSION') // { category: 'policy', hint: 'grant it ...', ... }
 * const msg = withFixHint(code, `identity ${name} may not dial ${service}`)
 */

/** What kind of cause a code names. */
export type WireCodeCategory =
  /** A policy or an entity the controller manages refuses it (fix: a policy or entity change). */
  | 'policy'
  /** A certificate or an identity was revoked, or the presented one is not valid. */
  | 'auth'
  /** Nothing answers: no host, no route, a router or a connection is gone. */
  | 'unreachable'
  /** An answer did not come in time. */
  | 'timeout'
  /** A limit was reached (connections, circuits, a host's capacity). */
  | 'limit'
  /** The peer broke the protocol (frames, HELLO, flow control, e2e). */
  | 'protocol'
  /** The peer or the router is starting, stopping or replacing the connection. */
  | 'lifecycle'
  /** A hosting tunneler refused or could not reach its underlay target. */
  | 'host'
  /** A generic failure: the message says more. */
  | 'failed'

/**
 * Who sends a code: `router` and `sdk` put it on the wire, `tunnel` is a hosting tunneler (sent
 * through its SDK as DIAL_FAILED), `local` is raised inside the SDK only (never sent as such).
 */
export type WireSide = 'router' | 'sdk' | 'tunnel' | 'local'

/**
 * How a proxy (the tunneler's SOCKS5 and HTTP frontends) reports a failed dial to its client:
 * `refused` (policy), `underlay-refused` (the server behind the service refused), `timeout`,
 * `unreachable`, `failed` (anything else).
 */
export type DialOutcome = 'refused' | 'underlay-refused' | 'timeout' | 'unreachable' | 'failed'

/** One row of the table. */
export interface WireCodeInfo {
  readonly category: WireCodeCategory
  readonly sentBy: readonly WireSide[]
  /** The command that fixes the cause; appended to refusal messages by withFixHint(). */
  readonly hint?: string
  /**
   * True when `nullport edge policy-advisor identities IDENTITY SERVICE` explains the refusal
   * (the SDK appends it to its message, see policyAdvisorCommand()).
   */
  readonly advisor?: boolean
  /** How a proxy reports it when a dial fails with this code. Default `failed`. */
  readonly dial?: DialOutcome
}

/** The table. Keep it in sync with docs/protocol.md; a test checks every code used is here. */
export const WIRE_CODE_TABLE = {
  // ------------------------------------------------ policy refusals (PolicyIndex AuthzDenyCode)
  ERR_IDENTITY_NOT_FOUND: { category: 'policy', sentBy: ['router'], dial: 'refused' },
  ERR_IDENTITY_DISABLED: {
    category: 'policy',
    sentBy: ['router'],
    hint: 'enable the identity (nullport edge update identity NAME --disabled=false)',
    dial: 'refused',
  },
  ERR_SERVICE_NOT_FOUND: {
    category: 'policy',
    sentBy: ['router', 'local'],
    hint: 'check the service name (nullport edge list services)',
    advisor: true,
    dial: 'refused',
  },
  ERR_NO_DIAL_PERMISSION: {
    category: 'policy',
    sentBy: ['router', 'local'],
    hint: 'grant it with a Dial service-policy (nullport edge create service-policy NAME Dial ...)',
    advisor: true,
    dial: 'refused',
  },
  ERR_NO_BIND_PERMISSION: {
    category: 'policy',
    sentBy: ['router', 'local'],
    hint: 'grant it with a Bind service-policy (nullport edge create service-policy NAME Bind ...)',
  },
  ERR_ROUTER_NOT_FOUND: { category: 'policy', sentBy: ['router'] },
  ERR_ROUTER_DISABLED: { category: 'policy', sentBy: ['router'] },
  ERR_NO_EDGE_ROUTER_POLICY: {
    category: 'policy',
    sentBy: ['router'],
    hint: 'add an edge-router-policy giving the identity this router',
    advisor: true,
    dial: 'refused',
  },
  ERR_NO_SERVICE_EDGE_ROUTER_POLICY: {
    category: 'policy',
    sentBy: ['router'],
    hint: 'add a service-edge-router-policy giving the service this router',
    advisor: true,
    dial: 'refused',
  },
  ERR_HOST_TARGET_NOT_ALLOWED: { category: 'policy', sentBy: ['tunnel'], dial: 'refused' },

  // ------------------------------------------------ certificates and revocation
  ERR_CERT_REVOKED: { category: 'auth', sentBy: ['router'], dial: 'refused' },
  ERR_CERT_INVALID: { category: 'auth', sentBy: ['router'] },
  ERR_REVOKED: { category: 'auth', sentBy: ['router'], dial: 'refused' },
  ERR_IDENTITY_REVOKED: { category: 'auth', sentBy: ['local'], dial: 'refused' },

  // ------------------------------------------------ connection level (GOAWAY)
  ERR_HANDSHAKE_TIMEOUT: { category: 'timeout', sentBy: ['router'] },
  ERR_HELLO: { category: 'protocol', sentBy: ['router'] },
  ERR_PROTOCOL: { category: 'protocol', sentBy: ['router', 'local'] },
  ERR_FRAME_VERSION: { category: 'protocol', sentBy: ['router', 'sdk'] },
  ERR_FRAME_TYPE: { category: 'protocol', sentBy: ['router', 'sdk'] },
  ERR_FRAME_TOO_LARGE: { category: 'protocol', sentBy: ['router', 'sdk'] },
  ERR_FRAME_MALFORMED: { category: 'protocol', sentBy: ['router', 'sdk'] },
  ERR_FRAME_PAYLOAD: { category: 'protocol', sentBy: ['router', 'sdk'] },
  ERR_NOT_READY: { category: 'lifecycle', sentBy: ['router'] },
  ERR_TOO_MANY_CONNECTIONS: { category: 'limit', sentBy: ['router', 'tunnel'] },
  ERR_ROUTER_SHUTDOWN: { category: 'lifecycle', sentBy: ['router'] },
  ERR_LINK_REPLACED: { category: 'lifecycle', sentBy: ['router'] },

  // ------------------------------------------------ circuit setup (DIAL_FAILED)
  ERR_NO_TERMINATORS: { category: 'unreachable', sentBy: ['router'], dial: 'unreachable' },
  ERR_INVALID_TERMINATOR: { category: 'policy', sentBy: ['router'] },
  ERR_TERMINATOR_AT_CAPACITY: { category: 'limit', sentBy: ['router'], dial: 'unreachable' },
  ERR_MAX_CONNECTIONS: { category: 'limit', sentBy: ['router', 'sdk'], dial: 'unreachable' },
  ERR_NO_ROUTE: { category: 'unreachable', sentBy: ['router'], dial: 'unreachable' },
  ERR_DIAL_TIMEOUT: { category: 'timeout', sentBy: ['router', 'sdk'], dial: 'timeout' },
  ERR_DIAL_REFUSED: { category: 'failed', sentBy: ['router'] },
  ERR_DIAL_FAILED: { category: 'failed', sentBy: ['sdk', 'local'] },
  ERR_TOO_MANY_CIRCUITS: { category: 'limit', sentBy: ['router'] },
  ERR_CIRCUIT_ID: { category: 'protocol', sentBy: ['router', 'sdk'] },
  ERR_SERVICE_NOT_LISTENING: { category: 'unreachable', sentBy: ['sdk'], dial: 'unreachable' },

  // ------------------------------------------------ circuit teardown (CLOSE)
  ERR_PEER_GONE: { category: 'unreachable', sentBy: ['router'], dial: 'unreachable' },
  ERR_FLOW_CONTROL: { category: 'protocol', sentBy: ['router', 'sdk'] },
  ERR_CIRCUIT_CLOSED: { category: 'failed', sentBy: ['sdk'] },
  ERR_CIRCUIT_RESET: { category: 'failed', sentBy: ['local'] },
  ERR_SOCKET_DESTROYED: { category: 'failed', sentBy: ['local'] },

  // ------------------------------------------------ binding (BIND_FAILED, UNBIND)
  ERR_CONTROLLER_UNAVAILABLE: { category: 'unreachable', sentBy: ['router'] },
  ERR_BIND_FAILED: { category: 'failed', sentBy: ['router', 'local'] },

  // ------------------------------------------------ end-to-end encryption (CLOSE, DIAL_FAILED)
  ERR_E2E_REQUIRED: { category: 'protocol', sentBy: ['sdk', 'local'] },
  ERR_E2E_VERIFY_FAILED: { category: 'protocol', sentBy: ['sdk'] },
  ERR_E2E_DECRYPT_FAILED: { category: 'protocol', sentBy: ['sdk'] },
  ERR_E2E_HANDSHAKE: { category: 'protocol', sentBy: ['sdk'] },
  ERR_E2E_IDENTITY_MISMATCH: { category: 'protocol', sentBy: ['sdk'] },
  ERR_E2E_TRUNCATED: { category: 'protocol', sentBy: ['sdk'] },

  // ------------------------------------------------ SDK-local dial failures
  ERR_NO_EDGE_ROUTERS: { category: 'unreachable', sentBy: ['local'], advisor: true, dial: 'unreachable' },
  ERR_ROUTER_UNREACHABLE: { category: 'unreachable', sentBy: ['local'], dial: 'unreachable' },
  ERR_ROUTER_CONNECTION_LOST: { category: 'unreachable', sentBy: ['local'], dial: 'unreachable' },
  ERR_ROUTER_VERIFY_FAILED: { category: 'auth', sentBy: ['local'] },
  ERR_ROUTER_HANDSHAKE: { category: 'protocol', sentBy: ['local'] },
  ERR_DIAL_ABORTED: { category: 'failed', sentBy: ['local'] },
  ERR_CONTEXT_CLOSED: { category: 'lifecycle', sentBy: ['local'] },

  // ------------------------------------------------ hosting tunneler (DIAL_FAILED to the dialer)
  ERR_HOST_CONFIG: { category: 'host', sentBy: ['tunnel'] },
  ERR_UNSUPPORTED: { category: 'host', sentBy: ['tunnel'] },
  ERR_UNDERLAY_UNREACHABLE: { category: 'host', sentBy: ['tunnel'], dial: 'underlay-refused' },
  ERR_UNDERLAY_TIMEOUT: { category: 'host', sentBy: ['tunnel'], dial: 'timeout' },
} as const satisfies Record<string, WireCodeInfo>

for (const row of Object.values(WIRE_CODE_TABLE)) {
  Object.freeze(row.sentBy)
  Object.freeze(row)
}
Object.freeze(WIRE_CODE_TABLE)

type Table = typeof WIRE_CODE_TABLE

/** Every data-plane error code. */
export type WireCode = keyof Table

/** The codes `side` sends, e.g. `WireCodeSentBy<'router'>` (the router's wire codes). */
export type WireCodeSentBy<S extends WireSide> = {
  [K in WireCode]: S extends Table[K]['sentBy'][number] ? K : never
}[WireCode]

/** The codes of one category, e.g. `WireCodeOf<'policy'>`. */
export type WireCodeOf<C extends WireCodeCategory> = {
  [K in WireCode]: Table[K]['category'] extends C ? K : never
}[WireCode]

/** Every code, in table order. */
export const WIRE_CODES: readonly WireCode[] = Object.keys(WIRE_CODE_TABLE) as WireCode[]

const TABLE: Readonly<Record<string, WireCodeInfo>> = WIRE_CODE_TABLE

/** True when `code` is a data-plane code of the table. */
export function isWireCode(code: unknown): code is WireCode {
  return typeof code === 'string' && Object.hasOwn(TABLE, code)
}

/** The row of `code` (category, sides, hint), or undefined for a code not in the table. */
export function wireCode(code: string): WireCodeInfo | undefined {
  return Object.hasOwn(TABLE, code) ? TABLE[code] : undefined
}

/** The codes `side` sends (a runtime list for WireCodeSentBy). */
export function wireCodesSentBy<S extends WireSide>(side: S): readonly WireCodeSentBy<S>[] {
  return WIRE_CODES.filter((c) =>
    (TABLE[c]!.sentBy as readonly string[]).includes(side),
  ) as WireCodeSentBy<S>[]
}

/** Longest message a DIAL_FAILED / BIND_FAILED / CLOSE / GOAWAY payload carries. */
export const WIRE_MESSAGE_MAX = 1024

/**
 * `message` with the fix hint of `code` appended (`message: hint`) unless it already holds it,
 * cut to WIRE_MESSAGE_MAX characters.
 */
export function withFixHint(code: string, message: string): string {
  const hint = wireCode(code)?.hint
  const m = hint && !message.includes(hint) ? `${message}: ${hint}` : message
  return m.slice(0, WIRE_MESSAGE_MAX)
}

/** The command that explains a refusal of `service` to `identity`. */
export function policyAdvisorCommand(identity: string, service: string): string {
  return `nullport edge policy-advisor identities ${identity} ${service}`
}

/** How a proxy answers its client for one DialOutcome. */
export interface DialOutcomeReply {
  /** SOCKS5 reply code (RFC 1928): 0x01 general failure, 0x02 not allowed, 0x04 host unreachable, 0x05 refused. */
  readonly socks: 0x01 | 0x02 | 0x04 | 0x05
  /** HTTP proxy status. */
  readonly http: 403 | 502 | 504
  /** Words for the client and the log. */
  readonly kind: string
}

export const DIAL_OUTCOME_REPLIES: Readonly<Record<DialOutcome, DialOutcomeReply>> = {
  refused: { socks: 0x02, http: 403, kind: 'refused by policy' },
  'underlay-refused': {
    socks: 0x05,
    http: 502,
    kind: 'the server behind the service refused the connection',
  },
  timeout: { socks: 0x04, http: 504, kind: 'timed out' },
  unreachable: { socks: 0x04, http: 502, kind: 'the service is unreachable' },
  failed: { socks: 0x01, http: 502, kind: 'the dial failed' },
}

/** How a dial that failed with `code` (any string; unknown codes are `failed`) is reported. */
export function dialOutcome(code: string): DialOutcome {
  return wireCode(code)?.dial ?? 'failed'
}
