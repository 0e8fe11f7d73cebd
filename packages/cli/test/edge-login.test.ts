/**
 * `nullport edge login` / `logout` / sessions, against a real controller process.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, X509Certificate } from 'node:crypto'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createRootCa } from '@nullport/protocol'
import {
  CLI_BIN,
  type CliEnv,
  cliEnv,
  failLine,
  spawnController,
  type TestController,
} from '@nullport/testkit'

describe('nullport edge login', () => {
  let ctrl: TestController
  let cli: CliEnv
  let rootFp: string
  before(async () => {
    ctrl = await spawnController()
    cli = cliEnv()
    const root = ctrl.caPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0]
    rootFp = createHash('sha256').update(new X509Certificate(root).raw).digest('hex')
  })
  after(async () => {
    await ctrl?.stop()
    cli?.cleanup()
  })

  it('says how to log in when there is no session', async () => {
    const line = failLine(await cli.run(['edge', 'list', 'services']), 'ERR_CLI_NOT_LOGGED_IN')
    assert.match(line, /nullport edge login/)
    assert.ok(line.includes('or `export NULLPORT_HOME=DIR` for a quickstart started with --home DIR'), line)
  })

  it('refuses an unconfirmed CA without -y (no TTY), showing its fingerprint', async () => {
    const r = await cli.run(['edge', 'login', ctrl.url, '-u', ctrl.adminUser, '-p', ctrl.adminPassword])
    const line = failLine(r, 'ERR_CLI_UNTRUSTED_CA')
    assert.ok(line.includes(rootFp), line)
    assert.ok(line.includes(`pass --ca-fingerprint ${rootFp}`), line)
    assert.match(line, /or --ca FILE, or -y to trust it as fetched/)
    assert.throws(() => statSync(join(cli.home, 'cli.json')), { code: 'ENOENT' })
  })

  it('--ca-fingerprint: a wrong pin refuses the login even with -y; the right one (colons, upper case) logs in', async () => {
    const wrong = 'ab'.repeat(32)
    const r = await cli.run([
      'edge',
      'login',
      ctrl.url,
      '-u',
      ctrl.adminUser,
      '-p',
      ctrl.adminPassword,
      '-y',
      '--ca-fingerprint',
      wrong,
    ])
    const line = failLine(r, 'ERR_CLI_UNTRUSTED_CA')
    assert.ok(line.includes(rootFp) && line.includes(wrong), line)
    assert.throws(() => statSync(join(cli.home, 'cli.json')), { code: 'ENOENT' })
    const bad = await cli.run([
      'edge',
      'login',
      ctrl.url,
      '-u',
      ctrl.adminUser,
      '-p',
      'x',
      '--ca-fingerprint',
      'abc',
    ])
    assert.match(failLine(bad, 'ERR_CLI_USAGE'), /64 hex digits/)
    const colons = rootFp.toUpperCase().match(/../g)!.join(':')
    await cli.ok([
      'edge',
      'login',
      ctrl.url,
      '-u',
      ctrl.adminUser,
      '-p',
      ctrl.adminPassword,
      '--ca-fingerprint',
      colons,
    ])
    const saved = JSON.parse(readFileSync(join(cli.home, 'cli.json'), 'utf8'))
    assert.ok(String(saved.ca ?? JSON.stringify(saved)).includes('BEGIN CERTIFICATE'))
    await cli.ok(['edge', 'list', 'services'])
    await cli.ok(['edge', 'logout'])
  })

  it('refuses a wrong password', async () => {
    const r = await cli.run(['edge', 'login', ctrl.url, '-u', ctrl.adminUser, '-p', 'wrong-password', '-y'])
    assert.match(failLine(r, 'ERR_INVALID_CREDENTIALS'), /check the user name and password/)
  })

  it('refuses a controller that does not chain to the CA given with --ca', async () => {
    const other = await createRootCa({ commonName: 'someone else' })
    const f = join(cli.home, 'other-ca.pem')
    writeFileSync(f, other.certPem)
    const r = await cli.run([
      'edge',
      'login',
      ctrl.url,
      '-u',
      ctrl.adminUser,
      '-p',
      ctrl.adminPassword,
      '--ca',
      f,
    ])
    assert.match(failLine(r, 'ERR_CLI_UNREACHABLE'), /--ca FILE/)
  })

  it('logs in with --ca and stores a 0600 session; commands then work', async () => {
    const f = join(cli.home, 'ca.pem')
    writeFileSync(f, ctrl.caPem)
    const out = await cli.ok([
      'edge',
      'login',
      ctrl.url,
      '-u',
      ctrl.adminUser,
      '-p',
      ctrl.adminPassword,
      '--ca',
      f,
    ])
    assert.match(out, new RegExp(`logged in to ${ctrl.url} as ${ctrl.adminUser}`))
    const p = join(cli.home, 'cli.json')
    assert.equal(statSync(p).mode & 0o777, 0o600)
    const cfg = JSON.parse(readFileSync(p, 'utf8'))
    assert.equal(cfg.session.url, ctrl.url)
    assert.equal(typeof cfg.session.token, 'string')
    assert.ok(Date.parse(cfg.session.expiresAt) > Date.now())
    assert.ok(cfg.session.ca.includes('BEGIN CERTIFICATE'))
    const ids = JSON.parse(await cli.ok(['edge', 'list', 'identities', '--json']))
    assert.ok(ids.some((i: { name: string }) => i.name === ctrl.adminUser))
  })

  it('logs in with -y after showing the fingerprint (--json output)', async () => {
    const r = await cli.run([
      'edge',
      'login',
      ctrl.url,
      '-u',
      ctrl.adminUser,
      '-p',
      ctrl.adminPassword,
      '-y',
      '--json',
    ])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(r.stderr.includes(rootFp.toUpperCase().match(/../g)!.join(':')))
    const j = JSON.parse(r.stdout)
    assert.equal(j.url, ctrl.url)
    assert.equal(j.username, ctrl.adminUser)
  })

  it('reports a session the controller no longer knows with the login command', async () => {
    const p = join(cli.home, 'cli.json')
    const saved = readFileSync(p, 'utf8')
    const bad = JSON.parse(saved)
    bad.session.token = 'not-a-session'
    writeFileSync(p, JSON.stringify(bad))
    const line = failLine(await cli.run(['edge', 'list', 'services']), 'ERR_CLI_SESSION_EXPIRED')
    assert.equal(
      line,
      `nullport: ERR_CLI_SESSION_EXPIRED: session expired: run \`nullport edge login ${ctrl.url} -u ${ctrl.adminUser}\``,
    )
    writeFileSync(p, saved)
  })

  it('on a terminal: asks for the password without echo and for the CA confirmation', async (t) => {
    const script = ['/usr/bin/script', '/bin/script'].find((f) => existsSync(f))
    if (!script) {
      t.skip('script(1) is not installed: no pseudo-terminal')
      return
    }
    const tty = (input: string) =>
      new Promise<{ code: number | null; out: string }>((resolve, reject) => {
        const cmd = `"${process.execPath}" "${CLI_BIN}" edge login ${ctrl.url} -u ${ctrl.adminUser}`
        const p = spawn(script, ['-qec', cmd, '/dev/null'], {
          env: { ...process.env, NULLPORT_HOME: cli.home },
          stdio: ['pipe', 'pipe', 'pipe'],
        })
        let out = ''
        p.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d
        })
        p.stderr.setEncoding('utf8').on('data', (d: string) => {
          out += d
        })
        p.on('error', reject)
        p.on('close', (code) => resolve({ code, out: out.replace(/\r/g, '') }))
        p.stdin.end(input)
      })
    const no = await tty(`${ctrl.adminPassword}\rn\r`)
    assert.equal(no.code, 1, no.out)
    assert.match(no.out, /password for admin: \n/)
    assert.match(no.out, /trust this CA for the session\? \[y\/N\] n\n/)
    assert.match(no.out, /ERR_CLI_UNTRUSTED_CA: CA not trusted/)
    const yes = await tty(`${ctrl.adminPassword}\ry\r`)
    assert.equal(yes.code, 0, yes.out)
    assert.match(yes.out, /logged in to /)
  })

  it('logs out: the session ends at the controller and is forgotten', async () => {
    const cfg = JSON.parse(readFileSync(join(cli.home, 'cli.json'), 'utf8'))
    const out = await cli.ok(['edge', 'logout'])
    assert.match(out, /logged out/)
    failLine(await cli.run(['edge', 'list', 'services']), 'ERR_CLI_NOT_LOGGED_IN')
    const r = await ctrl.api('GET', 'services', undefined, { token: cfg.session.token })
    assert.equal(r.status, 401)
    assert.match(await cli.ok(['edge', 'logout']), /not logged in/)
  })

  it('rejects a non-https URL and a missing user', async () => {
    assert.match(
      failLine(await cli.run(['edge', 'login', 'http://127.0.0.1:1', '-u', 'a', '-p', 'b']), 'ERR_CLI_USAGE'),
      /https/,
    )
    assert.match(
      failLine(await cli.run(['edge', 'login', ctrl.url, '-p', 'b']), 'ERR_CLI_USAGE'),
      /--username/,
    )
  })
})

describe('nullport edge: an expired session', () => {
  it('names the login command when the controller says the session expired', async () => {
    const cli = cliEnv()
    const cfg = join(cli.home, 'controller.json')
    writeFileSync(cfg, JSON.stringify({ sessionLifetime: '1s' }))
    const ctrl = await spawnController({ args: ['--config', cfg] })
    try {
      await cli.ok(['edge', 'login', ctrl.url, '-u', ctrl.adminUser, '-p', ctrl.adminPassword, '-y'])
      const { expiresAt } = JSON.parse(readFileSync(join(cli.home, 'cli.json'), 'utf8')).session
      const wait = Date.parse(expiresAt) - Date.now() + 200
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      const line = failLine(await cli.run(['edge', 'list', 'services']), 'ERR_CLI_SESSION_EXPIRED')
      assert.equal(
        line,
        `nullport: ERR_CLI_SESSION_EXPIRED: session expired: run \`nullport edge login ${ctrl.url} -u ${ctrl.adminUser}\``,
      )
    } finally {
      await ctrl.stop()
      cli.cleanup()
    }
  })
})
