/**
 * Built-in config types (created on first start, read-only): intercept.v1 and host.v1 with the
 * fields OpenZiti users know (see model.ts `InterceptV1`, `HostV1`). Cross-field rules a JSON
 * Schema cannot say (low <= high; `port` or `forwardPort` + `allowedPortRanges`) are in `semanticChecks`.
 */
import { TERMINATOR_PRECEDENCES } from '@nullport/protocol'
import type { SchemaError } from './json-schema.js'

const portRange = {
  type: 'object',
  additionalProperties: false,
  required: ['low', 'high'],
  properties: {
    low: { type: 'integer', minimum: 0, maximum: 65535 },
    high: { type: 'integer', minimum: 0, maximum: 65535 },
  },
}
const protocol = { type: 'string', enum: ['tcp', 'udp'] }
const address = {
  type: 'string',
  minLength: 1,
  maxLength: 253,
  pattern: '^(\\*\\.)?[A-Za-z0-9_.:%-]+(/[0-9]{1,3})?$',
}
const precedence = { type: 'string', enum: [...TERMINATOR_PRECEDENCES] }

export const INTERCEPT_V1_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://nullport.dev/schemas/intercept.v1.json',
  title: 'intercept.v1',
  type: 'object',
  additionalProperties: false,
  required: ['protocols', 'addresses', 'portRanges'],
  properties: {
    protocols: { type: 'array', minItems: 1, uniqueItems: true, items: protocol },
    addresses: { type: 'array', minItems: 1, maxItems: 256, items: address },
    portRanges: { type: 'array', minItems: 1, maxItems: 256, items: portRange },
    dialOptions: {
      type: 'object',
      additionalProperties: false,
      properties: {
        identity: { type: 'string', maxLength: 256 },
        connectTimeoutSeconds: { type: 'integer', minimum: 0, maximum: 3600 },
      },
    },
    sourceIp: { type: 'string', maxLength: 64 },
  },
}

const check = {
  type: 'object',
  additionalProperties: true,
}

export const HOST_V1_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://nullport.dev/schemas/host.v1.json',
  title: 'host.v1',
  type: 'object',
  additionalProperties: false,
  properties: {
    protocol,
    forwardProtocol: { type: 'boolean' },
    allowedProtocols: { type: 'array', minItems: 1, uniqueItems: true, items: protocol },
    address,
    forwardAddress: { type: 'boolean' },
    allowedAddresses: { type: 'array', minItems: 1, maxItems: 256, items: address },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    forwardPort: { type: 'boolean' },
    allowedPortRanges: { type: 'array', minItems: 1, maxItems: 256, items: portRange },
    allowedSourceAddresses: { type: 'array', maxItems: 256, items: address },
    listenOptions: {
      type: 'object',
      additionalProperties: false,
      properties: {
        cost: { type: 'integer', minimum: 0, maximum: 65535 },
        precedence,
        maxConnections: { type: 'integer', minimum: 1, maximum: 1000000 },
        identity: { type: 'string', maxLength: 256 },
        bindUsingEdgeIdentity: { type: 'boolean' },
        connectTimeout: { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' },
        connectTimeoutSeconds: { type: 'integer', minimum: 0, maximum: 3600 },
      },
    },
    httpChecks: { type: 'array', maxItems: 32, items: check },
    portChecks: { type: 'array', maxItems: 32, items: check },
  },
}

export const BUILTIN_CONFIG_TYPES: Array<{ name: string; schema: Record<string, unknown> }> = [
  { name: 'intercept.v1', schema: INTERCEPT_V1_SCHEMA },
  { name: 'host.v1', schema: HOST_V1_SCHEMA },
]

function rangeChecks(ranges: unknown, path: string, out: SchemaError[]): void {
  if (!Array.isArray(ranges)) return
  ranges.forEach((r, i) => {
    if (
      r &&
      typeof r === 'object' &&
      typeof r.low === 'number' &&
      typeof r.high === 'number' &&
      r.low > r.high
    ) {
      out.push({
        path: `${path}[${i}]`,
        keyword: 'range',
        message: `low (${r.low}) must be <= high (${r.high})`,
      })
    }
  })
}

/** Cross-field rules of the built-in types, by type name. */
export const semanticChecks: Record<string, (data: Record<string, unknown>) => SchemaError[]> = {
  'intercept.v1': (d) => {
    const out: SchemaError[] = []
    rangeChecks(d.portRanges, '$.portRanges', out)
    return out
  },
  'host.v1': (d) => {
    const out: SchemaError[] = []
    rangeChecks(d.allowedPortRanges, '$.allowedPortRanges', out)
    const pair = (fixed: string, fwd: string, allowed: string) => {
      if (d[fwd] === true) {
        if (d[allowed] === undefined)
          out.push({ path: `$.${allowed}`, keyword: 'required', message: `is required when ${fwd} is true` })
        if (d[fixed] !== undefined)
          out.push({
            path: `$.${fixed}`,
            keyword: 'conflict',
            message: `must not be set when ${fwd} is true`,
          })
      } else if (d[fixed] === undefined) {
        out.push({
          path: `$.${fixed}`,
          keyword: 'required',
          message: `is required (or set ${fwd}: true and ${allowed})`,
        })
      }
    }
    pair('protocol', 'forwardProtocol', 'allowedProtocols')
    pair('address', 'forwardAddress', 'allowedAddresses')
    pair('port', 'forwardPort', 'allowedPortRanges')
    return out
  },
}
