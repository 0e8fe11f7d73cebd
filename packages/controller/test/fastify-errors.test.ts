/**
 * Nothing answers outside the error registry: every error Fastify can raise while serving a
 * request maps to a registry code with the registry's status (a client never sees FST_ERR_*).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { errorCodes } from 'fastify'
import { toHttpError } from '../src/api/common/errors.js'
import { ERRORS } from '../src/errors.js'

describe("Fastify's errors map into the registry", () => {
  const entries = Object.entries(errorCodes as unknown as Record<string, new (...a: unknown[]) => Error>)
  it('walks every Fastify error code', () => {
    assert.ok(entries.length > 50, `found ${entries.length} Fastify error codes`)
    for (const [name, E] of entries) {
      const err = new E('a', 'b', 'c') as Error & { code?: string; statusCode?: number }
      assert.equal(err.code, name)
      const { status, body } = toHttpError(err, 1024, 'req-1')
      const code = body.error.code
      assert.ok(code in ERRORS, `${name} answers ${code}, which is not in the registry`)
      assert.equal(status, ERRORS[code].status, `${name}: status ${status} differs from ${code}'s`)
      assert.doesNotMatch(JSON.stringify(body), /FST_ERR/, `${name} leaks a Fastify code`)
      if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
        assert.ok(status >= 400 && status < 500, `${name} (${err.statusCode}) became ${status}`)
      }
    }
  })
})
