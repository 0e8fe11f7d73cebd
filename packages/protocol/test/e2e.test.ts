import assert from 'node:assert/strict'
import { generateKeyPairSync, hkdfSync, randomBytes, sign } from 'node:crypto'
import { before, test } from 'node:test'
import {
  dialerFinish,
  dialerHello,
  E2E_MAX_PLAINTEXT,
  E2E_OVERHEAD,
  type E2EOwnIdentity,
  type E2ESession,
  e2eHandshakeStats,
  hkdfSha256x32,
  hostAccept,
} from '../src/e2e/index.js'
import { isProtocolError, type ProtocolErrorCode } from '../src/errors.js'
import { type E2EHello, encodeFrame, FrameDecoder, FrameType } from '../src/frames/index.js'
import { createIntermediateCa, createLeaf, createRootCa, makeSpiffeId } from '../src/pki/index.js'

interface Net {
  caPem: string
  dialer: E2EOwnIdentity
  host: E2EOwnIdentity
  other: E2EOwnIdentity
  router: E2EOwnIdentity
  /** Same SPIFFE id as `host`, but under a foreign root CA. */
  foreignHost: E2EOwnIdentity
  foreignCaPem: string
}
let net: Net

async function makeCa(
  name: string,
): Promise<{ rootPem: string; inter: { certPem: string; keyPem: string } }> {
  const root = await createRootCa({ commonName: `${name} root` })
  const inter = await createIntermediateCa({
    issuerCertPem: root.certPem,
    issuerKeyPem: root.keyPem,
    commonName: `${name} intermediate`,
  })
  return { rootPem: root.certPem, inter }
}

async function leaf(
  ca: { inter: { certPem: string; keyPem: string } },
  name: string,
  kind: 'identity' | 'router',
  id: string,
): Promise<E2EOwnIdentity> {
  const l = await createLeaf({
    issuerCertPem: ca.inter.certPem,
    issuerKeyPem: ca.inter.keyPem,
    commonName: name,
    usage: 'client',
    uris: [makeSpiffeId('nullport', kind, id)],
    lifetimeSeconds: 3600,
  })
  return { certChainPem: l.certPem + ca.inter.certPem, keyPem: l.keyPem }
}

before(async () => {
  const ca = await makeCa('nullport')
  const foreign = await makeCa('evil')
  net = {
    caPem: ca.rootPem,
    dialer: await leaf(ca, 'laptop', 'identity', 'id_dialer'),
    host: await leaf(ca, 'web-server', 'identity', 'id_host'),
    other: await leaf(ca, 'mallory', 'identity', 'id_other'),
    router: await leaf(ca, 'router-1', 'router', 'id_host'),
    foreignHost: await leaf(foreign, 'web-server', 'identity', 'id_host'),
    foreignCaPem: foreign.rootPem,
  }
})

function handshake(service = 'web'): { d: E2ESession; h: E2ESession; dh: E2EHello; hh: E2EHello } {
  const { hello: dh, state } = dialerHello({ service, own: net.dialer })
  const { hello: hh, session: h } = hostAccept({
    service,
    own: net.host,
    caPem: net.caPem,
    dialerHello: dh,
    expectedDialerId: 'id_dialer',
  })
  const d = dialerFinish({ state, caPem: net.caPem, hostHello: hh, expectedHostId: 'id_host' })
  return { d, h, dh, hh }
}

function throwsCode(fn: () => unknown, code: ProtocolErrorCode, re?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isProtocolError(e), `expected ProtocolError ${code}, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    if (re) assert.match(e.message, re)
    return true
  })
}

test('handshake with real certificates; data flows both ways; end records verify', () => {
  const { d, h, dh, hh } = handshake()
  assert.deepEqual(d.peer, {
    spiffeId: 'spiffe://nullport/identity/id_host',
    identityId: 'id_host',
    commonName: 'web-server',
  })
  assert.deepEqual(h.peer, {
    spiffeId: 'spiffe://nullport/identity/id_dialer',
    identityId: 'id_dialer',
    commonName: 'laptop',
  })
  // The hellos fit the DIAL / DIAL_SUCCESS frames (the frame validator accepts them).
  const frames = new FrameDecoder().push(
    Buffer.concat([
      encodeFrame({ type: FrameType.DIAL, circuitId: 1, flags: 0, payload: { service: 'web', e2e: dh } }),
      encodeFrame({
        type: FrameType.DIAL_SUCCESS,
        circuitId: 1,
        flags: 0,
        payload: {
          hostIdentity: { id: 'id_host', name: 'web-server' },
          e2e: hh,
          circuitTag: 'ab'.repeat(16),
        },
      }),
    ]),
  )
  assert.equal(frames.length, 2)

  const msgs = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(E2E_MAX_PLAINTEXT, 7), Buffer.from('bye')]
  for (const m of msgs) {
    const r = d.sealer.seal(m)
    assert.equal(r.length, m.length + E2E_OVERHEAD)
    assert.ok(m.length < 16 || !r.includes(m.subarray(0, 16)), 'ciphertext does not contain the plaintext')
    assert.deepEqual(h.opener.open(r), m)
    assert.deepEqual(d.opener.open(h.sealer.seal(m)), m)
  }
  // sealParts: the same record in two pieces (ciphertext, tag).
  const parts = d.sealer.sealParts!(Buffer.from('in parts'))
  assert.equal(parts[1].length, E2E_OVERHEAD)
  assert.equal(h.opener.open(Buffer.concat(parts)).toString(), 'in parts')
  h.opener.openEnd(d.sealer.sealEnd())
  d.opener.openEnd(h.sealer.sealEnd())
  throwsCode(() => d.sealer.seal(Buffer.from('late')), 'ERR_E2E_HANDSHAKE', /after the end-of-stream/)
  throwsCode(() => d.sealer.seal(Buffer.alloc(E2E_MAX_PLAINTEXT + 1)), 'ERR_E2E_HANDSHAKE')
  // The two directions use different keys: a record cannot be reflected back to its sender.
  const s = handshake()
  throwsCode(() => s.d.opener.open(s.d.sealer.seal(Buffer.from('x'))), 'ERR_E2E_DECRYPT_FAILED')
})

test('a router flipping a byte in a record is detected (and the opener stays failed)', () => {
  const { d, h } = handshake()
  const r = d.sealer.seal(Buffer.from('transfer 100 to alice'))
  for (const at of [0, 5, r.length - 1]) {
    const { d: d2, h: h2 } = handshake()
    const rec = d2.sealer.seal(Buffer.from('transfer 100 to alice'))
    rec[at] = rec[at]! ^ 0x01
    throwsCode(() => h2.opener.open(rec), 'ERR_E2E_DECRYPT_FAILED', /failed authentication/)
  }
  const bad = Buffer.from(r)
  bad[3] = bad[3]! ^ 0x80
  throwsCode(() => h.opener.open(bad), 'ERR_E2E_DECRYPT_FAILED')
  // Even the genuine record no longer opens: the stream is dead.
  throwsCode(() => h.opener.open(r), 'ERR_E2E_DECRYPT_FAILED')
  throwsCode(() => h.opener.open(Buffer.alloc(E2E_OVERHEAD - 1)), 'ERR_E2E_DECRYPT_FAILED')
})

test('dropped, reordered and replayed records are detected', () => {
  {
    const { d, h } = handshake()
    const [a, b, c] = ['a', 'b', 'c'].map((x) => d.sealer.seal(Buffer.from(x)))
    h.opener.open(a!)
    void b // dropped
    throwsCode(() => h.opener.open(c!), 'ERR_E2E_DECRYPT_FAILED')
  }
  {
    const { d, h } = handshake()
    const [a, b] = ['a', 'b'].map((x) => d.sealer.seal(Buffer.from(x)))
    throwsCode(() => h.opener.open(b!), 'ERR_E2E_DECRYPT_FAILED')
    void a
  }
  {
    const { d, h } = handshake()
    const a = d.sealer.seal(Buffer.from('pay 5'))
    assert.equal(h.opener.open(a).toString(), 'pay 5')
    throwsCode(() => h.opener.open(a), 'ERR_E2E_DECRYPT_FAILED')
  }
  {
    // A record from another circuit (other session keys) does not open either.
    const one = handshake()
    const two = handshake()
    throwsCode(() => two.h.opener.open(one.d.sealer.seal(Buffer.from('x'))), 'ERR_E2E_DECRYPT_FAILED')
  }
})

test('truncation: a missing, altered or misplaced end record is detected', () => {
  {
    const { d, h } = handshake()
    h.opener.open(d.sealer.seal(Buffer.from('part 1')))
    // Router drops the rest and signals end of stream without the end record.
    throwsCode(() => h.opener.openEnd(Buffer.alloc(0)), 'ERR_E2E_TRUNCATED', /truncated/)
  }
  {
    const { d, h } = handshake()
    const a = d.sealer.seal(Buffer.from('part 1'))
    void d.sealer.seal(Buffer.from('part 2')) // dropped by the router
    const end = d.sealer.sealEnd()
    h.opener.open(a)
    throwsCode(() => h.opener.openEnd(end), 'ERR_E2E_DECRYPT_FAILED')
  }
  {
    const { d, h } = handshake()
    const end = d.sealer.sealEnd()
    end[0] = end[0]! ^ 1
    throwsCode(() => h.opener.openEnd(end), 'ERR_E2E_DECRYPT_FAILED')
  }
  {
    // A data record presented as the end record, and the end record as data, both fail.
    const { d, h } = handshake()
    const empty = d.sealer.seal(Buffer.alloc(0))
    throwsCode(() => h.opener.openEnd(empty), 'ERR_E2E_DECRYPT_FAILED')
    const s = handshake()
    throwsCode(() => s.h.opener.open(s.d.sealer.sealEnd()), 'ERR_E2E_DECRYPT_FAILED')
  }
  {
    // Nothing opens after the end record.
    const { d, h } = handshake()
    h.opener.openEnd(d.sealer.sealEnd())
    throwsCode(() => h.opener.open(Buffer.alloc(E2E_OVERHEAD)), 'ERR_E2E_DECRYPT_FAILED')
  }
})

test('a substituted ephemeral key is detected by both sides', () => {
  const mallory = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x as string
  const routerKey = Buffer.from(mallory, 'base64url').toString('base64')
  {
    const { hello } = dialerHello({ service: 'web', own: net.dialer })
    throwsCode(
      () =>
        hostAccept({
          service: 'web',
          own: net.host,
          caPem: net.caPem,
          dialerHello: { ...hello, publicKey: routerKey },
        }),
      'ERR_E2E_VERIFY_FAILED',
      /signature/,
    )
  }
  {
    const { hello, state } = dialerHello({ service: 'web', own: net.dialer })
    const { hello: hh } = hostAccept({ service: 'web', own: net.host, caPem: net.caPem, dialerHello: hello })
    throwsCode(
      () =>
        dialerFinish({
          state,
          caPem: net.caPem,
          hostHello: { ...hh, publicKey: routerKey },
          expectedHostId: 'id_host',
        }),
      'ERR_E2E_VERIFY_FAILED',
      /signature/,
    )
  }
  {
    // Altered nonce, and a host hello replayed from an earlier handshake.
    const { hello, state } = dialerHello({ service: 'web', own: net.dialer })
    const earlier = handshake().hh
    throwsCode(
      () => dialerFinish({ state, caPem: net.caPem, hostHello: earlier, expectedHostId: 'id_host' }),
      'ERR_E2E_VERIFY_FAILED',
    )
    const bad = { ...hello, nonce: Buffer.alloc(16, 9).toString('base64') }
    throwsCode(
      () => hostAccept({ service: 'web', own: net.host, caPem: net.caPem, dialerHello: bad }),
      'ERR_E2E_VERIFY_FAILED',
    )
  }
  {
    // A dial for one service cannot be answered as another (the host signs and checks its own service).
    const { hello } = dialerHello({ service: 'web', own: net.dialer })
    throwsCode(
      () => hostAccept({ service: 'db', own: net.host, caPem: net.caPem, dialerHello: hello }),
      'ERR_E2E_VERIFY_FAILED',
    )
  }
})

test('hellos signed by another identity, a router, or under a foreign CA are refused', () => {
  // The router answers with a hello made by another (valid) identity of the network.
  {
    const { hello, state } = dialerHello({ service: 'web', own: net.dialer })
    const { hello: hh } = hostAccept({ service: 'web', own: net.other, caPem: net.caPem, dialerHello: hello })
    throwsCode(
      () => dialerFinish({ state, caPem: net.caPem, hostHello: hh, expectedHostId: 'id_host' }),
      'ERR_E2E_IDENTITY_MISMATCH',
      /id_host/,
    )
  }
  // The host's certificate with a signature made by another key.
  {
    const { hello, state } = dialerHello({ service: 'web', own: net.dialer })
    const { hello: hh } = hostAccept({ service: 'web', own: net.other, caPem: net.caPem, dialerHello: hello })
    throwsCode(
      () =>
        dialerFinish({
          state,
          caPem: net.caPem,
          hostHello: { ...hh, certChain: net.host.certChainPem },
          expectedHostId: 'id_host',
        }),
      'ERR_E2E_VERIFY_FAILED',
      /signature/,
    )
  }
  // A router certificate (same CA, same id string) is not an identity.
  {
    const { hello, state } = dialerHello({ service: 'web', own: net.dialer })
    const { hello: hh } = hostAccept({ service: 'web', own: net.host, caPem: net.caPem, dialerHello: hello })
    throwsCode(
      () =>
        dialerFinish({
          state,
          caPem: net.caPem,
          hostHello: { ...hh, certChain: net.router.certChainPem },
          expectedHostId: 'id_host',
        }),
      'ERR_E2E_VERIFY_FAILED',
      /expected spiffe:\/\/nullport\/identity/,
    )
  }
  // Same SPIFFE id, but issued by a foreign CA: chain verification fails on both sides.
  {
    const { hello, state } = dialerHello({ service: 'web', own: net.dialer })
    const { hello: hh } = hostAccept({
      service: 'web',
      own: net.foreignHost,
      caPem: net.caPem,
      dialerHello: hello,
    })
    throwsCode(
      () => dialerFinish({ state, caPem: net.caPem, hostHello: hh, expectedHostId: 'id_host' }),
      'ERR_E2E_VERIFY_FAILED',
      /network CA/,
    )
    const { hello: fromForeign } = dialerHello({ service: 'web', own: net.foreignHost })
    throwsCode(
      () => hostAccept({ service: 'web', own: net.host, caPem: net.caPem, dialerHello: fromForeign }),
      'ERR_E2E_VERIFY_FAILED',
      /network CA/,
    )
  }
  // The host checks the dialer the router named.
  {
    const { hello } = dialerHello({ service: 'web', own: net.other })
    throwsCode(
      () =>
        hostAccept({
          service: 'web',
          own: net.host,
          caPem: net.caPem,
          dialerHello: hello,
          expectedDialerId: 'id_dialer',
        }),
      'ERR_E2E_IDENTITY_MISMATCH',
    )
  }
  // A dialer hello whose signature was made with a key other than its certificate's.
  {
    const { hello } = dialerHello({ service: 'web', own: net.dialer })
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    const forged = sign('sha256', Buffer.from('anything'), { key: stranger, dsaEncoding: 'der' }).toString(
      'base64',
    )
    throwsCode(
      () =>
        hostAccept({
          service: 'web',
          own: net.host,
          caPem: net.caPem,
          dialerHello: { ...hello, signature: forged },
        }),
      'ERR_E2E_VERIFY_FAILED',
    )
  }
})

test('wrong host identity, malformed hellos and misuse fail with clear codes', () => {
  const { hello, state } = dialerHello({ service: 'web', own: net.dialer })
  const { hello: hh } = hostAccept({ service: 'web', own: net.host, caPem: net.caPem, dialerHello: hello })
  throwsCode(
    () => dialerFinish({ state, caPem: net.caPem, hostHello: hh, expectedHostId: 'id_someone_else' }),
    'ERR_E2E_IDENTITY_MISMATCH',
    /id_someone_else/,
  )
  throwsCode(
    () => dialerFinish({ state, caPem: net.caPem, hostHello: hh, expectedHostId: 'id_host' }),
    'ERR_E2E_HANDSHAKE',
    /already used/,
  )
  throwsCode(
    () => dialerFinish({ state: {}, caPem: net.caPem, hostHello: hh, expectedHostId: 'id_host' }),
    'ERR_E2E_HANDSHAKE',
  )
  for (const bad of [
    { ...hello, publicKey: Buffer.alloc(31).toString('base64') },
    { ...hello, publicKey: 'not base64!' },
    { ...hello, nonce: Buffer.alloc(8).toString('base64') },
    { ...hello, signature: Buffer.alloc(200).toString('base64') },
  ]) {
    throwsCode(
      () => hostAccept({ service: 'web', own: net.host, caPem: net.caPem, dialerHello: bad }),
      'ERR_E2E_HANDSHAKE',
    )
  }
  throwsCode(
    () =>
      hostAccept({
        service: 'web',
        own: net.host,
        caPem: net.caPem,
        dialerHello: { ...hello, certChain: 'garbage' },
      }),
    'ERR_E2E_VERIFY_FAILED',
  )
  throwsCode(
    () =>
      dialerHello({
        service: 'web',
        own: { certChainPem: net.dialer.certChainPem, keyPem: net.host.keyPem },
      }),
    'ERR_E2E_HANDSHAKE',
    /not the key/,
  )
})

test('pre-signed dialer hellos (made after a first dial) are fresh, used once, and complete handshakes', async () => {
  const before = e2eHandshakeStats()
  const seenNonces = new Set<string>()
  const seenKeys = new Set<string>()
  for (let i = 0; i < 12; i++) {
    // the first hello for a service is signed in line; the ones after it were made ahead of time
    // on the thread pool while we waited here
    const { d, h, dh } = handshake('presigned-svc')
    assert.ok(!seenNonces.has(dh.nonce), `hello ${i}: a nonce was reused`)
    assert.ok(!seenKeys.has(dh.publicKey), `hello ${i}: an ephemeral key was reused`)
    seenNonces.add(dh.nonce)
    seenKeys.add(dh.publicKey)
    const msg = Buffer.from(`record ${i}`)
    assert.deepEqual(h.opener.open(d.sealer.seal(msg)), msg)
    assert.deepEqual(d.opener.open(h.sealer.seal(msg)), msg)
    await new Promise((r) => setTimeout(r, 20))
  }
  const after = e2eHandshakeStats()
  assert.ok(after.presignedHits - before.presignedHits >= 10, JSON.stringify({ before, after }))
  assert.ok(after.ephemeralHits - before.ephemeralHits >= 10, JSON.stringify({ before, after }))
  // A pre-signed hello is bound to its service: the host of another service refuses it.
  await new Promise((r) => setTimeout(r, 20))
  const { hello } = dialerHello({ service: 'presigned-svc', own: net.dialer })
  throwsCode(
    () => hostAccept({ service: 'other-svc', own: net.host, caPem: net.caPem, dialerHello: hello }),
    'ERR_E2E_VERIFY_FAILED',
  )
  // ...and to its identity: a hello of one identity never comes out of another's pool.
  const { hello: other } = dialerHello({ service: 'presigned-svc', own: net.other })
  assert.match(other.certChain, /BEGIN CERTIFICATE/)
  assert.equal(other.certChain, net.other.certChainPem)
  const r = hostAccept({ service: 'presigned-svc', own: net.host, caPem: net.caPem, dialerHello: other })
  assert.equal(r.session.peer.identityId, 'id_other')
})

test('the key derivation is HKDF-SHA256 (RFC 5869): equal to hkdfSync for each direction', () => {
  for (let i = 0; i < 20; i++) {
    const ikm = randomBytes(32)
    const salt = randomBytes(32)
    const infos = ['nullport-e2e-v1 d2h', 'nullport-e2e-v1 h2d', `info ${i} ü`]
    const got = hkdfSha256x32(ikm, salt, infos)
    infos.forEach((info, j) => {
      assert.deepEqual(got[j], Buffer.from(hkdfSync('sha256', ikm, salt, info, 32)), info)
    })
  }
})
