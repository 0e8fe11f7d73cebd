import assert from 'node:assert/strict'
import { test } from 'node:test'
import { addressAllowed, hostConnectTimeoutMs, resolveHostTarget } from '../src/host-target.js'
import { classifyDialError, dialErrorCode } from '../src/dial-errors.js'

test('host.v1: fixed targets ignore appData', () => {
  assert.deepEqual(
    resolveHostTarget({ protocol: 'tcp', address: '127.0.0.1', port: 5432 }, { address: 'evil', port: 22 }),
    {
      ok: true,
      protocol: 'tcp',
      address: '127.0.0.1',
      port: 5432,
    },
  )
  assert.equal(resolveHostTarget({ address: 'x' }, undefined).ok, false)
  assert.equal(resolveHostTarget({ port: 1 }, undefined).ok, false)
  const udp = resolveHostTarget({ protocol: 'udp', address: 'x', port: 53 }, undefined)
  assert.equal(!udp.ok && udp.code, 'ERR_UNSUPPORTED')
})

test('host.v1: forwarded protocol, address and port must be inside the allowed lists', () => {
  const cfg = {
    forwardProtocol: true,
    allowedProtocols: ['tcp' as const],
    forwardAddress: true,
    allowedAddresses: ['*.db.internal', '10.0.0.0/8', 'exact.host'],
    forwardPort: true,
    allowedPortRanges: [{ low: 5432, high: 5433 }],
  }
  const ok = resolveHostTarget(cfg, { protocol: 'tcp', address: 'a.db.internal', port: 5433 })
  assert.deepEqual(ok, { ok: true, protocol: 'tcp', address: 'a.db.internal', port: 5433 })
  assert.ok(resolveHostTarget(cfg, { protocol: 'tcp', address: '10.2.3.4', port: 5432 }).ok)
  for (const bad of [
    { protocol: 'udp' as const, address: '10.2.3.4', port: 5432 },
    { protocol: 'tcp' as const, address: '11.2.3.4', port: 5432 },
    { protocol: 'tcp' as const, address: 'db.internal', port: 5432 },
    { protocol: 'tcp' as const, address: 'exact.host', port: 22 },
    { address: 'exact.host', port: 5432 },
    { protocol: 'tcp' as const, port: 5432 },
    { protocol: 'tcp' as const, address: 'exact.host' },
  ]) {
    const r = resolveHostTarget(cfg, bad)
    assert.equal(r.ok, false, JSON.stringify(bad))
    assert.equal(!r.ok && r.code, 'ERR_HOST_TARGET_NOT_ALLOWED')
  }
  assert.equal(addressAllowed(undefined, 'x'), false)
  assert.equal(addressAllowed(['EXACT.host'], 'exact.HOST.'), true)
})

test('host.v1: connect timeout from listenOptions', () => {
  assert.equal(hostConnectTimeoutMs({}), 5000)
  assert.equal(hostConnectTimeoutMs({ listenOptions: { connectTimeout: '2s' } }), 2000)
  assert.equal(hostConnectTimeoutMs({ listenOptions: { connectTimeout: '250ms' } }), 250)
  assert.equal(hostConnectTimeoutMs({ listenOptions: { connectTimeoutSeconds: 3 } }), 3000)
  assert.equal(hostConnectTimeoutMs({ listenOptions: { connectTimeout: 'soon' } }), 5000)
})

test('dial errors map to SOCKS replies and HTTP statuses; a peer code in details wins', () => {
  assert.deepEqual(classifyDialError('ERR_NO_DIAL_PERMISSION').socks, 0x02)
  assert.equal(classifyDialError('ERR_NO_DIAL_PERMISSION').http, 403)
  assert.equal(classifyDialError('ERR_UNDERLAY_UNREACHABLE').socks, 0x05)
  assert.equal(classifyDialError('ERR_UNDERLAY_UNREACHABLE').http, 502)
  assert.equal(classifyDialError('ERR_NO_TERMINATORS').socks, 0x04)
  assert.equal(classifyDialError('ERR_DIAL_TIMEOUT').http, 504)
  assert.equal(classifyDialError('ERR_SOMETHING').socks, 0x01)
  assert.equal(
    dialErrorCode({ code: 'ERR_DIAL_FAILED', details: { remoteCode: 'ERR_UNDERLAY_UNREACHABLE' } }),
    'ERR_UNDERLAY_UNREACHABLE',
  )
  assert.equal(dialErrorCode({ code: 'ERR_NO_TERMINATORS', details: {} }), 'ERR_NO_TERMINATORS')
  assert.equal(dialErrorCode(null), 'ERR_DIAL_FAILED')
})
