/**
 * `nullport router enroll|run` as a user meets them: config validation naming the field, the
 * metrics endpoint, and a clean SIGTERM (GOAWAY to peers, terminators deleted, exit 0).
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { FrameType } from '@nullport/protocol'
import { enroll } from '@nullport/sdk'
import { RawClient, runCli, spawnController, startTestRouter, type TestController } from '@nullport/testkit'

let ctl: TestController
let dir: string

before(async () => {
  ctl = await spawnController()
  dir = await mkdtemp(join(tmpdir(), 'router-cli-'))
})

after(async () => {
  await ctl?.stop()
  await rm(dir, { recursive: true, force: true })
})

test('router run refuses a config with an unknown field or a bad address, naming the field', async () => {
  const base = { identityFile: 'x.json', listen: '127.0.0.1:0', advertise: '127.0.0.1' }
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ ...base, listne: '127.0.0.1:1' }, 'listne'],
    [{ ...base, listen: '127.0.0.1' }, 'listen'],
    [{ ...base, advertise: 'not a host' }, 'advertise'],
    [{ ...base, metricsListen: 'x:99999' }, 'metricsListen'],
    [{ ...base, testHooks: { onForward: true } }, 'testHooks'],
  ]
  for (const [cfg, field] of cases) {
    const p = join(dir, `bad-${field}.json`)
    await writeFile(p, JSON.stringify(cfg))
    const r = await runCli(['router', 'run', '--config', p])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /ERR_ROUTER_CONFIG/)
    assert.ok(r.stderr.includes(`"${field}"`), r.stderr)
  }
})

test('router run without an enrolled identity says how to enroll', async () => {
  const p = join(dir, 'no-identity.json')
  await writeFile(
    p,
    JSON.stringify({ identityFile: 'missing.json', listen: '127.0.0.1:0', advertise: '127.0.0.1' }),
  )
  const r = await runCli(['router', 'run', '--config', p])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /ERR_ROUTER_IDENTITY/)
  assert.match(r.stderr, /nullport router enroll/)
})

test('router enroll refuses a bad --advertise before using the token', async () => {
  const er = await ctl.data('POST', 'edge-routers', { name: 'edge-bad' })
  const jwt = join(dir, 'bad.jwt')
  await writeFile(jwt, er.enrollment.jwt)
  const r = await runCli(['router', 'enroll', jwt, '--advertise', 'bad host!', '-o', join(dir, 'bad.json')])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /"advertise"/)
  // the token is still good
  const ok = await runCli([
    'router',
    'enroll',
    jwt,
    '--advertise',
    '127.0.0.1:3999',
    '-o',
    join(dir, 'good.json'),
  ])
  assert.equal(ok.code, 0, ok.stderr)
  const cfg = JSON.parse(await readFile(join(dir, 'good.json'), 'utf8'))
  assert.deepEqual(cfg, {
    identityFile: 'good.identity.json',
    listen: '0.0.0.0:3999',
    advertise: '127.0.0.1:3999',
  })
  assert.equal((await stat(join(dir, 'good.identity.json'))).mode & 0o777, 0o600)
  // a metrics port in use: the router fails to start and exits (nothing left listening)
  const busy = join(dir, 'busy.json')
  const port = new URL(ctl.url).port
  await writeFile(busy, JSON.stringify({ ...cfg, listen: '127.0.0.1:0', metricsListen: `127.0.0.1:${port}` }))
  const r2 = await runCli(['router', 'run', '--config', busy], { timeoutMs: 20_000 })
  assert.equal(r2.code, 1)
  assert.match(r2.stderr, /EADDRINUSE/)
})

test('router enroll with an IPv6 --advertise keeps the brackets (the controller parses HOST:PORT)', async () => {
  const er = await ctl.data('POST', 'edge-routers', { name: 'edge-v6' })
  const jwt = join(dir, 'v6.jwt')
  await writeFile(jwt, er.enrollment.jwt)
  const r = await runCli(['router', 'enroll', jwt, '--advertise', '[::1]:3998', '-o', join(dir, 'v6.json')])
  assert.equal(r.code, 0, r.stderr)
  const cfg = JSON.parse(await readFile(join(dir, 'v6.json'), 'utf8'))
  assert.equal(cfg.advertise, '[::1]:3998')
  const router = await ctl.data('GET', `edge-routers/${er.id}`)
  assert.equal(router.advertise, '[::1]:3998')
})

test('metrics endpoint, and SIGTERM: GOAWAY to peers, terminators deleted, exit 0', async () => {
  const router = await startTestRouter(ctl, { name: 'edge-m', allPolicies: true, metrics: true })
  try {
    const host = await ctl.data('POST', 'identities', {
      name: 'host',
      type: 'Device',
      roleAttributes: ['hosts'],
    })
    const hostFile = (await enroll({ jwt: host.enrollment.jwt })).file
    await ctl.data('POST', 'services', { name: 'metered' })
    await ctl.data('POST', 'service-policies', {
      name: 'bind-metered',
      type: 'Bind',
      semantic: 'AnyOf',
      identityRoles: ['#hosts'],
      serviceRoles: ['@metered'],
    })
    await new Promise((r) => setTimeout(r, 300))
    const h = await RawClient.connect(router.address, hostFile, ctl.caPem)
    h.bind(1, 'metered')
    await h.next((f) => f.type === FrameType.BIND_SUCCESS)
    assert.ok(router.metricsAddress, 'metrics address logged')
    const text = await new Promise<string>((res, rej) => {
      http
        .get(`http://${router.metricsAddress}/metrics`, (r) => {
          let t = ''
          r.on('data', (c: Buffer) => {
            t += c.toString()
          })
          r.on('end', () => res(t))
        })
        .on('error', rej)
    })
    for (const name of [
      'nullport_router_circuits',
      'nullport_router_connections',
      'nullport_router_forwarded_bytes_total',
      'nullport_router_dials_total',
      'nullport_router_link_latency_ms',
    ]) {
      assert.ok(text.includes(name), `${name} in /metrics`)
    }
    assert.match(text, /nullport_router_connections\{[^}]*kind="sdk"[^}]*\} 1/)
    const before = await ctl.data('GET', 'terminators')
    assert.equal(before.filter((t: { routerId: string }) => t.routerId === router.id).length, 1)
    const child = router.process!
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const g = await h.closedWith(10_000)
    assert.equal(g?.code, 'ERR_ROUTER_SHUTDOWN')
    const [code] = await exited
    assert.equal(code, 0)
    const afterStop = await ctl.data('GET', 'terminators')
    assert.equal(afterStop.filter((t: { routerId: string }) => t.routerId === router.id).length, 0)
    h.close()
  } finally {
    await router.stop()
  }
})
