/**
 * The store and the service layer, in process, on SQLite AND PostgreSQL (a fresh schema per run
 * in the local database `test`, dropped afterwards): migrations, one transaction per change,
 * cascades, change feed versions, enrollment consumption, reload into the policy index.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { DataChange } from '@nullport/protocol'
import pg from 'pg'
import {
  type ControllerContext,
  ControllerError,
  createContext,
  loadConfig,
  SYSTEM_ACTOR,
} from '../src/index.js'
import { MIGRATIONS } from '../src/store/migrations.js'

const PG_BASE = process.env.NULLPORT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test'
const admin = { id: null, name: 'tester' }

async function pgAvailable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_BASE, connectionTimeoutMillis: 2000 })
  try {
    await c.connect()
    await c.end()
    return true
  } catch {
    return false
  }
}

const fakeSigner = (state: { fail: boolean }) => ({
  async sign(o: { jti: string }) {
    if (state.fail) throw new Error('signer down')
    return `header.${Buffer.from(JSON.stringify({ jti: o.jti })).toString('base64url')}.sig`
  },
})

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`store + core on ${dialect}`, async () => {
    const available = dialect === 'sqlite' || (await pgAvailable())
    let dir: string
    let database = 'sqlite'
    let schema = ''
    let ctx: ControllerContext
    const signer = { fail: false }
    const batches: DataChange[][] = []

    const open = async (overrides: { enrollmentLifetime?: string } = {}) => {
      const config = loadConfig({ dataDir: dir, database, logLevel: 'silent' })
      if (overrides.enrollmentLifetime === '1ms') config.enrollmentLifetimeMs = 1
      return createContext(config, { signer: fakeSigner(signer) })
    }
    const count = async (table: string) =>
      Number(
        (
          await (ctx.db as unknown as import('kysely').Kysely<Record<string, Record<string, unknown>>>)
            .selectFrom(table)
            .select((eb) => eb.fn.countAll().as('c'))
            .executeTakeFirstOrThrow()
        ).c,
      )

    before(async () => {
      if (!available) return
      dir = mkdtempSync(join(tmpdir(), `np-store-${dialect}-`))
      if (dialect === 'postgres') {
        schema = `np_test_${randomBytes(6).toString('hex')}`
        const c = new pg.Client({ connectionString: PG_BASE })
        await c.connect()
        await c.query(`create schema ${schema}`)
        await c.end()
        database = `${PG_BASE}?schema=${schema}`
      }
      ctx = await open()
      ctx.changes.subscribe((changes) => batches.push(changes))
    })
    after(async () => {
      if (!available) return
      await ctx?.store.close()
      if (dialect === 'postgres') {
        const c = new pg.Client({ connectionString: PG_BASE })
        await c.connect()
        await c.query(`drop schema if exists ${schema} cascade`)
        await c.end()
      }
      rmSync(dir, { recursive: true, force: true })
    })

    it('migrations are versioned and idempotent; built-in config types exist', {
      skip: !available && 'no PostgreSQL',
    }, async () => {
      const rows = await ctx.db.selectFrom('nullport_migrations').selectAll().execute()
      assert.deepEqual(
        rows.map((r) => r.version),
        MIGRATIONS.map((m) => m.version),
      )
      const again = await open()
      assert.equal(
        (await again.db.selectFrom('nullport_migrations').selectAll().execute()).length,
        MIGRATIONS.length,
      )
      assert.equal((await again.db.selectFrom('config_types').selectAll().execute()).length, 2)
      await again.store.close()
    })

    it('a failed multi-row write leaves nothing behind (identity + attributes + enrollment + audit)', {
      skip: !available && 'no PostgreSQL',
    }, async () => {
      const before = {
        identities: await count('identities'),
        attrs: await count('identity_role_attributes'),
        enrollments: await count('enrollments'),
        audit: await count('audit_log'),
        version: (await ctx.db.selectFrom('change_version').select('version').executeTakeFirstOrThrow())
          .version,
        batches: batches.length,
      }
      signer.fail = true
      await assert.rejects(
        ctx.core.create('identities', { name: 'half', roleAttributes: ['a', 'b'] }, admin),
        /signer down/,
      )
      signer.fail = false
      // an explicit failure after several writes in one transaction
      await assert.rejects(
        ctx.core.write(admin, async (w) => {
          await w.trx
            .insertInto('identities')
            .values({
              id: 'tx-test',
              name: 'tx-test',
              type: 'Device',
              is_admin: 0,
              disabled: 0,
              default_hosting_cost: 0,
              default_hosting_precedence: 'default',
              created_at: w.now,
              updated_at: w.now,
            })
            .execute()
          await w.trx
            .insertInto('identity_role_attributes')
            .values({ entity_id: 'tx-test', attr: 'x' })
            .execute()
          w.pending.push({ op: 'delete', entity: 'identity', id: 'tx-test' })
          throw new ControllerError('ERR_VALIDATION', 'boom')
        }),
        /boom/,
      )
      // a foreign-key failure in the middle: service with one good and one missing config
      await ctx.core.create(
        'configs',
        {
          name: 'tx.cfg',
          configTypeId: 'intercept.v1',
          data: { protocols: ['tcp'], addresses: ['a.b'], portRanges: [{ low: 1, high: 1 }] },
        },
        admin,
      )
      const servicesBefore = await count('services')
      const auditMid = await count('audit_log')
      await assert.rejects(
        ctx.core.create(
          'services',
          { name: 'tx.svc', roleAttributes: ['r'], configs: ['tx.cfg', 'missing'] },
          admin,
        ),
        (e: ControllerError) => e.code === 'ERR_CONFIG_NOT_FOUND',
      )
      assert.equal(await count('services'), servicesBefore)
      assert.equal(await count('service_configs'), 0)
      assert.equal(await count('service_role_attributes'), 0)
      assert.equal(await count('audit_log'), auditMid)

      assert.equal(await count('identities'), before.identities)
      assert.equal(await count('identity_role_attributes'), before.attrs)
      assert.equal(await count('enrollments'), before.enrollments)
      assert.equal(await count('audit_log'), before.audit + 1) // only the config
      assert.equal(batches.length, before.batches) // configs are not policy data
      const v = (await ctx.db.selectFrom('change_version').select('version').executeTakeFirstOrThrow())
        .version
      assert.equal(Number(v), Number(before.version))
    })

    it('duplicate names race: exactly one wins, the other is ERR_NAME_IN_USE', {
      skip: !available && 'no PostgreSQL',
    }, async () => {
      const results = await Promise.allSettled([
        ctx.core.create('services', { name: 'race' }, admin),
        ctx.core.create('services', { name: 'race' }, admin),
        ctx.core.create('services', { name: 'race' }, admin),
      ])
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
      for (const r of results.filter((r) => r.status === 'rejected')) {
        assert.equal(((r as PromiseRejectedResult).reason as ControllerError).code, 'ERR_NAME_IN_USE')
      }
    })

    it('changes: versions from the counter, published after commit, policy index updated first', {
      skip: !available && 'no PostgreSQL',
    }, async () => {
      const seen: Array<{ version: number; inDb: boolean; inIndex: boolean }> = []
      const off = ctx.changes.subscribe((changes) => {
        for (const c of changes) {
          if (c.op === 'upsert' && c.entity === 'identity')
            seen.push({
              version: c.version,
              inDb: false,
              inIndex: ctx.policy.identity(c.data.id) !== undefined,
            })
        }
      })
      const v0 = ctx.changes.version
      const a = await ctx.core.create('identities', { name: 'feed-a', roleAttributes: ['dialers'] }, admin)
      const b = await ctx.core.create('identities', { name: 'feed-b' }, admin)
      off()
      assert.equal(seen.length, 2)
      assert.ok(seen[0]!.version > v0)
      assert.equal(seen[1]!.version, seen[0]!.version + 1)
      assert.ok(seen.every((s) => s.inIndex))
      assert.equal(ctx.changes.version, seen[1]!.version)
      assert.deepEqual(ctx.policy.identity(a.data.id as string)?.roleAttributes, ['dialers'])
      assert.ok(ctx.policy.identity(b.data.id as string))
      // a policy through the core is in the index at once
      const svc = await ctx.core.create('services', { name: 'feed-svc', roleAttributes: ['feed'] }, admin)
      await ctx.core.create(
        'service-policies',
        { name: 'feed-dial', type: 'Dial', identityRoles: ['#dialers'], serviceRoles: ['#feed'] },
        admin,
      )
      assert.ok(ctx.policy.servicesFor(a.data.id as string, 'Dial').has(svc.data.id as string))
      assert.ok(!ctx.policy.servicesFor(b.data.id as string, 'Dial').has(svc.data.id as string))
    })

    it('cascades: deleting a service removes its terminators and config links; deleting an identity its authenticators, enrollments, terminators, sessions', {
      skip: !available && 'no PostgreSQL',
    }, async () => {
      const id = await ctx.core.create('identities', { name: 'host-1', password: 'host-1-password' }, admin)
      const router = await ctx.core.create('edge-routers', { name: 'r-1' }, admin)
      await ctx.core.create(
        'configs',
        { name: 'c-1', configTypeId: 'host.v1', data: { protocol: 'tcp', address: '127.0.0.1', port: 5432 } },
        admin,
      )
      const svc = await ctx.core.create('services', { name: 's-1', configs: ['c-1'] }, admin)
      const svc2 = await ctx.core.create('services', { name: 's-2' }, admin)
      const t1 = await ctx.core.createTerminator(
        {
          serviceId: svc.data.id as string,
          routerId: router.data.id as string,
          identityId: id.data.id as string,
        },
        admin,
      )
      // idempotent per (service, router, identity)
      const t1b = await ctx.core.createTerminator(
        {
          serviceId: svc.data.id as string,
          routerId: router.data.id as string,
          identityId: id.data.id as string,
          cost: 7,
        },
        admin,
      )
      assert.equal(t1b.id, t1.id)
      assert.equal(t1b.cost, 7)
      await ctx.core.createTerminator(
        {
          serviceId: svc2.data.id as string,
          routerId: router.data.id as string,
          identityId: id.data.id as string,
        },
        admin,
      )
      assert.equal(ctx.policy.terminatorsFor(svc.data.id as string).length, 1)
      await ctx.core.createSession(id.data.id as string, 'client')
      assert.equal(await count('terminators'), 2)

      await ctx.core.remove('services', 's-1', admin)
      assert.equal(await count('terminators'), 1)
      assert.equal((await ctx.db.selectFrom('service_configs').selectAll().execute()).length, 0)
      assert.equal(ctx.policy.terminatorsFor(svc.data.id as string).length, 0)
      assert.equal(ctx.policy.service(svc.data.id as string), undefined)
      await ctx.core.remove('configs', 'c-1', admin) // no longer in use

      await ctx.core.remove('identities', 'host-1', admin)
      assert.equal(await count('terminators'), 0)
      const left = async (table: 'authenticators' | 'enrollments' | 'api_sessions') =>
        (
          await ctx.db
            .selectFrom(table)
            .selectAll()
            .where('identity_id', '=', id.data.id as string)
            .execute()
        ).length
      assert.equal(await left('authenticators'), 0)
      assert.equal(await left('enrollments'), 0)
      assert.equal(await left('api_sessions'), 0)
      assert.equal(ctx.policy.identity(id.data.id as string), undefined)
    })

    it('enrollment: consumed once with the certificate in one transaction; reused / expired / replaced tokens refused', {
      skip: !available && 'no PostgreSQL',
    }, async () => {
      const i = await ctx.core.create('identities', { name: 'enrollee' }, admin)
      const iid = i.data.id as string
      const jti = (
        await ctx.db
          .selectFrom('enrollments')
          .select('id')
          .where('identity_id', '=', iid)
          .executeTakeFirstOrThrow()
      ).id
      const found = await ctx.core.findEnrollment(jti)
      assert.equal(found?.entityId, iid)
      assert.equal(found?.kind, 'identity')
      const cert = {
        certPem: 'PEM',
        fingerprint: 'ab'.repeat(32),
        certExpiresAt: new Date(Date.now() + 3600e3).toISOString(),
      }
      await assert.rejects(
        ctx.core.completeEnrollment({ jti, kind: 'router', entityId: iid, ...cert }),
        (e: ControllerError) => e.code === 'ERR_ENROLLMENT_INVALID',
      )
      const done = await ctx.core.completeEnrollment({ jti, kind: 'identity', entityId: iid, ...cert })
      assert.equal(done.name, 'enrollee')
      assert.deepEqual(ctx.policy.identity(iid)?.certFingerprints, [cert.fingerprint])
      assert.equal((await ctx.core.findCertificate(cert.fingerprint))?.id, iid)
      await assert.rejects(
        ctx.core.completeEnrollment({
          jti,
          kind: 'identity',
          entityId: iid,
          ...cert,
          fingerprint: 'cd'.repeat(32),
        }),
        (e: ControllerError) => e.code === 'ERR_ENROLLMENT_USED',
      )
      // re-enroll: new token, the certificate is revoked at once, the old token is gone
      const re = await ctx.core.reEnroll('identity', 'enrollee', admin)
      assert.ok((re.data.enrollment as { jwt: string }).jwt)
      assert.deepEqual(ctx.policy.identity(iid)?.certFingerprints, [])
      await assert.rejects(
        ctx.core.completeEnrollment({ jti, kind: 'identity', entityId: iid, ...cert }),
        (e: ControllerError) => e.code === 'ERR_ENROLLMENT_NOT_FOUND',
      )
      // expired
      const short = await open({ enrollmentLifetime: '1ms' })
      try {
        const x = await short.core.create('identities', { name: 'late' }, admin)
        const xj = (
          await short.db
            .selectFrom('enrollments')
            .select('id')
            .where('identity_id', '=', x.data.id as string)
            .executeTakeFirstOrThrow()
        ).id
        await new Promise((r) => setTimeout(r, 20))
        await assert.rejects(
          short.core.completeEnrollment({
            jti: xj,
            kind: 'identity',
            entityId: x.data.id as string,
            ...cert,
            fingerprint: 'ef'.repeat(32),
          }),
          (e: ControllerError) => e.code === 'ERR_ENROLLMENT_EXPIRED',
        )
        assert.equal(
          (
            await short.db
              .selectFrom('authenticators')
              .selectAll()
              .where('identity_id', '=', x.data.id as string)
              .execute()
          ).length,
          0,
        )
      } finally {
        await short.store.close()
      }
    })

    it('a restart reloads the same policy data into the index', {
      skip: !available && 'no PostgreSQL',
    }, async () => {
      const snap = ctx.policy.snapshot()
      const again = await open()
      try {
        const s2 = again.policy.snapshot()
        // the other context above ('late') wrote too: the reload sees the database's version
        const dbVersion = (
          await again.db.selectFrom('change_version').select('version').executeTakeFirstOrThrow()
        ).version
        assert.equal(s2.version, Number(dbVersion))
        assert.ok(s2.version >= snap.version)
        const late = s2.identities.find((x) => x.name === 'late')
        assert.ok(late)
        // (on PostgreSQL the first context learned of it through the change log)
        if (!snap.identities.some((x) => x.id === late.id))
          s2.identities = s2.identities.filter((x) => x !== late)
        const ids = (s: typeof snap) => ({
          identities: s.identities.map((x) => x.id).sort(),
          services: s.services.map((x) => x.id).sort(),
          routers: s.routers.map((x) => x.id).sort(),
          sp: s.servicePolicies.map((x) => x.id).sort(),
          terminators: s.terminators.map((x) => x.id).sort(),
        })
        assert.deepEqual(ids(s2), ids(snap))
        // the admin bootstrap is a no-op once an admin exists
        await again.core.ensureAdmin({ username: 'first', password: 'first-password' })
        const r = await again.core.ensureAdmin({ username: 'second', password: 'second-password' })
        assert.equal(r.created, false)
        assert.equal(r.name, 'first')
        assert.equal(
          (await again.db.selectFrom('identities').selectAll().where('is_admin', '=', 1).execute()).length,
          1,
        )
      } finally {
        await again.store.close()
      }
    })

    it("several controllers on one PostgreSQL learn each other's writes (LISTEN/NOTIFY + change log)", {
      skip: dialect !== 'postgres' ? 'PostgreSQL only' : !available && 'no PostgreSQL',
    }, async () => {
      const other = await open()
      try {
        const remote: DataChange[] = []
        const off = ctx.changes.subscribe((changes) => remote.push(...changes))
        const until = async (cond: () => boolean) => {
          for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10))
          assert.ok(cond(), 'not replicated in time')
        }
        const x = await other.core.create(
          'identities',
          { name: 'from-other', roleAttributes: ['remote'] },
          admin,
        )
        await until(() => ctx.policy.identity(x.data.id as string) !== undefined)
        assert.deepEqual(ctx.policy.identity(x.data.id as string)?.roleAttributes, ['remote'])
        assert.ok(remote.some((c) => c.op === 'upsert' && c.entity === 'identity' && c.data.id === x.data.id))
        // interleaved writes on both: both indexes converge on the same data and version
        await Promise.all([
          ...Array.from({ length: 10 }, (_, i) =>
            ctx.core.create('services', { name: `mc-a-${i}`, roleAttributes: ['mc'] }, admin),
          ),
          ...Array.from({ length: 10 }, (_, i) =>
            other.core.create('services', { name: `mc-b-${i}`, roleAttributes: ['mc'] }, admin),
          ),
        ])
        await other.core.update('identities', 'from-other', { disabled: true }, admin)
        await until(() => ctx.policy.identity(x.data.id as string)?.disabled === true)
        await until(() => ctx.policy.version === other.policy.version)
        const names = (c: ControllerContext) =>
          c.policy
            .snapshot()
            .services.map((s) => s.name)
            .filter((n) => n.startsWith('mc-'))
            .sort()
        assert.equal(names(ctx).length, 20)
        assert.deepEqual(names(ctx), names(other))
        await other.core.remove('identities', 'from-other', admin)
        await until(() => ctx.policy.identity(x.data.id as string) === undefined)
        off()
      } finally {
        await other.store.close()
      }
    })

    it('sessions: hashed at rest, expire, verify by token', {
      skip: !available && 'no PostgreSQL',
    }, async () => {
      const i = await ctx.core.create(
        'identities',
        { name: 'sess', isAdmin: true, password: 'sess-password' },
        admin,
      )
      const s = await ctx.core.authenticatePassword('sess', 'sess-password', '127.0.0.9')
      const row = await ctx.db
        .selectFrom('api_sessions')
        .selectAll()
        .where('id', '=', (await ctx.core.verifySession(s.token)).sessionId)
        .executeTakeFirstOrThrow()
      assert.notEqual(row.token_hash, s.token)
      assert.equal(row.token_hash.length, 64)
      assert.equal(row.identity_id, i.data.id)
      await ctx.db
        .updateTable('api_sessions')
        .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
        .where('id', '=', row.id)
        .execute()
      await assert.rejects(
        ctx.core.verifySession(s.token),
        (e: ControllerError) => e.code === 'ERR_SESSION_EXPIRED',
      )
      const m = await ctx.core.maintenance()
      assert.ok(m.sessions >= 1)
      assert.equal(
        (await ctx.db.selectFrom('api_sessions').selectAll().where('id', '=', row.id).execute()).length,
        0,
      )
      await assert.rejects(
        ctx.core.authenticatePassword('sess', 'nope-nope', '127.0.0.9'),
        (e: ControllerError) => e.code === 'ERR_INVALID_CREDENTIALS',
      )
      assert.ok(SYSTEM_ACTOR)
    })
  })
}
