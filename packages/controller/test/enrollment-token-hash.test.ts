/**
 * Enrollment tokens at rest: only a SHA-256 hash of each token is stored. The token is in the
 * create answer once; the detail view never shows it again; nothing in the database files lets a
 * reader enroll; the migration turns existing tokens into hashes.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { spawnController, type TestController } from '@nullport/testkit'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { MIGRATIONS, migrate } from '../src/store/migrations.js'
import type { Database } from '../src/store/schema.js'
import { enrollWith } from './enroll-helpers.js'

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

describe('enrollment tokens stored as hashes', () => {
  let c: TestController
  before(async () => {
    c = await spawnController({ runner: 'library' })
  })
  after(async () => {
    await c?.stop()
  })

  it('the token is shown once, never stored, and still enrolls', async () => {
    const r = await c.api('POST', 'identities', { name: 'hash-me', type: 'Device' })
    assert.equal(r.status, 201, r.text)
    const jwt: string = r.body.data.enrollment.jwt
    assert.equal(jwt.split('.').length, 3)
    const detail = await c.api('GET', `identities/${r.body.data.id}`)
    assert.equal(detail.status, 200)
    assert.equal(detail.body.data.enrollment.method, 'ott')
    assert.equal(detail.body.data.enrollment.jwt, undefined, 'the detail view does not show the token again')
    // no part of the token's signature is anywhere in the database files
    const signature = Buffer.from(jwt.split('.')[2]!)
    for (const f of readdirSync(c.dataDir).filter((n) => n.startsWith('controller.db'))) {
      assert.equal(readFileSync(join(c.dataDir, f)).includes(signature), false, `${f} holds the token`)
    }
    const { res } = await enrollWith(c, 'identity', jwt)
    assert.equal(res.status, 200, JSON.stringify(res.body))
  })
})

describe('migration 3: existing tokens become hashes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'np-mig3-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('hashes the stored JWTs and drops the column', async () => {
    const sqlite = new BetterSqlite3(join(dir, 'controller.db'))
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) })
    try {
      // a database as version 2 left it
      // biome-ignore lint/suspicious/noExplicitAny: the old schema is not the current one
      const any = db as unknown as Kysely<any>
      await any.schema
        .createTable('nullport_migrations')
        .addColumn('version', 'integer', (col) => col.primaryKey())
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('applied_at', 'text', (col) => col.notNull())
        .execute()
      for (const m of MIGRATIONS.filter((x) => x.version <= 2)) {
        await db.transaction().execute(async (trx) => {
          await m.up(trx, 'sqlite')
          await trx
            .insertInto('nullport_migrations')
            .values({ version: m.version, name: m.name, applied_at: 'then' })
            .execute()
        })
      }
      const now = new Date().toISOString()
      await any
        .insertInto('identities')
        .values({
          id: 'i1',
          name: 'old',
          type: 'Device',
          is_admin: 0,
          disabled: 0,
          default_hosting_cost: 0,
          default_hosting_precedence: 'default',
          created_at: now,
          updated_at: now,
        })
        .execute()
      await any
        .insertInto('enrollments')
        .values({
          id: 'jti-1',
          identity_id: 'i1',
          router_id: null,
          method: 'ott',
          jwt: 'old.token.value',
          expires_at: now,
          used_at: null,
          created_at: now,
        })
        .execute()
      assert.deepEqual(await migrate(db, 'sqlite'), [3])
      const rows = sqlite.prepare('select * from enrollments').all() as Array<Record<string, unknown>>
      assert.equal(rows.length, 1)
      assert.equal(rows[0]!.token_hash, sha256('old.token.value'))
      assert.equal('jwt' in rows[0]!, false)
    } finally {
      await db.destroy()
    }
  })
})
