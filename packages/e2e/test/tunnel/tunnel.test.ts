/**
 * nullport tunnel, databases: PostgreSQL and Redis sit behind a host-mode tunneler and are
 * reached only through an intercepting tunneler's local ports (psql, pgbench, redis-cli,
 * redis-benchmark). Real processes, real PostgreSQL and Redis on this machine.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { parseHostPort } from '@nullport/protocol'
import {
  runCommand,
  spawnTunnel,
  startTunnelNetwork,
  type TunnelNetwork,
  type TunnelProc,
} from '@nullport/testkit'

let net: TunnelNetwork
let host: TunnelProc
let client: TunnelProc
const scratchDb = `tunnel_${randomBytes(4).toString('hex')}`

before(async () => {
  net = await startTunnelNetwork()
  host = await spawnTunnel(['run', '-i', net.hostPath, '--status', '127.0.0.1:0'])
  for (const s of ['pg', 'redis']) await host.waitLog((l) => l.msg === 'hosting service' && l.service === s)
  client = await spawnTunnel([
    'run',
    '-i',
    net.clientPath,
    '--no-host',
    '--proxy',
    'pg:0',
    '--proxy',
    'redis:0',
    '--no-status',
  ])
})

after(async () => {
  if (client) {
    const pg = parseHostPort(client.addresses['proxy:pg']!)
    await runCommand('psql', [
      '-h',
      pg.host,
      '-p',
      String(pg.port),
      '-U',
      'postgres',
      '-d',
      'test',
      '-c',
      `drop database if exists ${scratchDb}`,
    ])
  }
  await client?.stop()
  await host?.stop()
  await net?.close()
})

const pgArgs = () => {
  const a = parseHostPort(client.addresses['proxy:pg']!)
  return ['-h', a.host, '-p', String(a.port), '-U', 'postgres']
}

test('psql through a local port: select 1', async () => {
  const r = await runCommand('psql', [...pgArgs(), '-d', 'test', '-Atc', 'select 1'])
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout.trim(), '1')
})

test('pgbench through the tunnel: init a scratch database, run 3 s', async () => {
  let r = await runCommand('psql', [...pgArgs(), '-d', 'test', '-c', `create database ${scratchDb}`])
  assert.equal(r.code, 0, r.stderr)
  r = await runCommand('pgbench', [...pgArgs(), '-i', '-s', '1', '-q', scratchDb])
  assert.equal(r.code, 0, r.stderr)
  r = await runCommand('pgbench', [...pgArgs(), '-T', '3', '-c', '4', '-j', '2', scratchDb])
  assert.equal(r.code, 0, r.stderr)
  const tps = /tps = ([\d.]+)/.exec(r.stdout)
  assert.ok(tps && Number(tps[1]) > 0, r.stdout)
  assert.match(r.stdout, /number of failed transactions: 0/)
  r = await runCommand('psql', [...pgArgs(), '-d', 'test', '-c', `drop database ${scratchDb}`])
  assert.equal(r.code, 0, r.stderr)
})

test('redis-cli PING and redis-benchmark -n 10000 through a local port', async () => {
  const a = parseHostPort(client.addresses['proxy:redis']!)
  const p = await runCommand('redis-cli', ['-h', a.host, '-p', String(a.port), 'PING'])
  assert.equal(p.stdout.trim(), 'PONG', p.stderr)
  const b = await runCommand(
    'redis-benchmark',
    ['-h', a.host, '-p', String(a.port), '-n', '10000', '-q', '-t', 'ping,set,get,incr,lpush,lpop'],
    { timeoutMs: 50_000 },
  )
  assert.equal(b.code, 0, b.stderr)
  const lines = b.stdout.split(/\r|\n/).filter((l) => /requests per second/.test(l))
  assert.ok(lines.length >= 6, b.stdout)
  for (const l of lines) assert.ok(Number(/([\d.]+) requests per second/.exec(l)![1]) > 0, l)
})

test('nullport tunnel proxy SERVICE:LOCALPORT: psql through a proxy-only tunneler', async () => {
  const p = await spawnTunnel(['proxy', '-i', net.clientPath, 'pg:0', '--no-status'])
  try {
    const a = parseHostPort(p.addresses['proxy:pg']!)
    const r = await runCommand('psql', [
      '-h',
      a.host,
      '-p',
      String(a.port),
      '-U',
      'postgres',
      '-d',
      'test',
      '-Atc',
      'select 40 + 2',
    ])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.trim(), '42')
  } finally {
    assert.equal(await p.stop(), 0)
  }
})
