// The Nullport side of the bench: a real controller process (the test harness' spawnController),
// routers in their own processes (router-proc.mjs, programmatic startRouter), identities enrolled
// through the SDK, services and policies through the management API, hosting SDK apps
// (sdk-host.mjs) and tunnelers (`nullport tunnel run`).
//
// Topology: router A (#ra) and router B (#rb). Dialers and single-router hosts may use only A;
// host2 only B, so bench-2r circuits go dialer -> A -> link -> B -> host2.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { enroll } from '../../packages/sdk/dist/src/index.js'
import { spawnController } from '../../packages/testkit/dist/src/index.js'
import { start } from './proc.mjs'

const LIB = new URL('.', import.meta.url).pathname
const CLI = new URL('../../packages/cli/bin/nullport.js', import.meta.url).pathname

export async function startOverlay({ dir, backendPort, twoRouters, tunnel, profDir, maxCircuits = 20_000 }) {
  const procs = {}
  const stops = []
  const nodeEnv = (name) =>
    profDir
      ? {
          NODE_OPTIONS: `--import=${join(LIB, 'prof-hook.mjs')}`,
          NULLPORT_BENCH_PROF_DIR: profDir,
          NULLPORT_BENCH_PROF_NAME: name,
        }
      : { NODE_OPTIONS: '' }
  const ctl = await spawnController()
  stops.push(() => ctl.stop())
  const api = async (method, path, body) => {
    const r = await ctl.api(method, path, body)
    if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`)
    return r.body?.data
  }
  const overlay = {
    ctl,
    procs,
    api,
    identities: {},
    async stop() {
      for (const f of stops.reverse()) await Promise.resolve(f()).catch(() => {})
    },
  }
  try {
    const router = async (name, attr) => {
      const r = await api('POST', 'edge-routers', { name, roleAttributes: [attr] })
      const jwt = r.enrollment?.jwt ?? (await api('GET', `edge-routers/${r.id}`)).enrollment?.jwt
      const file = join(dir, `${name}.identity.json`)
      await enroll({ jwt, output: file, advertise: '127.0.0.1:3022' })
      const p = start(name, process.execPath, [join(LIB, 'router-proc.mjs'), file, String(maxCircuits)], {
        env: nodeEnv(name),
      })
      stops.push(() => p.stop())
      const ready = await p.waitLine((l) => l?.ready === true, 30_000)
      p.address = ready.address
      p.routerId = ready.id
      procs[name] = p
      return p
    }
    await api('POST', 'edge-router-policies', {
      name: 'use-a',
      semantic: 'AnyOf',
      identityRoles: ['#use-a'],
      edgeRouterRoles: ['#ra'],
    })
    await api('POST', 'edge-router-policies', {
      name: 'use-b',
      semantic: 'AnyOf',
      identityRoles: ['#use-b'],
      edgeRouterRoles: ['#rb'],
    })
    await api('POST', 'service-edge-router-policies', {
      name: 'all',
      semantic: 'AnyOf',
      serviceRoles: ['#all'],
      edgeRouterRoles: ['#all'],
    })
    const identity = async (name, attrs) => {
      const d = await api('POST', 'identities', { name, type: 'Device', roleAttributes: attrs })
      const { file } = await enroll({ jwt: d.enrollment.jwt })
      const path = join(dir, `${name}.json`)
      writeFileSync(path, JSON.stringify(file), { mode: 0o600 })
      overlay.identities[name] = path
      return path
    }
    const service = async (name, encryptionRequired, configs = []) =>
      api('POST', 'services', { name, encryptionRequired, configs })
    const policy = async (name, type, identityRoles, serviceRoles) =>
      api('POST', 'service-policies', { name, type, semantic: 'AnyOf', identityRoles, serviceRoles })

    await Promise.all([router('router-a', 'ra'), twoRouters ? router('router-b', 'rb') : null])
    await identity('dialer', ['dialers', 'use-a'])
    await identity('host1', ['host1', 'use-a'])
    const services = ['bench-e2e', 'bench-plain', 'bench-idle']
    await service('bench-e2e', true)
    await service('bench-plain', false)
    await service('bench-idle', true)
    await policy('host1-bind', 'Bind', ['#host1'], ['@bench-e2e', '@bench-plain', '@bench-idle'])
    if (twoRouters) {
      await identity('host2', ['host2', 'use-b'])
      await service('bench-2r', true)
      services.push('bench-2r')
      await policy('host2-bind', 'Bind', ['#host2'], ['@bench-2r'])
    }
    if (tunnel) {
      await identity('tunhost', ['tunhost', 'use-a'])
      await identity('tunclient', ['dialers', 'use-a'])
      const ic = await api('POST', 'configs', {
        name: 'bench-tun-intercept',
        configTypeId: 'intercept.v1',
        data: { protocols: ['tcp'], addresses: ['bench.tun.test'], portRanges: [{ low: 9, high: 9 }] },
      })
      const hc = await api('POST', 'configs', {
        name: 'bench-tun-host',
        configTypeId: 'host.v1',
        data: { protocol: 'tcp', address: '127.0.0.1', port: backendPort },
      })
      await service('bench-tun', true, [ic.id, hc.id])
      services.push('bench-tun')
      await policy('tunhost-bind', 'Bind', ['#tunhost'], ['@bench-tun'])
    }
    await policy(
      'dial-all',
      'Dial',
      ['#dialers'],
      services.map((s) => `@${s}`),
    )

    const host = async (name, idPath, spec) => {
      const p = start(
        name,
        process.execPath,
        [join(LIB, 'sdk-host.mjs'), idPath, String(backendPort), spec],
        { env: nodeEnv(name) },
      )
      stops.push(() => p.stop())
      await p.waitLine((l) => l?.ready === true, 60_000)
      procs[name] = p
    }
    await host('sdk-host1', overlay.identities.host1, 'bench-e2e:pipe,bench-plain:pipe,bench-idle:idle')
    if (twoRouters) await host('sdk-host2', overlay.identities.host2, 'bench-2r:pipe')
    if (tunnel) {
      const th = start(
        'tunnel-host',
        process.execPath,
        [CLI, 'tunnel', 'run', '-i', overlay.identities.tunhost, '--no-status'],
        {
          env: nodeEnv('tunnel-host'),
        },
      )
      stops.push(() => th.stop())
      await th.waitLine((l) => l?.msg === 'tunnel ready', 60_000)
      await th.waitLine((l) => l?.msg === 'hosting service', 60_000).catch(() => {})
      procs['tunnel-host'] = th
      const tc = start(
        'tunnel-intercept',
        process.execPath,
        [
          CLI,
          'tunnel',
          'run',
          '-i',
          overlay.identities.tunclient,
          '--no-host',
          '--no-status',
          '--proxy',
          'bench-tun:0',
        ],
        { env: nodeEnv('tunnel-intercept') },
      )
      stops.push(() => tc.stop())
      const ready = await tc.waitLine((l) => l?.msg === 'tunnel ready', 60_000)
      tc.entryPort = Number(String(ready.addresses['proxy:bench-tun']).split(':').pop())
      procs['tunnel-intercept'] = tc
    }
    return overlay
  } catch (err) {
    await overlay.stop()
    throw err
  }
}
