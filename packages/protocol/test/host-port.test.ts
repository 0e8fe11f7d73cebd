import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  formatHostPort,
  isProtocolError,
  parseHostPort,
  stripBrackets,
  tryParseHostPort,
} from '../src/index.js'

test('HOST:PORT, [IPv6]:PORT, IPv4 and names', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:1280'), { host: '127.0.0.1', port: 1280 })
  assert.deepEqual(parseHostPort('[::1]:3022'), { host: '::1', port: 3022 })
  assert.deepEqual(parseHostPort('[fe80::1%eth0]:1', {}), { host: 'fe80::1%eth0', port: 1 })
  assert.deepEqual(parseHostPort('db.internal:5432'), { host: 'db.internal', port: 5432 })
  assert.deepEqual(parseHostPort('localhost:65535'), { host: 'localhost', port: 65535 })
  assert.deepEqual(parseHostPort('under_score.example.:1'), { host: 'under_score.example.', port: 1 })
})

test('each failure has a reason and a message that names the fix', () => {
  const cases: Array<[unknown, string, RegExp]> = [
    ['', 'empty', /non-empty string HOST:PORT/],
    [42, 'empty', /non-empty/],
    [`${'a'.repeat(300)}:1`, 'empty', /non-empty/],
    ['[::1:80', 'unterminated-bracket', /unterminated IPv6 bracket/],
    ['[::1]80', 'bracket-suffix', /must be \[IPv6\]:PORT/],
    ['[1.2.3.4]:80', 'not-ipv6', /not an IPv6 address/],
    ['::1:80', 'unbracketed-ipv6', /write \[::1:80\]/],
    ['bad host:80', 'bad-host', /neither an IP address nor a host name/],
    [':80', 'bad-host', /neither/],
    ['db', 'missing-port', /needs a port/],
    ['[::1]', 'missing-port', /needs a port/],
    ['db:', 'bad-port', /invalid port ""/],
    ['db:http', 'bad-port', /invalid port "http"/],
    ['db:123456', 'bad-port', /invalid port "123456"/],
    ['db:65536', 'bad-port', /invalid port 65536/],
    ['db:-1', 'bad-port', /invalid port/],
    ['db:0', 'port-zero', /port 0/],
  ]
  for (const [text, reason, why] of cases) {
    const r = tryParseHostPort(text)
    assert.equal(r.ok, false, String(text))
    if (!r.ok) {
      assert.equal(r.reason, reason, String(text))
      assert.match(r.why, why, String(text))
    }
  }
})

test('parseHostPort throws ERR_HOST_PORT naming the field', () => {
  assert.throws(
    () => parseHostPort('db', { field: 'listen' }),
    (err: unknown) =>
      isProtocolError(err, 'ERR_HOST_PORT') &&
      err.message === 'listen needs a port: HOST:PORT, got "db"' &&
      err.details.reason === 'missing-port' &&
      err.details.field === 'listen',
  )
  assert.throws(() => parseHostPort('x:0'), /^ProtocolError: address may not use port 0 here$/)
})

test('options: default port, port 0, empty host', () => {
  assert.deepEqual(parseHostPort('db', { defaultPort: 443 }), { host: 'db', port: 443 })
  assert.deepEqual(parseHostPort('[::1]', { defaultPort: 80 }), { host: '::1', port: 80 })
  assert.deepEqual(parseHostPort('0.0.0.0:0', { allowPortZero: true }), { host: '0.0.0.0', port: 0 })
  assert.deepEqual(parseHostPort(':8080', { allowEmptyHost: true }), { host: '', port: 8080 })
  assert.equal(tryParseHostPort('[]:80', { allowEmptyHost: false }).ok, false)
})

test("host 'any' (HTTP authorities): loose hosts, no delimiters, empty port means the default", () => {
  const any = { host: 'any', defaultPort: 80 } as const
  assert.deepEqual(parseHostPort('[not-checked]:8080', any), { host: 'not-checked', port: 8080 })
  assert.deepEqual(parseHostPort('example.com:', any), { host: 'example.com', port: 80 })
  assert.deepEqual(parseHostPort('[::1]:', any), { host: '::1', port: 80 })
  for (const bad of [
    'ex ample:80',
    'a/b:80',
    'a@b:80',
    'a?b',
    'a#b',
    'a\\b',
    ':80',
    `${'a'.repeat(256)}:1`,
  ]) {
    assert.equal(tryParseHostPort(bad, any).ok, false, bad)
  }
  assert.equal(tryParseHostPort('example.com', { host: 'any' }).ok, false)
  assert.equal(tryParseHostPort('example.com:0', any).ok, false)
})

test('formatHostPort brackets IPv6 only; stripBrackets undoes it', () => {
  assert.equal(formatHostPort('::1', 3022), '[::1]:3022')
  assert.equal(formatHostPort('127.0.0.1', 80), '127.0.0.1:80')
  assert.equal(formatHostPort('db.internal', 5432), 'db.internal:5432')
  assert.equal(stripBrackets('[::1]'), '::1')
  assert.equal(stripBrackets('::1'), '::1')
  assert.equal(stripBrackets('['), '[')
  for (const [h, p] of [
    ['::1', 1],
    ['10.0.0.1', 65535],
    ['a.b', 8],
  ] as const) {
    assert.deepEqual(parseHostPort(formatHostPort(h, p)), { host: h, port: p })
  }
})
