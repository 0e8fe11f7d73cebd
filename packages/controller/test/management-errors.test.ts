import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { type ApiResponse, spawnController, type TestController } from '@nullport/testkit'
import { ERRORS } from '../src/errors.js'

const DOC = fileURLToPath(new URL('../../../../docs/api-errors.md', import.meta.url))

describe('management API: every bad input gets a registry error and writes nothing', () => {
  let c: TestController
  const seen: ApiResponse[] = []
  const api = async (...a: Parameters<TestController['api']>) => {
    const r = await c.api(...a)
    seen.push(r)
    return r
  }
  const expectError = (r: ApiResponse, status: number, code: string) => {
    assert.equal(r.status, status, r.text)
    assert.equal(r.body.error.code, code, r.text)
    assert.equal(typeof r.body.error.message, 'string')
    assert.ok(r.body.error.message.length > 0)
  }
  const count = async (type: string) =>
    (await c.api('GET', `${type}?limit=1`)).body.meta.pagination.totalCount as number

  before(async () => {
    c = await spawnController({ runner: 'library' })
  })
  after(async () => {
    await c?.stop()
  })

  it('malformed JSON -> 400 ERR_MALFORMED_JSON', async () => {
    expectError(await api('POST', 'services', undefined, { raw: '{"name": "x",' }), 400, 'ERR_MALFORMED_JSON')
    expectError(await api('POST', 'services', undefined, { raw: '' }), 400, 'ERR_MALFORMED_JSON')
    assert.equal(await count('services'), 0)
  })

  it('unknown fields -> ERR_UNKNOWN_FIELD with the path; wrong types -> ERR_VALIDATION with the path', async () => {
    const u = await api('POST', 'identities', { name: 'x', colour: 'blue' })
    expectError(u, 400, 'ERR_UNKNOWN_FIELD')
    assert.equal(u.body.error.path, '$.colour')
    const t = await api('POST', 'services', { name: 'x', encryptionRequired: 'yes' })
    expectError(t, 400, 'ERR_VALIDATION')
    assert.equal(t.body.error.path, '$.encryptionRequired')
    const n = await api('POST', 'identities', { name: 42 })
    expectError(n, 400, 'ERR_VALIDATION')
    assert.equal(n.body.error.path, '$.name')
    const m = await api('POST', 'identities', {})
    expectError(m, 400, 'ERR_VALIDATION')
    assert.equal(m.body.error.path, '$.name')
    const ty = await api('POST', 'identities', { name: 'x', type: 'toaster' })
    expectError(ty, 400, 'ERR_VALIDATION')
    assert.equal(ty.body.error.path, '$.type')
    const deep = await api('POST', 'service-policies', { name: 'p', type: 'Dial', identityRoles: ['#a', 7] })
    expectError(deep, 400, 'ERR_VALIDATION')
    assert.equal(deep.body.error.path, '$.identityRoles[1]')
    const arr = await api('POST', 'identities', [])
    expectError(arr, 400, 'ERR_VALIDATION')
    const empty = await api('PATCH', 'identities/admin', {})
    expectError(empty, 400, 'ERR_VALIDATION')
    assert.equal(await count('identities'), 1)
  })

  it('a non-JSON content type -> 415; an unknown query parameter -> ERR_UNKNOWN_FIELD', async () => {
    const r = await api('POST', 'services', undefined, {
      raw: 'name=x',
      headers: { 'content-type': 'text/plain' },
    })
    expectError(r, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE')
    const q = await api('GET', 'services?colour=red')
    expectError(q, 400, 'ERR_UNKNOWN_FIELD')
    assert.equal(q.body.error.path, '$query.colour')
    const o = await api('GET', 'services?offset=-1')
    expectError(o, 400, 'ERR_VALIDATION')
  })

  it('body over the limit WITHOUT credentials -> 413 before authentication', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) })
    const r = await api('POST', 'identities', undefined, { raw: big, token: null })
    expectError(r, 413, 'ERR_BODY_TOO_LARGE')
    const r2 = await api('POST', '/edge/management/v1/authenticate', undefined, { raw: big, token: null })
    expectError(r2, 413, 'ERR_BODY_TOO_LARGE')
    // same request under the limit but unauthenticated -> 401
    expectError(await api('POST', 'identities', { name: 'x' }, { token: null }), 401, 'ERR_UNAUTHORIZED')
  })

  it('duplicate names -> 409 ERR_NAME_IN_USE and nothing written', async () => {
    assert.equal((await api('POST', 'identities', { name: 'dup', roleAttributes: ['a'] })).status, 201)
    const before = await count('identities')
    const auditBefore = (await c.api('GET', 'audit-log?limit=1')).body.meta.pagination.totalCount
    const d = await api('POST', 'identities', { name: 'dup', roleAttributes: ['b'] })
    expectError(d, 409, 'ERR_NAME_IN_USE')
    assert.equal(d.body.error.name, 'dup')
    assert.equal(await count('identities'), before)
    assert.equal((await c.api('GET', 'audit-log?limit=1')).body.meta.pagination.totalCount, auditBefore)
    assert.equal((await c.api('GET', 'identities?roleFilter=%23b')).body.meta.pagination.totalCount, 0)
    // rename onto an existing name
    assert.equal((await api('POST', 'identities', { name: 'dup2' })).status, 201)
    expectError(await api('PATCH', 'identities/dup2', { name: 'dup' }), 409, 'ERR_NAME_IN_USE')
    for (const t of [
      'services',
      'edge-routers',
      'service-policies',
      'edge-router-policies',
      'service-edge-router-policies',
    ]) {
      const body = t === 'service-policies' ? { name: `${t}-1`, type: 'Dial' } : { name: `${t}-1` }
      assert.equal((await api('POST', t, body)).status, 201, t)
      expectError(await api('POST', t, body), 409, 'ERR_NAME_IN_USE')
    }
  })

  it('@nosuch role -> 400 ERR_ROLE_NOT_FOUND, nothing written', async () => {
    const before = await count('service-policies')
    const r = await api('POST', 'service-policies', {
      name: 'bad',
      type: 'Bind',
      serviceRoles: ['@nosuch'],
      identityRoles: ['#x'],
    })
    expectError(r, 400, 'ERR_ROLE_NOT_FOUND')
    assert.equal(r.body.error.path, '$.serviceRoles[0]')
    assert.equal(await count('service-policies'), before)
    expectError(
      await api('POST', 'edge-router-policies', { name: 'bad', edgeRouterRoles: ['@nosuch'] }),
      400,
      'ERR_ROLE_NOT_FOUND',
    )
    expectError(
      await api('POST', 'service-policies', { name: 'bad2', type: 'Dial', identityRoles: ['plain'] }),
      400,
      'ERR_VALIDATION',
    )
  })

  it('a config failing its type schema -> ERR_CONFIG_INVALID with the JSON path', async () => {
    const r = await api('POST', 'configs', {
      name: 'bad.intercept',
      configTypeId: 'intercept.v1',
      data: { protocols: ['tcp'], addresses: ['x.ziti'], portRanges: [{ low: 80, high: 'eighty' }] },
    })
    expectError(r, 400, 'ERR_CONFIG_INVALID')
    assert.equal(r.body.error.path, '$.data.portRanges[0].high')
    const r2 = await api('POST', 'configs', {
      name: 'bad.intercept',
      configTypeId: 'intercept.v1',
      data: { protocols: ['sctp'], addresses: ['x.ziti'], portRanges: [{ low: 80, high: 80 }] },
    })
    expectError(r2, 400, 'ERR_CONFIG_INVALID')
    assert.equal(r2.body.error.path, '$.data.protocols[0]')
    const r3 = await api('POST', 'configs', {
      name: 'bad.intercept',
      configTypeId: 'intercept.v1',
      data: { protocols: ['tcp'], addresses: ['x.ziti'], portRanges: [{ low: 90, high: 80 }] },
    })
    expectError(r3, 400, 'ERR_CONFIG_INVALID')
    const r4 = await api('POST', 'configs', {
      name: 'bad.host',
      configTypeId: 'host.v1',
      data: { protocol: 'tcp', address: 'a' },
    })
    expectError(r4, 400, 'ERR_CONFIG_INVALID')
    assert.equal(r4.body.error.path, '$.data.port')
    const r5 = await api('POST', 'configs', { name: 'x', configTypeId: 'nosuch.v1', data: {} })
    expectError(r5, 400, 'ERR_CONFIG_TYPE_NOT_FOUND')
    const r6 = await api('POST', 'config-types', {
      name: 'weird',
      schema: { type: 'object', dependentSchemas: {} },
    })
    expectError(r6, 400, 'ERR_SCHEMA_INVALID')
    assert.equal(await count('configs'), 0)
  })

  it('deleting a config in use -> 409 ERR_CONFIG_IN_USE; missing configs on a service -> ERR_CONFIG_NOT_FOUND', async () => {
    const cfg = await api('POST', 'configs', {
      name: 'used',
      configTypeId: 'intercept.v1',
      data: { protocols: ['tcp'], addresses: ['u.ziti'], portRanges: [{ low: 1, high: 2 }] },
    })
    assert.equal(cfg.status, 201)
    assert.equal((await api('POST', 'services', { name: 'user-of-config', configs: ['used'] })).status, 201)
    const d = await api('DELETE', 'configs/used')
    expectError(d, 409, 'ERR_CONFIG_IN_USE')
    assert.deepEqual(
      d.body.error.services.map((s: { name: string }) => s.name),
      ['user-of-config'],
    )
    const before = await count('services')
    expectError(
      await api('POST', 'services', { name: 's2', configs: ['used', 'nosuch'] }),
      400,
      'ERR_CONFIG_NOT_FOUND',
    )
    assert.equal(await count('services'), before)
  })

  it('filters with the wrong value type -> ERR_INVALID_FILTER (never a database error)', async () => {
    for (const f of ['isAdmin contains "1"', 'name = 5', 'disabled = "yes"', 'name = true']) {
      expectError(await api('GET', `identities?filter=${encodeURIComponent(f)}`), 400, 'ERR_INVALID_FILTER')
    }
    expectError(
      await api('GET', `terminators?filter=${encodeURIComponent('serviceId = 3')}`),
      400,
      'ERR_INVALID_FILTER',
    )
    const ok = await api(
      'GET',
      `identities?filter=${encodeURIComponent('isAdmin != false and name startsWith "ad"')}`,
    )
    assert.equal(ok.status, 200)
    assert.equal(ok.body.data[0].name, 'admin')
  })

  it('unknown entity -> 404 ERR_NOT_FOUND; unknown route -> 404 ERR_NOT_FOUND', async () => {
    expectError(await api('GET', 'identities/nobody'), 404, 'ERR_NOT_FOUND')
    expectError(await api('PATCH', 'services/nothing', { name: 'y' }), 404, 'ERR_NOT_FOUND')
    expectError(await api('DELETE', 'edge-routers/none'), 404, 'ERR_NOT_FOUND')
    expectError(await api('GET', '/edge/management/v1/nope'), 404, 'ERR_NOT_FOUND')
    expectError(await api('GET', '/nothing-here', undefined, { token: null }), 404, 'ERR_NOT_FOUND')
  })

  it('the last admin cannot be removed or demoted', async () => {
    expectError(await api('DELETE', 'identities/admin'), 409, 'ERR_LAST_ADMIN')
    expectError(await api('PATCH', 'identities/admin', { isAdmin: false }), 409, 'ERR_LAST_ADMIN')
  })

  it('every error answered above is in the registry, and every registry code is documented', () => {
    const errs = seen.filter((r) => r.status >= 400)
    assert.ok(errs.length > 20)
    for (const r of errs) {
      const code = r.body?.error?.code as keyof typeof ERRORS
      assert.ok(code in ERRORS, `code ${code} not in the registry: ${r.text}`)
      assert.equal(ERRORS[code].status, r.status, `status of ${code}`)
      assert.deepEqual(Object.keys(r.body), ['error'])
    }
    const doc = readFileSync(DOC, 'utf8')
    for (const [code, e] of Object.entries(ERRORS)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`))
      assert.ok(row, `${code} is not documented in docs/api-errors.md`)
      assert.ok(row.includes(`| ${e.status} |`), `${code}: documented status differs from ${e.status}`)
    }
  })
})
