/**
 * Failed logins are limited per client address across usernames, not only per (username,
 * address); a refused attempt costs no password check and writes no audit row of its own: the
 * refusals of an address become one aggregated `login-refused` row at housekeeping.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { LOGIN_FAILURES_PER_ADDRESS } from '../src/core/sessions.js'
import { type ControllerContext, type ControllerError, createContext, loadConfig } from '../src/index.js'

const admin = { id: null, name: 'tester' }

describe('login limits per address', () => {
  let dir: string
  let ctx: ControllerContext
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'np-login-limits-'))
    ctx = await createContext(loadConfig({ dataDir: dir, logLevel: 'silent' }))
    await ctx.core.create('identities', { name: 'ops', isAdmin: true, password: 'ops-password-1' }, admin)
  })
  after(async () => {
    await ctx?.store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const login = (user: string, pw: string, ip: string) => ctx.core.authenticatePassword(user, pw, ip)
  const code = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p
      return 'ok'
    } catch (e) {
      return (e as ControllerError).code
    }
  }
  const auditCount = async (action: string) =>
    (await ctx.core.auditLog({ limit: 1000 })).data.filter((r) => r.action === action)

  it('many usernames from one address: refused after the per-address limit, cheaply and without audit rows', async () => {
    const ip = '198.51.100.7'
    const codes: string[] = []
    for (let i = 0; i < 100; i++) codes.push(await code(login(`user-${i}`, 'wrong-password', ip)))
    assert.deepEqual(
      codes.slice(0, LOGIN_FAILURES_PER_ADDRESS),
      Array(LOGIN_FAILURES_PER_ADDRESS).fill('ERR_INVALID_CREDENTIALS'),
    )
    assert.deepEqual(
      codes.slice(LOGIN_FAILURES_PER_ADDRESS),
      Array(100 - LOGIN_FAILURES_PER_ADDRESS).fill('ERR_RATE_LIMITED'),
    )
    // the address is refused even with a right password; another address is not
    assert.equal(await code(login('ops', 'ops-password-1', ip)), 'ERR_RATE_LIMITED')
    assert.equal(await code(login('ops', 'ops-password-1', '198.51.100.8')), 'ok')
    // one audit row per checked failure, none per refusal
    assert.equal((await auditCount('login-failed')).length, LOGIN_FAILURES_PER_ADDRESS)
    assert.equal((await auditCount('login-refused')).length, 0)
    const m = await ctx.core.maintenance()
    assert.equal(m.refusedLogins, 1)
    const [row] = await auditCount('login-refused')
    assert.ok(row)
    assert.equal((row.details as { ip: string }).ip, ip)
    assert.equal((row.details as { attempts: number }).attempts, 100 - LOGIN_FAILURES_PER_ADDRESS + 1)
    assert.ok((row.details as { usernames: string[] }).usernames.length <= 10)
    assert.equal((await ctx.core.maintenance()).refusedLogins, 0, 'written once')
  })

  it('a successful login does not count against its address', async () => {
    const ip = '198.51.100.9'
    for (let i = 0; i < LOGIN_FAILURES_PER_ADDRESS + 5; i++)
      assert.equal(await code(login('ops', 'ops-password-1', ip)), 'ok')
  })
})
