import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { runControllerToExit, spawnController, type TestController } from '@nullport/testkit'

describe('admin authentication and sessions', () => {
  const dirs: string[] = []
  const ctls: TestController[] = []
  after(async () => {
    for (const c of ctls) await c.stop()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'np-auth-'))
    dirs.push(d)
    return d
  }

  it('wrong password -> 401 ERR_INVALID_CREDENTIALS; 5 failures -> 429 ERR_RATE_LIMITED even with the right password', async () => {
    const c = await spawnController({ runner: 'library' })
    ctls.push(c)
    const auth = (username: string, password: string) =>
      c.api('POST', '/edge/management/v1/authenticate', { username, password }, { token: null })
    const unknownUser = await auth('nobody', 'whatever-pw')
    assert.equal(unknownUser.status, 401)
    assert.equal(unknownUser.body.error.code, 'ERR_INVALID_CREDENTIALS')
    for (let i = 0; i < 5; i++) {
      const r = await auth('admin', 'wrong-password')
      assert.equal(r.status, 401, r.text)
      assert.equal(r.body.error.code, 'ERR_INVALID_CREDENTIALS')
    }
    const limited = await auth('admin', c.adminPassword)
    assert.equal(limited.status, 429, limited.text)
    assert.equal(limited.body.error.code, 'ERR_RATE_LIMITED')
    assert.ok(limited.body.error.retryAfterSeconds > 0)
    assert.ok(Number(limited.headers['retry-after']) > 0)
    // another username is not limited
    assert.equal((await auth('nobody', 'x-password')).status, 401)
    // parallel guesses cannot slip past the limit: at most 5 are checked
    const burst = await Promise.all(Array.from({ length: 20 }, () => auth('burst-user', 'guess-password')))
    assert.ok(burst.filter((r) => r.status === 401).length <= 5)
    assert.ok(burst.filter((r) => r.status === 429).length >= 15)
    // failed logins are audited (checked through a session of a second admin-less route? use the log)
  })

  it('Bearer and zt-session headers; logout; non-admin -> 403 ERR_FORBIDDEN; bad token -> 401', async () => {
    const c = await spawnController({ runner: 'library' })
    ctls.push(c)
    const token = await c.login()
    const a = await c.api('GET', 'identities', undefined, { token })
    assert.equal(a.status, 200)
    const z = await c.api('GET', 'identities', undefined, { token: null, headers: { 'zt-session': token } })
    assert.equal(z.status, 200, z.text)
    const bad = await c.api('GET', 'identities', undefined, { token: 'not-a-token' })
    assert.equal(bad.status, 401)
    assert.equal(bad.body.error.code, 'ERR_UNAUTHORIZED')
    const none = await c.api('GET', 'identities', undefined, { token: null })
    assert.equal(none.body.error.code, 'ERR_UNAUTHORIZED')

    const u = await c.api('POST', 'identities', { name: 'operator', type: 'user', password: 'operator-pass' })
    assert.equal(u.status, 201, u.text)
    assert.equal(u.body.data.hasPassword, true)
    const opToken = await c.login('operator', 'operator-pass')
    const f = await c.api('GET', 'identities', undefined, { token: opToken })
    assert.equal(f.status, 403)
    assert.equal(f.body.error.code, 'ERR_FORBIDDEN')
    // promote: now allowed
    assert.equal((await c.api('PATCH', 'identities/operator', { isAdmin: true })).status, 200)
    assert.equal((await c.api('GET', 'identities', undefined, { token: opToken })).status, 200)
    // disable: sessions end
    assert.equal((await c.api('PATCH', 'identities/operator', { disabled: true })).status, 200)
    assert.equal((await c.api('GET', 'identities', undefined, { token: opToken })).status, 401)

    // an admin changes its own password: the old one stops working at once
    assert.equal(
      (await c.api('PATCH', 'identities/admin', { password: 'a-new-password' }, { token })).status,
      200,
    )
    await assert.rejects(c.login('admin', c.adminPassword), /401/)
    assert.ok((await c.login('admin', 'a-new-password')).length > 20)

    const out = await c.api('DELETE', 'current-api-session', undefined, { token })
    assert.equal(out.status, 200)
    const after = await c.api('GET', 'identities', undefined, { token })
    assert.equal(after.status, 401)
    assert.equal(after.body.error.code, 'ERR_UNAUTHORIZED')
  })

  it('an expired session token -> 401 ERR_SESSION_EXPIRED', async () => {
    const dir = tmp()
    const cfg = join(dir, 'config.json')
    writeFileSync(cfg, JSON.stringify({ sessionLifetime: '1s' }))
    const c = await spawnController({ runner: 'library', configFile: cfg })
    ctls.push(c)
    const token = await c.login()
    await new Promise((r) => setTimeout(r, 1500))
    const r = await c.api('GET', 'identities', undefined, { token })
    assert.equal(r.status, 401, r.text)
    assert.equal(r.body.error.code, 'ERR_SESSION_EXPIRED')
  })

  it('no admin and none given -> the controller refuses to start with ERR_NO_ADMIN naming the flags', async () => {
    const r = await runControllerToExit({ runner: 'library', dataDir: tmp(), adminUser: null })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /ERR_NO_ADMIN/)
    assert.match(r.stderr, /--admin-user/)
    assert.match(r.stderr, /--admin-password-file/)
    assert.match(r.stderr, /NULLPORT_ADMIN_USER/)
  })

  it('a config file with an unknown field -> refuses to start naming the field', async () => {
    const dir = tmp()
    const cfg = join(dir, 'c.json')
    writeFileSync(cfg, JSON.stringify({ listen: '127.0.0.1:0', sesionLifetime: '1h' }))
    const r = await runControllerToExit({ runner: 'library', dataDir: dir, configFile: cfg })
    assert.equal(r.code, 1)
    assert.match(r.stderr, /ERR_CONFIG_FILE/)
    assert.match(r.stderr, /sesionLifetime/)
    writeFileSync(cfg, JSON.stringify({ bodyLimit: 'big' }))
    const r2 = await runControllerToExit({ runner: 'library', dataDir: dir, configFile: cfg })
    assert.match(r2.stderr, /bodyLimit/)
  })

  it('restart reuses the data and creates no second admin (even with another admin user given)', async () => {
    const dir = tmp()
    const c1 = await spawnController({
      runner: 'library',
      dataDir: dir,
      adminUser: 'root-admin',
      adminPassword: 'first-password',
    })
    const id = (await c1.api('POST', 'services', { name: 'survives' })).body.data.id
    await c1.stop()
    const c2 = await spawnController({
      runner: 'library',
      dataDir: dir,
      adminUser: 'root-admin',
      adminPassword: 'second-password',
    })
    ctls.push(c2)
    // the password was NOT reset by the restart
    const t = await c2.login('root-admin', 'first-password')
    const s = await c2.api('GET', 'services/survives', undefined, { token: t })
    assert.equal(s.body.data.id, id)
    const admins = await c2.api(
      'GET',
      `identities?filter=${encodeURIComponent('isAdmin = true')}`,
      undefined,
      { token: t },
    )
    assert.equal(admins.body.meta.pagination.totalCount, 1)
    await c2.stop({ keepData: true })
    const c3 = await spawnController({
      runner: 'library',
      dataDir: dir,
      adminUser: 'other-admin',
      adminPassword: 'other-password',
    })
    ctls.push(c3)
    const t3 = await c3.login('root-admin', 'first-password')
    const admins3 = await c3.api(
      'GET',
      `identities?filter=${encodeURIComponent('isAdmin = true')}`,
      undefined,
      { token: t3 },
    )
    assert.deepEqual(
      admins3.body.data.map((x: { name: string }) => x.name),
      ['root-admin'],
    )
    // and with no admin credentials at all it starts, since an admin exists
    await c3.stop({ keepData: true })
    const c4 = await spawnController({ runner: 'library', dataDir: dir, adminUser: null })
    ctls.push(c4)
    assert.equal((await c4.login('root-admin', 'first-password')).length > 20, true)
  })
})
