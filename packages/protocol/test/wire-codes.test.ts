import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type AuthzDenyCode,
  DIAL_OUTCOME_REPLIES,
  dialOutcome,
  isWireCode,
  policyAdvisorCommand,
  WIRE_CODE_TABLE,
  WIRE_CODES,
  type WireCode,
  type WireCodeSentBy,
  wireCode,
  wireCodesSentBy,
  withFixHint,
} from '../src/index.js'

// The codes each package used on the wire or in its dial error mapping when the table was made
// (grep of packages/router/src/errors.ts RouterWireCode and router.ts, packages/sdk/src/errors.ts,
// packages/tunnel/src/tunnel.ts POLICY_CODES / UNREACHABLE_CODES and host.ts).
const ROUTER_WIRE_CODES = [
  'ERR_IDENTITY_NOT_FOUND',
  'ERR_IDENTITY_DISABLED',
  'ERR_SERVICE_NOT_FOUND',
  'ERR_NO_DIAL_PERMISSION',
  'ERR_NO_BIND_PERMISSION',
  'ERR_ROUTER_NOT_FOUND',
  'ERR_ROUTER_DISABLED',
  'ERR_NO_EDGE_ROUTER_POLICY',
  'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
  'ERR_CERT_REVOKED',
  'ERR_CERT_INVALID',
  'ERR_HANDSHAKE_TIMEOUT',
  'ERR_HELLO',
  'ERR_PROTOCOL',
  'ERR_NOT_READY',
  'ERR_TOO_MANY_CONNECTIONS',
  'ERR_ROUTER_SHUTDOWN',
  'ERR_LINK_REPLACED',
  'ERR_NO_TERMINATORS',
  'ERR_INVALID_TERMINATOR',
  'ERR_TERMINATOR_AT_CAPACITY',
  'ERR_NO_ROUTE',
  'ERR_DIAL_TIMEOUT',
  'ERR_TOO_MANY_CIRCUITS',
  'ERR_CIRCUIT_ID',
  'ERR_PEER_GONE',
  'ERR_FLOW_CONTROL',
  'ERR_REVOKED',
  'ERR_CONTROLLER_UNAVAILABLE',
  'ERR_BIND_FAILED',
  // sent by router.ts beside RouterWireCode
  'ERR_MAX_CONNECTIONS',
  'ERR_DIAL_REFUSED',
] as const

// SdkErrorCode members that are wire codes or dial failures (not options, enrollment, HTTP).
const SDK_DATA_PLANE_CODES = [
  'ERR_IDENTITY_REVOKED',
  'ERR_CONTEXT_CLOSED',
  'ERR_SERVICE_NOT_FOUND',
  'ERR_NO_DIAL_PERMISSION',
  'ERR_NO_BIND_PERMISSION',
  'ERR_NO_EDGE_ROUTERS',
  'ERR_NO_TERMINATORS',
  'ERR_DIAL_TIMEOUT',
  'ERR_DIAL_ABORTED',
  'ERR_DIAL_FAILED',
  'ERR_MAX_CONNECTIONS',
  'ERR_SERVICE_NOT_LISTENING',
  'ERR_BIND_FAILED',
  'ERR_IDENTITY_NOT_FOUND',
  'ERR_IDENTITY_DISABLED',
  'ERR_ROUTER_NOT_FOUND',
  'ERR_ROUTER_DISABLED',
  'ERR_NO_EDGE_ROUTER_POLICY',
  'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
  'ERR_INVALID_TERMINATOR',
  'ERR_TERMINATOR_AT_CAPACITY',
  'ERR_NO_ROUTE',
  'ERR_TOO_MANY_CIRCUITS',
  'ERR_CIRCUIT_ID',
  'ERR_PEER_GONE',
  'ERR_REVOKED',
  'ERR_CERT_REVOKED',
  'ERR_CERT_INVALID',
  'ERR_CONTROLLER_UNAVAILABLE',
  'ERR_ROUTER_SHUTDOWN',
  'ERR_TOO_MANY_CONNECTIONS',
  'ERR_ROUTER_UNREACHABLE',
  'ERR_ROUTER_VERIFY_FAILED',
  'ERR_ROUTER_HANDSHAKE',
  'ERR_ROUTER_CONNECTION_LOST',
  'ERR_PROTOCOL',
  'ERR_FLOW_CONTROL',
  'ERR_CIRCUIT_RESET',
  'ERR_CIRCUIT_CLOSED',
  'ERR_SOCKET_DESTROYED',
  'ERR_E2E_REQUIRED',
  'ERR_E2E_VERIFY_FAILED',
  'ERR_E2E_DECRYPT_FAILED',
  'ERR_E2E_HANDSHAKE',
  'ERR_E2E_IDENTITY_MISMATCH',
  'ERR_E2E_TRUNCATED',
] as const

// The tunneler's classification (tunnel.ts classifyDialError) when the table was made.
const TUNNEL_POLICY = [
  'ERR_SERVICE_NOT_FOUND',
  'ERR_NO_DIAL_PERMISSION',
  'ERR_IDENTITY_NOT_FOUND',
  'ERR_IDENTITY_DISABLED',
  'ERR_IDENTITY_REVOKED',
  'ERR_NO_EDGE_ROUTER_POLICY',
  'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
  'ERR_REVOKED',
  'ERR_CERT_REVOKED',
  'ERR_HOST_TARGET_NOT_ALLOWED',
]
const TUNNEL_UNREACHABLE = [
  'ERR_NO_TERMINATORS',
  'ERR_SERVICE_NOT_LISTENING',
  'ERR_NO_EDGE_ROUTERS',
  'ERR_NO_ROUTE',
  'ERR_DIAL_TIMEOUT',
  'ERR_ROUTER_UNREACHABLE',
  'ERR_ROUTER_CONNECTION_LOST',
  'ERR_UNDERLAY_TIMEOUT',
  'ERR_MAX_CONNECTIONS',
  'ERR_TERMINATOR_AT_CAPACITY',
  'ERR_PEER_GONE',
]
const TUNNEL_HOST_CODES = [
  'ERR_HOST_TARGET_NOT_ALLOWED',
  'ERR_HOST_CONFIG',
  'ERR_UNSUPPORTED',
  'ERR_UNDERLAY_UNREACHABLE',
  'ERR_UNDERLAY_TIMEOUT',
  'ERR_TOO_MANY_CONNECTIONS',
]

function tunnelClassify(code: string): { socks: number; http: number; kind: string } {
  if (TUNNEL_POLICY.includes(code)) return { socks: 0x02, http: 403, kind: 'refused by policy' }
  if (code === 'ERR_UNDERLAY_UNREACHABLE')
    return { socks: 0x05, http: 502, kind: 'the server behind the service refused the connection' }
  if (code === 'ERR_DIAL_TIMEOUT' || code === 'ERR_UNDERLAY_TIMEOUT')
    return { socks: 0x04, http: 504, kind: 'timed out' }
  if (TUNNEL_UNREACHABLE.includes(code)) return { socks: 0x04, http: 502, kind: 'the service is unreachable' }
  return { socks: 0x01, http: 502, kind: 'the dial failed' }
}

// Compile-time: the policy engine's deny codes and the router's codes are wire codes.
const _authz: WireCode = 'ERR_NO_DIAL_PERMISSION' satisfies AuthzDenyCode
const _router: WireCodeSentBy<'router'> = 'ERR_LINK_REPLACED'
void _authz
void _router

test('the table holds every code the router, SDK and tunneler use on the data plane', () => {
  for (const c of [...ROUTER_WIRE_CODES, ...SDK_DATA_PLANE_CODES, ...TUNNEL_POLICY, ...TUNNEL_UNREACHABLE])
    assert.ok(isWireCode(c), `${c} is missing from WIRE_CODE_TABLE`)
  for (const c of TUNNEL_HOST_CODES) assert.ok(wireCode(c)?.sentBy.includes('tunnel'), `${c} sent by tunnel`)
  const router = new Set<string>(wireCodesSentBy('router'))
  for (const c of ROUTER_WIRE_CODES) assert.ok(router.has(c), `${c} is sent by the router`)
  assert.equal(new Set(WIRE_CODES).size, WIRE_CODES.length)
  for (const c of WIRE_CODES) {
    assert.match(c, /^ERR_[A-Z0-9_]+$/)
    assert.ok(wireCode(c)!.sentBy.length > 0, `${c} names a sender`)
  }
})

test('the table is frozen', () => {
  assert.ok(Object.isFrozen(WIRE_CODE_TABLE))
  assert.ok(Object.isFrozen(WIRE_CODE_TABLE.ERR_NO_ROUTE))
  assert.ok(Object.isFrozen(WIRE_CODE_TABLE.ERR_NO_ROUTE.sentBy))
})

test('lookups: unknown codes and prototype names are not codes', () => {
  assert.equal(wireCode('ERR_NOPE'), undefined)
  assert.equal(wireCode('toString'), undefined)
  assert.equal(isWireCode('constructor'), false)
  assert.equal(isWireCode(42), false)
  assert.equal(wireCode('ERR_NO_ROUTE')?.category, 'unreachable')
  assert.equal(wireCode('ERR_DIAL_TIMEOUT')?.category, 'timeout')
  assert.equal(wireCode('ERR_NO_DIAL_PERMISSION')?.category, 'policy')
  assert.equal(wireCode('ERR_FLOW_CONTROL')?.category, 'protocol')
  assert.equal(wireCode('ERR_TOO_MANY_CIRCUITS')?.category, 'limit')
})

test('fix hints are the router texts, appended once and cut to 1024 characters', () => {
  const hints: Record<string, string> = {
    ERR_NO_DIAL_PERMISSION:
      'grant it with a Dial service-policy (nullport edge create service-policy NAME Dial ...)',
    ERR_NO_BIND_PERMISSION:
      'grant it with a Bind service-policy (nullport edge create service-policy NAME Bind ...)',
    ERR_NO_EDGE_ROUTER_POLICY: 'add an edge-router-policy giving the identity this router',
    ERR_NO_SERVICE_EDGE_ROUTER_POLICY: 'add a service-edge-router-policy giving the service this router',
    ERR_IDENTITY_DISABLED: 'enable the identity (nullport edge update identity NAME --disabled=false)',
    ERR_SERVICE_NOT_FOUND: 'check the service name (nullport edge list services)',
  }
  const withHint = WIRE_CODES.filter((c) => wireCode(c)?.hint !== undefined)
  assert.deepEqual(new Set(withHint), new Set(Object.keys(hints)))
  for (const [code, hint] of Object.entries(hints)) assert.equal(wireCode(code)?.hint, hint)

  const once = withFixHint('ERR_IDENTITY_DISABLED', 'identity laptop is disabled')
  assert.equal(once, `identity laptop is disabled: ${hints.ERR_IDENTITY_DISABLED}`)
  assert.equal(withFixHint('ERR_IDENTITY_DISABLED', once), once)
  assert.equal(withFixHint('ERR_NO_ROUTE', 'no route'), 'no route')
  assert.equal(withFixHint('ERR_NOPE', 'x'.repeat(2000)).length, 1024)
  assert.equal(withFixHint('ERR_NO_DIAL_PERMISSION', 'y'.repeat(1020)).length, 1024)
})

test('policy-advisor codes and command', () => {
  const advisor = WIRE_CODES.filter((c) => wireCode(c)?.advisor === true)
  assert.deepEqual(
    new Set(advisor),
    new Set([
      'ERR_SERVICE_NOT_FOUND',
      'ERR_NO_DIAL_PERMISSION',
      'ERR_NO_EDGE_ROUTER_POLICY',
      'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
      'ERR_NO_EDGE_ROUTERS',
    ]),
  )
  assert.equal(policyAdvisorCommand('laptop', 'db'), 'nullport edge policy-advisor identities laptop db')
})

test('dial outcomes reproduce the tunneler SOCKS reply and HTTP status for every code', () => {
  for (const c of [...WIRE_CODES, 'ERR_NOPE', 'ERR_DIAL_FAILED', '']) {
    const r = DIAL_OUTCOME_REPLIES[dialOutcome(c)]
    assert.deepEqual({ socks: r.socks, http: r.http, kind: r.kind }, tunnelClassify(c), c)
  }
  assert.equal(dialOutcome('ERR_UNDERLAY_UNREACHABLE'), 'underlay-refused')
  assert.equal(dialOutcome('ERR_UNDERLAY_TIMEOUT'), 'timeout')
  assert.equal(dialOutcome('ERR_CERT_INVALID'), 'failed')
})
