import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import {
  BodyFramer,
  forwardHead,
  type HttpRequestHead,
  parseAuthority,
  parseHttpRequestHead,
  proxyTarget,
  requestBodyKind,
} from '../src/http-parser.js'

const parse = (s: string, max = 16384) => parseHttpRequestHead(Buffer.from(s, 'latin1'), max)
function ok(s: string): HttpRequestHead {
  const r = parse(s)
  assert.equal(r.status, 'ok', JSON.stringify(r))
  return r as HttpRequestHead
}

test('http head: absolute URI, CONNECT, headers, length', () => {
  const s =
    'GET http://family.tools.ziti/a?b=1 HTTP/1.1\r\nHost: family.tools.ziti\r\nProxy-Connection: keep-alive\r\nUser-Agent: curl\r\n\r\nNEXT'
  const h = ok(s)
  assert.equal(h.method, 'GET')
  assert.equal(h.length, s.length - 4)
  const t = proxyTarget(h)
  assert.deepEqual(t, {
    status: 'ok',
    target: {
      kind: 'forward',
      host: 'family.tools.ziti',
      port: 80,
      path: '/a?b=1',
      hostHeader: 'family.tools.ziti',
    },
  })
  const fwd = forwardHead(h, (t as unknown as { target: never }).target).toString('latin1')
  assert.equal(fwd, 'GET /a?b=1 HTTP/1.1\r\nHost: family.tools.ziti\r\nUser-Agent: curl\r\n\r\n')
  const c = proxyTarget(ok('CONNECT db.ziti:5432 HTTP/1.1\r\nHost: db.ziti:5432\r\n\r\n'))
  assert.deepEqual(c, { status: 'ok', target: { kind: 'connect', host: 'db.ziti', port: 5432 } })
  const v6 = proxyTarget(ok('CONNECT [fd00::1]:443 HTTP/1.1\r\n\r\n'))
  assert.deepEqual(v6, { status: 'ok', target: { kind: 'connect', host: 'fd00::1', port: 443 } })
  const noPath = proxyTarget(ok('GET http://x.ziti:8080 HTTP/1.0\r\n\r\n'))
  assert.deepEqual(noPath, {
    status: 'ok',
    target: { kind: 'forward', host: 'x.ziti', port: 8080, path: '/', hostHeader: 'x.ziti:8080' },
  })
  // Host is added when missing
  const h2 = ok('GET http://x.ziti/ HTTP/1.0\r\n\r\n')
  assert.match(
    forwardHead(h2, (proxyTarget(h2) as unknown as { target: never }).target).toString(),
    /^GET \/ HTTP\/1.0\r\nHost: x.ziti\r\n\r\n$/,
  )
})

test('http head: incomplete, too large, malformed', () => {
  assert.equal(parse('GET http://x/ HTTP/1.1\r\nHost: x\r\n').status, 'incomplete')
  const big = parse(`GET http://x/ HTTP/1.1\r\nX: ${'a'.repeat(2000)}`, 1024)
  assert.equal(big.status, 'error')
  assert.equal((big as { httpStatus: number }).httpStatus, 431)
  for (const bad of [
    'GET\r\n\r\n',
    'GET http://x/ HTTP/1.1 extra\r\n\r\n',
    'G(T http://x/ HTTP/1.1\r\n\r\n',
    'GET http://x/ FTP/1.0\r\n\r\n',
    'GET http://x/ HTTP/1.1\r\nNoColon\r\n\r\n',
    'GET http://x/ HTTP/1.1\r\nA: b\r\n folded\r\n\r\n',
    'GET http://x/ HTTP/1.1\r\nBad Name: b\r\n\r\n',
  ]) {
    const r = parse(bad)
    assert.equal(r.status, 'error', bad)
    assert.equal((r as { httpStatus: number }).httpStatus, 400, bad)
  }
  assert.equal((parse('GET http://x/ HTTP/2.0\r\n\r\n') as { httpStatus: number }).httpStatus, 505)
})

test('http proxy targets: errors', () => {
  const t = (s: string) => proxyTarget(ok(s))
  assert.equal((t('GET / HTTP/1.1\r\nHost: x\r\n\r\n') as { httpStatus: number }).httpStatus, 400)
  assert.equal((t('GET https://x/ HTTP/1.1\r\n\r\n') as { httpStatus: number }).httpStatus, 501)
  assert.equal((t('CONNECT x HTTP/1.1\r\n\r\n') as { httpStatus: number }).httpStatus, 400)
  assert.equal((t('CONNECT x:0 HTTP/1.1\r\n\r\n') as { httpStatus: number }).httpStatus, 400)
  assert.equal((t('CONNECT x:99999 HTTP/1.1\r\n\r\n') as { httpStatus: number }).httpStatus, 400)
  assert.equal((t('GET http://u:p@x/ HTTP/1.1\r\n\r\n') as { httpStatus: number }).httpStatus, 400)
  assert.equal(parseAuthority('a:b:c', 80), null)
  assert.deepEqual(parseAuthority('[::1]', 80), { host: '::1', port: 80 })
})

test('http body framing: none, length, chunked, smuggling guards', () => {
  assert.deepEqual(requestBodyKind(ok('GET http://x/ HTTP/1.1\r\n\r\n')), { kind: 'none' })
  assert.deepEqual(requestBodyKind(ok('POST http://x/ HTTP/1.1\r\nContent-Length: 5\r\n\r\n')), {
    kind: 'length',
    length: 5,
  })
  assert.deepEqual(
    requestBodyKind(ok('POST http://x/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n')),
    { kind: 'chunked' },
  )
  assert.equal(
    requestBodyKind(ok('POST http://x/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n'))
      .kind,
    'error',
  )
  assert.equal(
    requestBodyKind(ok('POST http://x/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n')).kind,
    'error',
  )
  assert.equal(requestBodyKind(ok('POST http://x/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n')).kind, 'error')
  assert.equal(
    requestBodyKind(ok('POST http://x/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n')).kind,
    'error',
  )

  const f = new BodyFramer({ kind: 'length', length: 5 })
  assert.deepEqual(f.consume(Buffer.from('abc')), { used: 3 })
  assert.deepEqual(f.consume(Buffer.from('deGET')), { used: 2 })
  assert.ok(f.done)

  const body = '4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n'
  const whole = Buffer.from(`${body}GET next`)
  // byte by byte and in one piece give the same boundary
  const c1 = new BodyFramer({ kind: 'chunked' })
  assert.deepEqual(c1.consume(whole), { used: body.length })
  assert.ok(c1.done)
  const c2 = new BodyFramer({ kind: 'chunked' })
  let used = 0
  for (let i = 0; i < whole.length && !c2.done; i++)
    used += (c2.consume(whole.subarray(i, i + 1)) as { used: number }).used
  assert.equal(used, body.length)
  assert.ok('error' in new BodyFramer({ kind: 'chunked' }).consume(Buffer.from('zz\r\n')))
  assert.ok('error' in new BodyFramer({ kind: 'chunked' }).consume(Buffer.from('1\r\nab\r\n')))
  assert.ok('error' in new BodyFramer({ kind: 'chunked' }).consume(Buffer.alloc(5000, 0x31)))
})

test('http parsers: fuzz (random and mutated heads never throw; results are bounded)', () => {
  const seeds = [
    'GET http://family.tools.ziti/a HTTP/1.1\r\nHost: family.tools.ziti\r\nContent-Length: 3\r\n\r\nabc',
    'CONNECT db.ziti:5432 HTTP/1.1\r\nHost: db.ziti\r\n\r\n',
    'POST http://x/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  ]
  for (let i = 0; i < 10000; i++) {
    let b: Buffer
    if (i % 3 === 0) b = randomBytes(i % 200)
    else {
      b = Buffer.from(seeds[i % seeds.length]!, 'latin1')
      for (let f = 0; f < 1 + (i % 5); f++) b[(i * 11 + f * 17) % b.length] = randomBytes(1)[0]!
    }
    const r = parseHttpRequestHead(b, 256)
    if (r.status === 'ok') {
      assert.ok(r.length <= b.length)
      const t = proxyTarget(r)
      if (t.status === 'ok') {
        assert.ok(t.target.port >= 1 && t.target.port <= 65535)
        if (t.target.kind === 'forward') forwardHead(r, t.target)
      }
      const k = requestBodyKind(r)
      if (k.kind !== 'error') {
        const fr = new BodyFramer(k)
        const c = fr.consume(b.subarray(r.length))
        if ('used' in c) assert.ok(c.used <= b.length - r.length)
      }
    }
  }
})
