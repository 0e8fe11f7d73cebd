/**
 * `nullport edge` for service policies, edge routers, router policies, terminators, circuits and
 * the policy advisor, as real CLI processes against a real controller process.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type CliEnv, cliEnv, failLine, spawnController, type TestController } from '@nullport/testkit'

// biome-ignore lint/suspicious/noExplicitAny: JSON from the CLI
type J = any

describe('nullport edge: policies, routers, advisor', () => {
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
    // the service the policies point at (made through the API: the CLI for it is tested in edge-crud)
    assert.equal((await ctrl.api('POST', 'services', { name: 'web' })).status, 201)
  })
  after(async () => {
    await ctrl?.stop()
    cli?.cleanup()
  })

  it('service policies, with warnings and unknown @names', async () => {
    await cli.ok(['edge', 'create', 'identity', 'device', 'web-host', '-a', 'web.servers'])
    const r = await cli.run([
      'edge',
      'create',
      'service-policy',
      'web-bind',
      'Bind',
      '--service-roles',
      '@web',
      '--identity-roles',
      '#web.servers',
    ])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
    // a role that matches nothing: accepted, one warning line
    const w = await cli.run([
      'edge',
      'create',
      'service-policy',
      'web-dial',
      'Dial',
      '--service-roles',
      '@web',
      '--identity-roles',
      '#web.clients',
      '--semantic',
      'AllOf',
    ])
    assert.equal(w.code, 0, w.stderr)
    assert.match(w.stderr, /^warning: .*#web\.clients.*\n$/)
    const sp = await get('service-policies', 'web-dial')
    assert.equal(sp.semantic, 'AllOf')
    assert.equal(sp.type, 'Dial')
    // an unknown @name: refused, with the hint to check the name
    const nf = failLine(
      await cli.run([
        'edge',
        'create',
        'service-policy',
        'x',
        'Dial',
        '--service-roles',
        '@nosuch',
        '--identity-roles',
        '#all',
      ]),
      'ERR_ROLE_NOT_FOUND',
    )
    assert.match(nf, /@nosuch/)
    assert.match(nf, /check the name with `nullport edge list services`/)
    // missing flags, bad type, role without # or @
    assert.match(
      failLine(
        await cli.run(['edge', 'create', 'service-policy', 'x', 'Dial', '--service-roles', '@web']),
        'ERR_CLI_USAGE',
      ),
      /--identity-roles/,
    )
    assert.match(
      failLine(
        await cli.run([
          'edge',
          'create',
          'service-policy',
          'x',
          'Call',
          '--service-roles',
          '@web',
          '--identity-roles',
          '#a',
        ]),
        'ERR_CLI_USAGE',
      ),
      /Dial, Bind/,
    )
    assert.match(
      failLine(
        await cli.run([
          'edge',
          'create',
          'service-policy',
          'x',
          'Dial',
          '--service-roles',
          'web',
          '--identity-roles',
          '#a',
        ]),
        'ERR_CLI_USAGE',
      ),
      /'@web'/,
    )

    const table = await cli.ok(['edge', 'list', 'service-policies'])
    assert.match(table, /web-bind\s+Bind\s+AnyOf\s+@web\s+#web\.servers/)
    await cli.ok([
      'edge',
      'update',
      'service-policy',
      'web-dial',
      '--identity-roles',
      '#web.clients,@web-host',
      '--semantic',
      'AnyOf',
    ])
    const u = await json(['edge', 'list', 'service-policies', 'name = "web-dial"'])
    assert.equal(u[0].semantic, 'AnyOf')
    assert.equal(u[0].identityRoles.length, 2)
    await cli.ok(['edge', 'delete', 'service-policy', 'web-dial'])
  })

  it('edge routers and both router policies', async () => {
    const jwtFile = join(cli.home, 'r1.jwt')
    const out = await cli.ok([
      'edge',
      'create',
      'edge-router',
      'r1',
      '-a',
      'public',
      '-o',
      jwtFile,
      '--cost',
      '5',
    ])
    assert.match(out, /New edge router r1 created/)
    assert.match(out, /enrollment token written to/)
    const r1 = await get('edge-routers', 'r1')
    assert.equal(r1.cost, 5)
    assert.match(await cli.ok(['edge', 'list', 'edge-routers']), /r1\s+false\s+5\s+false\s+public/)
    await cli.ok(['edge', 'update', 'edge-router', 'r1', '--disabled', 'true', '-a', 'public,eu'])
    assert.equal((await get('edge-routers', 'r1')).disabled, true)

    await cli.ok([
      'edge',
      'create',
      'edge-router-policy',
      'all-public',
      '--edge-router-roles',
      '#public',
      '--identity-roles',
      '#all',
    ])
    assert.match(
      await cli.ok(['edge', 'list', 'edge-router-policies']),
      /all-public\s+AnyOf\s+#public\s+#all/,
    )
    await cli.ok(['edge', 'update', 'edge-router-policy', 'all-public', '--edge-router-roles', '@r1'])
    assert.match(await cli.ok(['edge', 'list', 'edge-router-policies']), /all-public\s+AnyOf\s+@r1/)

    await cli.ok([
      'edge',
      'create',
      'service-edge-router-policy',
      'web-routers',
      '--edge-router-roles',
      '#all',
      '--service-roles',
      '@web',
    ])
    assert.match(
      await cli.ok(['edge', 'list', 'service-edge-router-policies']),
      /web-routers\s+AnyOf\s+@web\s+#all/,
    )
    const nf = failLine(
      await cli.run([
        'edge',
        'create',
        'service-edge-router-policy',
        'x',
        '--edge-router-roles',
        '@nosuch',
        '--service-roles',
        '#all',
      ]),
      'ERR_ROLE_NOT_FOUND',
    )
    assert.match(nf, /list edge-routers/)
    await cli.ok(['edge', 'update', 'service-edge-router-policy', 'web-routers', '--name', 'web-routers2'])
    await cli.ok(['edge', 'delete', 'service-edge-router-policy', 'web-routers2'])
    await cli.ok(['edge', 'delete', 'edge-router-policy', 'all-public'])
    await cli.ok(['edge', 'delete', 'edge-router', 'r1'])
    assert.match(await cli.ok(['edge', 'list', 'edge-routers']), /no edge-routers/)
  })

  it('terminators and circuits are listed (read only)', async () => {
    assert.deepEqual(await json(['edge', 'list', 'terminators']), [])
    assert.deepEqual(await json(['edge', 'list', 'circuits']), [])
    assert.match(
      failLine(await cli.run(['edge', 'delete', 'terminator', 'x']), 'ERR_CLI_UNKNOWN_KIND'),
      /read only/,
    )
  })

  it('policy-advisor explains what is missing', async () => {
    const out = await cli.ok(['edge', 'policy-advisor', 'identities', 'web-host', 'web'])
    assert.match(out, /^identity: web-host \(/)
    assert.match(out, /can bind: (yes|no) \(Bind policies: web-bind/)
    assert.match(out, /can dial: no \(no Dial policy\)/)
    assert.match(out, /findings:\n {2}- /)
    const j = await json(['edge', 'policy-advisor', 'identities', 'web-host', 'web'])
    assert.deepEqual(j.bindPolicies, ['web-bind'])
    // OpenZiti's other order gives the same report
    assert.deepEqual(await json(['edge', 'policy-advisor', 'services', 'web', 'web-host']), j)
  })
})
