/**
 * Encoder and strict streaming decoder for data-plane frames (layout: ./types.ts, spec:
 * docs/protocol.md). Decoding never throws anything but a ProtocolError with an ERR_FRAME_* code,
 * and never allocates by a peer-supplied length before that length has been checked.
 */
import { ProtocolError } from '../errors.js'
import {
  type Frame,
  FrameFlag,
  FrameType,
  type FrameTypeName,
  HEADER_SIZE,
  MAX_CONTROL_PAYLOAD,
  MAX_PAYLOAD,
  PROTOCOL_VERSION,
} from './types.js'
import { validateControlPayload } from './validate.js'

/** Exact payload size of PING and PONG (an opaque 8-byte token the PONG echoes). */
export const PING_PAYLOAD_SIZE = 8
/** Exact payload size of WINDOW_UPDATE (u32 BE credit, > 0). */
export const WINDOW_UPDATE_PAYLOAD_SIZE = 4
/** Largest HALF_CLOSE payload: empty, or an e2e end-of-stream record (E2E_OVERHEAD bytes). */
export const MAX_HALF_CLOSE_PAYLOAD = 1024
/** Largest circuit id (u32). */
export const MAX_CIRCUIT_ID = 0xffff_ffff
/** Largest `maxPayload` a decoder accepts as an option. */
export const MAX_DECODER_PAYLOAD_LIMIT = 16 * 1024 * 1024

const KNOWN_FLAGS = FrameFlag.E2E

/** Wire number -> name, for logs and error messages. */
const TYPE_NAMES = new Map<number, FrameTypeName>(
  (Object.entries(FrameType) as Array<[FrameTypeName, number]>).map(([name, n]) => [n, name]),
)

/** Kinds of payload by wire type. Index = type number; undefined = unknown type. */
const Kind = { Json: 1, Ping: 2, Data: 3, HalfClose: 4, Window: 5 } as const
type Kind = (typeof Kind)[keyof typeof Kind]
const KIND: Array<Kind | undefined> = new Array<Kind | undefined>(256).fill(undefined)
/** 1 = connection-level (circuitId must be 0), 2 = circuit-level (circuitId must be non-zero). */
const SCOPE: Uint8Array = new Uint8Array(256)
/** Flag bits allowed per type. */
const ALLOWED_FLAGS: Uint16Array = new Uint16Array(256)
for (const t of [FrameType.HELLO, FrameType.HELLO_ACK, FrameType.GOAWAY]) {
  KIND[t] = Kind.Json
  SCOPE[t] = 1
}
for (const t of [FrameType.PING, FrameType.PONG]) {
  KIND[t] = Kind.Ping
  SCOPE[t] = 1
}
for (const t of [FrameType.BIND, FrameType.BIND_SUCCESS, FrameType.BIND_FAILED, FrameType.UNBIND]) {
  KIND[t] = Kind.Json
  SCOPE[t] = 1
}
for (const t of [FrameType.DIAL, FrameType.DIAL_SUCCESS, FrameType.DIAL_FAILED, FrameType.CLOSE]) {
  KIND[t] = Kind.Json
  SCOPE[t] = 2
}
KIND[FrameType.DATA] = Kind.Data
SCOPE[FrameType.DATA] = 2
ALLOWED_FLAGS[FrameType.DATA] = FrameFlag.E2E
KIND[FrameType.HALF_CLOSE] = Kind.HalfClose
SCOPE[FrameType.HALF_CLOSE] = 2
ALLOWED_FLAGS[FrameType.HALF_CLOSE] = FrameFlag.E2E
KIND[FrameType.WINDOW_UPDATE] = Kind.Window
SCOPE[FrameType.WINDOW_UPDATE] = 2

/** The name of a frame type (`'DATA'`), or `undefined` for a number that is not a frame type. */
export function frameTypeName(type: number): FrameTypeName | undefined {
  return TYPE_NAMES.get(type)
}

/** True for types that belong to the connection (circuit id 0): HELLO, PING, GOAWAY, BIND, ... */
export function isConnectionFrameType(type: number): boolean {
  return Number.isInteger(type) && type >= 0 && type <= 0xff && SCOPE[type] === 1
}

/** True for types that belong to a circuit (circuit id non-zero): DIAL*, DATA, HALF_CLOSE, CLOSE, WINDOW_UPDATE. */
export function isCircuitFrameType(type: number): boolean {
  return Number.isInteger(type) && type >= 0 && type <= 0xff && SCOPE[type] === 2
}

function nameOf(type: number): string {
  return TYPE_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`
}

/**
 * Checks type, flags, circuit id and length. `maxPayload` is the decoder's limit. Throws
 * ProtocolError. Used by both the encoder and the decoder so that what we send, we accept.
 */
function checkHeader(
  type: number,
  flags: number,
  circuitId: number,
  length: number,
  maxPayload: number,
): void {
  const kind = KIND[type]
  if (kind === undefined) {
    throw new ProtocolError('ERR_FRAME_TYPE', `unknown frame type ${nameOf(type)}`, { type })
  }
  if ((flags & ~ALLOWED_FLAGS[type]!) !== 0) {
    const unknown = flags & ~KNOWN_FLAGS
    throw new ProtocolError(
      'ERR_FRAME_MALFORMED',
      unknown !== 0
        ? `${nameOf(type)} frame has unknown flag bits 0x${unknown.toString(16)}`
        : `${nameOf(type)} frame may not carry flags 0x${flags.toString(16)}`,
      { type, flags },
    )
  }
  if (SCOPE[type] === 1) {
    if (circuitId !== 0) {
      throw new ProtocolError(
        'ERR_FRAME_MALFORMED',
        `${nameOf(type)} is a connection frame and must have circuit id 0, got ${circuitId}`,
        { type, circuitId },
      )
    }
  } else if (circuitId === 0) {
    throw new ProtocolError(
      'ERR_FRAME_MALFORMED',
      `${nameOf(type)} is a circuit frame and needs a non-zero circuit id`,
      {
        type,
        circuitId,
      },
    )
  }
  if (length > maxPayload) {
    throw new ProtocolError(
      'ERR_FRAME_TOO_LARGE',
      `${nameOf(type)} payload of ${length} bytes exceeds the limit of ${maxPayload}`,
      {
        type,
        length,
        limit: maxPayload,
      },
    )
  }
  switch (kind) {
    case Kind.Json:
      if (length > MAX_CONTROL_PAYLOAD) {
        throw new ProtocolError(
          'ERR_FRAME_TOO_LARGE',
          `${nameOf(type)} control payload of ${length} bytes exceeds the limit of ${MAX_CONTROL_PAYLOAD}`,
          { type, length, limit: MAX_CONTROL_PAYLOAD },
        )
      }
      break
    case Kind.Ping:
      if (length !== PING_PAYLOAD_SIZE) {
        throw new ProtocolError(
          'ERR_FRAME_PAYLOAD',
          `${nameOf(type)} payload must be exactly ${PING_PAYLOAD_SIZE} bytes, got ${length}`,
          {
            type,
            length,
          },
        )
      }
      break
    case Kind.Window:
      if (length !== WINDOW_UPDATE_PAYLOAD_SIZE) {
        throw new ProtocolError(
          'ERR_FRAME_PAYLOAD',
          `WINDOW_UPDATE payload must be exactly ${WINDOW_UPDATE_PAYLOAD_SIZE} bytes, got ${length}`,
          { type, length },
        )
      }
      break
    case Kind.HalfClose:
      if (length > MAX_HALF_CLOSE_PAYLOAD) {
        throw new ProtocolError(
          'ERR_FRAME_TOO_LARGE',
          `HALF_CLOSE payload of ${length} bytes exceeds the limit of ${MAX_HALF_CLOSE_PAYLOAD}`,
          { type, length, limit: MAX_HALF_CLOSE_PAYLOAD },
        )
      }
      break
    case Kind.Data:
      break
  }
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    throw new ProtocolError('ERR_FRAME_MALFORMED', `${name} must be an integer from 0 to 2^32-1, got ${v}`, {
      [name]: v,
    })
  }
}

function writeHeader(buf: Buffer, type: number, flags: number, circuitId: number, length: number): void {
  buf[0] = PROTOCOL_VERSION
  buf[1] = type
  buf.writeUInt16BE(flags, 2)
  buf.writeUInt32BE(circuitId, 4)
  buf.writeUInt32BE(length, 8)
}

/**
 * Encodes only a 12-byte header (routers forward DATA payloads without copying them). Checks the
 * type, flags, circuit-id scope and length like the decoder does (so what we send, peers accept);
 * throws ProtocolError (ERR_FRAME_*) otherwise.
 */
/**
 * Writes a checked header (same checks as encodeHeader) into the first 12 bytes of `frame`, whose
 * payload is the rest of it: for forwarding a received frame in place (frameBytesOf).
 */
export function rewriteHeader(frame: Buffer, type: number, flags: number, circuitId: number): void {
  const length = frame.length - HEADER_SIZE
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) {
    throw new ProtocolError('ERR_FRAME_MALFORMED', `flags must be a u16, got ${flags}`, { flags })
  }
  checkU32('circuitId', circuitId)
  checkHeader(type, flags, circuitId, length, MAX_PAYLOAD)
  writeHeader(frame, type, flags, circuitId, length)
}

export function encodeHeader(type: number, flags: number, circuitId: number, length: number): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 0xff) {
    throw new ProtocolError('ERR_FRAME_TYPE', `frame type must be a u8, got ${type}`, { type })
  }
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) {
    throw new ProtocolError('ERR_FRAME_MALFORMED', `flags must be a u16, got ${flags}`, { flags })
  }
  checkU32('circuitId', circuitId)
  checkU32('length', length)
  checkHeader(type, flags, circuitId, length, MAX_PAYLOAD)
  const buf = Buffer.allocUnsafe(HEADER_SIZE)
  writeHeader(buf, type, flags, circuitId, length)
  return buf
}

/**
 * Encodes a DATA (or HALF_CLOSE) frame as one Buffer: header + a copy of the payload. For 64 KiB
 * payloads one allocation and copy is faster than two socket writes (see docs/protocol.md).
 */
export function encodeDataFrame(
  circuitId: number,
  flags: number,
  payload: Uint8Array,
  type: number = FrameType.DATA,
): Buffer {
  if (type !== FrameType.DATA && type !== FrameType.HALF_CLOSE) {
    throw new ProtocolError(
      'ERR_FRAME_TYPE',
      `encodeDataFrame encodes DATA or HALF_CLOSE, not ${nameOf(type)}`,
      { type },
    )
  }
  const len = payload.byteLength
  if (!Number.isInteger(circuitId) || circuitId <= 0 || circuitId > MAX_CIRCUIT_ID) {
    throw new ProtocolError(
      'ERR_FRAME_MALFORMED',
      `${nameOf(type)} needs a circuit id from 1 to 2^32-1, got ${circuitId}`,
      {
        circuitId,
      },
    )
  }
  if (flags !== 0 && flags !== FrameFlag.E2E) {
    checkU32('flags', flags)
  }
  checkHeader(type, flags, circuitId, len, MAX_PAYLOAD)
  const buf = Buffer.allocUnsafe(HEADER_SIZE + len)
  writeHeader(buf, type, flags, circuitId, len)
  buf.set(payload, HEADER_SIZE)
  return buf
}

const WINDOW_MAX = 0xffff_ffff

/**
 * Encodes one frame (header + payload) into a single Buffer. Control payloads are JSON; DATA,
 * HALF_CLOSE, PING and PONG payloads are bytes; WINDOW_UPDATE is a u32 credit. The frame is
 * checked exactly as the decoder checks it (type, flags, circuit id scope, payload fields and
 * sizes): an invalid frame throws ProtocolError (ERR_FRAME_*), it is never sent.
 */
export function encodeFrame(frame: Frame): Buffer {
  const { type, flags, circuitId } = frame
  if (!Number.isInteger(type) || type < 0 || type > 0xff || KIND[type] === undefined) {
    throw new ProtocolError('ERR_FRAME_TYPE', `unknown frame type ${String(type)}`, { type })
  }
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) {
    throw new ProtocolError('ERR_FRAME_MALFORMED', `flags must be a u16, got ${flags}`, { flags })
  }
  checkU32('circuitId', circuitId)
  let body: Uint8Array
  switch (KIND[type]) {
    case Kind.Json: {
      validateControlPayload(type, nameOf(type), frame.payload)
      body = Buffer.from(JSON.stringify(frame.payload), 'utf8')
      break
    }
    case Kind.Window: {
      const credit = (frame.payload as { credit: number }).credit
      if (!Number.isInteger(credit) || credit <= 0 || credit > WINDOW_MAX) {
        throw new ProtocolError(
          'ERR_FRAME_PAYLOAD',
          `WINDOW_UPDATE credit must be an integer from 1 to 2^32-1, got ${credit}`,
          {
            credit,
          },
        )
      }
      const b = Buffer.allocUnsafe(HEADER_SIZE + 4)
      checkHeader(type, flags, circuitId, 4, MAX_PAYLOAD)
      writeHeader(b, type, flags, circuitId, 4)
      b.writeUInt32BE(credit, HEADER_SIZE)
      return b
    }
    default: {
      const p = frame.payload
      if (!(p instanceof Uint8Array)) {
        throw new ProtocolError('ERR_FRAME_PAYLOAD', `${nameOf(type)} payload must be bytes (Uint8Array)`, {
          type,
        })
      }
      body = p
    }
  }
  checkHeader(type, flags, circuitId, body.byteLength, MAX_PAYLOAD)
  const buf = Buffer.allocUnsafe(HEADER_SIZE + body.byteLength)
  writeHeader(buf, type, flags, circuitId, body.byteLength)
  buf.set(body, HEADER_SIZE)
  return buf
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Decodes and validates the payload of a frame whose header has been checked. */
function decodeBody(type: number, flags: number, circuitId: number, payload: Buffer): Frame {
  switch (KIND[type]) {
    case Kind.Data:
    case Kind.HalfClose:
    case Kind.Ping:
      return { type, flags, circuitId, payload } as Frame
    case Kind.Window: {
      const credit = payload.readUInt32BE(0)
      if (credit === 0) {
        throw new ProtocolError('ERR_FRAME_PAYLOAD', 'WINDOW_UPDATE credit must be greater than 0', {
          type,
          circuitId,
        })
      }
      return { type: FrameType.WINDOW_UPDATE, flags, circuitId, payload: { credit } }
    }
    default: {
      const name = nameOf(type)
      let text: string
      try {
        text = utf8.decode(payload)
      } catch (err) {
        throw new ProtocolError(
          'ERR_FRAME_PAYLOAD',
          `${name} payload is not valid UTF-8`,
          { type },
          { cause: err },
        )
      }
      let value: unknown
      try {
        value = JSON.parse(text)
      } catch (err) {
        throw new ProtocolError(
          'ERR_FRAME_PAYLOAD',
          `${name} payload is not valid JSON`,
          { type },
          { cause: err },
        )
      }
      validateControlPayload(type, name, value)
      return { type, flags, circuitId, payload: value } as Frame
    }
  }
}

/**
 * Streaming, strict decoder. `push(chunk)` returns the complete frames it holds; a partial frame
 * waits for more bytes (bounded by HEADER_SIZE + maxPayload). A malformed frame throws a
 * ProtocolError (ERR_FRAME_*): the caller closes the connection. Never allocates by a length
 * the peer sent before checking it against the limit.
 *
 * Frames that arrive whole inside one chunk have their DATA/HALF_CLOSE/PING payloads returned as
 * subarrays of that chunk (no copy); a frame split across chunks is assembled with one copy.
 * After an error the decoder is unusable: every later push throws the same error.
 */
export class FrameDecoder {
  readonly maxPayload: number
  /** Chunks of the incomplete frame, in order; their total is `pendingBytes`. */
  private pending: Buffer[] = []
  private pendingBytes = 0
  /** Header of the incomplete frame once its 12 bytes are here (checked), else type = -1. */
  private hType = -1
  private hFlags = 0
  private hCircuit = 0
  private hLength = 0
  private failed: ProtocolError | null = null

  /** See the constructor's `reuseAssembly`. */
  readonly reuseAssembly: boolean
  private scratch: Buffer | null = null

  /**
   * `maxPayload`: largest payload accepted (default MAX_PAYLOAD, at most 16 MiB).
   * `reuseAssembly` (default false): a DATA frame assembled from several chunks gets its payload
   * in one scratch buffer the decoder reuses at the next assembly, instead of a fresh allocation.
   * Such a payload (`isTransient()` true) is valid only until the next `push()`/`decode()`: for
   * consumers that use DATA payloads synchronously (decrypt) and copy them otherwise.
   */
  constructor(opts: { maxPayload?: number; reuseAssembly?: boolean } = {}) {
    this.reuseAssembly = opts.reuseAssembly === true
    const max = opts.maxPayload ?? MAX_PAYLOAD
    if (!Number.isInteger(max) || max < 16 || max > MAX_DECODER_PAYLOAD_LIMIT) {
      throw new RangeError(
        `FrameDecoder maxPayload must be an integer from 16 to ${MAX_DECODER_PAYLOAD_LIMIT}, got ${max}`,
      )
    }
    this.maxPayload = max
  }

  /** True when `payload` is (a view of) the reused scratch buffer: copy it to keep it. */
  isTransient(payload: Uint8Array): boolean {
    return this.scratch !== null && payload.buffer === this.scratch.buffer
  }

  private scratchFor(n: number): Buffer {
    if (this.scratch === null || this.scratch.length < n) {
      // its own ArrayBuffer (larger than the pool's half), so isTransient() can tell it apart
      this.scratch = Buffer.allocUnsafeSlow(Math.max(n, 64 * 1024 + 64))
    }
    return this.scratch.subarray(0, n)
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.pendingBytes
  }

  push(chunk: Buffer): Frame[] {
    const out: Frame[] = []
    this.decode(chunk, out)
    return out
  }

  /**
   * Like `push()`, but appends the frames to `out`; when a malformed frame throws, the complete
   * frames before it are already in `out` (FrameConnection delivers them, then sends GOAWAY).
   */
  decode(chunk: Buffer, out: Frame[]): void {
    if (this.failed) throw this.failed
    try {
      this.pushInner(chunk, out)
    } catch (err) {
      const e =
        err instanceof ProtocolError
          ? err
          : new ProtocolError(
              'ERR_FRAME_MALFORMED',
              `frame decoding failed: ${(err as Error)?.message}`,
              {},
              { cause: err },
            )
      this.failed = e
      this.pending = []
      this.pendingBytes = 0
      throw e
    }
  }

  /** Reads and checks a header at `off` of `buf` (which holds at least HEADER_SIZE bytes there). */
  private readHeader(buf: Buffer, off: number): void {
    const version = buf[off]!
    if (version !== PROTOCOL_VERSION) {
      throw new ProtocolError(
        'ERR_FRAME_VERSION',
        `unsupported frame version ${version}, this peer speaks ${PROTOCOL_VERSION}`,
        {
          version,
        },
      )
    }
    const type = buf[off + 1]!
    const flags = buf.readUInt16BE(off + 2)
    const circuitId = buf.readUInt32BE(off + 4)
    const length = buf.readUInt32BE(off + 8)
    checkHeader(type, flags, circuitId, length, this.maxPayload)
    this.hType = type
    this.hFlags = flags
    this.hCircuit = circuitId
    this.hLength = length
  }

  private pushInner(chunk: Buffer, out: Frame[]): void {
    let off = 0
    const len = chunk.length
    if (this.pendingBytes > 0) {
      if (this.hType === -1) {
        // Complete the header first (at most 11 bytes held).
        const missing = HEADER_SIZE - this.pendingBytes
        if (len < missing) {
          this.pending.push(Buffer.from(chunk))
          this.pendingBytes += len
          return
        }
        const hdr = Buffer.allocUnsafe(HEADER_SIZE)
        let pos = 0
        for (const c of this.pending) {
          c.copy(hdr, pos)
          pos += c.length
        }
        chunk.copy(hdr, pos, 0, missing)
        this.readHeader(hdr, 0)
        // Keep only the header bytes' accounting: the payload starts after `missing` bytes of chunk.
        this.pending = [hdr]
        this.pendingBytes = HEADER_SIZE
        off = missing
      }
      const need = HEADER_SIZE + this.hLength
      const avail = this.pendingBytes + (len - off)
      if (avail < need) {
        if (off < len) {
          this.pending.push(off === 0 ? chunk : chunk.subarray(off))
          this.pendingBytes += len - off
        }
        return
      }
      // Assemble the payload: one allocation of a length already checked against the limit (or,
      // for DATA with `reuseAssembly`, the decoder's scratch buffer). DATA and HALF_CLOSE payloads
      // get their header in front, in the same memory (see frameBytesOf).
      const framed = this.hType === FrameType.DATA || this.hType === FrameType.HALF_CLOSE
      const lead = framed ? HEADER_SIZE : 0
      const whole =
        this.reuseAssembly && this.hType === FrameType.DATA
          ? this.scratchFor(lead + this.hLength)
          : Buffer.allocUnsafe(lead + this.hLength)
      if (framed) writeHeader(whole, this.hType, this.hFlags, this.hCircuit, this.hLength)
      const payload = framed ? whole.subarray(HEADER_SIZE) : whole
      let skip = HEADER_SIZE
      let pos = 0
      for (const c of this.pending) {
        if (skip >= c.length) {
          skip -= c.length
          continue
        }
        c.copy(payload, pos, skip)
        pos += c.length - skip
        skip = 0
      }
      const take = need - this.pendingBytes
      chunk.copy(payload, pos, off, off + take)
      off += take
      const type = this.hType
      this.pending = []
      this.pendingBytes = 0
      this.hType = -1
      out.push(decodeBody(type, this.hFlags, this.hCircuit, payload))
    }
    // Fast path: frames wholly inside this chunk are decoded in place.
    while (len - off >= HEADER_SIZE) {
      this.readHeader(chunk, off)
      const end = off + HEADER_SIZE + this.hLength
      if (end > len) break
      const type = this.hType
      this.hType = -1
      out.push(decodeBody(type, this.hFlags, this.hCircuit, chunk.subarray(off + HEADER_SIZE, end)))
      off = end
    }
    if (off < len) {
      // A partial frame: keep a copy when small (so a tiny tail does not pin a big chunk).
      const rest = len - off
      this.pending = [rest <= 4096 ? Buffer.from(chunk.subarray(off)) : chunk.subarray(off)]
      this.pendingBytes = rest
    } else {
      this.hType = -1
    }
  }
}

/**
 * The whole frame (header + payload) of a DATA or HALF_CLOSE payload that FrameDecoder produced,
 * as one view of the same memory, or null. FrameDecoder guarantees that such a payload is
 * preceded by its own 12-byte header (decoded in place from the received chunk, or assembled with
 * the header in front), so a router can rewrite the circuit id and flags in place and forward the
 * frame as one buffer: no copy, and one TLS write instead of a gathered one (which TLS copies).
 * The check (version, type, length) rejects payloads that did not come from a decoder.
 */
export function frameBytesOf(payload: Uint8Array, type: number): Buffer | null {
  const off = payload.byteOffset
  if (off < HEADER_SIZE || (type !== FrameType.DATA && type !== FrameType.HALF_CLOSE)) return null
  const raw = Buffer.from(payload.buffer, off - HEADER_SIZE, HEADER_SIZE + payload.byteLength)
  if (raw[0] !== PROTOCOL_VERSION || raw[1] !== type || raw.readUInt32BE(8) !== payload.byteLength)
    return null
  return raw
}

/**
 * Allocates circuit ids on one connection: the side that opened the TLS connection uses odd ids,
 * the side that accepted it even ids; 0 is the connection. `isLocal(id)` tells whether an id
 * belongs to this side (a peer frame that opens a circuit with one of our ids is a violation).
 */
export class CircuitIdAllocator {
  private nextId: number
  private readonly inUse: (id: number) => boolean
  readonly initiator: boolean

  /**
   * `initiator`: true on the TLS client side (odd ids). `inUse`: optional check so that ids are
   * skipped while still open after the counter wraps around.
   */
  constructor(initiator: boolean, inUse: (id: number) => boolean = () => false) {
    this.initiator = initiator
    this.nextId = initiator ? 1 : 2
    this.inUse = inUse
  }

  /** The next free id of this side. Throws ERR_FRAME_MALFORMED when all 2^31 ids are in use. */
  next(): number {
    for (let tries = 0; tries < 0x8000_0000; tries++) {
      const id = this.nextId
      this.nextId += 2
      if (this.nextId > MAX_CIRCUIT_ID) this.nextId = this.initiator ? 1 : 2
      if (!this.inUse(id)) return id
    }
    throw new ProtocolError('ERR_FRAME_MALFORMED', 'no free circuit id on this connection', {})
  }

  /** True if `id` is one this side allocates. */
  isLocal(id: number): boolean {
    return id !== 0 && (id % 2 === 1) === this.initiator
  }
}
