/**
 * enroll() against a small real HTTPS server that plays the controller's enrollment endpoints
 * (real TLS, real certificates from @nullport/protocol's PKI, real ES256 tokens). The end-to-end
 * test against the real controller is packages/cli/test/edge-enroll.test.ts.
 */
import assert from 'node:assert/strict'
import {
  createHash,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
  X509Certificate,
} from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  createIntermediateCa,
  createLeaf,
  createRootCa,
  type IssuedPem,
  issueCertificate,
  loadIdentityFile,
  makeSpiffeId,
  verifyChain,
} from '@nullport/protocol'
import { decodeEnrollmentToken, enroll, SdkError } from '../src/index.js'

interface Network {
  root: IssuedPem
  inter: IssuedPem
  bundle: string
  caFp: string
}

async function makeNetwork(name: string): Promise<Network> {
  const root = await createRootCa({ commonName: `${name} root` })
  const inter = await createIntermediateCa({
    issuerCertPem: root.certPem,
    issuerKeyPem: root.keyPem,
    commonName: `${name} intermediate`,
  })
  const caFp = createHash('sha256').update(new X509Certificate(root.certPem).raw).digest('hex')
  return { root, inter, bundle: `${root.certPem.trim()}\n${inter.certPem.trim()}\n`, caFp }
}

interface FakeController {
  url: string
  requests: string[]
  /** jti -> consumed */
  used: Set<string>
  close(): Promise<void>
  token(claims?: Partial<Record<string, unknown>>, opts?: { key?: KeyObject; kid?: string }): string
}

/** A controller stand-in: serves `bundleNet`'s CA bundle, TLS with a cert from `tlsNet`, issues from `net`. */
async function startFake(
  net: Network,
  opts: { tlsNet?: Network; hugeCacerts?: boolean } = {},
): Promise<FakeController> {
  const tlsNet = opts.tlsNet ?? net
  const server = await createLeaf({
    issuerCertPem: tlsNet.inter.certPem,
    issuerKeyPem: tlsNet.inter.keyPem,
    commonName: 'controller',
    usage: 'server',
    ip: ['127.0.0.1'],
    lifetimeSeconds: 3600,
  })
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const kid = 'k1'
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }
  const requests: string[] = []
  const used = new Set<string>()
  const td = 'nullport'
  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    })
  const json = (res: ServerResponse, status: number, v: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(v))
  }
  const srv = createServer(
    { cert: `${server.certPem}${tlsNet.inter.certPem}`, key: server.keyPem },
    async (req, res) => {
      requests.push(`${req.method} ${req.url}`)
      if (req.url === '/.well-known/est/cacerts') {
        res.writeHead(200, { 'content-type': 'application/pem-certificate-chain' })
        res.end(opts.hugeCacerts ? 'x'.repeat(1024 * 1024) : net.bundle)
        return
      }
      if (req.url === '/.well-known/jwks.json') return json(res, 200, { keys: [jwk] })
      if (
        req.method === 'POST' &&
        (req.url === '/edge/client/v1/enroll' || req.url === '/fabric/v1/enroll')
      ) {
        const body = JSON.parse(await readBody(req)) as { token: string; csr: string; advertise?: string }
        const t = decodeEnrollmentToken(body.token)
        if (used.has(t.claims.jti))
          return json(res, 401, {
            error: { code: 'ERR_ENROLLMENT_USED', message: 'the enrollment token was already used' },
          })
        if (t.claims.exp * 1000 < Date.now())
          return json(res, 401, { error: { code: 'ERR_ENROLLMENT_EXPIRED', message: 'expired' } })
        const router = req.url === '/fabric/v1/enroll'
        if (router && !body.advertise)
          return json(res, 400, { error: { code: 'ERR_VALIDATION', message: 'advertise missing' } })
        used.add(t.claims.jti)
        const cert = await issueCertificate({
          issuerCertPem: net.inter.certPem,
          issuerKeyPem: net.inter.keyPem,
          csrPem: body.csr,
          commonName: t.claims.name,
          usage: router ? 'both' : 'client',
          uris: [makeSpiffeId(td, router ? 'router' : 'identity', t.claims.sub)],
          lifetimeSeconds: 3600,
        })
        return json(res, 200, {
          data: {
            cert,
            ca: net.bundle,
            id: t.claims.sub,
            name: t.claims.name,
            controller: url,
            trustDomain: td,
          },
        })
      }
      json(res, 404, { error: { code: 'ERR_NOT_FOUND', message: 'no such route' } })
    },
  )
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`
  const token = (
    claims: Partial<Record<string, unknown>> = {},
    o: { key?: KeyObject; kid?: string } = {},
  ) => {
    const now = Math.floor(Date.now() / 1000)
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: o.kid ?? kid })).toString(
      'base64url',
    )
    const payload = Buffer.from(
      JSON.stringify({
        iss: url,
        sub: `id_${randomUUID().slice(0, 8)}`,
        jti: randomUUID(),
        iat: now,
        exp: now + 600,
        em: 'ott',
        name: 'laptop',
        td,
        caFp: net.caFp,
        ...claims,
      }),
    ).toString('base64url')
    const sig = sign('sha256', Buffer.from(`${header}.${payload}`), {
      key: o.key ?? privateKey,
      dsaEncoding: 'ieee-p1363',
    }).toString('base64url')
    return `${header}.${payload}.${sig}`
  }
  return {
    url,
    requests,
    used,
    token,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections()
        srv.close(() => r())
      }),
  }
}

async function rejectsWith(p: Promise<unknown>, code: string, re?: RegExp): Promise<SdkError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof SdkError, `expected SdkError, got ${(err as Error).stack}`)
    assert.equal(err.code, code, err.message)
    if (re) assert.match(err.message, re)
    return err
  }
  assert.fail(`expected ${code}`)
}

describe('enroll()', () => {
  let net: Network
  let other: Network
  let fake: FakeController
  let dir: string
  before(async () => {
    net = await makeNetwork('net')
    other = await makeNetwork('other')
    fake = await startFake(net)
    dir = await mkdtemp(join(tmpdir(), 'np-enroll-'))
  })
  after(async () => {
    await fake.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('writes a 0600 identity file whose certificate chains to the pinned root and carries the SPIFFE id', async () => {
    const jwt = fake.token({ sub: 'id_laptop1', name: 'laptop' })
    const out = join(dir, 'laptop.json')
    const r = await enroll({ jwt: `${jwt}\n`, output: out })
    assert.equal(r.path, out)
    assert.equal((await stat(out)).mode & 0o777, 0o600)
    const f = await loadIdentityFile(out)
    assert.deepEqual(f, r.file)
    assert.equal(f.kind, 'identity')
    assert.equal(f.id, 'id_laptop1')
    assert.equal(f.controller, fake.url)
    const v = verifyChain({ chainPem: f.cert, rootsPem: net.root.certPem, usage: 'client' })
    assert.equal(v.spiffeId, 'spiffe://nullport/identity/id_laptop1')
    assert.ok(f.ca.includes(net.root.certPem.trim().split('\n')[1]!))
    // the key in the file is the key of the certificate
    const { createPublicKey } = await import('node:crypto')
    assert.ok(
      v.leaf.publicKey
        .export({ type: 'spki', format: 'der' })
        .equals(createPublicKey(f.key).export({ type: 'spki', format: 'der' })),
    )

    // a second use of the same token is refused by the controller, with the re-enroll hint
    const e = await rejectsWith(
      enroll({ jwt, output: join(dir, 'laptop2.json') }),
      'ERR_ENROLL_TOKEN_USED',
      /nullport edge re-enroll identity laptop -o laptop\.jwt/,
    )
    assert.equal(e.details.serverCode, 'ERR_ENROLLMENT_USED')
    await assert.rejects(stat(join(dir, 'laptop2.json')), { code: 'ENOENT' })
  })

  it('refuses a token whose caFp is not the root the controller serves, before trusting anything else', async () => {
    const before = fake.requests.length
    const jwt = fake.token({ caFp: other.caFp })
    await rejectsWith(enroll({ jwt }), 'ERR_ENROLL_CA_MISMATCH', new RegExp(other.caFp))
    assert.deepEqual(fake.requests.slice(before), ['GET /.well-known/est/cacerts'])
  })

  it('refuses a token whose signature does not verify (altered claims, wrong key, alg none)', async () => {
    const jwt = fake.token({ name: 'laptop' })
    const [h, p, s] = jwt.split('.')
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString())
    claims.sub = 'id_someone_else'
    const altered = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`
    await rejectsWith(enroll({ jwt: altered }), 'ERR_ENROLL_TOKEN_INVALID', /altered/)
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    await rejectsWith(enroll({ jwt: fake.token({}, { key: privateKey }) }), 'ERR_ENROLL_TOKEN_INVALID')
    await rejectsWith(enroll({ jwt: fake.token({}, { kid: 'nope' }) }), 'ERR_ENROLL_TOKEN_INVALID', /"nope"/)
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${p}.`
    await rejectsWith(enroll({ jwt: none }), 'ERR_ENROLL_TOKEN_INVALID', /ES256/)
    assert.equal(fake.used.size, 1, 'no refused token reached the enroll endpoint')
  })

  it('reports an expired token locally with the time and the re-enroll command', async () => {
    const exp = Math.floor(Date.now() / 1000) - 120
    const jwt = fake.token({ exp, name: 'web01' })
    const d = new Date(exp * 1000)
    const hhmm = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
    const e = await rejectsWith(enroll({ jwt }), 'ERR_ENROLL_TOKEN_EXPIRED')
    assert.equal(
      e.message,
      `enrollment token for web01 expired at ${hhmm}: issue a new one with \`nullport edge re-enroll identity web01 -o web01.jwt\``,
    )
    const r = await rejectsWith(
      enroll({ jwt: fake.token({ exp, em: 'erott', name: 'r1' }), advertise: 'r1:3022' }),
      'ERR_ENROLL_TOKEN_EXPIRED',
    )
    assert.match(r.message, /nullport edge re-enroll edge-router r1 -o r1\.jwt/)
  })

  it('refuses to overwrite an existing file before using the token, and overwrites when asked', async () => {
    const out = join(dir, 'exists.json')
    await writeFile(out, 'keep me')
    const jwt = fake.token({ name: 'exists' })
    await rejectsWith(enroll({ jwt, output: out }), 'ERR_ENROLL_OUTPUT_EXISTS')
    assert.equal(await readFile(out, 'utf8'), 'keep me')
    const r = await enroll({ jwt, output: out, overwrite: true })
    assert.equal((await loadIdentityFile(out)).id, r.file.id)
    assert.equal((await stat(out)).mode & 0o777, 0o600)
  })

  it('enrolls an edge router at the fabric endpoint with its advertise address', async () => {
    await rejectsWith(
      enroll({ jwt: fake.token({ em: 'erott', name: 'r1' }) }),
      'ERR_ENROLL_INVALID_OPTIONS',
      /advertise/,
    )
    const r = await enroll({
      jwt: fake.token({ em: 'erott', name: 'r1', sub: 'er_1' }),
      advertise: '127.0.0.1:3022',
    })
    assert.equal(r.file.kind, 'router')
    assert.equal(
      verifyChain({ chainPem: r.file.cert, rootsPem: net.root.certPem }).spiffeId,
      'spiffe://nullport/router/er_1',
    )
    assert.ok(fake.requests.includes('POST /fabric/v1/enroll'))
  })

  it('rejects malformed tokens with the field named', async () => {
    await rejectsWith(enroll({ jwt: '' }), 'ERR_ENROLL_TOKEN_MALFORMED', /empty/)
    await rejectsWith(enroll({ jwt: 'a.b' }), 'ERR_ENROLL_TOKEN_MALFORMED', /not a JWT/)
    await rejectsWith(enroll({ jwt: fake.token({ caFp: 'ABC' }) }), 'ERR_ENROLL_TOKEN_MALFORMED', /caFp/)
    await rejectsWith(
      enroll({ jwt: fake.token({ iss: 'http://127.0.0.1:1' }) }),
      'ERR_ENROLL_TOKEN_MALFORMED',
      /iss/,
    )
  })
})

describe('enroll() transport checks', () => {
  it('after pinning, refuses a controller whose TLS certificate is not from the pinned root', async () => {
    const net = await makeNetwork('net')
    const impostorTls = await makeNetwork('impostor')
    // serves the right CA bundle (anyone can copy it) but cannot show a TLS cert from that CA
    const fake = await startFake(net, { tlsNet: impostorTls })
    try {
      await rejectsWith(enroll({ jwt: fake.token() }), 'ERR_ENROLL_UNREACHABLE', /jwks/)
      assert.equal(fake.used.size, 0)
    } finally {
      await fake.close()
    }
  })

  it('bounds the size of what it reads', async () => {
    const net = await makeNetwork('net')
    const fake = await startFake(net, { hugeCacerts: true })
    try {
      await rejectsWith(enroll({ jwt: fake.token() }), 'ERR_ENROLL_UNREACHABLE', /larger than/)
    } finally {
      await fake.close()
    }
  })
})
