/**
 * nullport tunnel, live changes without restart: removing the Dial policy stops interception,
 * restoring it brings it back, and a new service becomes interceptable (and hosted) as soon as
 * the controller pushes it.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import {
  rawExchange,
  runCommand,
  socksConnectBytes,
  spawnTunnel,
  startTunnelNetwork,
  type TunnelNetwork,
  type TunnelProc,
  waitFor,
} from '@nullport/testkit'

let net: TunnelNetwork
let host: TunnelProc
let client: TunnelProc

before(async () => {
  net = await startTunnelNetwork()
  host = await spawnTunnel(['run', '-i', net.hostPath, '--no-status'])
  await host.waitLog((l) => l.msg === 'hosting service' && l.service === 'web')
  client = await spawnTunnel([
    'run',
    '-i',
    net.clientPath,
    '--no-host',
    '--socks',
    '127.0.0.1:0',
    '--http-proxy',
    '127.0.0.1:0',
    '--no-status',
  ])
})

after(async () => {
  await client?.stop()
  await host?.stop()
  await net?.close()
})

const curl = (url: string) => runCommand('curl', ['-sS', '-i', '-x', `http://${client.addresses.http}`, url])

test('removing the Dial policy stops interception; restoring it brings it back (no restart)', async () => {
  assert.match((await curl('http://web.test/a')).stdout, /^HTTP\/1.1 200/)
  await net.api('DELETE', 'service-policies/dial-web')
  await waitFor(async () => /^HTTP\/1.1 403 /.test((await curl('http://web.test/b')).stdout), {
    timeoutMs: 20_000,
    intervalMs: 250,
    what: 'refused after the policy was deleted',
  })
  assert.equal((await rawExchange(client.addresses.socks!, socksConnectBytes('web.test', 80))).data[3], 0x02)
  await client.waitLog(
    (l) =>
      l.msg === 'intercepted services changed' &&
      Array.isArray(l.removed) &&
      (l.removed as string[]).includes('web'),
  )
  await net.api('POST', 'service-policies', {
    name: 'dial-web',
    type: 'Dial',
    semantic: 'AnyOf',
    identityRoles: ['#tun-clients'],
    serviceRoles: ['@web'],
  })
  await waitFor(async () => /^HTTP\/1.1 200/.test((await curl('http://web.test/c')).stdout), {
    timeoutMs: 20_000,
    intervalMs: 250,
    what: 'intercepted again',
  })
})

test('a new service becomes interceptable and hosted without restart; deleting it stops both', async () => {
  assert.match((await curl('http://late.test/')).stdout, /^HTTP\/1.1 403 /)
  await net.addService(
    'late',
    { protocols: ['tcp'], addresses: ['late.test'], portRanges: [{ low: 80, high: 80 }] },
    { protocol: 'tcp', address: '127.0.0.1', port: net.httpPort },
  )
  await host.waitLog((l) => l.msg === 'hosting service' && l.service === 'late', 20_000)
  await waitFor(async () => /GET \/new/.test((await curl('http://late.test/new')).stdout), {
    timeoutMs: 20_000,
    intervalMs: 250,
    what: 'late.test reachable',
  })
  const s = await runCommand('curl', [
    '-sS',
    '--socks5-hostname',
    client.addresses.socks!,
    'http://late.test/socks',
  ])
  assert.match(s.stdout, /GET \/socks/)
  await net.api('DELETE', 'services/late')
  await waitFor(async () => /^HTTP\/1.1 403 /.test((await curl('http://late.test/gone')).stdout), {
    timeoutMs: 20_000,
    intervalMs: 250,
    what: 'late.test refused after delete',
  })
  await host.waitLog(
    (l) => l.service === 'late' && typeof l.msg === 'string' && l.msg.startsWith('no longer hosting'),
    20_000,
  )
})
