/**
 * Field-by-field validation of JSON control payloads (docs/protocol.md lists every field and
 * bound). Every object is closed (unknown fields are refused), strings have bounded lengths,
 * numbers are finite integers in range. Failures throw ProtocolError ERR_FRAME_PAYLOAD naming
 * the frame type and the field. `undefined` counts as absent (so encoding a payload with an
 * optional field set to undefined is fine: JSON drops it).
 */
import { ProtocolError } from '../errors.js'
import { TERMINATOR_PRECEDENCES } from '../terminator-options.js'
import { FrameType } from './types.js'

/** Bounds of control payload fields (docs/protocol.md, "Number ranges"). */
export const FieldLimits = {
  /** Ids (identity, router, terminator, service): 1..128 characters. */
  id: 128,
  /** Names and service names: 1..256 characters. */
  name: 256,
  /** Error codes: 1..64 characters of [A-Za-z0-9_.:-]. */
  code: 64,
  /** Human-readable messages: 0..1024 characters. */
  message: 1024,
  /** HELLO agent string: 0..256 characters. */
  agent: 256,
  /** Addresses in appData: 0..256 characters. */
  address: 256,
  /** E2E certificate chain PEM: 1..16384 characters. */
  certChain: 16384,
  /** Base64 fields of E2EHello. */
  publicKey: 64,
  signature: 256,
  nonce: 64,
  /** circuitTag: 32 lower-case hex characters (16 bytes). */
  circuitTag: 32,
  /** bindId, cost and maxConnections ranges. */
  bindIdMax: 0xffff_ffff,
  costMax: 0xffff,
  maxConnectionsMax: 0x7fff_ffff,
  versionMax: 0xff,
} as const

type Check = (v: unknown, path: string, ctx: Ctx) => void
interface Ctx {
  type: number
  name: string
}
interface Field {
  check: Check
  optional?: boolean
}

function fail(ctx: Ctx, path: string, what: string): never {
  throw new ProtocolError(
    'ERR_FRAME_PAYLOAD',
    `${ctx.name} payload${path === '' ? '' : ` field ${path}`} ${what}`,
    { type: ctx.type, field: path },
  )
}

function req(check: Check): Field {
  return { check }
}
function opt(check: Check): Field {
  return { check, optional: true }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

function obj(fields: Record<string, Field>): Check {
  const names = Object.keys(fields)
  return (v, path, ctx) => {
    if (!isPlainObject(v)) fail(ctx, path, 'must be an object')
    for (const k of Object.keys(v)) {
      if (!Object.hasOwn(fields, k)) {
        if (v[k] === undefined) continue
        fail(ctx, path === '' ? k : `${path}.${k}`, 'is not a known field')
      }
    }
    for (const k of names) {
      const f = fields[k]!
      const p = path === '' ? k : `${path}.${k}`
      const x = Object.hasOwn(v, k) ? v[k] : undefined
      if (x === undefined) {
        if (!f.optional) fail(ctx, p, 'is required')
        continue
      }
      f.check(x, p, ctx)
    }
  }
}

function str(min: number, max: number, pattern?: RegExp, patternText?: string): Check {
  return (v, path, ctx) => {
    if (typeof v !== 'string') fail(ctx, path, 'must be a string')
    if (v.length < min || v.length > max)
      fail(ctx, path, `must be ${min} to ${max} characters long, got ${v.length}`)
    if (pattern && !pattern.test(v)) fail(ctx, path, `must be ${patternText ?? pattern.source}`)
  }
}

function int(min: number, max: number): Check {
  return (v, path, ctx) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isInteger(v))
      fail(ctx, path, 'must be an integer')
    if (v < min || v > max) fail(ctx, path, `must be from ${min} to ${max}, got ${v}`)
  }
}

function oneOf(...values: string[]): Check {
  return (v, path, ctx) => {
    if (typeof v !== 'string' || !values.includes(v))
      fail(ctx, path, `must be one of ${values.map((x) => `"${x}"`).join(', ')}`)
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
const CODE = /^[A-Za-z0-9_.:-]+$/
const HEX32 = /^[0-9a-f]{32}$/

const id = str(1, FieldLimits.id)
const name = str(1, FieldLimits.name)
const code = str(1, FieldLimits.code, CODE, 'letters, digits, _ . : -')
const message = str(0, FieldLimits.message)
const precedence = oneOf(...TERMINATOR_PRECEDENCES)
const bindId = int(0, FieldLimits.bindIdMax)
const circuitTag = str(FieldLimits.circuitTag, FieldLimits.circuitTag, HEX32, '32 lower-case hex characters')
const version = int(1, FieldLimits.versionMax)

const e2eHello = obj({
  publicKey: req(str(1, FieldLimits.publicKey, BASE64, 'base64')),
  certChain: req(str(1, FieldLimits.certChain)),
  signature: req(str(1, FieldLimits.signature, BASE64, 'base64')),
  nonce: req(str(1, FieldLimits.nonce, BASE64, 'base64')),
})
const idName = obj({ id: req(id), name: req(name) })

const SCHEMAS = new Map<number, Check>([
  [
    FrameType.HELLO,
    obj({ version: req(version), role: req(oneOf('sdk', 'router')), agent: req(str(0, FieldLimits.agent)) }),
  ],
  [FrameType.HELLO_ACK, obj({ version: req(version), role: req(oneOf('router')), routerId: req(id) })],
  [FrameType.GOAWAY, obj({ code: req(code), message: req(message) })],
  [
    FrameType.DIAL,
    obj({
      service: req(name),
      dialer: opt(idName),
      terminatorId: opt(id),
      hostIdentityId: opt(id),
      appData: opt(
        obj({
          protocol: opt(oneOf('tcp', 'udp')),
          address: opt(str(0, FieldLimits.address)),
          port: opt(int(0, 65535)),
          sourceAddress: opt(str(0, FieldLimits.address)),
        }),
      ),
      e2e: opt(e2eHello),
      circuitTag: opt(circuitTag),
    }),
  ],
  [
    FrameType.DIAL_SUCCESS,
    obj({ hostIdentity: req(idName), e2e: opt(e2eHello), circuitTag: req(circuitTag) }),
  ],
  [FrameType.DIAL_FAILED, obj({ code: req(code), message: req(message) })],
  [
    FrameType.BIND,
    obj({
      bindId: req(bindId),
      service: req(name),
      cost: req(int(0, FieldLimits.costMax)),
      precedence: req(precedence),
      maxConnections: req(int(0, FieldLimits.maxConnectionsMax)),
    }),
  ],
  [FrameType.BIND_SUCCESS, obj({ bindId: req(bindId), terminatorId: req(id) })],
  [FrameType.BIND_FAILED, obj({ bindId: req(bindId), code: req(code), message: req(message) })],
  [FrameType.UNBIND, obj({ bindId: req(bindId), code: opt(code), message: opt(message) })],
  [FrameType.CLOSE, obj({ code: opt(code), message: opt(message) })],
])

/** Validates the JSON payload of control frame `type`; throws ProtocolError ERR_FRAME_PAYLOAD. */
export function validateControlPayload(type: number, typeName: string, value: unknown): void {
  const check = SCHEMAS.get(type)
  if (!check) throw new ProtocolError('ERR_FRAME_TYPE', `${typeName} has no JSON payload`, { type })
  check(value, '', { type, name: typeName })
}
