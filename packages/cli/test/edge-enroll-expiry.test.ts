/**
 * An expired enrollment token: `nullport edge enroll` names the expiry time and the re-enroll
 * command, and following it works (real controller processes, short enrollmentLifetime).
 */
import assert from 'node:assert/strict'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadIdentityFile, verifyChain } from '@nullport/protocol'
import { cliEnv, failLine, spawnController } from '@nullport/testkit'

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.trim().split('.')[1]!, 'base64url').toString('utf8'))
}

describe('nullport edge enroll: expired tokens', () => {
  it('names the expiry time and the re-enroll command; after re-enroll it works', async () => {
    const cli = cliEnv()
    const cfg = join(cli.home, 'controller.json')
    writeFileSync(cfg, JSON.stringify({ enrollmentLifetime: '1s' }))
    let ctrl = await spawnController({ args: ['--config', cfg] })
    const dataDir = ctrl.dataDir
    try {
      await cli.ok(['edge', 'login', ctrl.url, '-u', ctrl.adminUser, '-p', ctrl.adminPassword, '-y'])
      await cli.ok(['edge', 'create', 'identity', 'device', 'web01', '-o', 'web01.jwt'])
      const exp = claimsOf(readFileSync(join(cli.home, 'web01.jwt'), 'utf8')).exp as number
      const wait = exp * 1000 - Date.now() + 100
      if (wait > 0) await sleep(wait)
      const d = new Date(exp * 1000)
      const hhmm = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
      const line = failLine(await cli.run(['edge', 'enroll', 'web01.jwt']), 'ERR_ENROLL_TOKEN_EXPIRED')
      assert.equal(
        line,
        `nullport: ERR_ENROLL_TOKEN_EXPIRED: enrollment token for web01 expired at ${hhmm}: issue a new one with \`nullport edge re-enroll identity web01 -o web01.jwt\``,
      )

      // the same network with a usable token lifetime: follow the hint
      await ctrl.stop({ keepData: true })
      ctrl = await spawnController({ dataDir, adminUser: ctrl.adminUser, adminPassword: ctrl.adminPassword })
      await cli.ok(['edge', 'login', ctrl.url, '-u', ctrl.adminUser, '-p', ctrl.adminPassword, '-y'])
      await cli.ok(['edge', 're-enroll', 'identity', 'web01', '-o', 'web01.jwt'])
      const out = await cli.ok(['edge', 'enroll', 'web01.jwt'])
      assert.match(out, /enrolled identity web01/)
      const f = await loadIdentityFile(join(cli.home, 'web01.json'))
      verifyChain({ chainPem: f.cert, rootsPem: ctrl.caPem, usage: 'client' })
    } finally {
      await ctrl.stop({ keepData: true })
      rmSync(dataDir, { recursive: true, force: true })
      cli.cleanup()
    }
  })
})
