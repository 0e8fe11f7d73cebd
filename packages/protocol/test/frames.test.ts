import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isProtocolError, ProtocolError, type ProtocolErrorCode } from '../src/errors.js'
import {
  CircuitIdAllocator,
  encodeDataFrame,
  encodeFrame,
  encodeHeader,
  type Frame,
  FrameDecoder,
  FrameFlag,
  FrameType,
  HEADER_SIZE,
  MAX_CONTROL_PAYLOAD,
  MAX_PAYLOAD,
} from '../src/frames/index.js'

const e2e = {
  publicKey: Buffer.alloc(32, 1).toString('base64'),
  certChain: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
  signature: Buffer.alloc(70, 2).toString('base64'),
  nonce: Buffer.alloc(16, 3).toString('base64'),
}
const tag = '0123456789abcdef0123456789abcdef'

/** One valid frame of every type. */
const SAMPLE_FRAMES: Frame[] = [
  {
    type: FrameType.HELLO,
    circuitId: 0,
    flags: 0,
    payload: { version: 1, role: 'sdk', agent: 'nullport-sdk/0.1.0' },
  },
  {
    type: FrameType.HELLO_ACK,
    circuitId: 0,
    flags: 0,
    payload: { version: 1, role: 'router', routerId: 'r_1' },
  },
  { type: FrameType.PING, circuitId: 0, flags: 0, payload: Buffer.from('01234567') },
  { type: FrameType.PONG, circuitId: 0, flags: 0, payload: Buffer.from('76543210') },
  {
    type: FrameType.GOAWAY,
    circuitId: 0,
    flags: 0,
    payload: { code: 'ERR_SHUTDOWN', message: 'router stopping' },
  },
  {
    type: FrameType.DIAL,
    circuitId: 1,
    flags: 0,
    payload: {
      service: 'web',
      dialer: { id: 'id_a', name: 'laptop' },
      terminatorId: 't_1',
      hostIdentityId: 'id_h',
      appData: { protocol: 'tcp', address: '10.0.0.1', port: 443, sourceAddress: '127.0.0.1' },
      e2e,
      circuitTag: tag,
    },
  },
  { type: FrameType.DIAL, circuitId: 3, flags: 0, payload: { service: 'minimal' } },
  {
    type: FrameType.DIAL_SUCCESS,
    circuitId: 0xffff_ffff,
    flags: 0,
    payload: { hostIdentity: { id: 'id_h', name: 'server' }, e2e, circuitTag: tag },
  },
  {
    type: FrameType.DIAL_FAILED,
    circuitId: 2,
    flags: 0,
    payload: { code: 'ERR_NO_DIAL_PERMISSION', message: 'no' },
  },
  {
    type: FrameType.BIND,
    circuitId: 0,
    flags: 0,
    payload: { bindId: 7, service: 'web', cost: 0, precedence: 'default', maxConnections: 100 },
  },
  { type: FrameType.BIND_SUCCESS, circuitId: 0, flags: 0, payload: { bindId: 7, terminatorId: 't_9' } },
  {
    type: FrameType.BIND_FAILED,
    circuitId: 0,
    flags: 0,
    payload: { bindId: 8, code: 'ERR_NO_BIND_PERMISSION', message: 'x' },
  },
  { type: FrameType.UNBIND, circuitId: 0, flags: 0, payload: { bindId: 7 } },
  {
    type: FrameType.UNBIND,
    circuitId: 0,
    flags: 0,
    payload: { bindId: 7, code: 'ERR_REVOKED', message: 'policy changed' },
  },
  { type: FrameType.DATA, circuitId: 5, flags: 0, payload: Buffer.from('hello world') },
  { type: FrameType.DATA, circuitId: 5, flags: FrameFlag.E2E, payload: Buffer.alloc(65536, 0xab) },
  { type: FrameType.DATA, circuitId: 5, flags: 0, payload: Buffer.alloc(0) },
  { type: FrameType.HALF_CLOSE, circuitId: 5, flags: 0, payload: Buffer.alloc(0) },
  { type: FrameType.HALF_CLOSE, circuitId: 5, flags: FrameFlag.E2E, payload: Buffer.alloc(16, 9) },
  { type: FrameType.CLOSE, circuitId: 6, flags: 0, payload: {} },
  {
    type: FrameType.CLOSE,
    circuitId: 6,
    flags: 0,
    payload: { code: 'ERR_FLOW_CONTROL', message: 'window exceeded' },
  },
  { type: FrameType.WINDOW_UPDATE, circuitId: 9, flags: 0, payload: { credit: 65536 } },
  { type: FrameType.WINDOW_UPDATE, circuitId: 9, flags: 0, payload: { credit: 0xffff_ffff } },
]

function header(version: number, type: number, flags: number, circuitId: number, length: number): Buffer {
  const b = Buffer.alloc(HEADER_SIZE)
  b[0] = version
  b[1] = type
  b.writeUInt16BE(flags, 2)
  b.writeUInt32BE(circuitId, 4)
  b.writeUInt32BE(length, 8)
  return b
}
function raw(type: number, circuitId: number, payload: Buffer | string, flags = 0, version = 1): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload
  return Buffer.concat([header(version, type, flags, circuitId, p.length), p])
}

function expectCode(
  bytes: Buffer,
  code: ProtocolErrorCode,
  opts: { maxPayload?: number } = {},
): ProtocolError {
  const d = new FrameDecoder(opts)
  let caught: unknown
  try {
    d.push(bytes)
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof ProtocolError, `expected a ProtocolError ${code}, got ${String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  return caught
}

test('every frame type round-trips through encodeFrame and FrameDecoder', () => {
  const types = new Set<number>()
  for (const f of SAMPLE_FRAMES) {
    const bytes = encodeFrame(f)
    assert.equal(bytes[0], 1)
    assert.equal(bytes[1], f.type)
    assert.equal(bytes.readUInt32BE(8), bytes.length - HEADER_SIZE)
    const d = new FrameDecoder()
    const out = d.push(bytes)
    assert.deepEqual(out, [f])
    assert.equal(d.buffered, 0)
    types.add(f.type)
  }
  assert.deepEqual([...types].sort(), Object.values(FrameType).sort(), 'a sample of every frame type')
})

test('a stream of frames decodes byte by byte and all at once', () => {
  const stream = Buffer.concat(SAMPLE_FRAMES.map(encodeFrame))
  assert.deepEqual(new FrameDecoder().push(stream), SAMPLE_FRAMES)
  const d = new FrameDecoder()
  const out: Frame[] = []
  let maxBuffered = 0
  for (let i = 0; i < stream.length; i++) {
    out.push(...d.push(stream.subarray(i, i + 1)))
    maxBuffered = Math.max(maxBuffered, d.buffered)
  }
  assert.deepEqual(out, SAMPLE_FRAMES)
  assert.equal(d.buffered, 0)
  assert.ok(maxBuffered < HEADER_SIZE + 65536)
})

test('DATA payloads of whole frames are subarrays of the received chunk (no copy)', () => {
  const payload = Buffer.alloc(1000, 5)
  const chunk = Buffer.concat([encodeDataFrame(1, 0, payload), encodeDataFrame(3, 0, payload)])
  const [a, b] = new FrameDecoder().push(chunk)
  assert.ok(a && b && a.type === FrameType.DATA && b.type === FrameType.DATA)
  assert.equal((a.payload as Buffer).buffer, chunk.buffer)
  assert.equal((b.payload as Buffer).byteOffset, chunk.byteOffset + 2 * HEADER_SIZE + 1000)
})

test('encodeHeader + payload equals encodeDataFrame and encodeFrame', () => {
  const p = Buffer.from('abc')
  const viaHeader = Buffer.concat([encodeHeader(FrameType.DATA, FrameFlag.E2E, 7, 3), p])
  assert.deepEqual(viaHeader, encodeDataFrame(7, FrameFlag.E2E, p))
  assert.deepEqual(
    viaHeader,
    encodeFrame({ type: FrameType.DATA, circuitId: 7, flags: FrameFlag.E2E, payload: p }),
  )
})

test('version other than 1 is refused', () => {
  for (const v of [0, 2, 255]) expectCode(raw(FrameType.DATA, 1, 'x', 0, v), 'ERR_FRAME_VERSION')
})

test('unknown frame types are refused', () => {
  for (const t of [0x00, 0x06, 0x13, 0x24, 0x34, 0x40, 0xff]) expectCode(raw(t, 1, 'x'), 'ERR_FRAME_TYPE')
  assert.throws(
    () => encodeHeader(0x99, 0, 1, 0),
    (e) => isProtocolError(e, 'ERR_FRAME_TYPE'),
  )
})

test('unknown flag bits, or a flag on a type that cannot carry it, are refused', () => {
  for (const flags of [0x0002, 0x0100, 0x8000, 0xffff])
    expectCode(raw(FrameType.DATA, 1, 'x', flags), 'ERR_FRAME_MALFORMED')
  expectCode(raw(FrameType.HELLO, 0, '{}', FrameFlag.E2E), 'ERR_FRAME_MALFORMED')
  expectCode(raw(FrameType.WINDOW_UPDATE, 1, Buffer.from([0, 0, 0, 1]), FrameFlag.E2E), 'ERR_FRAME_MALFORMED')
  assert.throws(
    () => encodeFrame({ type: FrameType.DATA, circuitId: 1, flags: 4, payload: Buffer.alloc(1) }),
    (e) => isProtocolError(e, 'ERR_FRAME_MALFORMED'),
  )
})

test('connection frames need circuit id 0 and circuit frames a non-zero one', () => {
  const conn = [FrameType.HELLO, FrameType.HELLO_ACK, FrameType.PING, FrameType.PONG, FrameType.GOAWAY]
  const bind = [FrameType.BIND, FrameType.BIND_SUCCESS, FrameType.BIND_FAILED, FrameType.UNBIND]
  for (const t of [...conn, ...bind]) {
    const e = expectCode(
      raw(t, 1, t === FrameType.PING || t === FrameType.PONG ? Buffer.alloc(8) : '{}'),
      'ERR_FRAME_MALFORMED',
    )
    assert.match(e.message, /circuit id 0/)
  }
  const circuit = [
    FrameType.DIAL,
    FrameType.DIAL_SUCCESS,
    FrameType.DIAL_FAILED,
    FrameType.DATA,
    FrameType.HALF_CLOSE,
    FrameType.CLOSE,
    FrameType.WINDOW_UPDATE,
  ]
  for (const t of circuit) {
    const e = expectCode(
      raw(t, 0, t === FrameType.WINDOW_UPDATE ? Buffer.from([0, 0, 0, 1]) : '{}'),
      'ERR_FRAME_MALFORMED',
    )
    assert.match(e.message, /non-zero circuit id/)
  }
  assert.throws(
    () => encodeFrame({ type: FrameType.DATA, circuitId: 0 as number, flags: 0, payload: Buffer.alloc(1) }),
    (e) => isProtocolError(e, 'ERR_FRAME_MALFORMED'),
  )
})

test('a length over the limit is refused from the header alone, before any payload is buffered', () => {
  for (const len of [MAX_PAYLOAD + 1, 0xffff_ffff]) {
    const d = new FrameDecoder()
    assert.throws(
      () => d.push(header(1, FrameType.DATA, 0, 1, len)),
      (e) => isProtocolError(e, 'ERR_FRAME_TOO_LARGE'),
    )
    assert.equal(d.buffered, 0)
  }
  // Header split over two pushes: still refused as soon as the 12th byte arrives.
  const d = new FrameDecoder({ maxPayload: 1000 })
  const h = header(1, FrameType.DATA, 0, 1, 1001)
  assert.deepEqual(d.push(h.subarray(0, 5)), [])
  assert.throws(
    () => d.push(h.subarray(5)),
    (e) => isProtocolError(e, 'ERR_FRAME_TOO_LARGE'),
  )
  // Control frames have their own (smaller) limit.
  expectCode(header(1, FrameType.HELLO, 0, 0, MAX_CONTROL_PAYLOAD + 1), 'ERR_FRAME_TOO_LARGE')
  expectCode(header(1, FrameType.HALF_CLOSE, 0, 1, 1025), 'ERR_FRAME_TOO_LARGE')
  // After an error the decoder stays failed.
  assert.throws(
    () => d.push(Buffer.alloc(1)),
    (e) => isProtocolError(e, 'ERR_FRAME_TOO_LARGE'),
  )
  assert.throws(() => new FrameDecoder({ maxPayload: -1 }), RangeError)
})

test('WINDOW_UPDATE is exactly 4 bytes with credit > 0; PING/PONG exactly 8 bytes', () => {
  for (const n of [0, 3, 5, 8])
    expectCode(raw(FrameType.WINDOW_UPDATE, 1, Buffer.alloc(n, 1)), 'ERR_FRAME_PAYLOAD')
  expectCode(raw(FrameType.WINDOW_UPDATE, 1, Buffer.alloc(4)), 'ERR_FRAME_PAYLOAD')
  for (const t of [FrameType.PING, FrameType.PONG]) {
    for (const n of [0, 7, 9, 64]) expectCode(raw(t, 0, Buffer.alloc(n)), 'ERR_FRAME_PAYLOAD')
  }
  for (const credit of [0, -1, 1.5, 2 ** 32, Number.NaN]) {
    assert.throws(
      () => encodeFrame({ type: FrameType.WINDOW_UPDATE, circuitId: 1, flags: 0, payload: { credit } }),
      (e) => isProtocolError(e, 'ERR_FRAME_PAYLOAD'),
    )
  }
})

test('JSON control payloads are validated field by field', () => {
  const bad: Array<[number, number, string]> = [
    [FrameType.HELLO, 0, '\xff\xfe'],
    [FrameType.HELLO, 0, '{"version":1,'],
    [FrameType.HELLO, 0, ''],
    [FrameType.HELLO, 0, 'null'],
    [FrameType.HELLO, 0, '[]'],
    [FrameType.HELLO, 0, '42'],
    [FrameType.HELLO, 0, '"hello"'],
    [FrameType.HELLO, 0, '{"version":1,"role":"sdk"}'],
    [FrameType.HELLO, 0, '{"version":1,"role":"sdk","agent":"a","extra":1}'],
    [FrameType.HELLO, 0, '{"version":1,"role":"admin","agent":"a"}'],
    [FrameType.HELLO, 0, '{"version":"1","role":"sdk","agent":"a"}'],
    [FrameType.HELLO, 0, '{"version":1.5,"role":"sdk","agent":"a"}'],
    [FrameType.HELLO, 0, '{"version":1e400,"role":"sdk","agent":"a"}'],
    [FrameType.HELLO, 0, '{"version":0,"role":"sdk","agent":"a"}'],
    [FrameType.HELLO, 0, `{"version":1,"role":"sdk","agent":"${'a'.repeat(257)}"}`],
    [FrameType.HELLO, 0, '{"version":1,"role":"sdk","agent":"a","__proto__":{"x":1}}'],
    [FrameType.HELLO_ACK, 0, '{"version":1,"role":"sdk","routerId":"r"}'],
    [FrameType.HELLO_ACK, 0, '{"version":1,"role":"router","routerId":""}'],
    [FrameType.GOAWAY, 0, '{"code":"has space","message":""}'],
    [FrameType.GOAWAY, 0, '{"code":"E","message":null}'],
    [FrameType.DIAL, 1, '{}'],
    [FrameType.DIAL, 1, '{"service":""}'],
    [FrameType.DIAL, 1, '{"service":"s","dialer":{"id":"a"}}'],
    [FrameType.DIAL, 1, '{"service":"s","dialer":[]}'],
    [FrameType.DIAL, 1, '{"service":"s","appData":{"port":65536}}'],
    [FrameType.DIAL, 1, '{"service":"s","appData":{"port":-1}}'],
    [FrameType.DIAL, 1, '{"service":"s","appData":{"protocol":"icmp"}}'],
    [FrameType.DIAL, 1, '{"service":"s","appData":{"other":1}}'],
    [FrameType.DIAL, 1, '{"service":"s","circuitTag":"XYZ"}'],
    [FrameType.DIAL, 1, '{"service":"s","e2e":{"publicKey":"a","certChain":"c","signature":"s"}}'],
    [
      FrameType.DIAL,
      1,
      '{"service":"s","e2e":{"publicKey":"!!","certChain":"c","signature":"s","nonce":"n"}}',
    ],
    [
      FrameType.DIAL,
      1,
      `{"service":"s","e2e":{"publicKey":"a","certChain":"${'c'.repeat(16385)}","signature":"s","nonce":"n"}}`,
    ],
    [FrameType.DIAL_SUCCESS, 1, '{"hostIdentity":{"id":"a","name":"b"}}'],
    [FrameType.DIAL_FAILED, 1, '{"code":"E"}'],
    [FrameType.BIND, 0, '{"bindId":1,"service":"s","cost":0,"precedence":"default"}'],
    [FrameType.BIND, 0, '{"bindId":-1,"service":"s","cost":0,"precedence":"default","maxConnections":1}'],
    [FrameType.BIND, 0, '{"bindId":1,"service":"s","cost":70000,"precedence":"default","maxConnections":1}'],
    [FrameType.BIND, 0, '{"bindId":1,"service":"s","cost":0,"precedence":"top","maxConnections":1}'],
    [FrameType.BIND_SUCCESS, 0, '{"bindId":1}'],
    [FrameType.BIND_FAILED, 0, '{"bindId":1,"code":"E","message":"m","x":true}'],
    [FrameType.UNBIND, 0, '{"code":"E"}'],
    [FrameType.CLOSE, 1, '{"code":""}'],
    [FrameType.CLOSE, 1, `{"message":"${'m'.repeat(1025)}"}`],
    [FrameType.CLOSE, 1, `${'['.repeat(30000)}${']'.repeat(30000)}`],
  ]
  for (const [t, c, body] of bad) {
    const bytes = raw(t, c, Buffer.from(body, body.startsWith('\xff') ? 'latin1' : 'utf8'))
    const e = expectCode(bytes, 'ERR_FRAME_PAYLOAD')
    assert.ok(e.message.length > 0)
  }
  // The encoder refuses what the decoder would refuse.
  assert.throws(
    () =>
      encodeFrame({
        type: FrameType.HELLO,
        circuitId: 0,
        flags: 0,
        payload: { version: 1, role: 'sdk', agent: 'a', extra: 1 } as never,
      }),
    (e) => isProtocolError(e, 'ERR_FRAME_PAYLOAD') && /extra/.test(e.message),
  )
  // Optional fields set to undefined are simply absent.
  const f: Frame = {
    type: FrameType.CLOSE,
    circuitId: 1,
    flags: 0,
    payload: { code: undefined, message: undefined },
  }
  assert.deepEqual(new FrameDecoder().push(encodeFrame(f)), [
    { type: FrameType.CLOSE, circuitId: 1, flags: 0, payload: {} },
  ])
})

test('circuit ids: the TLS client allocates odd ids, the acceptor even ones', () => {
  const client = new CircuitIdAllocator(true)
  const server = new CircuitIdAllocator(false)
  assert.deepEqual([client.next(), client.next(), client.next()], [1, 3, 5])
  assert.deepEqual([server.next(), server.next()], [2, 4])
  assert.ok(client.isLocal(7) && !client.isLocal(8) && !client.isLocal(0))
  assert.ok(server.isLocal(8) && !server.isLocal(7))
  const busy = new Set([1, 3])
  const a = new CircuitIdAllocator(true, (id) => busy.has(id))
  assert.equal(a.next(), 5)
})

test('reuseAssembly: a DATA frame assembled from chunks uses the reused scratch buffer; whole frames and control frames do not', () => {
  const a = Buffer.alloc(40_000, 1)
  const b = Buffer.alloc(30_000, 2)
  const stream = Buffer.concat([
    encodeDataFrame(1, 0, a),
    encodeDataFrame(3, 0, b),
    encodeDataFrame(5, 0, Buffer.from('whole')),
  ])
  const plain = new FrameDecoder()
  const reuse = new FrameDecoder({ reuseAssembly: true })
  const got: Array<{ circuitId: number; bytes: Buffer; transient: boolean }> = []
  const scratchBuffers = new Set<ArrayBufferLike>()
  for (let off = 0; off < stream.length; off += 16384) {
    const chunk = stream.subarray(off, off + 16384)
    const ref = plain.push(Buffer.from(chunk))
    const frames = reuse.push(Buffer.from(chunk))
    assert.equal(frames.length, ref.length)
    for (const [i, f] of frames.entries()) {
      assert.equal(f.type, FrameType.DATA)
      const p = f.payload as Uint8Array
      assert.deepEqual(
        Buffer.from(p),
        Buffer.from(ref[i]!.payload as Uint8Array),
        'same bytes as without reuse',
      )
      assert.equal(plain.isTransient(ref[i]!.payload as Uint8Array), false)
      const transient = reuse.isTransient(p)
      if (transient) scratchBuffers.add(p.buffer)
      got.push({ circuitId: f.circuitId, bytes: Buffer.from(p), transient })
    }
  }
  assert.deepEqual(
    got.map((g) => [g.circuitId, g.bytes.length, g.transient]),
    [
      [1, 40_000, true],
      [3, 30_000, true],
      [5, 5, false],
    ],
  )
  assert.equal(scratchBuffers.size, 1, 'both assembled frames used the same scratch buffer')
  assert.ok(got[0]!.bytes.equals(a) && got[1]!.bytes.equals(b))
})
