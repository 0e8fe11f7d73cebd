/**
 * The plain-HTTP `GET /metrics` endpoint of a component (router, controller): serves whatever
 * `render` produces (a prom-client registry's text), bounded in time per request, and nothing
 * else (404). Keep it on a private address: the numbers describe the network.
 */
import http from 'node:http'
import { formatHostPort } from './host-port.js'

export interface MetricsServer {
  /** The bound `host:port`. */
  readonly address: string
  close(): Promise<void>
}

export async function listenMetrics(
  host: string,
  port: number,
  render: () => Promise<{ contentType: string; body: string }>,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n')
      return
    }
    render().then(
      (r) => res.writeHead(200, { 'content-type': r.contentType }).end(r.body),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    )
  })
  server.headersTimeout = 10_000
  server.requestTimeout = 10_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const a = server.address()
  return {
    address: formatHostPort(host, typeof a === 'object' && a ? a.port : port),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}
