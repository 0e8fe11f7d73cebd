import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HOST_V1_SCHEMA, INTERCEPT_V1_SCHEMA, semanticChecks } from '../src/core/builtin-config-types.js'
import { checkSchema, validateJson, validateWithValue } from '../src/core/json-schema.js'
import { parseFilter } from '../src/core/query.js'
import { loadConfig, parseDuration } from '../src/index.js'

describe('JSON Schema subset validator', () => {
  const schema = {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'ports'],
    properties: {
      name: { type: 'string', minLength: 2, maxLength: 5, pattern: '^[a-z]+$' },
      ports: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'integer', minimum: 1, maximum: 65535 },
      },
      mode: { enum: ['a', 'b'] },
      shape: {
        oneOf: [
          { type: 'string' },
          { type: 'object', required: ['x'], properties: { x: { type: 'number' } } },
        ],
      },
      any: { anyOf: [{ const: 1 }, { const: 'one' }] },
      ref: { $ref: '#/$defs/pos' },
      neg: { not: { type: 'string' } },
    },
    $defs: { pos: { type: 'number', exclusiveMinimum: 0 } },
  }
  const errs = (v: unknown) => validateJson(schema, v).map((e) => `${e.path} ${e.keyword}`)

  it('accepts valid data', () => {
    assert.deepEqual(
      errs({ name: 'ab', ports: [1, 2], mode: 'a', shape: { x: 1 }, any: 'one', ref: 0.5, neg: 3 }),
      [],
    )
  })
  it('reports the JSON path and keyword of each problem', () => {
    assert.deepEqual(errs({ ports: [] }), ['$.name required', '$.ports minItems'])
    assert.deepEqual(errs({ name: 'ABC', ports: [0, 70000, 1.5] }), [
      '$.name pattern',
      '$.ports[0] minimum',
      '$.ports[1] maximum',
      '$.ports[2] type',
    ])
    assert.deepEqual(errs({ name: 'abc', ports: [1, 1] }), ['$.ports[1] uniqueItems'])
    assert.deepEqual(errs({ name: 'abc', ports: [1], extra: true }), ['$.extra additionalProperties'])
    assert.deepEqual(errs({ name: 'abc', ports: [1], mode: 'c' }), ['$.mode enum'])
    assert.deepEqual(errs({ name: 'abc', ports: [1], shape: { x: 'no' } }), ['$.shape.x type'])
    assert.deepEqual(errs({ name: 'abc', ports: [1], any: 2 }), ['$.any enum'])
    assert.deepEqual(errs({ name: 'abc', ports: [1], ref: 0 }), ['$.ref exclusiveMinimum'])
    assert.deepEqual(errs({ name: 'abc', ports: [1], neg: 's' }), ['$.neg not'])
    assert.deepEqual(errs('x'), ['$ type'])
    assert.deepEqual(errs(null), ['$ type'])
  })
  it('integers are not numbers with fractions; numbers accept integers', () => {
    assert.equal(validateJson({ type: 'integer' }, 1.5).length, 1)
    assert.equal(validateJson({ type: 'number' }, 3).length, 0)
    assert.equal(validateJson({ type: ['string', 'null'] }, null).length, 0)
  })
  it('coerces query strings when asked', () => {
    const s = {
      type: 'object',
      properties: {
        limit: { type: 'integer' },
        tags: { type: 'array', items: { type: 'string' } },
        on: { type: 'boolean' },
      },
    }
    const r = validateWithValue(s, { limit: '10', tags: '#a', on: 'true' }, { coerce: true })
    assert.deepEqual(r.errors, [])
    assert.deepEqual(r.value, { limit: 10, tags: ['#a'], on: true })
    assert.equal(validateWithValue(s, { limit: 'ten' }, { coerce: true }).errors[0]!.path, '$.limit')
    assert.equal(validateJson(s, { limit: '10' }).length, 1)
  })
  it('a schema that refers to itself forever is an error, not a stack overflow', () => {
    const loop = { $ref: '#/$defs/a', $defs: { a: { $ref: '#/$defs/a' } } }
    const e = validateJson(loop, { x: 1 })
    assert.equal(e[0]!.keyword, '$ref')
    assert.match(checkSchema(loop).join(), /cycle/)
    const tree = {
      $ref: '#/$defs/node',
      $defs: {
        node: {
          type: 'object',
          properties: { children: { type: 'array', items: { $ref: '#/$defs/node' } } },
        },
      },
    }
    assert.deepEqual(checkSchema(tree), [])
    assert.deepEqual(validateJson(tree, { children: [{ children: [] }] }), [])
  })
  it('checkSchema refuses keywords outside the subset and bad regexes', () => {
    assert.deepEqual(checkSchema(schema), [])
    assert.deepEqual(checkSchema(INTERCEPT_V1_SCHEMA), [])
    assert.deepEqual(checkSchema(HOST_V1_SCHEMA), [])
    assert.match(checkSchema({ type: 'object', if: {} }).join(), /"if" is not supported/)
    assert.match(checkSchema({ type: 'strin' }).join(), /unknown type/)
    assert.match(checkSchema({ pattern: '(' }).join(), /invalid regular expression/)
    assert.match(checkSchema({ $ref: '#/$defs/none' }).join(), /cannot resolve/)
    assert.match(checkSchema([]).join(), /must be an object/)
  })
  it('built-in types: intercept.v1 and host.v1 with cross-field rules', () => {
    const ok = {
      protocols: ['tcp', 'udp'],
      addresses: ['10.0.0.0/8', '*.corp.ziti', 'db.ziti'],
      portRanges: [{ low: 1, high: 65535 }],
    }
    assert.deepEqual(validateJson(INTERCEPT_V1_SCHEMA, ok), [])
    assert.equal(
      validateJson(INTERCEPT_V1_SCHEMA, { ...ok, protocols: ['tcp', 'tcp'] })[0]!.keyword,
      'uniqueItems',
    )
    assert.equal(
      semanticChecks['intercept.v1']!({ ...ok, portRanges: [{ low: 9, high: 8 }] })[0]!.path,
      '$.portRanges[0]',
    )
    const host = { protocol: 'tcp', address: '127.0.0.1', port: 5432 }
    assert.deepEqual(validateJson(HOST_V1_SCHEMA, host), [])
    assert.deepEqual(semanticChecks['host.v1']!(host), [])
    const fwd = {
      forwardProtocol: true,
      allowedProtocols: ['tcp'],
      forwardAddress: true,
      allowedAddresses: ['10.0.0.0/8'],
      forwardPort: true,
      allowedPortRanges: [{ low: 1, high: 9 }],
    }
    assert.deepEqual(validateJson(HOST_V1_SCHEMA, fwd), [])
    assert.deepEqual(semanticChecks['host.v1']!(fwd), [])
    assert.deepEqual(
      semanticChecks['host.v1']!({ forwardProtocol: true, address: 'a', port: 1 }).map((e) => e.path),
      ['$.allowedProtocols'],
    )
  })
})

describe('list filters', () => {
  it('parses conditions joined with and', () => {
    assert.deepEqual(parseFilter('name contains "web" and isAdmin = true', ['name', 'isAdmin']), [
      { field: 'name', op: 'contains', value: 'web' },
      { field: 'isAdmin', op: '=', value: true },
    ])
    assert.deepEqual(parseFilter('true', ['name']), [])
    assert.deepEqual(parseFilter('name = "a \\"q\\""', ['name']), [
      { field: 'name', op: '=', value: 'a "q"' },
    ])
  })
  it('refuses what it does not understand with ERR_INVALID_FILTER', () => {
    for (const f of [
      'name',
      'name ~ "x"',
      'color = "x"',
      'name = "x" or name = "y"',
      'name = "x',
      'name = bare',
    ]) {
      assert.throws(
        () => parseFilter(f, ['name']),
        (e: Error & { code?: string }) => e.code === 'ERR_INVALID_FILTER',
        f,
      )
    }
  })
})

describe('controller config', () => {
  it('durations and defaults', () => {
    assert.equal(parseDuration('30m'), 1_800_000)
    assert.equal(parseDuration('720h'), 2_592_000_000)
    assert.equal(parseDuration('250ms'), 250)
    const c = loadConfig({ dataDir: '/tmp/x' })
    assert.equal(c.listen, '127.0.0.1:1280')
    assert.equal(c.database, 'sqlite')
    assert.equal(c.sessionLifetimeMs, 1_800_000)
    assert.equal(c.bodyLimit, 1_048_576)
    assert.equal(c.trustDomain, 'nullport')
  })
  it('flags are validated and name the field', () => {
    assert.throws(() => loadConfig({ listen: 'nope' }), /listen/)
    assert.throws(() => loadConfig({ database: 'mysql://x' }), /database/)
    assert.throws(() => loadConfig({ advertise: 'http://x' }), /advertise/)
  })
})
