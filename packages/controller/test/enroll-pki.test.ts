import assert from 'node:assert/strict'
import { createPublicKey, X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createCsr, createLeaf } from '@nullport/protocol'
import { EnrollmentSigner } from '../src/enrollment/tokens.js'
import { isControllerError } from '../src/errors.js'
import { NetworkPki, parseHostPort } from '../src/pki/network-pki.js'
import { newKeyPem } from './enroll-helpers.js'

describe('NetworkPki and EnrollmentSigner (in process)', () => {
  let dir: string
  let pki: NetworkPki
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'np-pki-'))
    pki = await NetworkPki.open({
      dataDir: dir,
      trustDomain: 'acme',
      hosts: ['ctrl.example.com'],
      identityCertLifetimeSeconds: 3600,
    })
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('re-issues only the server certificate (same key) when the advertised host changes', async () => {
    const before = readFileSync(join(dir, 'pki', 'server.crt'), 'utf8')
    assert.ok(new X509Certificate(before).checkHost('ctrl.example.com'))
    const again = await NetworkPki.open({
      dataDir: dir,
      trustDomain: 'acme',
      hosts: ['ctrl.example.com'],
      identityCertLifetimeSeconds: 3600,
    })
    assert.equal(again.serverCertPem, before, 'unchanged configuration: reused')
    const moved = await NetworkPki.open({
      dataDir: dir,
      trustDomain: 'acme',
      hosts: ['10.1.2.3'],
      identityCertLifetimeSeconds: 3600,
    })
    const after = new X509Certificate(moved.serverCertPem)
    assert.notEqual(moved.serverCertPem, before)
    assert.ok(after.checkIP('10.1.2.3'))
    assert.ok(after.publicKey.equals(new X509Certificate(before).publicKey), 'same key')
    assert.equal(moved.rootCertPem, pki.rootCertPem)
    assert.equal(moved.rootFingerprint, pki.rootFingerprint)
  })

  it('verifies peers: kind, trust domain and chain', async () => {
    const key = newKeyPem()
    const csr = await createCsr({ keyPem: key, commonName: 'x' })
    const id = await pki.issueIdentityCert({ csrPem: csr, id: 'id1', name: 'laptop' })
    const rt = await pki.issueRouterCert({
      csrPem: csr,
      id: 'r1',
      name: 'edge',
      advertiseHost: 'edge.example.com',
    })
    const peer = pki.verifyPeer(new X509Certificate(id.certPem), 'identity')
    assert.deepEqual(peer, { kind: 'identity', id: 'id1', fingerprint: id.fingerprint, commonName: 'laptop' })
    assert.throws(
      () => pki.verifyPeer(new X509Certificate(rt.certPem), 'identity'),
      (e) => isControllerError(e, 'ERR_CERT_WRONG_KIND'),
    )
    assert.equal(pki.verifyPeer(new X509Certificate(rt.certPem), 'router').id, 'r1')
    assert.ok(new X509Certificate(rt.certPem).checkHost('edge.example.com'))
    assert.throws(
      () => pki.verifyPeer(undefined, 'router'),
      (e) => isControllerError(e, 'ERR_CERT_REQUIRED'),
    )
    // Our own intermediate, but another trust domain's SPIFFE id.
    const interKey = readFileSync(join(dir, 'pki', 'intermediate.key'), 'utf8')
    const other = await createLeaf({
      issuerCertPem: pki.intermediateCertPem,
      issuerKeyPem: interKey,
      commonName: 'laptop',
      usage: 'client',
      uris: ['spiffe://elsewhere/identity/id1'],
      lifetimeSeconds: 600,
    })
    assert.throws(
      () => pki.verifyPeer(new X509Certificate(other.certPem), 'identity'),
      (e) => isControllerError(e, 'ERR_CERT_INVALID'),
    )
    // A server-only certificate cannot authenticate a client.
    const serverOnly = await createLeaf({
      issuerCertPem: pki.intermediateCertPem,
      issuerKeyPem: interKey,
      commonName: 'laptop',
      usage: 'server',
      uris: ['spiffe://acme/identity/id2'],
      lifetimeSeconds: 600,
    })
    assert.throws(
      () => pki.verifyPeer(new X509Certificate(serverOnly.certPem), 'identity'),
      (e) => isControllerError(e, 'ERR_CERT_INVALID'),
    )
  })

  it('signs tokens per the contract and verifies them; wrong method, tampering and expiry are refused', async () => {
    const signer = await EnrollmentSigner.create(pki, () => 'https://ctrl.example.com:1280/')
    const jwt = await signer.sign({
      kind: 'router',
      sub: 'r1',
      jti: 'j1',
      name: 'edge-1',
      expiresAt: new Date(Date.now() + 60_000),
    })
    const claims = await signer.verify(jwt, 'erott')
    assert.equal(claims.iss, 'https://ctrl.example.com:1280')
    assert.equal(claims.sub, 'r1')
    assert.equal(claims.jti, 'j1')
    assert.equal(claims.td, 'acme')
    assert.equal(claims.caFp, pki.rootFingerprint)
    const jwk = signer.jwks().keys[0]!
    assert.equal(jwk.kid, JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid)
    assert.ok(
      createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }).equals(
        new X509Certificate(pki.signingCertPem).publicKey,
      ),
    )

    await assert.rejects(signer.verify(jwt, 'ott'), (e) => isControllerError(e, 'ERR_ENROLLMENT_INVALID'))
    const parts = jwt.split('.')
    const sig = Buffer.from(parts[2]!, 'base64url')
    sig[5] = sig[5]! ^ 1
    await assert.rejects(
      signer.verify(`${parts[0]}.${parts[1]}.${sig.toString('base64url')}`, 'erott'),
      (e) => isControllerError(e, 'ERR_ENROLLMENT_INVALID'),
    )
    const old = await signer.sign({
      kind: 'router',
      sub: 'r1',
      jti: 'j2',
      name: 'edge-1',
      expiresAt: new Date(Date.now() - 5_000),
    })
    await assert.rejects(signer.verify(old, 'erott'), (e) => {
      assert.ok(isControllerError(e, 'ERR_ENROLLMENT_EXPIRED'))
      assert.match(
        e.message,
        /^enrollment token for edge-1 expired at \d\d:\d\d: issue a new one with `nullport edge re-enroll edge-router edge-1 -o edge-1\.jwt`$/,
      )
      return true
    })
  })

  it('parses HOST:PORT including bracketed IPv6 and refuses the rest', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:3022'), { host: '127.0.0.1', port: 3022 })
    assert.deepEqual(parseHostPort('edge.example.com:443'), { host: 'edge.example.com', port: 443 })
    assert.deepEqual(parseHostPort('[::1]:3022'), { host: '::1', port: 3022 })
    for (const bad of ['edge', ':3022', 'a:0', 'a:70000', '::1:3022', 'a b:1', 'http://a:1'])
      assert.equal(parseHostPort(bad), null, bad)
  })

  it('refuses to start with a root certificate but no root key (ERR_PKI_INCOMPLETE)', async () => {
    unlinkSync(join(dir, 'pki', 'root.key'))
    await assert.rejects(
      NetworkPki.open({ dataDir: dir, trustDomain: 'acme', hosts: [], identityCertLifetimeSeconds: 3600 }),
      (e) => isControllerError(e, 'ERR_PKI_INCOMPLETE'),
    )
  })
})
