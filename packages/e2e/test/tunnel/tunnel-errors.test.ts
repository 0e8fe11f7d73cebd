/**
 * nullport tunnel, bad input and refusals: malformed SOCKS5 and HTTP proxy requests, unsupported
 * commands, names and ports that nothing intercepts, dials refused by policy or by host.v1, an
 * underlay that is down. Each client gets its protocol's own error, every refusal is logged
 * with its code, and a connection opened before all this keeps working.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect } from 'node:net'
import { after, before, test } from 'node:test'
import { parseHostPort } from '@nullport/protocol'
import {
  rawExchange,
  runCommand,
  socksConnectBytes,
  spawnTunnel,
  startTunnelNetwork,
  type TunnelNetwork,
  type TunnelProc,
} from '@nullport/testkit'

let net: TunnelNetwork
let host: TunnelProc
let client: TunnelProc

before(async () => {
  net = await startTunnelNetwork()
  // a service the client may not Dial (hosted, intercept.v1 present, no Dial policy)
  await net.addService(
    'nodial',
    { protocols: ['tcp'], addresses: ['nodial.test'], portRanges: [{ low: 80, high: 80 }] },
    { protocol: 'tcp', address: '127.0.0.1', port: net.httpPort },
    false,
  )
  // a service whose host takes one connection at a time (host.v1 listenOptions.maxConnections)
  await net.addService(
    'one',
    { protocols: ['tcp'], addresses: ['one.test'], portRanges: [{ low: 80, high: 80 }] },
    {
      protocol: 'tcp',
      address: '127.0.0.1',
      port: net.httpPort,
      listenOptions: { maxConnections: 1, cost: 5 },
    },
  )
  host = await spawnTunnel(['run', '-i', net.hostPath, '--no-status'])
  for (const s of ['web', 'down', 'fwd', 'nodial', 'one'])
    await host.waitLog((l) => l.msg === 'hosting service' && l.service === s)
  client = await spawnTunnel([
    'run',
    '-i',
    net.clientPath,
    '--no-host',
    '--socks',
    '127.0.0.1:0',
    '--http-proxy',
    '127.0.0.1:0',
    '--proxy',
    'nodial:0',
    '--no-status',
  ])
})

after(async () => {
  await client?.stop()
  await host?.stop()
  await net?.close()
})

const socks = () => client.addresses.socks!
const proxyUrl = () => `http://${client.addresses.http}`
const loggedCode = (code: string) => client.waitLog((l) => l.code === code, 5000)

test('a connection opened first keeps working through all the bad input (checked at the end)', async (t) => {
  const a = parseHostPort(socks())
  const sock = connect(a.port, a.host)
  await once(sock, 'connect')
  sock.write(socksConnectBytes('keep.web.test', 80))
  let buf = Buffer.alloc(0)
  while (buf.length < 12) buf = Buffer.concat([buf, ((await once(sock, 'data')) as [Buffer])[0]])
  assert.equal(buf[3], 0)
  const ask = async (path: string): Promise<string> => {
    sock.write(`GET ${path} HTTP/1.1\r\nHost: keep.web.test\r\n\r\n`)
    let text = ''
    while (!text.includes('\n', text.indexOf('\r\n\r\n') + 4) || !text.includes('\r\n\r\n')) {
      text += ((await once(sock, 'data')) as [Buffer])[0].toString()
    }
    return text
  }
  assert.match(await ask('/before'), /GET \/before/)
  await t.test('SOCKS: malformed greeting -> closed without a reply', async () => {
    const r = await rawExchange(socks(), Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
    assert.ok(r.closed)
    assert.equal(r.data.length, 0)
    await loggedCode('ERR_MALFORMED_REQUEST')
  })
  await t.test('SOCKS: no acceptable auth method -> 0xff', async () => {
    const r = await rawExchange(socks(), Buffer.from([5, 1, 2]))
    assert.deepEqual([...r.data], [5, 0xff])
    assert.ok(r.closed)
  })
  await t.test('SOCKS: BIND and UDP ASSOCIATE -> 0x07; unknown address type -> 0x08', async () => {
    for (const cmd of [2, 3]) {
      const r = await rawExchange(socks(), socksConnectBytes('a.web.test', 80, cmd))
      assert.equal(r.data[3], 0x07, `command ${cmd}`)
      assert.ok(r.closed)
    }
    const r = await rawExchange(socks(), Buffer.from([5, 1, 0, 5, 1, 0, 9, 1, 2, 3, 4, 0, 80]))
    assert.equal(r.data[3], 0x08)
    await loggedCode('ERR_UNSUPPORTED')
  })
  await t.test('SOCKS: names, IPs and ports nothing intercepts -> 0x02', async () => {
    assert.equal((await rawExchange(socks(), socksConnectBytes('example.com', 80))).data[3], 0x02)
    assert.equal((await rawExchange(socks(), socksConnectBytes('web.test', 81))).data[3], 0x02)
    assert.equal(
      (await rawExchange(socks(), Buffer.from([5, 1, 0, 5, 1, 0, 1, 192, 0, 2, 1, 0, 80]))).data[3],
      0x02,
    )
    // a service with intercept.v1 but no Dial policy for this identity is not intercepted
    assert.equal((await rawExchange(socks(), socksConnectBytes('nodial.test', 80))).data[3], 0x02)
    await loggedCode('ERR_NO_INTERCEPT')
    await loggedCode('ERR_PORT_NOT_INTERCEPTED')
    const c = await runCommand('curl', ['-sS', '--socks5-hostname', socks(), 'http://nothing.example/'])
    assert.equal(c.code, 97)
    assert.match(c.stderr, /SOCKS5/)
  })
  await t.test(
    'SOCKS: host.v1 refuses a port outside allowedPortRanges -> 0x02 (ERR_HOST_TARGET_NOT_ALLOWED)',
    async () => {
      const r = await rawExchange(socks(), socksConnectBytes('fwd.test', 1))
      assert.equal(r.data[3], 0x02)
      await loggedCode('ERR_HOST_TARGET_NOT_ALLOWED')
      await host.waitLog((l) => l.code === 'ERR_HOST_TARGET_NOT_ALLOWED', 5000)
    },
  )
  await t.test('SOCKS: the underlay is down -> 0x05 (connection refused)', async () => {
    const r = await rawExchange(socks(), socksConnectBytes('down.test', 80))
    assert.equal(r.data[3], 0x05)
    await loggedCode('ERR_UNDERLAY_UNREACHABLE')
    await host.waitLog((l) => l.code === 'ERR_UNDERLAY_UNREACHABLE', 5000)
  })
  await t.test(
    'HTTP proxy: malformed -> 400, too large -> 431, origin-form -> 400, https URI -> 501',
    async () => {
      const bad = await rawExchange(client.addresses.http!, Buffer.from('THIS IS NOT HTTP\r\n\r\n'))
      assert.match(bad.data.toString(), /^HTTP\/1.1 400 /)
      assert.ok(bad.closed)
      const big = await rawExchange(
        client.addresses.http!,
        Buffer.from(`GET http://web.test/ HTTP/1.1\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`),
      )
      assert.match(big.data.toString(), /^HTTP\/1.1 431 /)
      const origin = await rawExchange(
        client.addresses.http!,
        Buffer.from('GET / HTTP/1.1\r\nHost: web.test\r\n\r\n'),
      )
      assert.match(origin.data.toString(), /^HTTP\/1.1 400 [\s\S]*absolute http:\/\/ URI or CONNECT/)
      const tls = await rawExchange(
        client.addresses.http!,
        Buffer.from('GET https://web.test/ HTTP/1.1\r\n\r\n'),
      )
      assert.match(tls.data.toString(), /^HTTP\/1.1 501 /)
      const smuggle = await rawExchange(
        client.addresses.http!,
        Buffer.from(
          'POST http://web.test/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
        ),
      )
      assert.match(smuggle.data.toString(), /^HTTP\/1.1 400 /)
    },
  )
  await t.test(
    'HTTP proxy: not intercepted -> 403 naming cause and fix; underlay down -> 502; policy refusal -> 403',
    async () => {
      const r = await runCommand('curl', ['-sS', '-i', '-x', proxyUrl(), 'http://nothing.example/'])
      assert.match(r.stdout, /^HTTP\/1.1 403 /)
      assert.match(r.stdout, /X-Nullport-Error: ERR_NO_INTERCEPT/)
      assert.match(
        r.stdout,
        /Fix: create a service with an intercept.v1 config for nothing.example and a Dial policy/,
      )
      const p = await runCommand('curl', ['-sS', '-i', '-x', proxyUrl(), 'http://web.test:8080/'])
      assert.match(p.stdout, /^HTTP\/1.1 403 [\s\S]*portRanges/)
      const d = await runCommand('curl', ['-sS', '-i', '-x', proxyUrl(), 'http://down.test/'])
      assert.match(d.stdout, /^HTTP\/1.1 502 [\s\S]*ERR_UNDERLAY_UNREACHABLE/)
      const c = await runCommand('curl', ['-sS', '-p', '-x', proxyUrl(), 'http://down.test/'])
      assert.notEqual(c.code, 0)
      assert.match(c.stderr, /502/)
      const f = await runCommand('curl', ['-sS', '-i', '-x', proxyUrl(), 'http://fwd.test:2/'])
      assert.match(f.stdout, /^HTTP\/1.1 403 [\s\S]*ERR_HOST_TARGET_NOT_ALLOWED/)
    },
  )
  await t.test(
    'local port for a service without a Dial policy: the dial is refused and logged, the client is reset',
    async () => {
      const r = await rawExchange(client.addresses['proxy:nodial']!, Buffer.from('GET / HTTP/1.1\r\n\r\n'))
      assert.ok(r.closed)
      assert.equal(r.data.length, 0)
      const l = await client.waitLog((x) => x.msg === 'local port dial failed', 5000)
      assert.ok(['ERR_SERVICE_NOT_FOUND', 'ERR_NO_DIAL_PERMISSION'].includes(String(l.code)), String(l.code))
    },
  )
  await t.test(
    'host.v1 listenOptions.maxConnections: the second concurrent client is refused (0x04), the first is served',
    async () => {
      const a = parseHostPort(socks())
      const first = connect(a.port, a.host)
      await once(first, 'connect')
      first.write(socksConnectBytes('one.test', 80))
      let b = Buffer.alloc(0)
      while (b.length < 12) b = Buffer.concat([b, ((await once(first, 'data')) as [Buffer])[0]])
      assert.equal(b[3], 0)
      const second = await rawExchange(socks(), socksConnectBytes('one.test', 80))
      assert.equal(second.data[3], 0x04)
      // the router skips a terminator at capacity (ERR_NO_TERMINATORS) or the host refuses (ERR_MAX_CONNECTIONS)
      const l = await client.waitLog((x) => x.host === 'one.test' && x.reply === 4, 5000)
      assert.ok(
        ['ERR_NO_TERMINATORS', 'ERR_MAX_CONNECTIONS', 'ERR_TERMINATOR_AT_CAPACITY'].includes(String(l.code)),
        String(l.code),
      )
      first.write('GET /one HTTP/1.1\r\nHost: one.test\r\nConnection: close\r\n\r\n')
      let text = ''
      first.on('data', (d: Buffer) => {
        text += d.toString()
      })
      await new Promise<void>((r) => first.once('close', () => r()))
      assert.match(text, /GET \/one/)
    },
  )
  await t.test('HTTP proxy: many bad clients at once', async () => {
    const all = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        rawExchange(
          client.addresses.http!,
          Buffer.from(i % 2 ? '\x00\x01garbage\r\n\r\n' : 'GET http://nothing/ HTTP/1.1\r\n\r\n'),
        ),
      ),
    )
    for (const r of all) assert.match(r.data.toString(), /^HTTP\/1.1 40[03] /)
  })
  // the first connection still works, and so do new ones
  assert.match(await ask('/after'), /GET \/after/)
  sock.destroy()
  const ok = await runCommand('curl', ['-sS', '-x', proxyUrl(), 'http://web.test/still'])
  assert.match(ok.stdout, /GET \/still/)
})
