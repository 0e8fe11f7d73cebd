import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { connect } from 'node:net'
import { test } from 'node:test'
import * as dnsPacket from 'dns-packet'
import { DnsServer, FakeIpPool } from '../src/dns.js'
import { silentTunnelLogger } from '../src/log.js'

type Decoded = dnsPacket.DecodedPacket & { rcode?: string }
const intercepts = (n: string) => n === 'db.ziti' || n.endsWith('.apps.ziti')
const query = (name: string, type: 'A' | 'AAAA' | 'MX', id = 1) =>
  dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] })

async function udpAsk(port: number, msg: Buffer, timeoutMs = 2000): Promise<Decoded | null> {
  const s = createSocket('udp4')
  try {
    s.send(msg, port, '127.0.0.1')
    const r = await Promise.race([
      once(s, 'message') as Promise<[Buffer]>,
      new Promise<null>((res) => setTimeout(() => res(null), timeoutMs)),
    ])
    return r ? (dnsPacket.decode(r[0]) as Decoded) : null
  } finally {
    s.close()
  }
}

test('dns server: UDP and TCP answers, malformed packets dropped, the server keeps answering', async () => {
  const server = new DnsServer(
    { host: '127.0.0.1', port: 0 },
    intercepts,
    new FakeIpPool(),
    silentTunnelLogger,
  )
  const { port } = await server.start()
  try {
    const a = await udpAsk(port, query('db.ziti', 'A'))
    const ip = (a?.answers?.[0] as { data: string } | undefined)?.data
    assert.match(ip ?? '', /^100\./)
    const mx = await udpAsk(port, query('x.apps.ziti', 'MX'))
    assert.equal(mx?.rcode, 'NOERROR')
    assert.equal(mx?.answers?.length, 0)
    assert.equal((await udpAsk(port, query('example.com', 'A')))?.rcode, 'REFUSED')
    // garbage: no answer at all
    assert.equal(await udpAsk(port, Buffer.from('garbage!garbage!'), 300), null)
    // TCP: two length-prefixed queries on one connection
    const sock = connect(port, '127.0.0.1')
    await once(sock, 'connect')
    const frame = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b])
    sock.write(Buffer.concat([frame(query('db.ziti', 'A', 5)), frame(query('y.apps.ziti', 'AAAA', 6))]))
    let buf = Buffer.alloc(0)
    const answers: Decoded[] = []
    while (answers.length < 2) {
      buf = Buffer.concat([buf, ((await once(sock, 'data')) as [Buffer])[0]])
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0)
        answers.push(dnsPacket.decode(buf.subarray(2, 2 + len)) as Decoded)
        buf = buf.subarray(2 + len)
      }
    }
    sock.destroy()
    assert.equal(answers[0]!.id, 5)
    assert.equal(
      (answers[0]!.answers?.[0] as { data: string } | undefined)?.data,
      ip,
      'same address over TCP',
    )
    assert.equal(answers[1]!.id, 6)
    assert.equal(answers[1]!.answers?.length, 0)
    // a TCP client announcing an oversized message is cut off
    const bad = connect(port, '127.0.0.1')
    await once(bad, 'connect')
    bad.write(Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.alloc(5000)]))
    await new Promise<void>((r) => bad.once('close', () => r()))
    assert.ok(server.stats.dropped >= 2)
    assert.equal((await udpAsk(port, query('db.ziti', 'A')))?.answers?.length, 1, 'still answering')
  } finally {
    await server.close()
  }
})

test('dns server: other names go to the upstream resolver (ids rewritten back)', async () => {
  const upstream = createSocket('udp4')
  upstream.bind(0, '127.0.0.1')
  await once(upstream, 'listening')
  upstream.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg)
    upstream.send(
      dnsPacket.encode({
        type: 'response',
        id: q.id,
        questions: q.questions,
        answers: [{ type: 'A', name: q.questions![0]!.name, ttl: 5, data: '192.0.2.7' }],
      }),
      rinfo.port,
      rinfo.address,
    )
  })
  const up = upstream.address()
  const server = new DnsServer(
    { host: '127.0.0.1', port: 0, upstream: { host: '127.0.0.1', port: up.port } },
    intercepts,
    new FakeIpPool(),
    silentTunnelLogger,
  )
  const { port } = await server.start()
  try {
    const r = await udpAsk(port, query('example.com', 'A', 4242))
    assert.equal(r?.id, 4242)
    assert.equal((r?.answers?.[0] as { data: string } | undefined)?.data, '192.0.2.7')
    const i = await udpAsk(port, query('db.ziti', 'A'))
    assert.match(
      (i?.answers?.[0] as { data: string } | undefined)?.data ?? '',
      /^100\./,
      'intercepted names are never forwarded',
    )
    assert.equal(server.stats.forwarded, 1)
  } finally {
    await server.close()
    upstream.close()
  }
})

test('dns server: a TCP client that sends queries without reading the answers is not buffered without bound', async () => {
  const server = new DnsServer(
    { host: '127.0.0.1', port: 0 },
    intercepts,
    new FakeIpPool(),
    silentTunnelLogger,
  )
  const { port } = await server.start()
  const sock = connect(port, '127.0.0.1')
  try {
    await once(sock, 'connect')
    sock.pause() // never read an answer
    sock.on('error', () => undefined)
    const q = query('db.ziti', 'A', 7)
    const frame = Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q])
    const total = 300_000
    sock.write(Buffer.concat(Array.from({ length: total }, () => frame)))
    // wait until the server stops answering (it paused, cut us off, or answered everything)
    let last = -1
    while (server.stats.queries !== last && server.stats.queries < total) {
      last = server.stats.queries
      await new Promise((r) => setTimeout(r, 300))
    }
    const conns = (server as unknown as { tcpConns: Set<import('node:net').Socket> }).tcpConns
    let pending = 0
    for (const c of conns) pending = Math.max(pending, c.writableLength)
    assert.ok(pending <= 1024 * 1024 + 4096, `answers buffered for one client: ${pending} bytes`)
    assert.ok(
      server.stats.queries < total,
      `the server stopped reading (${server.stats.queries} of ${total} answered)`,
    )
    assert.equal((await udpAsk(port, query('db.ziti', 'A')))?.answers?.length, 1, 'still answering others')
  } finally {
    sock.destroy()
    await server.close()
  }
})
