/** A network CA with a server certificate for 127.0.0.1 and a client certificate, for HTTPS tests. */

import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { createLeaf, createRootCa } from '../src/index.js'

export interface TlsFixture {
  ca: string
  server: { cert: string; key: string }
  client: { cert: string; key: string }
  /** A second CA nobody trusts. */
  otherCa: string
}

export async function tlsFixture(): Promise<TlsFixture> {
  const root = await createRootCa({ commonName: 'test root' })
  const other = await createRootCa({ commonName: 'other root' })
  const leaf = (commonName: string, usage: 'server' | 'client') =>
    createLeaf({
      issuerCertPem: root.certPem,
      issuerKeyPem: root.keyPem,
      commonName,
      usage,
      ...(usage === 'server' ? { ip: ['127.0.0.1'] } : { uris: ['spiffe://nullport/identity/c1'] }),
      lifetimeSeconds: 3600,
    })
  const server = await leaf('server', 'server')
  const client = await leaf('client', 'client')
  return {
    ca: root.certPem,
    server: { cert: server.certPem, key: server.keyPem },
    client: { cert: client.certPem, key: client.keyPem },
    otherCa: other.certPem,
  }
}

/** An mTLS server on 127.0.0.1, port 0. Resolves to its base URL and a close function. */
export async function startServer(
  f: TlsFixture,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer(
    { cert: f.server.cert, key: f.server.key, ca: f.ca, requestCert: true, rejectUnauthorized: true },
    handler,
  )
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `https://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}
