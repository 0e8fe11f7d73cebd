import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { parseSocksGreeting, parseSocksRequest, SocksReply, socksReply } from '../src/socks-parser.js'

test('socks greeting: complete, incomplete, malformed', () => {
  assert.deepEqual(parseSocksGreeting(Buffer.from([5, 1, 0])), { status: 'ok', length: 3, methods: [0] })
  assert.deepEqual(parseSocksGreeting(Buffer.from([5, 2, 0, 2, 9])), {
    status: 'ok',
    length: 4,
    methods: [0, 2],
  })
  assert.equal(parseSocksGreeting(Buffer.from([5])).status, 'incomplete')
  assert.equal(parseSocksGreeting(Buffer.from([5, 3, 0])).status, 'incomplete')
  assert.equal(parseSocksGreeting(Buffer.from([4, 1, 0])).status, 'error')
  assert.equal(parseSocksGreeting(Buffer.from('GET / HTTP/1.1\r\n')).status, 'error')
  assert.equal(parseSocksGreeting(Buffer.from([5, 0])).status, 'error')
})

function req(cmd: number, atyp: number, addr: number[], port: number): Buffer {
  return Buffer.from([5, cmd, 0, atyp, ...addr, port >> 8, port & 0xff])
}

test('socks request: domain, IPv4, IPv6', () => {
  const name = Buffer.from('family.tools.ziti')
  const d = parseSocksRequest(req(1, 3, [name.length, ...name], 80))
  assert.deepEqual(d, {
    status: 'ok',
    length: 7 + name.length,
    command: 1,
    addressType: 3,
    host: 'family.tools.ziti',
    port: 80,
  })
  const v4 = parseSocksRequest(req(1, 1, [100, 64, 0, 1], 5432))
  assert.equal(v4.status === 'ok' && v4.host, '100.64.0.1')
  assert.equal(v4.status === 'ok' && v4.port, 5432)
  const v6 = parseSocksRequest(req(1, 4, [0xfd, 0, ...new Array(13).fill(0), 1], 443))
  assert.equal(v6.status === 'ok' && v6.host, 'fd00:0:0:0:0:0:0:1')
  // BIND and UDP ASSOCIATE parse: the caller answers 0x07
  assert.equal((parseSocksRequest(req(2, 1, [1, 2, 3, 4], 1)) as { command: number }).command, 2)
  assert.equal((parseSocksRequest(req(3, 1, [1, 2, 3, 4], 1)) as { command: number }).command, 3)
})

test('socks request: incomplete at every prefix, errors with reply codes', () => {
  const full = req(1, 3, [3, 97, 98, 99], 80)
  for (let i = 0; i < full.length; i++)
    assert.equal(parseSocksRequest(full.subarray(0, i)).status, 'incomplete', `prefix ${i}`)
  const badAtyp = parseSocksRequest(req(1, 9, [1, 2, 3, 4], 80))
  assert.equal(badAtyp.status, 'error')
  assert.equal((badAtyp as { reply: number }).reply, SocksReply.ADDRESS_TYPE_NOT_SUPPORTED)
  assert.equal(parseSocksRequest(Buffer.from([4, 1, 0, 1, 1, 2, 3, 4, 0, 80])).status, 'error')
  assert.equal(parseSocksRequest(Buffer.from([5, 1, 1, 1, 1, 2, 3, 4, 0, 80])).status, 'error')
  assert.equal(parseSocksRequest(req(1, 3, [0], 80)).status, 'error')
  assert.equal(parseSocksRequest(req(1, 3, [3, 97, 0, 99], 80)).status, 'error')
  assert.deepEqual([...socksReply(SocksReply.COMMAND_NOT_SUPPORTED)], [5, 7, 0, 1, 0, 0, 0, 0, 0, 0])
})

test('socks parsers: fuzz (random and mutated input never throws, lengths stay in bounds)', () => {
  const seeds = [
    req(1, 3, [3, 97, 98, 99], 80),
    req(1, 1, [1, 2, 3, 4], 80),
    req(1, 4, new Array(16).fill(1), 1),
  ]
  for (let i = 0; i < 20000; i++) {
    let b: Buffer
    if (i % 2 === 0) b = randomBytes(i % 40)
    else {
      b = Buffer.from(seeds[i % seeds.length]!)
      const flips = 1 + (i % 4)
      for (let f = 0; f < flips; f++) b[(i * 7 + f * 13) % b.length] = randomBytes(1)[0]!
      b = b.subarray(0, (i * 31) % (b.length + 1))
    }
    const g = parseSocksGreeting(b)
    if (g.status === 'ok') assert.ok(g.length <= b.length)
    const r = parseSocksRequest(b)
    if (r.status === 'ok') {
      assert.ok(r.length <= b.length)
      assert.ok(r.port >= 0 && r.port <= 65535)
      assert.ok(r.host.length > 0)
    }
  }
})
