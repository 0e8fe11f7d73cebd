/**
 * Unit tests of the HTTP layer that need no network: intercept matching (names, *.domain
 * wildcards, IPs, CIDRs, port ranges, service names, Dial permission), zitify binding keys and
 * validation, the register hook's environment parsing, and PendingOverlaySocket (writes wait for
 * the circuit, backpressure, a failed dial destroys it with the dial's error).
 */
import assert from 'node:assert/strict'
import { Duplex } from 'node:stream'
import { describe, it } from 'node:test'
import type { ClientService } from '@nullport/protocol'
import { SdkError } from '../src/errors.js'
import { InterceptTable } from '../src/http/intercept.js'
import { PendingOverlaySocket } from '../src/http/overlay-connect.js'
import { parseRegisterEnv } from '../src/http/register-env.js'
import type { OverlaySocket } from '../src/overlay-socket.js'
import { compileBindings, parseBindingKey } from '../src/zitify.js'

function svc(
  name: string,
  intercept?: Record<string, unknown>,
  permissions: Array<'Dial' | 'Bind'> = ['Dial'],
): ClientService {
  return {
    id: `id-${name}`,
    name,
    roleAttributes: [],
    encryptionRequired: true,
    permissions,
    config: intercept ? { 'intercept.v1': intercept } : {},
    edgeRouterIds: ['r1'],
  }
}

describe('InterceptTable', () => {
  const table = new InterceptTable([
    svc('family.tools', {
      protocols: ['tcp'],
      addresses: ['family.tools.ziti'],
      portRanges: [{ low: 80, high: 80 }],
    }),
    svc('shop', { protocols: ['tcp'], addresses: ['*.shop.ziti'], portRanges: [{ low: 8000, high: 8100 }] }),
    svc('deep', {
      protocols: ['tcp'],
      addresses: ['*.a.shop.ziti'],
      portRanges: [{ low: 8000, high: 8000 }],
    }),
    svc('net10', {
      protocols: ['tcp'],
      addresses: ['10.1.0.0/16', '192.168.1.7'],
      portRanges: [{ low: 1, high: 65535 }],
    }),
    svc('net10.small', {
      protocols: ['tcp'],
      addresses: ['10.1.2.0/24'],
      portRanges: [{ low: 443, high: 443 }],
    }),
    svc('udp.only', { protocols: ['udp'], addresses: ['dns.ziti'], portRanges: [{ low: 53, high: 53 }] }),
    svc(
      'bind.only',
      { protocols: ['tcp'], addresses: ['hosted.ziti'], portRanges: [{ low: 80, high: 80 }] },
      ['Bind'],
    ),
    svc('timeout', {
      protocols: ['tcp'],
      addresses: ['slow.ziti'],
      portRanges: [{ low: 80, high: 80 }],
      dialOptions: { connectTimeoutSeconds: 3 },
    }),
    svc('byname'),
  ])

  it('matches an intercept name on its port ranges, case and trailing dot insensitive', () => {
    assert.deepEqual(table.match('family.tools.ziti', 80), { service: 'family.tools', kind: 'address' })
    assert.deepEqual(table.match('FAMILY.Tools.ziti.', 80), { service: 'family.tools', kind: 'address' })
    assert.equal(table.match('family.tools.ziti', 81), null)
    assert.equal(table.match('tools.ziti', 80), null)
  })

  it('matches *.domain below the domain only, the longest suffix first', () => {
    assert.equal(table.match('x.shop.ziti', 8050)?.service, 'shop')
    assert.equal(table.match('y.x.shop.ziti', 8000)?.service, 'shop')
    assert.equal(table.match('shop.ziti', 8000), null)
    assert.equal(table.match('b.a.shop.ziti', 8000)?.service, 'deep')
    // deep does not cover 8001: the shorter wildcard does
    assert.equal(table.match('b.a.shop.ziti', 8001)?.service, 'shop')
  })

  it('matches IPs and CIDR blocks (longest prefix first), brackets and v6 do not crash', () => {
    assert.deepEqual(table.match('192.168.1.7', 22), { service: 'net10', kind: 'address' })
    assert.equal(table.match('10.1.200.3', 80)?.service, 'net10')
    assert.equal(table.match('10.1.2.3', 443)?.service, 'net10.small')
    assert.equal(table.match('10.1.2.3', 80)?.service, 'net10')
    assert.equal(table.match('10.2.0.1', 80), null)
    assert.equal(table.match('[::1]', 80), null)
  })

  it('matches a service name on any port; ignores udp-only and services without Dial', () => {
    assert.deepEqual(table.match('byname', 1234), { service: 'byname', kind: 'name' })
    assert.equal(table.match('family.tools', 9)?.service, 'family.tools')
    assert.equal(table.match('dns.ziti', 53), null)
    assert.equal(table.match('hosted.ziti', 80), null)
    assert.equal(table.match('bind.only', 80), null)
  })

  it('carries dialOptions.connectTimeoutSeconds as timeoutMs and names services on other ports', () => {
    assert.deepEqual(table.match('slow.ziti', 80), { service: 'timeout', kind: 'address', timeoutMs: 3000 })
    assert.deepEqual(table.servicesOnOtherPorts('family.tools.ziti'), ['family.tools'])
    assert.deepEqual(table.servicesOnOtherPorts('nothing.ziti'), [])
  })

  it('skips malformed configs and entries instead of throwing', () => {
    const t = new InterceptTable([
      svc('bad1', { addresses: 'x', portRanges: 'y' }),
      svc('bad2', {
        protocols: ['tcp'],
        addresses: [42, '10.0.0.0/99', ''],
        portRanges: [{ low: 9, high: 1 }],
      }),
      svc('ok', { protocols: ['tcp'], addresses: ['ok.ziti'], portRanges: [{ low: 5, high: 5 }, null] }),
    ])
    assert.equal(t.match('ok.ziti', 5)?.service, 'ok')
    assert.equal(t.match('10.0.0.1', 80), null)
  })
})

describe('zitify bindings', () => {
  it('parses host:port, [v6]:port, :port and port', () => {
    assert.deepEqual(parseBindingKey('127.0.0.1:18080'), { host: '127.0.0.1', port: 18080 })
    assert.deepEqual(parseBindingKey('localhost:80'), { host: '127.0.0.1', port: 80 })
    assert.deepEqual(parseBindingKey('[::1]:8443'), { host: '::1', port: 8443 })
    assert.deepEqual(parseBindingKey(':8080'), { host: null, port: 8080 })
    assert.deepEqual(parseBindingKey('0.0.0.0:8080'), { host: null, port: 8080 })
    assert.deepEqual(parseBindingKey('8080'), { host: null, port: 8080 })
  })

  it('refuses malformed keys and entries with ERR_INVALID_BINDINGS', () => {
    for (const k of ['', 'host', 'host:', 'host:0', 'host:65536', '::1:80', '[::1]80', 'h:1.5']) {
      assert.throws(() => parseBindingKey(k), { code: 'ERR_INVALID_BINDINGS' }, k)
    }
    assert.throws(() => compileBindings(null as never), { code: 'ERR_INVALID_BINDINGS' })
    assert.throws(() => compileBindings([] as never), { code: 'ERR_INVALID_BINDINGS' })
    assert.throws(() => compileBindings({ '1.2.3.4:5': null as never }), { code: 'ERR_INVALID_BINDINGS' })
    assert.throws(() => compileBindings({ '1.2.3.4:5': { identity: 5 as never, service: 's' } }), {
      code: 'ERR_INVALID_BINDINGS',
    })
    assert.throws(
      () =>
        compileBindings({
          ':5': { identity: '/nonexistent/x.json', service: 's' },
          '0.0.0.0:5': { identity: '/nonexistent/x.json', service: 's' },
        }),
      { code: 'ERR_INVALID_BINDINGS' },
    )
    assert.throws(() => compileBindings({ '1.2.3.4:5': { identity: '/nonexistent/x.json', service: 's' } }), {
      code: 'ERR_IDENTITY_FILE_MISSING',
    })
  })
})

describe('register environment', () => {
  it('parses identity, bindings and NULLPORT_INTERCEPT', () => {
    assert.deepEqual(
      parseRegisterEnv({
        NULLPORT_IDENTITY: 'h.json',
        NULLPORT_BINDINGS: '127.0.0.1:18080=family.tools, :9000=api;[::1]:8443=tls.svc',
      }),
      {
        identityPath: 'h.json',
        bindings: [
          { key: '127.0.0.1:18080', service: 'family.tools' },
          { key: ':9000', service: 'api' },
          { key: '[::1]:8443', service: 'tls.svc' },
        ],
        intercept: true,
      },
    )
    assert.equal(parseRegisterEnv({ NULLPORT_IDENTITY: 'h.json', NULLPORT_INTERCEPT: '0' }).intercept, false)
  })

  it('refuses bad configuration with a code', () => {
    assert.throws(() => parseRegisterEnv({}), { code: 'ERR_IDENTITY_FILE' })
    for (const b of ['family.tools', '127.0.0.1:18080', '=svc', '127.0.0.1:0=svc', 'host:x=svc']) {
      assert.throws(
        () => parseRegisterEnv({ NULLPORT_IDENTITY: 'h.json', NULLPORT_BINDINGS: b }),
        {
          code: 'ERR_INVALID_BINDINGS',
        },
        b,
      )
    }
    assert.throws(() => parseRegisterEnv({ NULLPORT_IDENTITY: 'h.json', NULLPORT_INTERCEPT: 'yes' }), {
      code: 'ERR_INVALID_OPTION',
    })
  })
})

/** A stand-in circuit: an in-memory Duplex with a small buffer, pausable on the far side. */
function fakeCircuit(): { socket: OverlaySocket; written: Buffer[]; far: Duplex } {
  const written: Buffer[] = []
  const far = new Duplex({
    read() {},
    write(_c, _e, cb) {
      cb()
    },
  })
  const socket = new Duplex({
    highWaterMark: 1024,
    read() {},
    write(chunk: Buffer, _e, cb) {
      written.push(chunk)
      setImmediate(cb)
    },
  }) as unknown as OverlaySocket
  Object.assign(socket, { remoteIdentity: { id: 'h', name: 'host' } })
  return { socket, written, far }
}

describe('PendingOverlaySocket', () => {
  it('holds writes until the circuit is there, then passes data both ways and reports the host', async () => {
    const { socket, written } = fakeCircuit()
    let resolveDial!: (s: OverlaySocket) => void
    const p = new PendingOverlaySocket(() => new Promise((r) => (resolveDial = r)))
    assert.equal(p.connecting, true)
    p.write('early')
    const connected = new Promise((r) => p.once('connect', r))
    resolveDial(socket)
    await connected
    assert.equal(p.connecting, false)
    assert.deepEqual(p.remoteIdentity, { id: 'h', name: 'host' })
    await new Promise((r) => setImmediate(r))
    assert.equal(Buffer.concat(written).toString(), 'early')
    const got = new Promise<string>((r) => p.once('data', (d: Buffer) => r(d.toString())))
    ;(socket as unknown as Duplex).push('reply')
    assert.equal(await got, 'reply')
    p.destroy()
  })

  it('write() returns false once the pending data reaches the high-water mark (bounded)', () => {
    const p = new PendingOverlaySocket(() => new Promise(() => undefined))
    let ok = true
    let n = 0
    while (ok && n < 10_000) {
      ok = p.write(Buffer.alloc(4096))
      n++
    }
    assert.equal(ok, false)
    assert.ok(n * 4096 <= 64 * 1024, `${n * 4096} bytes accepted before backpressure`)
    p.destroy()
  })

  it('a failed dial destroys the socket with the dial error (nothing else is tried)', async () => {
    const p = new PendingOverlaySocket(async () => {
      throw new SdkError('ERR_NO_TERMINATORS', 'no host')
    })
    const err = await new Promise<Error & { code?: string }>((r) => p.once('error', r))
    assert.equal(err.code, 'ERR_NO_TERMINATORS')
    assert.equal(p.destroyed, true)
  })

  it('destroying it before the dial completes aborts the dial and destroys a late circuit', async () => {
    const { socket } = fakeCircuit()
    let signal!: AbortSignal
    let resolveDial!: (s: OverlaySocket) => void
    const p = new PendingOverlaySocket((s) => {
      signal = s
      return new Promise((r) => (resolveDial = r))
    })
    p.destroy()
    assert.equal(signal.aborted, true)
    resolveDial(socket)
    await new Promise((r) => setImmediate(r))
    assert.equal((socket as unknown as Duplex).destroyed, true)
  })
})
