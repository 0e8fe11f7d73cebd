import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { formatHostPort } from '@nullport/protocol'
import { loadRouterConfig, parseHostPort, validateRouterConfig } from '../src/index.js'

const good = { identityFile: 'r.identity.json', listen: '127.0.0.1:0', advertise: 'router.example.com' }

test('parses HOST:PORT, [IPv6]:PORT and optional ports', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:3022', 'listen'), { host: '127.0.0.1', port: 3022 })
  assert.deepEqual(parseHostPort('[::1]:443', 'listen'), { host: '::1', port: 443 })
  assert.deepEqual(parseHostPort('edge-1.example.com', 'advertise', { portOptional: true }), {
    host: 'edge-1.example.com',
    port: 0,
  })
  assert.deepEqual(parseHostPort('0.0.0.0:0', 'listen', { allowPortZero: true }), {
    host: '0.0.0.0',
    port: 0,
  })
  assert.equal(formatHostPort('::1', 5), '[::1]:5')
  assert.equal(formatHostPort('a.b', 5), 'a.b:5')
})

test('bad addresses are refused naming the field', () => {
  const bad: Array<[unknown, RegExp]> = [
    ['', /"listen" must be a non-empty string/],
    ['127.0.0.1', /needs a port/],
    ['127.0.0.1:70000', /invalid port 70000/],
    ['127.0.0.1:abc', /invalid port "abc"/],
    ['::1:80', /IPv6 address without brackets/],
    ['[::1:80', /unterminated/],
    ['[nothex]:80', /not an IPv6 address/],
    ['bad_host name:80', /neither an IP address nor a host name/],
    [42, /must be a non-empty string/],
    ['127.0.0.1:0', /may not use port 0/],
  ]
  for (const [v, re] of bad) {
    assert.throws(
      () => parseHostPort(v, 'listen'),
      (e: Error & { code?: string }) =>
        e.code === 'ERR_ROUTER_CONFIG' && re.test(e.message) && /"listen"/.test(e.message),
      String(v),
    )
  }
})

test('config: unknown fields and bad values name the field', () => {
  assert.deepEqual(validateRouterConfig(good), good)
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ ...good, listn: '1.2.3.4:5' }, 'listn'],
    [{ ...good, testHooks: {} }, 'testHooks'],
    [{ ...good, identityFile: '' }, 'identityFile'],
    [{ ...good, listen: 'nope' }, 'listen'],
    [{ ...good, advertise: 'a b' }, 'advertise'],
    [{ ...good, metricsListen: '1.2.3.4' }, 'metricsListen'],
    [{ ...good, logLevel: 'loud' }, 'logLevel'],
    [{ identityFile: 'x', advertise: 'h' }, 'listen'],
  ]
  for (const [cfg, field] of cases) {
    assert.throws(
      () => validateRouterConfig(cfg, { source: 'r.json' }),
      (e: Error & { code?: string; details?: { field?: string } }) =>
        e.code === 'ERR_ROUTER_CONFIG' && e.details?.field === field && e.message.includes(`"${field}"`),
      field,
    )
  }
  assert.throws(() => validateRouterConfig([]), /must be a JSON object/)
})

test('loadRouterConfig resolves the identity file relative to the config', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'router-config-'))
  try {
    const p = join(dir, 'router.json')
    await writeFile(p, JSON.stringify(good))
    const c = await loadRouterConfig(p)
    assert.equal(c.identityFile, join(dir, 'r.identity.json'))
    await writeFile(p, '{not json')
    await assert.rejects(loadRouterConfig(p), /not valid JSON/)
    await assert.rejects(loadRouterConfig(join(dir, 'missing.json')), /cannot be read/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('config: renew is false or { fraction } with 0 < fraction < 1', () => {
  assert.equal(validateRouterConfig({ ...good, renew: false }).renew, false)
  assert.deepEqual(validateRouterConfig({ ...good, renew: { fraction: 0.5 } }).renew, { fraction: 0.5 })
  assert.deepEqual(validateRouterConfig({ ...good, renew: {} }).renew, {})
  assert.equal(validateRouterConfig(good).renew, undefined)
  for (const renew of [
    true,
    'yes',
    [],
    { fraction: 0 },
    { fraction: 1 },
    { fraction: '0.5' },
    { every: 3 },
    null,
  ]) {
    assert.throws(
      () => validateRouterConfig({ ...good, renew }),
      (e: Error & { code?: string }) => e.code === 'ERR_ROUTER_CONFIG' && /"renew"/.test(e.message),
      JSON.stringify(renew),
    )
  }
})
