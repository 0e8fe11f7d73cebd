/**
 * `nullport edge create identity ... -o NAME.jwt`, `nullport edge enroll`, `nullport edge re-enroll`
 * against a real controller process: the identity file, single use, tampering, expiry.
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadIdentityFile, verifyChain } from '@nullport/protocol'
import { type CliEnv, cliEnv, failLine, spawnController, type TestController } from '@nullport/testkit'

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.trim().split('.')[1]!, 'base64url').toString('utf8'))
}

function withClaims(jwt: string, patch: Record<string, unknown>): string {
  const [h, p, s] = jwt.trim().split('.')
  const c = { ...JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')), ...patch }
  return `${h}.${Buffer.from(JSON.stringify(c)).toString('base64url')}.${s}`
}

describe('nullport edge enroll', () => {
  let ctrl: TestController
  let cli: CliEnv
  before(async () => {
    ctrl = await spawnController()
    cli = cliEnv()
    await cli.ok(['edge', 'login', ctrl.url, '-u', ctrl.adminUser, '-p', ctrl.adminPassword, '-y'])
  })
  after(async () => {
    await ctrl?.stop()
    cli?.cleanup()
  })

  it('create identity -o NAME.jwt, then enroll writes a 0600 identity file chained to the network CA', async () => {
    const created = await cli.ok([
      'edge',
      'create',
      'identity',
      'device',
      'laptop',
      '-a',
      'clients',
      '-o',
      'laptop.jwt',
    ])
    assert.match(created, /enrollment token written to laptop\.jwt/)
    const jwtPath = join(cli.home, 'laptop.jwt')
    assert.equal(statSync(jwtPath).mode & 0o777, 0o600)
    const out = await cli.ok(['edge', 'enroll', 'laptop.jwt'])
    assert.match(out, /enrolled identity laptop \(\S+\): identity file written to laptop\.json/)
    const file = join(cli.home, 'laptop.json')
    assert.equal(statSync(file).mode & 0o777, 0o600)
    const id = await loadIdentityFile(file)
    const ident = (await ctrl.api('GET', 'identities/laptop')).body.data
    assert.equal(id.id, ident.id)
    assert.equal(id.name, 'laptop')
    assert.equal(id.kind, 'identity')
    assert.equal(id.controller, ctrl.url)
    const v = verifyChain({ chainPem: id.cert, rootsPem: ctrl.caPem, usage: 'client' })
    assert.equal(v.spiffeId, `spiffe://${id.trustDomain}/identity/${ident.id}`)
    // the list shows it enrolled, with its certificate's expiry
    assert.match(
      await cli.ok(['edge', 'list', 'identities', 'name = "laptop"']),
      /laptop\s+Device\s+clients\s+false\s+false\s+yes\s+\d{4}-\d\d-\d\d \d\d:\d\dZ/,
    )

    // enrolling twice: refused before the network for an existing file, by the controller otherwise
    assert.match(
      failLine(await cli.run(['edge', 'enroll', 'laptop.jwt']), 'ERR_ENROLL_OUTPUT_EXISTS'),
      /laptop\.json already exists/,
    )
    const again = failLine(
      await cli.run(['edge', 'enroll', 'laptop.jwt', '-o', 'laptop2.json']),
      'ERR_ENROLL_TOKEN_USED',
    )
    assert.match(again, /nullport edge re-enroll identity laptop -o laptop\.jwt/)
    assert.throws(() => statSync(join(cli.home, 'laptop2.json')), { code: 'ENOENT' })
  })

  it('refuses a token altered to pin another CA (ERR_ENROLL_CA_MISMATCH), and one altered otherwise', async () => {
    const d = JSON.parse(await cli.ok(['edge', 'create', 'identity', 'phone', '--json']))
    const jwt: string = d.enrollment.jwt
    writeFileSync(join(cli.home, 'evil.jwt'), withClaims(jwt, { caFp: 'ab'.repeat(32) }))
    const line = failLine(await cli.run(['edge', 'enroll', 'evil.jwt']), 'ERR_ENROLL_CA_MISMATCH')
    assert.match(line, /abab/)
    writeFileSync(join(cli.home, 'evil2.jwt'), withClaims(jwt, { sub: 'someone-else' }))
    failLine(await cli.run(['edge', 'enroll', 'evil2.jwt']), 'ERR_ENROLL_TOKEN_INVALID')
    writeFileSync(join(cli.home, 'garbage.jwt'), 'not a token')
    failLine(await cli.run(['edge', 'enroll', 'garbage.jwt']), 'ERR_ENROLL_TOKEN_MALFORMED')
    failLine(await cli.run(['edge', 'enroll', 'missing.jwt']), 'ERR_CLI_FILE')
    // the genuine token still works
    writeFileSync(join(cli.home, 'phone.jwt'), jwt)
    await cli.ok(['edge', 'enroll', 'phone.jwt', '-o', 'phone-id.json'])
    assert.equal((await loadIdentityFile(join(cli.home, 'phone-id.json'))).name, 'phone')
  })

  it('re-enroll issues a new token: the old one stops working, the new one enrolls', async () => {
    const old = readFileSync(join(cli.home, 'laptop.jwt'), 'utf8')
    const out = await cli.ok(['edge', 're-enroll', 'identity', 'laptop', '-o', 'laptop.jwt'])
    assert.match(out, /new enrollment token for identity laptop written to laptop\.jwt/)
    const fresh = readFileSync(join(cli.home, 'laptop.jwt'), 'utf8')
    assert.notEqual(fresh.trim(), old.trim())
    assert.equal(claimsOf(fresh).name, 'laptop')
    await cli.ok(['edge', 'enroll', 'laptop.jwt', '--overwrite'])
    const v = verifyChain({
      chainPem: (await loadIdentityFile(join(cli.home, 'laptop.json'))).cert,
      rootsPem: ctrl.caPem,
    })
    assert.ok(v.spiffeId?.endsWith(`/identity/${claimsOf(fresh).sub}`))
    // without -o the token is printed
    const printed = (await cli.ok(['edge', 're-enroll', 'identity', 'laptop'])).trim()
    assert.equal(claimsOf(printed).name, 'laptop')
    assert.match(
      failLine(await cli.run(['edge', 're-enroll', 'service', 'x']), 'ERR_CLI_UNKNOWN_KIND'),
      /identity or edge-router/,
    )
  })

  it('enrolls an edge router token with --advertise', async () => {
    await cli.ok(['edge', 'create', 'edge-router', 'r1', '-o', 'r1.jwt'])
    assert.match(
      failLine(await cli.run(['edge', 'enroll', 'r1.jwt']), 'ERR_ENROLL_INVALID_OPTIONS'),
      /advertise/,
    )
    const out = await cli.ok(['edge', 'enroll', 'r1.jwt', '--advertise', '127.0.0.1:3022'])
    assert.match(out, /enrolled router r1/)
    const f = await loadIdentityFile(join(cli.home, 'r1.json'))
    assert.equal(f.kind, 'router')
    assert.match(verifyChain({ chainPem: f.cert, rootsPem: ctrl.caPem }).spiffeId ?? '', /\/router\//)
  })

  it('list identities and list edge-routers show enrollment and the current certificate expiry', async () => {
    const notAfter = async (file: string): Promise<string> => {
      const f = await loadIdentityFile(join(cli.home, file))
      return new Date(new X509Certificate(f.cert).validTo).toISOString()
    }
    const short = (iso: string): string => `${iso.slice(0, 10)} ${iso.slice(11, 16)}Z`
    await cli.ok(['edge', 'create', 'identity', 'pending', '-o', 'pending.jwt'])
    const ids = await cli.ok(['edge', 'list', 'identities'])
    const header = ids.split('\n')[0]!
    assert.match(header, /ENROLLED\s+CERT EXPIRES/)
    const row = (table: string, name: string): string =>
      table.split('\n').find((l) => new RegExp(`^\\S+\\s+${name}\\s`).test(l)) ?? ''
    // laptop has a new token (re-enroll): its revoked certificate's expiry is not shown
    assert.match(row(ids, 'laptop'), /token until \d{4}-\d\d-\d\d \d\d:\d\dZ\s*$/)
    const phone = await notAfter('phone-id.json')
    assert.match(row(ids, 'phone'), new RegExp(`\\syes\\s+${short(phone)}\\s*$`))
    assert.match(row(ids, 'pending'), /token until \d{4}-\d\d-\d\d \d\d:\d\dZ\s*$/)
    const js = JSON.parse(await cli.ok(['edge', 'list', 'identities', '--json'])) as Array<{
      name: string
      certExpiresAt: string | null
    }>
    const at = (n: string) => js.find((x) => x.name === n)?.certExpiresAt
    assert.equal(at('laptop'), null)
    assert.equal(at('phone'), phone)
    assert.equal(at('pending'), null)
    const routers = await cli.ok(['edge', 'list', 'edge-routers'])
    assert.match(routers.split('\n')[0]!, /ENROLLED\s+CERT EXPIRES/)
    const r1 = await notAfter('r1.json')
    assert.match(row(routers, 'r1'), new RegExp(`\\syes\\s+${short(r1)}\\s*$`))
  })
})
