/**
 * RouterConnection against a stand-in router (a real TLS server speaking HELLO_ACK and PONG):
 * the router's certificate must chain to the network CA and carry the expected SPIFFE router id.
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import tls from 'node:tls'
import {
  createIntermediateCa,
  createLeaf,
  createRootCa,
  FrameConnection,
  FrameType,
} from '@nullport/protocol'
import { isSdkError } from '../src/errors.js'
import { RouterConnection } from '../src/router-connection.js'

interface Pki {
  caBundle: string
  issuer: { certPem: string; keyPem: string }
}

async function makePki(name: string): Promise<Pki> {
  const root = await createRootCa({ commonName: `${name} root` })
  const inter = await createIntermediateCa({
    issuerCertPem: root.certPem,
    issuerKeyPem: root.keyPem,
    commonName: `${name} intermediate`,
  })
  return { caBundle: root.certPem + inter.certPem, issuer: inter }
}

async function leaf(p: Pki, cn: string, uri: string, usage: 'client' | 'server') {
  const l = await createLeaf({
    issuerCertPem: p.issuer.certPem,
    issuerKeyPem: p.issuer.keyPem,
    commonName: cn,
    usage,
    uris: [uri],
    ip: ['127.0.0.1'],
    lifetimeSeconds: 3600,
  })
  return { cert: l.certPem + p.issuer.certPem, key: l.keyPem }
}

/** A TLS server that answers HELLO with HELLO_ACK {routerId} and PING with PONG. */
function fakeRouter(creds: { cert: string; key: string; ca: string }, routerId: string): Promise<tls.Server> {
  const server = tls.createServer({ ...creds, requestCert: true, rejectUnauthorized: true }, (socket) => {
    const conn = new FrameConnection(socket)
    conn.on('error', () => undefined)
    conn.on('frame', (f) => {
      if (f.type === FrameType.HELLO) {
        conn.send({
          type: FrameType.HELLO_ACK,
          circuitId: 0,
          flags: 0,
          payload: { version: 1, role: 'router', routerId },
        })
      } else if (f.type === FrameType.PING) {
        conn.send({ type: FrameType.PONG, circuitId: 0, flags: 0, payload: f.payload })
      }
    })
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

describe('RouterConnection', () => {
  let net: Pki
  let foreign: Pki
  let client: { cert: string; key: string }
  const servers: tls.Server[] = []

  before(async () => {
    net = await makePki('net')
    foreign = await makePki('foreign')
    client = await leaf(net, 'alice', 'spiffe://nullport/identity/alice-id', 'client')
  })
  after(() => {
    for (const s of servers) s.close()
  })

  function connect(server: tls.Server, routerId: string): RouterConnection {
    const port = (server.address() as AddressInfo).port
    return new RouterConnection({
      routerId,
      routerName: routerId,
      address: `127.0.0.1:${port}`,
      credentials: { ...client, ca: net.caBundle, trustDomain: 'nullport' },
      agent: 'test',
      logger: {},
      connectTimeoutMs: 5000,
      pingIntervalMs: 60_000,
      onDial: () => undefined,
    })
  }

  it('connects to a router whose certificate names the expected SPIFFE router id, and measures latency', async () => {
    const r = await leaf(net, 'r1', 'spiffe://nullport/router/r1', 'server')
    const server = await fakeRouter({ ...r, ca: net.caBundle }, 'r1')
    servers.push(server)
    const conn = connect(server, 'r1')
    await conn.connect()
    assert.equal(conn.ready, true)
    if (!Number.isFinite(conn.latencyMs)) await new Promise((resolve) => conn.once('latency', resolve))
    assert.ok(conn.latencyMs >= 0)
    conn.close()
  })

  it('refuses a router certificate for another router id (ERR_ROUTER_VERIFY_FAILED)', async () => {
    const r = await leaf(net, 'r2', 'spiffe://nullport/router/r2', 'server')
    const server = await fakeRouter({ ...r, ca: net.caBundle }, 'r1')
    servers.push(server)
    await assert.rejects(connect(server, 'r1').connect(), (err: unknown) => {
      assert.ok(isSdkError(err, 'ERR_ROUTER_VERIFY_FAILED'), String(err))
      assert.match(err.message, /spiffe:\/\/nullport\/router\/r1/)
      return true
    })
  })

  it('refuses a router whose certificate is from another CA (ERR_ROUTER_VERIFY_FAILED)', async () => {
    const r = await leaf(foreign, 'r1', 'spiffe://nullport/router/r1', 'server')
    const server = await fakeRouter({ ...r, ca: net.caBundle }, 'r1')
    servers.push(server)
    await assert.rejects(connect(server, 'r1').connect(), (err: unknown) =>
      isSdkError(err, 'ERR_ROUTER_VERIFY_FAILED'),
    )
  })

  it('refuses a router that answers HELLO with another router id', async () => {
    const r = await leaf(net, 'r1', 'spiffe://nullport/router/r1', 'server')
    const server = await fakeRouter({ ...r, ca: net.caBundle }, 'someone-else')
    servers.push(server)
    await assert.rejects(connect(server, 'r1').connect(), (err: unknown) =>
      isSdkError(err, 'ERR_ROUTER_VERIFY_FAILED'),
    )
  })
})
