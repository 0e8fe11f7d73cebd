/**
 * Data plane (e): a router that tampers is caught by both ends. The router runs in this process
 * with `testHooks.onForward`: (1) flipping one byte of a DATA payload, (2) swapping the e2e
 * public key in DIAL, (3) swapping it in DIAL_SUCCESS. Each time both SDKs detect it
 * (ERR_E2E_...) and close the circuit.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { after, before, describe, it } from 'node:test'
import { type Frame, FrameFlag, FrameType } from '@nullport/protocol'
import { type Context, isSdkError, loadContext, type OverlayServer, type OverlaySocket } from '@nullport/sdk'
import { startNetwork, type TestNetwork } from '@nullport/testkit'

type Mode =
  | 'none'
  | 'flip-data'
  | 'swap-dial-key'
  | 'swap-success-key'
  | 'drop-dial'
  | 'strip-dial-e2e'
  | 'strip-success-e2e'

describe('dataplane: tampering routers are detected end to end', () => {
  let net: TestNetwork
  let host: Context
  let dialer: Context
  let server: OverlayServer
  let mode: Mode = 'none'
  let tampered = 0
  /** DATA frames the router saw without the E2E flag. */
  let plainData = 0
  const hostSockets: OverlaySocket[] = []
  const hostErrors: Error[] = []
  const clientErrors: Error[] = []

  const onForward = (frame: Frame): Frame | null => {
    if (frame.type === FrameType.DATA && frame.payload.byteLength > 0) {
      if ((frame.flags & FrameFlag.E2E) === 0) plainData++
    }
    if (mode === 'strip-dial-e2e' && frame.type === FrameType.DIAL && frame.payload.e2e) {
      tampered++
      mode = 'none'
      const { e2e: _drop, ...rest } = frame.payload
      return { ...frame, payload: rest }
    }
    if (mode === 'strip-success-e2e' && frame.type === FrameType.DIAL_SUCCESS && frame.payload.e2e) {
      tampered++
      mode = 'none'
      const { e2e: _drop, ...rest } = frame.payload
      return { ...frame, payload: rest }
    }
    if (mode === 'drop-dial' && frame.type === FrameType.DIAL) {
      tampered++
      return null
    }
    if (mode === 'flip-data' && frame.type === FrameType.DATA && frame.payload.byteLength > 20) {
      assert.equal(frame.flags & FrameFlag.E2E, FrameFlag.E2E, 'DATA is end-to-end encrypted')
      const p = Buffer.from(frame.payload)
      p[10]! ^= 0x01
      tampered++
      mode = 'none'
      return { ...frame, payload: p }
    }
    if (mode === 'swap-dial-key' && frame.type === FrameType.DIAL && frame.payload.e2e) {
      tampered++
      mode = 'none'
      return {
        ...frame,
        payload: {
          ...frame.payload,
          e2e: { ...frame.payload.e2e, publicKey: randomBytes(32).toString('base64') },
        },
      }
    }
    if (mode === 'swap-success-key' && frame.type === FrameType.DIAL_SUCCESS && frame.payload.e2e) {
      tampered++
      mode = 'none'
      return {
        ...frame,
        payload: {
          ...frame.payload,
          e2e: { ...frame.payload.e2e, publicKey: randomBytes(32).toString('base64') },
        },
      }
    }
    return frame
  }

  before(async () => {
    net = await startNetwork({ routers: [{ name: 'evil', inProcess: true, testHooks: { onForward } }] })
    const h = await net.identity('host-e')
    const d = await net.identity('dialer-e')
    await net.service('secret')
    await net.policy('Bind', ['@host-e'], ['@secret'])
    await net.policy('Dial', ['@dialer-e'], ['@secret'])
    host = await loadContext(h.path)
    dialer = await loadContext(d.path)
    server = host.listen('secret')
    server.on('connection', (s: OverlaySocket) => {
      hostSockets.push(s)
      s.on('error', (e) => hostErrors.push(e))
      s.on('data', (d: Buffer) => s.write(d))
    })
    server.on('clientError', (e: Error) => clientErrors.push(e))
    await once(server, 'listening')
  })

  after(async () => {
    await dialer?.close()
    await host?.close()
    await net?.close()
  })

  it('an untampered circuit works (control)', async () => {
    const s = await dialer.dial('secret')
    s.write('ping')
    const [d] = await once(s, 'data')
    assert.equal(String(d), 'ping')
    s.destroy()
  })

  it('a flipped byte in a DATA payload: both ends fail with ERR_E2E_DECRYPT_FAILED and close', async () => {
    const before = hostSockets.length
    const s = await dialer.dial('secret')
    s.write('hello')
    await once(s, 'data')
    const hs = hostSockets[before]!
    const hostClosed = new Promise((r) => hs.once('close', r))
    mode = 'flip-data'
    const n = tampered
    const dialerErr = once(s, 'error')
    s.write(randomBytes(1000))
    const [e] = await dialerErr
    await hostClosed
    assert.equal(tampered, n + 1)
    assert.ok(isSdkError(e), String(e))
    assert.match(e.code, /^ERR_E2E_/)
    const he = hostErrors.at(-1) as { code?: string }
    assert.equal(he?.code, 'ERR_E2E_DECRYPT_FAILED', 'the host (receiver) detected the altered record')
    assert.equal(e.code, 'ERR_E2E_DECRYPT_FAILED', 'the dialer learned it from the CLOSE code')
    assert.ok(s.destroyed && hs.destroyed)
  })

  it('a swapped e2e key in DIAL: the host refuses it, the dial fails with ERR_E2E_*', async () => {
    mode = 'swap-dial-key'
    const before = hostSockets.length
    const n = tampered
    await assert.rejects(dialer.dial('secret'), (err: unknown) => {
      assert.ok(isSdkError(err), String(err))
      assert.match(err.code, /^ERR_E2E_/)
      return true
    })
    assert.equal(tampered, n + 1)
    assert.equal(hostSockets.length, before, 'the host accepted no connection')
    assert.match(String((clientErrors.at(-1) as { code?: string } | undefined)?.code), /^ERR_E2E_/)
  })

  it('a swapped e2e key in DIAL_SUCCESS: the dialer refuses it and the host circuit is closed with ERR_E2E_*', async () => {
    mode = 'swap-success-key'
    const before = hostSockets.length
    const n = tampered
    await assert.rejects(dialer.dial('secret'), (err: unknown) => {
      assert.ok(isSdkError(err), String(err))
      assert.match(err.code, /^ERR_E2E_/)
      return true
    })
    assert.equal(tampered, n + 1)
    // the host had accepted: its socket is closed with the dialer's code
    assert.equal(hostSockets.length, before + 1)
    const hs = hostSockets[before]!
    if (!hs.destroyed) await new Promise((r) => hs.once('close', r))
    assert.match(String((hs.errored as { code?: string } | null)?.code), /^ERR_E2E_/)
  })

  it('a router that swallows the DIAL: ERR_DIAL_TIMEOUT (or ERR_DIAL_ABORTED), never a connection', async () => {
    mode = 'drop-dial'
    const before = hostSockets.length
    try {
      await assert.rejects(dialer.dial('secret', { timeoutMs: 300 }), (err: unknown) => {
        assert.ok(isSdkError(err, 'ERR_DIAL_TIMEOUT'), String(err))
        assert.match(err.message, /no answer within 300 ms/)
        return true
      })
      const ac = new AbortController()
      const p = dialer.dial('secret', { signal: ac.signal })
      ac.abort()
      await assert.rejects(p, (err: unknown) => isSdkError(err, 'ERR_DIAL_ABORTED'))
    } finally {
      mode = 'none'
    }
    assert.equal(hostSockets.length, before)
    // and the next dial works
    const s = await dialer.dial('secret')
    s.write('again')
    assert.equal(String((await once(s, 'data'))[0]), 'again')
    s.destroy()
  })

  it('a router that strips the e2e hello from DIAL: the host refuses (ERR_E2E_REQUIRED), fail closed', async () => {
    mode = 'strip-dial-e2e'
    const before = hostSockets.length
    await assert.rejects(dialer.dial('secret'), (err: unknown) => isSdkError(err, 'ERR_E2E_REQUIRED'))
    assert.equal(hostSockets.length, before)
    assert.equal((clientErrors.at(-1) as { code?: string } | undefined)?.code, 'ERR_E2E_REQUIRED')
  })

  it('a router that strips the e2e hello from DIAL_SUCCESS: the dialer refuses the plaintext circuit', async () => {
    mode = 'strip-success-e2e'
    const before = hostSockets.length
    await assert.rejects(dialer.dial('secret'), (err: unknown) => {
      assert.ok(isSdkError(err, 'ERR_E2E_VERIFY_FAILED'), String(err))
      assert.match(err.message, /fail closed/)
      return true
    })
    const hs = hostSockets[before]!
    if (!hs.destroyed) await new Promise((r) => hs.once('close', r))
    assert.equal((hs.errored as { code?: string } | null)?.code, 'ERR_E2E_VERIFY_FAILED')
  })

  it('without encryptionRequired the circuit is plaintext (DATA without the E2E flag); with it, never', async () => {
    assert.equal(plainData, 0, 'no plaintext DATA crossed the router so far')
    await net.service('open', { encryptionRequired: false })
    await net.policy('Bind', ['@host-e'], ['@open'])
    await net.policy('Dial', ['@dialer-e'], ['@open'])
    for (const c of [host, dialer]) {
      while (!c.services().some((s) => s.name === 'open')) await once(c, 'services')
    }
    const srv = host.listen('open')
    srv.on('connection', (s: OverlaySocket) => s.pipe(s))
    await once(srv, 'listening')
    const s = await dialer.dial('open')
    assert.equal(s.encrypted, false)
    s.write('in the clear')
    assert.equal(String((await once(s, 'data'))[0]), 'in the clear')
    assert.ok(plainData >= 2, 'the router saw plaintext DATA both ways')
    s.destroy()
    await srv.close()
  })
})
