import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ProtocolError } from '../src/errors.js'
import {
  encodeFrame,
  type Frame,
  FrameDecoder,
  FrameFlag,
  FrameType,
  HEADER_SIZE,
  MAX_PAYLOAD,
} from '../src/frames/index.js'

/** Seeded PRNG (mulberry32) so that a failure reproduces: the seed is in the assertion message. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const SEED = Number(process.env.NULLPORT_FUZZ_SEED ?? 0x5eed)

function int(r: () => number, n: number): number {
  return Math.floor(r() * n)
}
function bytes(r: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = int(r, 256)
  return b
}
function word(r: () => number, min = 1, max = 12): string {
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789_-é€'
  let s = ''
  const n = min + int(r, max - min + 1)
  for (let i = 0; i < n; i++) s += chars[int(r, chars.length)]
  return s
}
function code(r: () => number): string {
  return `ERR_${word(r)
    .toUpperCase()
    .replace(/[^A-Z0-9_-]/g, 'X')}`
}
function cid(r: () => number): number {
  return 1 + int(r, 0xffff_fffe)
}

/** A random valid frame of a random type. */
function randomFrame(r: () => number): Frame {
  const e2e = () => ({
    publicKey: bytes(r, 32).toString('base64'),
    certChain: word(r, 1, 200),
    signature: bytes(r, 70).toString('base64'),
    nonce: bytes(r, 16).toString('base64'),
  })
  switch (int(r, 16)) {
    case 0:
      return {
        type: FrameType.HELLO,
        circuitId: 0,
        flags: 0,
        payload: { version: 1, role: r() < 0.5 ? 'sdk' : 'router', agent: word(r, 0) },
      }
    case 1:
      return {
        type: FrameType.HELLO_ACK,
        circuitId: 0,
        flags: 0,
        payload: { version: 1, role: 'router', routerId: word(r) },
      }
    case 2:
      return { type: FrameType.PING, circuitId: 0, flags: 0, payload: bytes(r, 8) }
    case 3:
      return { type: FrameType.PONG, circuitId: 0, flags: 0, payload: bytes(r, 8) }
    case 4:
      return {
        type: FrameType.GOAWAY,
        circuitId: 0,
        flags: 0,
        payload: { code: code(r), message: word(r, 0, 50) },
      }
    case 5:
      return {
        type: FrameType.DIAL,
        circuitId: cid(r),
        flags: 0,
        payload: {
          service: word(r),
          ...(r() < 0.5 ? { dialer: { id: word(r), name: word(r) } } : {}),
          ...(r() < 0.5 ? { appData: { protocol: 'udp' as const, port: int(r, 65536) } } : {}),
          ...(r() < 0.5 ? { e2e: e2e() } : {}),
        },
      }
    case 6:
      return {
        type: FrameType.DIAL_SUCCESS,
        circuitId: cid(r),
        flags: 0,
        payload: {
          hostIdentity: { id: word(r), name: word(r) },
          circuitTag: bytes(r, 16).toString('hex'),
          e2e: e2e(),
        },
      }
    case 7:
      return {
        type: FrameType.DIAL_FAILED,
        circuitId: cid(r),
        flags: 0,
        payload: { code: code(r), message: word(r, 0) },
      }
    case 8:
      return {
        type: FrameType.BIND,
        circuitId: 0,
        flags: 0,
        payload: {
          bindId: int(r, 1000),
          service: word(r),
          cost: int(r, 65536),
          precedence: 'required',
          maxConnections: int(r, 9),
        },
      }
    case 9:
      return {
        type: FrameType.BIND_SUCCESS,
        circuitId: 0,
        flags: 0,
        payload: { bindId: int(r, 1000), terminatorId: word(r) },
      }
    case 10:
      return {
        type: FrameType.BIND_FAILED,
        circuitId: 0,
        flags: 0,
        payload: { bindId: 1, code: code(r), message: word(r, 0) },
      }
    case 11:
      return { type: FrameType.UNBIND, circuitId: 0, flags: 0, payload: { bindId: int(r, 1000) } }
    case 12:
      return {
        type: FrameType.DATA,
        circuitId: cid(r),
        flags: r() < 0.5 ? FrameFlag.E2E : 0,
        payload: bytes(r, int(r, 3000)),
      }
    case 13:
      return { type: FrameType.HALF_CLOSE, circuitId: cid(r), flags: 0, payload: bytes(r, int(r, 17)) }
    case 14:
      return {
        type: FrameType.CLOSE,
        circuitId: cid(r),
        flags: 0,
        payload: r() < 0.5 ? {} : { code: code(r) },
      }
    default:
      return {
        type: FrameType.WINDOW_UPDATE,
        circuitId: cid(r),
        flags: 0,
        payload: { credit: 1 + int(r, 0xffff_fffe) },
      }
  }
}

/** Pushes `stream` in random pieces; returns the frames, or the ProtocolError that stopped decoding. */
function feed(
  r: () => number,
  d: FrameDecoder,
  stream: Buffer,
  ctx: string,
): { frames: Frame[]; error: ProtocolError | null } {
  const frames: Frame[] = []
  let off = 0
  while (off < stream.length) {
    const n = 1 + int(r, r() < 0.3 ? 16 : 4000)
    try {
      frames.push(...d.push(stream.subarray(off, off + n)))
    } catch (err) {
      assert.ok(err instanceof ProtocolError, `${ctx}: decoder threw a non-ProtocolError: ${String(err)}`)
      assert.match(err.code, /^ERR_FRAME_/, ctx)
      return { frames, error: err }
    }
    off += n
    assert.ok(d.buffered <= HEADER_SIZE + d.maxPayload, `${ctx}: buffered ${d.buffered} exceeds the bound`)
  }
  return { frames, error: null }
}

test('valid streams split at random boundaries decode to the same frames', () => {
  const r = prng(SEED)
  for (let i = 0; i < 1500; i++) {
    const frames = Array.from({ length: 1 + int(r, 8) }, () => randomFrame(r))
    const stream = Buffer.concat(frames.map(encodeFrame))
    const d = new FrameDecoder()
    const out = feed(r, d, stream, `seed ${SEED} iteration ${i}`)
    assert.equal(out.error, null, `seed ${SEED} iteration ${i}: ${out.error?.message}`)
    assert.deepEqual(out.frames, frames, `seed ${SEED} iteration ${i}`)
    assert.equal(d.buffered, 0)
  }
})

test('random bytes yield only ProtocolErrors or valid frames, with bounded buffering', () => {
  const r = prng(SEED + 1)
  for (let i = 0; i < 3000; i++) {
    const d = new FrameDecoder({ maxPayload: r() < 0.5 ? 4096 : MAX_PAYLOAD })
    let stream = bytes(r, int(r, 400))
    // Often start with a plausible header prefix so that decoding gets past the first checks.
    if (r() < 0.7 && stream.length > 2) {
      stream[0] = 1
      stream[1] = Object.values(FrameType)[int(r, 16)]!
    }
    if (r() < 0.3) stream = Buffer.concat([encodeFrame(randomFrame(r)), stream])
    const { frames } = feed(r, d, stream, `seed ${SEED + 1} iteration ${i}`)
    for (const f of frames) encodeFrame(f) // every frame that came out is valid (re-encodes without error)
  }
})

test('mutated valid frames yield only ProtocolErrors or valid frames', () => {
  const r = prng(SEED + 2)
  let errors = 0
  let decoded = 0
  for (let i = 0; i < 3000; i++) {
    const frames = Array.from({ length: 1 + int(r, 4) }, () => randomFrame(r))
    const stream = Buffer.from(Buffer.concat(frames.map(encodeFrame)))
    const mutations = 1 + int(r, 4)
    let s = stream
    for (let m = 0; m < mutations; m++) {
      const at = int(r, s.length)
      switch (int(r, 4)) {
        case 0:
          s[at] = int(r, 256)
          break
        case 1:
          s[at] = s[at]! ^ (1 << int(r, 8))
          break
        case 2:
          s = Buffer.concat([s.subarray(0, at), bytes(r, 1 + int(r, 8)), s.subarray(at)])
          break
        default:
          s = Buffer.concat([s.subarray(0, at), s.subarray(at + 1 + int(r, 8))])
      }
    }
    const d = new FrameDecoder()
    const out = feed(r, d, s, `seed ${SEED + 2} iteration ${i}`)
    if (out.error) errors++
    for (const f of out.frames) {
      encodeFrame(f)
      decoded++
    }
  }
  // Sanity: the mutations exercised both outcomes.
  assert.ok(errors > 100 && decoded > 100, `errors ${errors}, decoded ${decoded}`)
})
