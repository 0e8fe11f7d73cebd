import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ClientService } from '@nullport/protocol'
import { compileIntercept, InterceptTable, normalizeName } from '../src/intercept.js'
import { cidrContains, formatIp, parseCidr, parseIp } from '../src/ip.js'

function svc(
  name: string,
  intercept: unknown,
  permissions: Array<'Dial' | 'Bind'> = ['Dial'],
): ClientService {
  return {
    id: `id_${name}`,
    name,
    roleAttributes: [],
    encryptionRequired: true,
    permissions,
    config: intercept ? { 'intercept.v1': intercept as Record<string, unknown> } : {},
    edgeRouterIds: ['r1'],
  }
}
const tcp = (addresses: string[], low = 80, high = low) => ({
  protocols: ['tcp'],
  addresses,
  portRanges: [{ low, high }],
})

test('ip: parse, format, CIDR containment, IPv4-mapped IPv6 folds to IPv4', () => {
  assert.equal(formatIp(parseIp('10.1.2.3')!), '10.1.2.3')
  assert.equal(formatIp(parseIp('::ffff:10.1.2.3')!), '10.1.2.3')
  assert.equal(formatIp(parseIp('[fd00::1]')!), 'fd00:0:0:0:0:0:0:1')
  assert.equal(parseIp('fe80::1%eth0')!.length, 16)
  assert.equal(parseIp('10.1.2'), null)
  assert.equal(parseIp('example.com'), null)
  const c = parseCidr('10.0.0.0/8')!
  assert.ok(cidrContains(c, parseIp('10.255.1.1')!))
  assert.ok(!cidrContains(c, parseIp('11.0.0.1')!))
  assert.ok(!cidrContains(c, parseIp('fd00::1')!))
  const c6 = parseCidr('fd00::/8')!
  assert.ok(cidrContains(c6, parseIp('fdff::1')!))
  assert.ok(!cidrContains(c6, parseIp('fe00::1')!))
  assert.equal(parseCidr('10.0.0.0/33'), null)
  assert.equal(parseCidr('10.0.0.0/x'), null)
  assert.ok(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('1.2.3.4')!))
  assert.ok(cidrContains(parseCidr('10.1.2.3/31')!, parseIp('10.1.2.2')!))
  assert.ok(!cidrContains(parseCidr('10.1.2.3/31')!, parseIp('10.1.2.4')!))
})

test('intercept: names are case-insensitive, trailing dot ignored, invalid skipped', () => {
  assert.equal(normalizeName('Family.Tools.ZITI.'), 'family.tools.ziti')
  assert.equal(normalizeName('bad name'), null)
  assert.equal(normalizeName(''), null)
  const r = compileIntercept('s', {
    protocols: ['tcp'],
    addresses: ['a.b', '*.c.d', '10.0.0.0/8', 'in valid', '*.'],
    portRanges: [{ low: 1, high: 2 }, { low: 5, high: 3 } as never],
  })
  assert.deepEqual([...r.names], ['a.b'])
  assert.deepEqual(r.wildcards, ['c.d'])
  assert.equal(r.cidrs.length, 1)
  assert.deepEqual(r.invalid, ['in valid', '*.'])
  assert.equal(r.portRanges.length, 1)
})

test('intercept: exact names, wildcards (not the bare domain), most specific wins', () => {
  const t = InterceptTable.fromServices([
    svc('web', tcp(['family.tools.ziti'])),
    svc('tools', tcp(['*.tools.ziti'])),
    svc('ziti', tcp(['*.ziti'])),
    svc('nodial', tcp(['nodial.ziti']), ['Bind']),
    svc('noconfig', null),
  ])
  const m = (h: string, p = 80) => {
    const r = t.match(h, p)
    return r.ok ? r.service : r.reason
  }
  assert.equal(m('family.tools.ziti'), 'web')
  assert.equal(m('FAMILY.tools.ziti.'), 'web')
  assert.equal(m('other.tools.ziti'), 'tools')
  assert.equal(m('a.b.tools.ziti'), 'tools')
  assert.equal(m('tools.ziti'), 'ziti')
  assert.equal(m('ziti'), 'no-service')
  assert.equal(m('xtools.ziti'), 'ziti')
  assert.equal(m('nodial.ziti'), 'ziti') // the Bind-only service does not intercept
  assert.equal(m('example.com'), 'no-service')
  assert.ok(t.interceptsName('x.ziti'))
  assert.ok(!t.interceptsName('ziti'))
  assert.ok(!t.interceptsName('example.com'))
})

test('intercept: port ranges and protocols; address match with a wrong port is "port"', () => {
  const t = InterceptTable.fromServices([
    svc('db', {
      protocols: ['tcp'],
      addresses: ['db.ziti'],
      portRanges: [
        { low: 5432, high: 5432 },
        { low: 6000, high: 6010 },
      ],
    }),
    svc('udp', { protocols: ['udp'], addresses: ['dns.ziti'], portRanges: [{ low: 53, high: 53 }] }),
    svc('wide', { protocols: ['tcp'], addresses: ['*.ziti'], portRanges: [{ low: 1, high: 1000 }] }),
  ])
  assert.equal((t.match('db.ziti', 5432) as { service: string }).service, 'db')
  assert.equal((t.match('db.ziti', 6005) as { service: string }).service, 'db')
  // the exact name does not take port 80, the wildcard does
  assert.equal((t.match('db.ziti', 80) as { service: string }).service, 'wide')
  const r = t.match('db.ziti', 5433)
  assert.equal(r.ok, false)
  assert.equal((r as { reason: string }).reason, 'port')
  assert.deepEqual((r as { services: string[] }).services.sort(), ['db', 'wide'])
  assert.equal((t.match('dns.ziti', 53, 'udp') as { service: string }).service, 'udp')
  assert.equal((t.match('dns.ziti', 53, 'tcp') as { service: string }).service, 'wide')
})

test('intercept: IPs and CIDRs, longest prefix wins, IPv6', () => {
  const t = InterceptTable.fromServices([
    svc('net8', tcp(['10.0.0.0/8'], 1, 65535)),
    svc('net24', tcp(['10.1.2.0/24'], 1, 65535)),
    svc('host', tcp(['10.1.2.3'], 1, 65535)),
    svc('v6', tcp(['fd00::/16'], 443)),
  ])
  const m = (h: string, p = 80) => {
    const r = t.match(h, p)
    return r.ok ? `${r.service}/${r.kind}` : r.reason
  }
  assert.equal(m('10.1.2.3'), 'host/ip')
  assert.equal(m('10.1.2.4'), 'net24/cidr')
  assert.equal(m('10.9.9.9'), 'net8/cidr')
  assert.equal(m('11.0.0.1'), 'no-service')
  assert.equal(m('::ffff:10.1.2.3'), 'host/ip')
  assert.equal(m('fd00:0::5', 443), 'v6/cidr')
  assert.equal(m('fd00::5', 80), 'port')
})

test('intercept: ties break on the service name (stable)', () => {
  const a = InterceptTable.fromServices([svc('b', tcp(['x.ziti'])), svc('a', tcp(['x.ziti']))])
  const b = InterceptTable.fromServices([svc('a', tcp(['x.ziti'])), svc('b', tcp(['x.ziti']))])
  assert.equal((a.match('x.ziti', 80) as { service: string }).service, 'a')
  assert.equal((b.match('x.ziti', 80) as { service: string }).service, 'a')
})

test('intercept: garbage configs never throw', () => {
  const bad = [
    null,
    1,
    'x',
    { addresses: 'x' },
    { addresses: [1, null], portRanges: 'x' },
    { protocols: [5] },
  ]
  for (const c of bad) {
    const t = InterceptTable.fromServices([svc('s', c as never)])
    assert.equal(t.match('x', 1).ok, false)
  }
})
