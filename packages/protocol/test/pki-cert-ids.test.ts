import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { before, test } from 'node:test'
import {
  certFingerprint,
  createLeaf,
  createRootCa,
  fingerprintSha256,
  hasUriSan,
  isProtocolError,
  makeSpiffeId,
  parseSpiffeId,
  parseSubjectAltName,
  spiffeIdFromSan,
  spiffeIdOf,
  uriSans,
} from '../src/index.js'

let leafPem = ''
let twoUrisPem = ''
before(async () => {
  const ca = await createRootCa({ commonName: 'cert-ids root' })
  const issue = (uris: string[]) =>
    createLeaf({
      issuerCertPem: ca.certPem,
      issuerKeyPem: ca.keyPem,
      commonName: 'leaf',
      usage: 'both',
      dns: ['a.example'],
      ip: ['10.0.0.1', '::1'],
      uris,
      lifetimeSeconds: 3600,
    })
  leafPem = (await issue([makeSpiffeId('nullport', 'router', 'r1'), 'https://h.example/p,q"r'])).certPem
  twoUrisPem = (await issue(['spiffe://nullport/identity/id%2F1', 'urn:x:y'])).certPem
})

test('certFingerprint of X509Certificate and TLS-style { raw } equals fingerprintSha256 of the PEM', () => {
  const x = new X509Certificate(leafPem)
  const fp = fingerprintSha256(leafPem)
  assert.match(fp, /^[0-9a-f]{64}$/)
  assert.equal(certFingerprint(x), fp)
  assert.equal(certFingerprint({ raw: x.raw }), fp)
  assert.equal(fingerprintSha256(`${leafPem}\n${twoUrisPem}`), fp) // first certificate of a bundle
  assert.notEqual(certFingerprint(new X509Certificate(twoUrisPem)), fp)
  assert.throws(
    () => fingerprintSha256('no pem'),
    (e: unknown) => isProtocolError(e, 'ERR_PKI_INVALID_INPUT'),
  )
})

test("parseSubjectAltName reads Node's text, unquoting the values Node quoted", () => {
  const x = new X509Certificate(leafPem)
  assert.deepEqual(parseSubjectAltName(x.subjectAltName), [
    { type: 'DNS', value: 'a.example' },
    { type: 'IP Address', value: '10.0.0.1' },
    { type: 'IP Address', value: '0:0:0:0:0:0:0:1' },
    { type: 'URI', value: 'spiffe://nullport/router/r1' },
    { type: 'URI', value: 'https://h.example/p,q"r' },
  ])
  assert.deepEqual(uriSans(x.subjectAltName), ['spiffe://nullport/router/r1', 'https://h.example/p,q"r'])
  assert.deepEqual(parseSubjectAltName(undefined), [])
  assert.deepEqual(parseSubjectAltName(''), [])
  // an unterminated quoted value ends the list; what came before stays
  assert.deepEqual(parseSubjectAltName('DNS:a, URI:"spiffe://x'), [{ type: 'DNS', value: 'a' }])
  assert.deepEqual(parseSubjectAltName('garbage'), [])
})

test('hasUriSan matches a whole URI only', () => {
  const san = new X509Certificate(leafPem).subjectAltName
  assert.equal(hasUriSan(san, 'spiffe://nullport/router/r1'), true)
  assert.equal(hasUriSan(san, 'spiffe://nullport/router/r'), false)
  assert.equal(hasUriSan(san, 'a.example'), false)
  assert.equal(hasUriSan(undefined, 'spiffe://nullport/router/r1'), false)
})

test('spiffeIdFromSan: kind and decoded id for the trust domain, null otherwise', () => {
  const router = new X509Certificate(leafPem).subjectAltName
  assert.deepEqual(spiffeIdFromSan(router, 'nullport'), { kind: 'router', id: 'r1' })
  assert.equal(spiffeIdFromSan(router, 'other'), null)
  const ident = new X509Certificate(twoUrisPem).subjectAltName
  assert.deepEqual(spiffeIdFromSan(ident, 'nullport'), { kind: 'identity', id: 'id/1' })
  assert.equal(spiffeIdFromSan('URI:spiffe://nullport/identity', 'nullport'), null)
  assert.equal(spiffeIdFromSan('URI:spiffe://nullport/identity/a/b', 'nullport'), null)
  assert.equal(spiffeIdFromSan('URI:spiffe://nullport//x', 'nullport'), null)
  // a URI that does not percent-decode is skipped, the next one is used
  assert.deepEqual(
    spiffeIdFromSan('URI:spiffe://nullport/identity/%E0%A4%A, URI:spiffe://nullport/identity/ok', 'nullport'),
    { kind: 'identity', id: 'ok' },
  )
  assert.equal(spiffeIdFromSan(undefined, 'nullport'), null)
})

test('spiffeIdOf (SAN extension) and parseSpiffeId agree with the text helpers', () => {
  const id = spiffeIdOf(leafPem)
  assert.equal(id, 'spiffe://nullport/router/r1')
  assert.deepEqual(parseSpiffeId(id!), { trustDomain: 'nullport', kind: 'router', id: 'r1' })
  assert.equal(spiffeIdOf(new X509Certificate(leafPem)), id)
  assert.throws(
    () => parseSpiffeId('spiffe://nullport/robot/x'),
    (e: unknown) => isProtocolError(e, 'ERR_PKI_SPIFFE_ID'),
  )
})
