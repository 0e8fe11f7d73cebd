import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import * as tls from 'node:tls'
import { isProtocolError, type ProtocolErrorCode } from '../src/errors.js'
import {
  createCsr,
  createIntermediateCa,
  createLeaf,
  createRootCa,
  fingerprintSha256,
  generateKeyPem,
  type IssuedPem,
  issueCertificate,
  makeSpiffeId,
  parseCsr,
  parseSpiffeId,
  publicKeyPemOf,
  spiffeIdOf,
  splitPem,
  verifyCaChain,
  verifyChain,
} from '../src/pki/index.js'

const HOUR = 3600

let dir: string
let root: IssuedPem
let inter: IssuedPem
let server: IssuedPem
let client: IssuedPem
let foreignRoot: IssuedPem
let foreignInter: IssuedPem

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function expectCode(fn: () => unknown, code: ProtocolErrorCode, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(
      isProtocolError(err, code),
      `expected ${code}, got ${(err as Error & { code?: string }).code}: ${(err as Error).message}`,
    )
    if (message) assert.match((err as Error).message, message)
    return true
  })
}

async function expectCodeAsync(
  p: Promise<unknown>,
  code: ProtocolErrorCode,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(
      isProtocolError(err, code),
      `expected ${code}, got ${(err as Error & { code?: string }).code}: ${(err as Error).message}`,
    )
    if (message) assert.match((err as Error).message, message)
    return true
  })
}

function derOf(pem: string): Buffer {
  return new X509Certificate(pem).raw
}

function pemOfDer(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'np-pki-'))
  root = await createRootCa({ commonName: 'Nullport Test Root', organization: 'Nullport' })
  inter = await createIntermediateCa({
    issuerCertPem: root.certPem,
    issuerKeyPem: root.keyPem,
    commonName: 'Nullport Test Intermediate',
  })
  server = await createLeaf({
    issuerCertPem: inter.certPem,
    issuerKeyPem: inter.keyPem,
    commonName: 'localhost',
    usage: 'server',
    dns: ['localhost'],
    ip: ['127.0.0.1', '::1'],
    lifetimeSeconds: HOUR,
  })
  client = await createLeaf({
    issuerCertPem: inter.certPem,
    issuerKeyPem: inter.keyPem,
    commonName: 'laptop',
    usage: 'client',
    uris: [makeSpiffeId('nullport', 'identity', 'id_laptop')],
    lifetimeSeconds: HOUR,
  })
  foreignRoot = await createRootCa({ commonName: 'Nullport Test Root' }) // same name, other key
  foreignInter = await createIntermediateCa({
    issuerCertPem: foreignRoot.certPem,
    issuerKeyPem: foreignRoot.keyPem,
    commonName: 'Nullport Test Intermediate',
  })
  await writeFile(join(dir, 'root.pem'), root.certPem)
  await writeFile(join(dir, 'intermediate.pem'), inter.certPem)
  await writeFile(join(dir, 'intermediate.key'), inter.keyPem)
  await writeFile(join(dir, 'server.pem'), server.certPem)
  await writeFile(join(dir, 'client.pem'), client.certPem)
})

after(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('issuing', () => {
  test('root and intermediate CAs carry the CA extensions', () => {
    const r = new X509Certificate(root.certPem)
    const i = new X509Certificate(inter.certPem)
    assert.equal(r.ca, true)
    assert.equal(i.ca, true)
    assert.ok(r.checkIssued(r) && r.verify(r.publicKey), 'root is self-signed')
    assert.ok(i.checkIssued(r) && i.verify(r.publicKey), 'intermediate is signed by the root')
    assert.equal(r.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1')
    const text = openssl('x509', '-in', 'intermediate.pem', '-noout', '-text')
    assert.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/)
    assert.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign/)
    assert.match(text, /Subject Key Identifier/)
    assert.match(text, /Authority Key Identifier/)
    assert.match(text, /ecdsa-with-SHA256/)
    assert.match(root.keyPem, /^-----BEGIN PRIVATE KEY-----/)
  })

  test('leaves: not CA, EKU per usage, SANs, 16-byte positive serial, notBefore backdated 60 s', () => {
    const s = new X509Certificate(server.certPem)
    assert.equal(s.ca, false)
    assert.deepEqual(s.keyUsage, ['1.3.6.1.5.5.7.3.1'])
    assert.equal(s.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1')
    assert.equal(s.serialNumber.length, 32)
    assert.ok(Number.parseInt(s.serialNumber.slice(0, 2), 16) < 0x80)
    const skew = Date.now() - Date.parse(s.validFrom)
    assert.ok(skew >= 59_000 && skew < 120_000, `notBefore backdated by ${skew} ms`)
    const c = new X509Certificate(client.certPem)
    assert.deepEqual(c.keyUsage, ['1.3.6.1.5.5.7.3.2'])
    assert.equal(spiffeIdOf(c), 'spiffe://nullport/identity/id_laptop')
    assert.equal(spiffeIdOf(client.certPem), 'spiffe://nullport/identity/id_laptop')
    assert.equal(spiffeIdOf(server.certPem), null)
    const text = openssl('x509', '-in', 'server.pem', '-noout', '-text')
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/)
    assert.match(text, /Key Usage: critical\s+Digital Signature/)
    assert.notEqual(new X509Certificate(client.certPem).serialNumber, s.serialNumber)
  })

  test('openssl verify accepts the issued server and client certificates', () => {
    const base = ['verify', '-CAfile', 'root.pem', '-untrusted', 'intermediate.pem']
    assert.match(openssl(...base, '-purpose', 'sslserver', 'server.pem'), /server\.pem: OK/)
    assert.match(openssl(...base, '-purpose', 'sslclient', 'client.pem'), /client\.pem: OK/)
    assert.throws(() => openssl(...base, '-purpose', 'sslclient', 'server.pem'))
  })

  test('an intermediate with pathLen 0 cannot sign another CA; a key that is not the CA key is refused', async () => {
    await expectCodeAsync(
      createIntermediateCa({ issuerCertPem: inter.certPem, issuerKeyPem: inter.keyPem, commonName: 'sub' }),
      'ERR_PKI_INVALID_INPUT',
      /pathLength 0/,
    )
    await expectCodeAsync(
      createLeaf({
        issuerCertPem: inter.certPem,
        issuerKeyPem: root.keyPem,
        commonName: 'x',
        usage: 'client',
        lifetimeSeconds: 60,
      }),
      'ERR_PKI_INVALID_INPUT',
      /not the private key/,
    )
    await expectCodeAsync(
      createLeaf({
        issuerCertPem: server.certPem,
        issuerKeyPem: server.keyPem,
        commonName: 'x',
        usage: 'client',
        lifetimeSeconds: 60,
      }),
      'ERR_PKI_INVALID_INPUT',
      /not a CA/,
    )
    await expectCodeAsync(
      createLeaf({
        issuerCertPem: inter.certPem,
        issuerKeyPem: inter.keyPem,
        commonName: 'x',
        usage: 'server',
        ip: ['1.2.3'],
        lifetimeSeconds: 60,
      }),
      'ERR_PKI_INVALID_INPUT',
      /ip: "1\.2\.3"/,
    )
  })

  test('a leaf never outlives its issuer', async () => {
    const shortCa = await createIntermediateCa({
      issuerCertPem: root.certPem,
      issuerKeyPem: root.keyPem,
      commonName: 'short',
      lifetimeDays: 1,
    })
    const leaf = await createLeaf({
      issuerCertPem: shortCa.certPem,
      issuerKeyPem: shortCa.keyPem,
      commonName: 'x',
      usage: 'client',
      lifetimeSeconds: 30 * 86400,
    })
    assert.equal(new X509Certificate(leaf.certPem).validTo, new X509Certificate(shortCa.certPem).validTo)
  })
})

describe('CSRs', () => {
  test('createCsr -> parseCsr round-trips; openssl accepts it; issueCertificate ignores CSR SANs unless asked', async () => {
    const key = await generateKeyPem()
    const csr = await createCsr({
      keyPem: key,
      commonName: 'router-1',
      dns: ['r1.example'],
      uris: ['spiffe://nullport/router/r1'],
    })
    const parsed = await parseCsr(csr)
    assert.equal(parsed.commonName, 'router-1')
    assert.deepEqual(parsed.dns, ['r1.example'])
    assert.deepEqual(parsed.uris, ['spiffe://nullport/router/r1'])
    assert.equal(parsed.publicKeyPem, publicKeyPemOf(key))
    await writeFile(join(dir, 'r1.csr'), csr)
    const check = spawnSync('openssl', ['req', '-in', 'r1.csr', '-noout', '-verify'], {
      cwd: dir,
      encoding: 'utf8',
    })
    assert.equal(check.status, 0)
    assert.match(check.stdout + check.stderr, /verify OK/)
    const plain = await issueCertificate({
      issuerCertPem: inter.certPem,
      issuerKeyPem: inter.keyPem,
      csrPem: csr,
      commonName: 'r1',
      usage: 'both',
      uris: ['spiffe://nullport/router/r1'],
      lifetimeSeconds: HOUR,
    })
    assert.equal(new X509Certificate(plain).subjectAltName, 'URI:spiffe://nullport/router/r1')
    assert.ok(new X509Certificate(plain).checkPrivateKey(createPrivateKey(key)))
    const withCsr = await issueCertificate({
      issuerCertPem: inter.certPem,
      issuerKeyPem: inter.keyPem,
      csrPem: csr,
      commonName: 'r1',
      usage: 'both',
      useCsrSans: true,
      lifetimeSeconds: HOUR,
    })
    assert.equal(
      new X509Certificate(withCsr).subjectAltName,
      'DNS:r1.example, URI:spiffe://nullport/router/r1',
    )
    const v = verifyChain({ chainPem: [withCsr, inter.certPem], rootsPem: root.certPem, usage: 'client' })
    assert.equal(v.spiffeId, 'spiffe://nullport/router/r1')
  })

  test('a CSR made by openssl is accepted', async () => {
    openssl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=from-openssl',
      '-keyout',
      'o.key',
      '-out',
      'o.csr',
    )
    const parsed = await parseCsr(await readFile(join(dir, 'o.csr'), 'utf8'))
    assert.equal(parsed.commonName, 'from-openssl')
  })

  test('a CSR with a bad signature is refused with ERR_PKI_CSR_SIGNATURE', async () => {
    const key = await generateKeyPem()
    const csr = await createCsr({ keyPem: key, commonName: 'victim-name' })
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64')
    const at = der.indexOf(Buffer.from('victim-name'))
    assert.ok(at > 0)
    der[at] = 'V'.charCodeAt(0)
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`
    await expectCodeAsync(parseCsr(tampered), 'ERR_PKI_CSR_SIGNATURE')
    await expectCodeAsync(
      issueCertificate({
        issuerCertPem: inter.certPem,
        issuerKeyPem: inter.keyPem,
        csrPem: tampered,
        commonName: 'x',
        usage: 'client',
        lifetimeSeconds: 60,
      }),
      'ERR_PKI_CSR_SIGNATURE',
    )
  })

  test('a CSR with a non-P-256 key or garbage is refused with ERR_PKI_INVALID_CSR', async () => {
    openssl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-384',
      '-nodes',
      '-subj',
      '/CN=p384',
      '-keyout',
      'p384.key',
      '-out',
      'p384.csr',
    )
    await expectCodeAsync(
      parseCsr(await readFile(join(dir, 'p384.csr'), 'utf8')),
      'ERR_PKI_INVALID_CSR',
      /P-256/,
    )
    await expectCodeAsync(parseCsr('hello'), 'ERR_PKI_INVALID_CSR')
    await expectCodeAsync(
      parseCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'),
      'ERR_PKI_INVALID_CSR',
    )
  })
})

describe('verifyChain', () => {
  test('valid chains verify, in every accepted form', () => {
    const v = verifyChain({
      chainPem: server.certPem + inter.certPem,
      rootsPem: root.certPem,
      usage: 'server',
    })
    assert.equal(v.leaf.subject, 'CN=localhost')
    assert.equal(v.spiffeId, null)
    const c = verifyChain({
      chainPem: [client.certPem, inter.certPem, root.certPem],
      rootsPem: [foreignRoot.certPem, root.certPem],
      usage: 'client',
    })
    assert.equal(c.spiffeId, 'spiffe://nullport/identity/id_laptop')
    // the intermediate may be trusted directly
    verifyChain({ chainPem: client.certPem, rootsPem: inter.certPem })
  })

  test('expired and not yet valid certificates are named', () => {
    const later = new Date(Date.now() + 2 * HOUR * 1000)
    expectCode(
      () => verifyChain({ chainPem: server.certPem + inter.certPem, rootsPem: root.certPem, at: later }),
      'ERR_PKI_EXPIRED',
      /"localhost" expired/,
    )
    const earlier = new Date(Date.now() - 10 * 60 * 1000)
    expectCode(
      () => verifyChain({ chainPem: server.certPem + inter.certPem, rootsPem: root.certPem, at: earlier }),
      'ERR_PKI_NOT_YET_VALID',
      /"localhost" is not valid before/,
    )
  })

  test('a foreign root, or a root with the same name but another key, is refused', () => {
    expectCode(
      () => verifyChain({ chainPem: server.certPem + inter.certPem, rootsPem: foreignRoot.certPem }),
      'ERR_PKI_CHAIN',
    )
    expectCode(
      () => verifyChain({ chainPem: server.certPem, rootsPem: foreignInter.certPem }),
      'ERR_PKI_CHAIN',
      /"localhost"/,
    )
  })

  test('a chain ending in an untrusted self-signed root of the same name is refused', async () => {
    const leaf = await createLeaf({
      issuerCertPem: foreignInter.certPem,
      issuerKeyPem: foreignInter.keyPem,
      commonName: 'impostor',
      usage: 'client',
      lifetimeSeconds: HOUR,
    })
    expectCode(
      () =>
        verifyChain({
          chainPem: [leaf.certPem, foreignInter.certPem, foreignRoot.certPem],
          rootsPem: root.certPem,
          usage: 'client',
        }),
      'ERR_PKI_CHAIN',
      /does not chain to a trusted root/,
    )
    // our intermediate's name, a foreign key
    expectCode(
      () => verifyChain({ chainPem: [leaf.certPem, inter.certPem], rootsPem: root.certPem }),
      'ERR_PKI_CHAIN',
      /"impostor"/,
    )
  })

  test('a leaf signed by a non-CA certificate is refused', async () => {
    // openssl does what our API refuses to do: sign with a leaf key
    await writeFile(join(dir, 'server.key'), server.keyPem)
    openssl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=evil',
      '-keyout',
      'evil.key',
      '-out',
      'evil.csr',
    )
    openssl(
      'x509',
      '-req',
      '-in',
      'evil.csr',
      '-CA',
      'server.pem',
      '-CAkey',
      'server.key',
      '-set_serial',
      '7',
      '-days',
      '1',
      '-out',
      'evil.pem',
    )
    const evil = await readFile(join(dir, 'evil.pem'), 'utf8')
    expectCode(
      () => verifyChain({ chainPem: [evil, server.certPem, inter.certPem], rootsPem: root.certPem }),
      'ERR_PKI_CHAIN',
      /not a CA/,
    )
  })

  test('a tampered signature is refused', () => {
    const der = Buffer.from(derOf(client.certPem))
    der[der.length - 1] ^= 0x01
    expectCode(
      () => verifyChain({ chainPem: [pemOfDer(der), inter.certPem], rootsPem: root.certPem }),
      'ERR_PKI_CHAIN',
    )
    const tbs = Buffer.from(derOf(client.certPem))
    const at = tbs.indexOf(Buffer.from('laptop'))
    tbs[at] = 'L'.charCodeAt(0)
    expectCode(
      () => verifyChain({ chainPem: [pemOfDer(tbs), inter.certPem], rootsPem: root.certPem }),
      'ERR_PKI_CHAIN',
    )
  })

  test('the first certificate must be the leaf: swapped order is refused', () => {
    expectCode(
      () => verifyChain({ chainPem: inter.certPem + server.certPem, rootsPem: root.certPem }),
      'ERR_PKI_CHAIN',
      /must be the leaf/,
    )
    expectCode(
      () => verifyChain({ chainPem: root.certPem, rootsPem: root.certPem }),
      'ERR_PKI_CHAIN',
      /must be the leaf/,
    )
  })

  test('a loop of cross-signed CAs is refused', async () => {
    const a = await createRootCa({ commonName: 'Loop A' })
    const b = await createRootCa({ commonName: 'Loop B' })
    const aByB = await createIntermediateCa({
      issuerCertPem: b.certPem,
      issuerKeyPem: b.keyPem,
      commonName: 'Loop A',
      keyPem: a.keyPem,
      pathLength: 0,
    })
    const bByA = await createIntermediateCa({
      issuerCertPem: a.certPem,
      issuerKeyPem: a.keyPem,
      commonName: 'Loop B',
      keyPem: b.keyPem,
      pathLength: 0,
    })
    const leaf = await createLeaf({
      issuerCertPem: aByB.certPem,
      issuerKeyPem: a.keyPem,
      commonName: 'looped',
      usage: 'client',
      lifetimeSeconds: HOUR,
    })
    expectCode(
      () => verifyChain({ chainPem: [leaf.certPem, aByB.certPem, bByA.certPem], rootsPem: root.certPem }),
      'ERR_PKI_CHAIN',
      /loops/,
    )
  })

  test('verifyCaChain checks a CA certificate against the roots', () => {
    assert.equal(
      verifyCaChain({ chainPem: inter.certPem, rootsPem: root.certPem }).cert.subject,
      'CN=Nullport Test Intermediate',
    )
    assert.equal(verifyCaChain({ chainPem: root.certPem, rootsPem: root.certPem }).cert.ca, true)
    expectCode(
      () => verifyCaChain({ chainPem: inter.certPem, rootsPem: foreignRoot.certPem }),
      'ERR_PKI_CHAIN',
    )
    expectCode(
      () => verifyCaChain({ chainPem: foreignInter.certPem, rootsPem: root.certPem }),
      'ERR_PKI_CHAIN',
    )
    expectCode(
      () => verifyCaChain({ chainPem: [server.certPem, inter.certPem], rootsPem: root.certPem }),
      'ERR_PKI_CHAIN',
      /not a CA/,
    )
    expectCode(
      () =>
        verifyCaChain({ chainPem: inter.certPem, rootsPem: root.certPem, at: new Date(Date.now() + 1e12) }),
      'ERR_PKI_EXPIRED',
    )
  })

  test('extendedKeyUsage must match the usage', () => {
    expectCode(
      () =>
        verifyChain({ chainPem: server.certPem + inter.certPem, rootsPem: root.certPem, usage: 'client' }),
      'ERR_PKI_CHAIN',
      /extendedKeyUsage/,
    )
    expectCode(
      () =>
        verifyChain({ chainPem: client.certPem + inter.certPem, rootsPem: root.certPem, usage: 'server' }),
      'ERR_PKI_CHAIN',
      /extendedKeyUsage/,
    )
  })

  test('pathLen is honoured and over-long chains are refused', async () => {
    // openssl signs a sub-CA under our pathLen-0 intermediate (our API refuses to)
    await writeFile(
      join(dir, 'subca.ext'),
      'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n',
    )
    openssl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=sub-ca',
      '-keyout',
      'subca.key',
      '-out',
      'subca.csr',
    )
    openssl(
      'x509',
      '-req',
      '-in',
      'subca.csr',
      '-CA',
      'intermediate.pem',
      '-CAkey',
      'intermediate.key',
      '-set_serial',
      '9',
      '-days',
      '1',
      '-extfile',
      'subca.ext',
      '-out',
      'subca.pem',
    )
    const sub = {
      certPem: await readFile(join(dir, 'subca.pem'), 'utf8'),
      keyPem: await readFile(join(dir, 'subca.key'), 'utf8'),
    }
    const leaf = await createLeaf({
      issuerCertPem: sub.certPem,
      issuerKeyPem: sub.keyPem,
      commonName: 'deep',
      usage: 'client',
      lifetimeSeconds: HOUR,
    })
    expectCode(
      () => verifyChain({ chainPem: [leaf.certPem, sub.certPem, inter.certPem], rootsPem: root.certPem }),
      'ERR_PKI_CHAIN',
      /pathLen/,
    )

    const long = [
      client.certPem,
      inter.certPem,
      root.certPem,
      foreignRoot.certPem,
      foreignInter.certPem,
      server.certPem,
    ]
    expectCode(() => verifyChain({ chainPem: long, rootsPem: root.certPem }), 'ERR_PKI_CHAIN', /maximum of 5/)
    expectCode(() => verifyChain({ chainPem: '', rootsPem: root.certPem }), 'ERR_PKI_CHAIN', /no certificate/)
  })
})

describe('PEM, fingerprints, SPIFFE ids', () => {
  test('splitPem splits bundles in order, skips keys, rejects truncated blocks', () => {
    const bundle = `junk\r\n${server.certPem.replace(/\n/g, '\r\n')}${server.keyPem}${inter.certPem}`
    const parts = splitPem(bundle)
    assert.equal(parts.length, 2)
    assert.equal(fingerprintSha256(parts[0]!), fingerprintSha256(server.certPem))
    assert.equal(parts[1], inter.certPem)
    assert.deepEqual(splitPem(''), [])
    expectCode(
      () => splitPem(`${root.certPem}-----BEGIN CERTIFICATE-----\nAAAA`),
      'ERR_PKI_INVALID_INPUT',
      /truncated/,
    )
  })

  test('fingerprintSha256 matches openssl', () => {
    const out = openssl('x509', '-in', 'root.pem', '-noout', '-fingerprint', '-sha256')
    const expected = out.split('=')[1]!.trim().replace(/:/g, '').toLowerCase()
    assert.equal(fingerprintSha256(root.certPem), expected)
    assert.match(expected, /^[0-9a-f]{64}$/)
  })

  test('parseSpiffeId is strict', () => {
    assert.deepEqual(parseSpiffeId('spiffe://nullport/identity/id_1'), {
      trustDomain: 'nullport',
      kind: 'identity',
      id: 'id_1',
    })
    assert.deepEqual(parseSpiffeId('spiffe://corp.example-1/router/R.1-x'), {
      trustDomain: 'corp.example-1',
      kind: 'router',
      id: 'R.1-x',
    })
    assert.equal(parseSpiffeId(makeSpiffeId('nullport', 'controller', 'c1')).kind, 'controller')
    for (const bad of [
      'https://nullport/identity/x',
      'SPIFFE://nullport/identity/x',
      'spiffe://NullPort/identity/x',
      'spiffe://nullport/user/x',
      'spiffe://nullport/identity/',
      'spiffe://nullport/identity/x/y',
      'spiffe://nullport/identity/x?y',
      'spiffe://nullport/identity/..',
      'spiffe://null port/identity/x',
      `spiffe://nullport/identity/${'a'.repeat(129)}`,
      'spiffe:///identity/x',
    ]) {
      expectCode(() => parseSpiffeId(bad), 'ERR_PKI_SPIFFE_ID')
    }
    assert.equal(parseSpiffeId(`spiffe://nullport/identity/${'a'.repeat(128)}`).id.length, 128)
  })
})

describe('mutual TLS with issued certificates', () => {
  function startServer(): Promise<{
    server: tls.Server
    port: number
    clientErrors: Error[]
    authorized: string[]
  }> {
    const clientErrors: Error[] = []
    const authorized: string[] = []
    const srv = tls.createServer(
      {
        key: server.keyPem,
        cert: server.certPem + inter.certPem,
        ca: root.certPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (sock) => {
        const peer = sock.getPeerX509Certificate()
        if (peer) {
          // our own check agrees with OpenSSL's, on the leaf the peer presented
          const v = verifyChain({
            chainPem: [peer.toString(), inter.certPem],
            rootsPem: root.certPem,
            usage: 'client',
          })
          authorized.push(v.spiffeId ?? '')
        }
        sock.end('hello mTLS\n')
      },
    )
    srv.on('tlsClientError', (err) => clientErrors.push(err))
    return new Promise((resolve) => {
      srv.listen(0, '127.0.0.1', () =>
        resolve({ server: srv, port: (srv.address() as { port: number }).port, clientErrors, authorized }),
      )
    })
  }

  function connect(
    port: number,
    id: IssuedPem,
    chain: string,
  ): Promise<{ data: string; error: Error | null }> {
    return new Promise((resolve) => {
      let data = ''
      let error: Error | null = null
      const sock = tls.connect({
        host: '127.0.0.1',
        port,
        key: id.keyPem,
        cert: id.certPem + chain,
        ca: root.certPem,
      })
      sock.setEncoding('utf8')
      sock.on('data', (d: string) => {
        data += d
      })
      sock.on('error', (err) => {
        error = err
      })
      sock.on('close', () => resolve({ data, error }))
    })
  }

  test('a client with a certificate from the network CA completes the handshake; a foreign one is refused', async () => {
    const s = await startServer()
    try {
      const ok = await connect(s.port, client, inter.certPem)
      assert.equal(ok.error, null)
      assert.equal(ok.data, 'hello mTLS\n')
      assert.deepEqual(s.authorized, ['spiffe://nullport/identity/id_laptop'])

      const foreign = await createLeaf({
        issuerCertPem: foreignInter.certPem,
        issuerKeyPem: foreignInter.keyPem,
        commonName: 'laptop',
        usage: 'client',
        lifetimeSeconds: HOUR,
      })
      const refused = await connect(s.port, foreign, foreignInter.certPem)
      assert.equal(refused.data, '')
      // Node's TLS server closes the connection after the handshake when the client certificate
      // does not verify: no 'secureConnection', no data for the client.
      assert.equal(s.clientErrors.length, 1)
      expectCode(
        () =>
          verifyChain({
            chainPem: [foreign.certPem, foreignInter.certPem],
            rootsPem: root.certPem,
            usage: 'client',
          }),
        'ERR_PKI_CHAIN',
      )
      assert.equal(s.authorized.length, 1)
    } finally {
      await new Promise((r) => s.server.close(r))
    }
  })
})
