/**
 * `nullport edge create|list|update|delete` for every entity type, and bad input, as real CLI
 * processes against a real controller process.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type CliEnv, cliEnv, failLine, spawnController, type TestController } from '@nullport/testkit'

// biome-ignore lint/suspicious/noExplicitAny: JSON from the CLI
type J = any

describe('nullport edge create/list/update/delete', () => {
  let ctrl: TestController
  let cli: CliEnv
  const json = async (args: string[]): Promise<J> => JSON.parse(await cli.ok([...args, '--json']))
  const get = async (kind: string, name: string): Promise<J> => {
    const r = await ctrl.api('GET', `${kind}/${encodeURIComponent(name)}`)
    return r.status === 200 ? r.body.data : null
  }

  before(async () => {
    ctrl = await spawnController()
    cli = cliEnv()
    await cli.ok(['edge', 'login', ctrl.url, '-u', ctrl.adminUser, '-p', ctrl.adminPassword, '-y'])
  })
  after(async () => {
    await ctrl?.stop()
    cli?.cleanup()
  })

  it('identities', async () => {
    const out = await cli.ok(['edge', 'create', 'identity', 'user', 'alice', '-a', 'staff,clients'])
    assert.match(out, /^New identity alice created, id: \S+/)
    const pw = join(cli.home, 'bob.pw')
    writeFileSync(pw, 'bob-password-123\n')
    const bob = await json(['edge', 'create', 'identity', 'bob', '--admin', '--password-file', pw])
    assert.equal(bob.name, 'bob')
    assert.equal(bob.isAdmin, true)
    assert.equal(bob.enrollment, null)
    // the new admin can log in with the CLI
    const bobCli = cliEnv()
    try {
      await bobCli.ok(['edge', 'login', ctrl.url, '-u', 'bob', '-p', 'bob-password-123', '-y'])
      assert.match(await bobCli.ok(['edge', 'list', 'identities']), /bob/)
    } finally {
      bobCli.cleanup()
    }
    const dev = await json(['edge', 'create', 'identity', 'service', 'svc-id'])
    assert.equal(dev.type, 'Service')
    assert.equal(typeof dev.enrollment.jwt, 'string')
    const alice = await get('identities', 'alice')
    assert.equal(alice.type, 'User')
    assert.deepEqual([...alice.roleAttributes].sort(), ['clients', 'staff'])

    const table = await cli.ok(['edge', 'list', 'identities'])
    assert.match(table, /^ID\s+NAME\s+TYPE\s+ATTRIBUTES\s+ADMIN\s+DISABLED/)
    assert.match(table, /alice\s+User\s+(staff,clients|clients,staff)\s+false\s+false/)
    assert.match(table, /results: 1-4 of 4/)
    const filtered = await json(['edge', 'list', 'identities', 'name contains "ali"'])
    assert.deepEqual(
      filtered.map((i: J) => i.name),
      ['alice'],
    )
    const byRole = await json(['edge', 'list', 'identities', '--role-filter', '#staff'])
    assert.deepEqual(
      byRole.map((i: J) => i.name),
      ['alice'],
    )
    const page = await json(['edge', 'list', 'identities', '--limit', '1', '--offset', '1'])
    assert.equal(page.length, 1)

    assert.match(
      await cli.ok(['edge', 'update', 'identity', 'alice', '-a', 'staff', '--name', 'alice2']),
      /identity alice updated/,
    )
    const a2 = await get('identities', 'alice2')
    assert.deepEqual(a2.roleAttributes, ['staff'])
    const upd = await json(['edge', 'update', 'identity', 'alice2', '--disabled', 'true'])
    assert.equal(upd.disabled, true)
    assert.match(await cli.ok(['edge', 'delete', 'identity', 'alice2']), /identity alice2 deleted/)
    assert.equal(await get('identities', 'alice2'), null)
    await Promise.all([
      cli.ok(['edge', 'delete', 'identity', 'bob', '--json']),
      cli.ok(['edge', 'delete', 'identity', 'svc-id']),
    ])
  })

  it('config types and configs (inline, from a file, schema checked)', async () => {
    const schema = {
      type: 'object',
      properties: { port: { type: 'integer' } },
      required: ['port'],
      additionalProperties: false,
    }
    const ct = await json(['edge', 'create', 'config-type', 'app.v1', JSON.stringify(schema)])
    assert.equal(ct.name, 'app.v1')
    const f = join(cli.home, 'cfg.json')
    writeFileSync(f, JSON.stringify({ port: 8080 }))
    assert.match(
      await cli.ok(['edge', 'create', 'config', 'app-cfg', 'app.v1', '-f', f]),
      /New config app-cfg created/,
    )
    const c = await get('configs', 'app-cfg')
    assert.deepEqual(c.data, { port: 8080 })
    assert.equal(c.configTypeId, ct.id)
    const ic = await json([
      'edge',
      'create',
      'config',
      'web-intercept',
      'intercept.v1',
      '{"protocols":["tcp"],"addresses":["web.np"],"portRanges":[{"low":80,"high":80}]}',
    ])
    assert.deepEqual(ic.data.addresses, ['web.np'])

    const types = await cli.ok(['edge', 'list', 'config-types'])
    assert.match(types, /app\.v1/)
    assert.match(types, /intercept\.v1/)
    const list = await cli.ok(['edge', 'list', 'configs'])
    assert.match(list, /app-cfg\s+app\.v1\s+\{"port":8080\}/)

    await cli.ok(['edge', 'update', 'config', 'app-cfg', '{"port":9090}'])
    assert.deepEqual((await get('configs', 'app-cfg')).data, { port: 9090 })
    await cli.ok(['edge', 'update', 'config-type', 'app.v1', '--name', 'app.v2'])
    assert.ok(await get('config-types', 'app.v2'))

    // failing its schema: the controller's reason and the fix, in one line
    const bad = failLine(
      await cli.run(['edge', 'create', 'config', 'bad-cfg', 'app.v2', '{"port":"x"}']),
      'ERR_CONFIG_INVALID',
    )
    assert.match(bad, /port/)
    assert.match(bad, /fix the JSON to match its config type's schema/)
    // malformed JSON: caught before the controller, with the quoting hint
    const mal = failLine(
      await cli.run(['edge', 'create', 'config', 'bad-cfg', 'app.v2', '{"port":']),
      'ERR_CLI_INVALID_JSON',
    )
    assert.match(mal, /single quotes/)
    failLine(await cli.run(['edge', 'create', 'config', 'bad-cfg', 'app.v2', '[1]']), 'ERR_CLI_INVALID_JSON')
    // unknown type
    assert.match(
      failLine(await cli.run(['edge', 'create', 'config', 'bad-cfg', 'nosuch.v1', '{}']), 'ERR_NOT_FOUND'),
      /list config-types/,
    )
    // missing data
    assert.match(
      failLine(await cli.run(['edge', 'create', 'config', 'bad-cfg', 'app.v2']), 'ERR_CLI_USAGE'),
      /missing the config data/,
    )

    await cli.ok(['edge', 'delete', 'config', 'app-cfg'])
    await cli.ok(['edge', 'delete', 'config-type', 'app.v2'])
    assert.equal(await get('config-types', 'app.v2'), null)
  })

  it('services', async () => {
    const s = await json([
      'edge',
      'create',
      'service',
      'web',
      '--configs',
      'web-intercept',
      '-a',
      'public',
      '--encryption-required',
      'false',
    ])
    assert.equal(s.encryptionRequired, false)
    const got = await get('services', 'web')
    assert.equal(got.configs.length, 1)
    assert.deepEqual(got.roleAttributes, ['public'])
    const table = await cli.ok(['edge', 'list', 'services'])
    assert.match(table, /web\s+false\s+web-intercept\s+public/)
    await cli.ok([
      'edge',
      'update',
      'service',
      'web',
      '--terminator-strategy',
      'random',
      '-a',
      'public,internal',
    ])
    const u = await get('services', 'web')
    assert.equal(u.terminatorStrategy, 'random')
    assert.deepEqual([...u.roleAttributes].sort(), ['internal', 'public'])
    // duplicate name
    const dup = failLine(await cli.run(['edge', 'create', 'service', 'web']), 'ERR_NAME_IN_USE')
    assert.match(dup, /a service named "web" already exists/)
    // unknown config
    assert.match(
      failLine(await cli.run(['edge', 'create', 'service', 'web2', '--configs', 'nosuch']), 'ERR_NOT_FOUND'),
      /no config "nosuch"/,
    )
    failLine(
      await cli.run(['edge', 'create', 'service', 'web2', '--encryption-required', 'maybe']),
      'ERR_CLI_USAGE',
    )
  })

  it('bad input: one line, exit 1, the fix named', async () => {
    const cases: Array<[string[], string, RegExp]> = [
      [['edge', 'create', 'gadget', 'x'], 'ERR_CLI_UNKNOWN_KIND', /use one of identity, /],
      [['edge', 'list', 'gadgets'], 'ERR_CLI_UNKNOWN_KIND', /use one of/],
      [['edge', 'delete', 'gadget', 'x'], 'ERR_CLI_UNKNOWN_KIND', /use one of/],
      [['edge', 'update', 'gadget', 'x', '-a', 'y'], 'ERR_CLI_UNKNOWN_KIND', /use one of/],
      [['edge', 'delete', 'service', 'nosuch'], 'ERR_NOT_FOUND', /list services/],
      [['edge', 'update', 'service', 'web'], 'ERR_CLI_USAGE', /nothing to update/],
      [['edge', 'create', 'identity', 'robot', 'r2d2'], 'ERR_CLI_USAGE', /device, user or service/],
      [
        ['edge', 'create', 'identity', 'adm', '--admin', '-o', 'adm.jwt'],
        'ERR_CLI_USAGE',
        /no enrollment token/,
      ],
      [['edge', 'create', 'service'], 'ERR_CLI_USAGE', /missing required argument/],
      [['edge', 'list', 'services', '--limit', 'ten'], 'ERR_CLI_USAGE', /--limit/],
      [['edge', 'list', 'services', 'name ~ x'], 'ERR_INVALID_FILTER', /./],
    ]
    const results = await Promise.all(cases.map(([args]) => cli.run(args)))
    cases.forEach(([args, code, re], i) => {
      assert.match(failLine(results[i]!, code), re, args.join(' '))
    })
  })
})
