/**
 * Real controller processes on PostgreSQL (a fresh schema in the local database `test`, dropped
 * afterwards): the management API works the same as on SQLite, and two controllers sharing the
 * database (and the data directory's PKI) see each other's writes at once.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { spawnController, type TestController } from '@nullport/testkit'
import pg from 'pg'

const PG_BASE = process.env.NULLPORT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test'

async function pgQuery(q: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_BASE, connectionTimeoutMillis: 2000 })
  try {
    await c.connect()
    await c.query(q)
    return true
  } catch {
    return false
  } finally {
    await c.end().catch(() => {})
  }
}

describe('controllers on PostgreSQL', async () => {
  const schema = `np_proc_${randomBytes(6).toString('hex')}`
  const available = await pgQuery(`create schema ${schema}`)
  const database = `${PG_BASE}?schema=${schema}`
  const dir = mkdtempSync(join(tmpdir(), 'np-pg-proc-'))
  let a: TestController
  let b: TestController
  before(async () => {
    if (!available) return
    a = await spawnController({
      runner: 'library',
      dataDir: dir,
      database,
      adminUser: 'pgadmin',
      adminPassword: 'pg-admin-password',
    })
    b = await spawnController({
      runner: 'library',
      dataDir: dir,
      database,
      adminUser: 'pgadmin',
      adminPassword: 'pg-admin-password',
    })
  })
  after(async () => {
    await a?.stop({ keepData: true })
    await b?.stop({ keepData: true })
    if (available) await pgQuery(`drop schema if exists ${schema} cascade`)
    rmSync(dir, { recursive: true, force: true })
  })

  it('the management API behaves the same (CRUD, errors, audit)', {
    skip: !available && 'no PostgreSQL',
  }, async () => {
    const i = await a.api('POST', 'identities', {
      name: 'pg-alice',
      type: 'USER',
      roleAttributes: ['dialers'],
    })
    assert.equal(i.status, 201, i.text)
    assert.match(i.body.data.enrollment.jwt, /\./)
    const dup = await a.api('POST', 'identities', { name: 'pg-alice' })
    assert.equal(dup.status, 409)
    assert.equal(dup.body.error.code, 'ERR_NAME_IN_USE')
    const cfg = await a.api('POST', 'configs', {
      name: 'pg-intercept',
      configTypeId: 'intercept.v1',
      data: { protocols: ['tcp'], addresses: ['db.ziti'], portRanges: [{ low: 5432, high: 5432 }] },
    })
    assert.equal(cfg.status, 201, cfg.text)
    const s = await a.api('POST', 'services', {
      name: 'pg-db',
      roleAttributes: ['db'],
      configs: ['pg-intercept'],
    })
    assert.equal(s.status, 201, s.text)
    const p = await a.api('POST', 'service-policies', {
      name: 'pg-dial',
      type: 'Dial',
      identityRoles: ['#dialers'],
      serviceRoles: ['@pg-db'],
    })
    assert.equal(p.status, 201, p.text)
    assert.deepEqual(p.body.data.serviceRolesDisplay, [{ role: `@${s.body.data.id}`, name: '@pg-db' }])
    const list = await a.api(
      'GET',
      `identities?filter=${encodeURIComponent('name contains "PG-"')}&roleFilter=%23dialers`,
    )
    assert.deepEqual(
      list.body.data.map((x: { name: string }) => x.name),
      ['pg-alice'],
    )
    const inUse = await a.api('DELETE', 'configs/pg-intercept')
    assert.equal(inUse.body.error.code, 'ERR_CONFIG_IN_USE')
    const audit = await a.api('GET', `audit-log?entityId=${s.body.data.id}`)
    assert.equal(audit.body.data[0].action, 'create')
  })

  it('a second controller on the same database sees every write at once, in both directions', {
    skip: !available && 'no PostgreSQL',
  }, async () => {
    const advise = (c: TestController) =>
      c.api('GET', '/edge/management/v1/policy-advisor/identities/pg-bob/services/pg-db')
    const bob = await b.api('POST', 'identities', { name: 'pg-bob' })
    assert.equal(bob.status, 201)
    // written on B, policy on A's view
    const until = async (c: TestController, want: boolean) => {
      for (let i = 0; i < 500; i++) {
        const r = await advise(c)
        if (r.status === 200 && r.body.data.dialPolicies.includes('pg-dial') === want) return
        await new Promise((res) => setTimeout(res, 20))
      }
      assert.fail(`advisor on ${c.url} never listed pg-dial=${want}`)
    }
    await until(a, false)
    assert.equal((await b.api('PATCH', 'identities/pg-bob', { roleAttributes: ['dialers'] })).status, 200)
    await until(a, true)
    await until(b, true)
    assert.equal(
      (await a.api('PATCH', 'service-policies/pg-dial', { identityRoles: ['#nobody'] })).status,
      200,
    )
    await until(b, false)
    await until(a, false)
  })
})
