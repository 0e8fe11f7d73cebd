/**
 * Secrets at rest: the data directory is 0700 and controller.db with its -wal and -shm files
 * 0600; a controller refuses to start (ERR_DATA_PERMISSIONS, naming the chmod) when any of them
 * is accessible by group or others.
 */
import assert from 'node:assert/strict'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { runControllerToExit, spawnController } from '@nullport/testkit'

const mode = (p: string): number => statSync(p).mode & 0o777

describe('controller data directory permissions', () => {
  const root = mkdtempSync(join(tmpdir(), 'np-ctl-perm-'))
  after(() => rmSync(root, { recursive: true, force: true }))

  it('creates the data directory 0700 and the database, WAL and SHM 0600', async () => {
    const dataDir = join(root, 'fresh', 'data')
    const c = await spawnController({ runner: 'library', dataDir })
    try {
      // a write so that the WAL holds something
      const r = await c.api('POST', 'identities', { name: 'perm-probe', type: 'Device' })
      assert.equal(r.status, 201, r.text)
      assert.equal(mode(dataDir), 0o700)
      const db = join(dataDir, 'controller.db')
      for (const f of [db, `${db}-wal`, `${db}-shm`]) {
        assert.ok(existsSync(f), `${f} exists`)
        assert.equal(mode(f).toString(8), '600', f)
      }
    } finally {
      await c.stop({ keepData: true })
    }
  })

  it('refuses a data directory open to group or others, naming the chmod', async () => {
    const dataDir = join(root, 'wide')
    mkdirSync(dataDir)
    chmodSync(dataDir, 0o755)
    const r = await runControllerToExit({ runner: 'library', dataDir })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /ERR_DATA_PERMISSIONS/)
    assert.match(r.stderr, new RegExp(`chmod 700 ${dataDir}`))
    assert.equal(existsSync(join(dataDir, 'controller.db')), false, 'nothing written into it')
  })

  it('refuses a group-readable database file', async () => {
    const dataDir = join(root, 'fresh', 'data')
    const db = join(dataDir, 'controller.db')
    chmodSync(db, 0o640)
    const r = await runControllerToExit({ runner: 'library', dataDir, adminUser: null })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /ERR_DATA_PERMISSIONS/)
    assert.match(r.stderr, /chmod 600 .*controller\.db/)
    chmodSync(db, 0o600)
    const c = await spawnController({ runner: 'library', dataDir, adminUser: null })
    await c.stop({ keepData: true })
  })
})
