import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import * as dnsPacket from 'dns-packet'
import { answerDns, FakeIpPool } from '../src/dns.js'
import { cidrContains, parseCidr, parseIp } from '../src/ip.js'

const q = (name: string, type: 'A' | 'AAAA' | 'TXT', id = 42) =>
  dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] })
const intercepts = (n: string) => n === 'family.tools.ziti' || n.endsWith('.wild.ziti')

test('fake IP pool: stable per name, in range, reverse lookup, bounded', () => {
  const p = new FakeIpPool()
  const a = p.addressOf('family.tools.ziti')
  assert.equal(p.addressOf('FAMILY.tools.ziti.'), a)
  assert.ok(cidrContains(parseCidr('100.64.0.0/10')!, parseIp(a)!))
  assert.equal(p.nameOf(a), 'family.tools.ziti')
  assert.equal(new FakeIpPool().addressOf('family.tools.ziti'), a, 'same address after a restart')
  assert.notEqual(p.addressOf('other.ziti'), a)
  const small = new FakeIpPool('10.9.9.0/24', 10)
  const ips = new Set<string>()
  for (let i = 0; i < 50; i++) ips.add(small.addressOf(`n${i}.ziti`))
  assert.equal(small.entries, 10)
  for (const ip of ips) assert.ok(cidrContains(parseCidr('10.9.9.0/24')!, parseIp(ip)!))
  assert.throws(() => new FakeIpPool('fd00::/8'))
})

test('dns: A for intercepted names (and wildcards), AAAA empty NOERROR, others REFUSED or forwarded', () => {
  const pool = new FakeIpPool()
  const a = answerDns(q('family.tools.ziti', 'A'), intercepts, pool, false)
  assert.equal(a.action, 'reply')
  const ra = dnsPacket.decode((a as { reply: Buffer }).reply)
  assert.equal(ra.id, 42)
  assert.equal(ra.type, 'response')
  assert.equal(ra.answers?.length, 1)
  assert.equal((ra.answers![0] as { data: unknown }).data, pool.addressOf('family.tools.ziti'))
  const w = dnsPacket.decode(
    (answerDns(q('x.wild.ziti', 'A'), intercepts, pool, false) as { reply: Buffer }).reply,
  )
  assert.equal((w.answers![0] as { data: unknown }).data, pool.addressOf('x.wild.ziti'))
  const aaaa = answerDns(q('family.tools.ziti', 'AAAA'), intercepts, pool, false)
  const r6 = dnsPacket.decode((aaaa as { reply: Buffer }).reply) as dnsPacket.DecodedPacket & {
    rcode: string
  }
  assert.equal(r6.rcode, 'NOERROR')
  assert.equal(r6.answers?.length, 0)
  const other = answerDns(q('example.com', 'A'), intercepts, pool, false)
  assert.equal(
    (dnsPacket.decode((other as { reply: Buffer }).reply) as unknown as { rcode: string }).rcode,
    'REFUSED',
  )
  assert.deepEqual(answerDns(q('example.com', 'A', 7), intercepts, pool, true), {
    action: 'forward',
    id: 7,
    name: 'example.com',
    qtype: 'A',
  })
  // responses and garbage are dropped
  const resp = dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'x' }] })
  assert.equal(answerDns(resp, intercepts, pool, false).action, 'drop')
  assert.equal(answerDns(Buffer.from([1, 2, 3]), intercepts, pool, false).action, 'drop')
})

test('dns: fuzz (random and mutated packets never throw)', () => {
  const pool = new FakeIpPool('10.0.0.0/16', 100)
  const seed = q('family.tools.ziti', 'A')
  for (let i = 0; i < 20000; i++) {
    let b: Buffer
    if (i % 2 === 0) b = randomBytes(i % 80)
    else {
      b = Buffer.from(seed)
      for (let f = 0; f < 1 + (i % 4); f++) b[(i * 13 + f * 7) % b.length] = randomBytes(1)[0]!
    }
    const d = answerDns(b, intercepts, pool, i % 4 === 1)
    if (d.action === 'reply') assert.ok(d.reply.length < 4096)
  }
  assert.ok(pool.entries <= 100)
})
