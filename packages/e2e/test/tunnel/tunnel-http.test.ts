/**
 * nullport tunnel, HTTP data path: an HTTP server behind a host-mode tunneler, reached through an
 * intercepting tunneler's SOCKS5 and HTTP proxy and its DNS names: curl, keep-alive, CONNECT,
 * uploads, half-close, parallel streams, backpressure, status, signals.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { parseHostPort } from '@nullport/protocol'
import {
  CLI_BIN,
  fetchStatus,
  runCommand,
  spawnTunnel,
  startTunnelNetwork,
  type TunnelNetwork,
  type TunnelProc,
} from '@nullport/testkit'
import * as dnsPacket from 'dns-packet'

let net: TunnelNetwork
let host: TunnelProc
let client: TunnelProc

before(async () => {
  net = await startTunnelNetwork()
  host = await spawnTunnel(['run', '-i', net.hostPath, '--status', '127.0.0.1:0'])
  for (const s of ['web', 'fwd']) await host.waitLog((l) => l.msg === 'hosting service' && l.service === s)
  client = await spawnTunnel([
    'run',
    '-i',
    net.clientPath,
    '--no-host',
    '--socks',
    '127.0.0.1:0',
    '--http-proxy',
    '127.0.0.1:0',
    '--dns',
    '127.0.0.1:0',
    '--status',
    '127.0.0.1:0',
  ])
})

after(async () => {
  await client?.stop()
  await host?.stop()
  await net?.close()
})

test('curl through SOCKS5 (remote names, wildcard) and through the HTTP proxy (keep-alive, CONNECT)', async () => {
  const s = await runCommand('curl', [
    '-sS',
    '--socks5-hostname',
    client.addresses.socks!,
    'http://family.web.test/socks',
  ])
  assert.equal(s.code, 0, s.stderr)
  assert.match(s.stdout, /hello from behind the tunnel: GET \/socks host=family.web.test/)
  // two requests on one kept-alive proxy connection, two origins of the same service
  const h = await runCommand('curl', [
    '-sS',
    '-v',
    '-x',
    `http://${client.addresses.http}`,
    'http://web.test/one',
    '--next',
    '-x',
    `http://${client.addresses.http}`,
    '-d',
    'abc',
    'http://web.test/two',
    'http://x.web.test/three',
  ])
  assert.equal(h.code, 0, h.stderr)
  assert.match(h.stdout, /GET \/one host=web.test body=0/)
  assert.match(h.stdout, /POST \/two host=web.test body=3/)
  assert.match(h.stdout, /POST \/three host=x.web.test body=3/)
  assert.match(h.stderr, /Re-using existing connection|Reusing existing/)
  const c = await runCommand('curl', [
    '-sS',
    '-p',
    '-x',
    `http://${client.addresses.http}`,
    'http://web.test/connect',
  ])
  assert.equal(c.code, 0, c.stderr)
  assert.match(c.stdout, /GET \/connect host=web.test/)
  // host.v1 forwardPort: the dialer's port picks the target, inside allowedPortRanges
  const f = await runCommand('curl', [
    '-sS',
    '--socks5-hostname',
    client.addresses.socks!,
    `http://fwd.test:${net.httpPort}/fwd`,
  ])
  assert.equal(f.code, 0, f.stderr)
  assert.match(f.stdout, /GET \/fwd/)
})

async function dnsQuery(
  name: string,
  type: 'A' | 'AAAA',
): Promise<dnsPacket.DecodedPacket & { rcode?: string }> {
  const a = parseHostPort(client.addresses.dns!)
  const sock = createSocket('udp4')
  try {
    sock.send(
      dnsPacket.encode({
        type: 'query',
        id: 7,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ type, name }],
      }),
      a.port,
      a.host,
    )
    const [msg] = (await Promise.race([
      once(sock, 'message'),
      new Promise((_, r) => setTimeout(() => r(new Error('dns timeout')), 5000)),
    ])) as [Buffer]
    return dnsPacket.decode(msg) as dnsPacket.DecodedPacket & { rcode?: string }
  } finally {
    sock.close()
  }
}

test('DNS: intercepted names get a stable reserved address that SOCKS (IPv4) resolves back; AAAA empty; others refused', async () => {
  const a1 = await dnsQuery('family.web.test', 'A')
  const ip = (a1.answers?.[0] as { data: string } | undefined)?.data
  assert.ok(ip && /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./.test(ip), JSON.stringify(a1))
  const a2 = await dnsQuery('FAMILY.web.test', 'A')
  assert.equal((a2.answers?.[0] as { data: string } | undefined)?.data, ip, 'stable per name')
  const six = await dnsQuery('family.web.test', 'AAAA')
  assert.equal(six.rcode, 'NOERROR')
  assert.equal(six.answers?.length, 0)
  const other = await dnsQuery('example.com', 'A')
  assert.equal(other.rcode, 'REFUSED')
  // curl --socks5 (local resolution) sends the IPv4 address: the tunneler maps it back to the name
  const r = await runCommand('curl', [
    '-sS',
    '--socks5',
    client.addresses.socks!,
    '-H',
    'Host: family.web.test',
    `http://${ip}/by-ip`,
  ])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /GET \/by-ip/)
  // intercept.v1 CIDR address
  const c = await runCommand('curl', [
    '-sS',
    '--socks5',
    client.addresses.socks!,
    `http://10.99.1.2:${net.httpPort}/cidr`,
  ])
  assert.equal(c.code, 0, c.stderr)
  assert.match(c.stdout, /GET \/cidr/)
})

/** SOCKS5 CONNECT by name; resolves with the socket after the reply (code checked by the caller). */
async function socksConnect(name: string, port: number): Promise<{ sock: Socket; reply: number }> {
  const a = parseHostPort(client.addresses.socks!)
  const sock = connect(a.port, a.host)
  await once(sock, 'connect')
  const n = Buffer.from(name)
  sock.write(
    Buffer.concat([
      Buffer.from([5, 1, 0]),
      Buffer.from([5, 1, 0, 3, n.length]),
      n,
      Buffer.from([port >> 8, port & 0xff]),
    ]),
  )
  let got = Buffer.alloc(0)
  while (got.length < 12) {
    const [d] = (await once(sock, 'data')) as [Buffer]
    got = Buffer.concat([got, d])
  }
  sock.pause()
  if (got.length > 12) sock.unshift(got.subarray(12))
  return { sock, reply: got[3]! }
}

async function status(): Promise<{
  connections: Array<{ kind: string; service: string; bytesToClient: number }>
  hosted: Array<{ service: string; listening: boolean }>
  intercepted: Array<{ service: string }>
}> {
  const r = await runCommand(process.execPath, [
    CLI_BIN,
    'tunnel',
    'status',
    '--json',
    '--status',
    client.addresses.status!,
  ])
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('backpressure: a client that stops reading stops its server; memory stays bounded; then all bytes arrive', async () => {
  const mib = 64
  const { sock, reply } = await socksConnect('big.web.test', 80)
  assert.equal(reply, 0)
  sock.write(`GET /big/${mib} HTTP/1.1\r\nHost: big.web.test\r\nConnection: close\r\n\r\n`)
  // not reading: the bytes the tunneler passed to us stop growing well below the response size
  let last = -1
  let cur = 0
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 250))
    const st = await fetchStatus(client.addresses.status!)
    cur =
      (st.connections as Array<{ kind: string; service: string; bytesToClient: number }>).find(
        (c) => c.kind === 'socks' && c.service === 'web',
      )?.bytesToClient ?? 0
    if (cur === last && cur > 0) break
    last = cur
  }
  assert.equal(cur, last, 'the flow stalled while the client was not reading')
  assert.ok(cur < 24 * 1024 * 1024, `at most a few windows in flight, got ${cur} bytes of ${mib} MiB`)
  const st = await fetchStatus(client.addresses.status!)
  assert.ok(st.connections.length >= 1)
  // now read everything
  let total = 0
  sock.on('data', (d: Buffer) => {
    total += d.length
  })
  sock.resume()
  await once(sock, 'end')
  assert.ok(total > mib * 1024 * 1024, `got ${total}`)
  sock.destroy()
})

test('parallel streams: 16 concurrent 4 MiB downloads through SOCKS5 all complete intact', async () => {
  const results = await Promise.all(
    Array.from({ length: 16 }, async (_, i) => {
      const { sock, reply } = await socksConnect(`p${i}.web.test`, 80)
      assert.equal(reply, 0)
      sock.write(`GET /big/4 HTTP/1.1\r\nHost: p${i}.web.test\r\nConnection: close\r\n\r\n`)
      let total = 0
      let bad = false
      let headDone = false
      sock.on('data', (d: Buffer) => {
        if (!headDone) {
          const i2 = d.indexOf('\r\n\r\n')
          if (i2 < 0) return
          headDone = true
          d = d.subarray(i2 + 4)
        }
        total += d.length
        if (d.some((b) => b !== 120)) bad = true
      })
      sock.resume()
      await new Promise<void>((r) => sock.once('close', () => r()))
      return { total, bad }
    }),
  )
  for (const r of results) {
    assert.equal(r.total, 4 * 1024 * 1024)
    assert.equal(r.bad, false)
  }
})

test('HTTP proxy uploads: 8 MiB bodies (Content-Length and chunked) then another request on the same connection', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tunnel-upload-'))
  try {
    const file = join(dir, 'body.bin')
    writeFileSync(file, randomBytes(8 * 1024 * 1024))
    const proxy = ['-sS', '-v', '-x', `http://${client.addresses.http}`]
    const r = await runCommand('curl', [
      ...proxy,
      '--data-binary',
      `@${file}`,
      'http://up.web.test/cl',
      '--next',
      ...proxy,
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      `@${file}`,
      'http://up.web.test/chunked',
      '--next',
      ...proxy,
      'http://up.web.test/after',
    ])
    assert.equal(r.code, 0, r.stderr.slice(-2000))
    assert.match(r.stdout, /POST \/cl host=up.web.test body=8388608/)
    assert.match(r.stdout, /POST \/chunked host=up.web.test body=8388608/)
    assert.match(r.stdout, /GET \/after host=up.web.test body=0/)
    assert.match(r.stderr, /Re-using existing connection|Reusing existing/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('half-close: a client that ends its side after the request still gets the whole response (SOCKS5 and CONNECT)', async () => {
  const { sock, reply } = await socksConnect('half.web.test', 80)
  assert.equal(reply, 0)
  let text = ''
  sock.on('data', (d: Buffer) => {
    text += d.toString()
  })
  sock.resume()
  sock.end('GET /half-socks HTTP/1.1\r\nHost: half.web.test\r\n\r\n')
  await new Promise<void>((r) => sock.once('close', () => r()))
  assert.match(text, /GET \/half-socks/)

  const a = parseHostPort(client.addresses.http!)
  const c = connect(a.port, a.host)
  await once(c, 'connect')
  let got = ''
  c.on('data', (d: Buffer) => {
    got += d.toString()
  })
  c.write('CONNECT half.web.test:80 HTTP/1.1\r\nHost: half.web.test:80\r\n\r\n')
  while (!got.includes('\r\n\r\n')) await new Promise((r) => setTimeout(r, 20))
  assert.match(got, /^HTTP\/1.1 200 /)
  c.end('GET /half-connect HTTP/1.1\r\nHost: half.web.test\r\n\r\n')
  await new Promise<void>((r) => c.once('close', () => r()))
  assert.match(got, /GET \/half-connect/)
})

test('tunnel status: intercepted and hosted services, and the text form', async () => {
  const st = await status()
  const names = st.intercepted.map((s) => s.service).sort()
  for (const s of ['down', 'fwd', 'pg', 'redis', 'web']) assert.ok(names.includes(s), names.join(','))
  const hosted = (await fetchStatus(host.addresses.status!)).hosted as Array<{
    service: string
    listening: boolean
  }>
  assert.ok(hosted.find((x) => x.service === 'pg')?.listening)
  const text = await runCommand(process.execPath, [
    CLI_BIN,
    'tunnel',
    'status',
    '--status',
    client.addresses.status!,
  ])
  assert.equal(text.code, 0, text.stderr)
  assert.match(text.stdout, /intercepted:\n {2}\S+/)
  const none = await runCommand(process.execPath, [CLI_BIN, 'tunnel', 'status', '--status', '127.0.0.1:1'])
  assert.notEqual(none.code, 0)
  assert.match(none.stderr, /is `nullport tunnel run --status 127.0.0.1:1` running/)
})

test('SIGTERM: both tunnelers exit 0 after closing their listeners', async () => {
  const extra = await spawnTunnel([
    'run',
    '-i',
    net.clientPath,
    '--no-host',
    '--socks',
    '127.0.0.1:0',
    '--no-status',
  ])
  const code = await extra.stop('SIGTERM')
  assert.equal(code, 0)
  assert.ok(extra.logs.some((l) => l.includes('"tunnel closed"')))
  const extra2 = await spawnTunnel([
    'run',
    '-i',
    net.clientPath,
    '--no-host',
    '--http-proxy',
    '127.0.0.1:0',
    '--no-status',
  ])
  assert.equal(await extra2.stop('SIGINT'), 0)
})
