/**
 * The network of the tunneler tests and bench/tunnel.mjs: a controller and one router process
 * (`tun-r1`), a hosting identity (#tun-hosts, Bind on every #tun service) and a client identity
 * (#tun-clients), an HTTP server to reach through the overlay, and the services pg
 * (127.0.0.1:5432), redis (127.0.0.1:6379), web (the HTTP server), down (a port nothing listens
 * on) and fwd (forwardPort to the HTTP server), each with intercept.v1 and host.v1 configs.
 * The tests run `nullport tunnel run` against it (spawnTunnel): one hosting, one intercepting.
 *
 * @example
 * const net = await startTunnelNetwork()
 * const host = await spawnTunnel(['run', '-i', net.hostPath, '--no-status'])
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { startNetwork, type TestNetwork } from './network.js'
import { freePort } from './ports.js'

export interface TunnelNetwork extends TestNetwork {
  /** Identity file of the hosting tunneler (#tun-hosts). */
  hostPath: string
  /** Identity file of the intercepting tunneler (#tun-clients). */
  clientPath: string
  httpServer: Server
  httpPort: number
  /** A port with nothing listening (the "down" service's underlay). */
  downPort: number
  /** Creates a service with intercept.v1 and host.v1 configs, Bind for #tun-hosts, Dial for #tun-clients (unless dial false). */
  addService(
    name: string,
    intercept: Record<string, unknown>,
    host: Record<string, unknown>,
    dial?: boolean,
  ): Promise<void>
}

/** An HTTP server: `/big/N` answers N MiB (with backpressure), anything else one line naming the request. */
async function startHttpServer(): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/big/')) {
      const total = Number(req.url.slice(5)) * 1024 * 1024
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) })
      const chunk = Buffer.alloc(64 * 1024, 120)
      let sent = 0
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length
          if (!res.write(chunk)) {
            res.once('drain', pump)
            return
          }
        }
        res.end()
      }
      pump()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(
        `hello from behind the tunnel: ${req.method} ${req.url} host=${req.headers.host} body=${Buffer.concat(chunks).length}\n`,
      )
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return server
}

/** The standard network: services pg, redis, web, down, fwd. */
export async function startTunnelNetwork(): Promise<TunnelNetwork> {
  const net = await startNetwork({ routers: [{ name: 'tun-r1' }] })
  const httpServer = await startHttpServer()
  const close = async (): Promise<void> => {
    httpServer.closeAllConnections()
    httpServer.close()
    await net.close()
  }
  try {
    const host = await net.identity('tun-host', { roleAttributes: ['tun-hosts'] })
    const client = await net.identity('tun-client', { roleAttributes: ['tun-clients'] })
    const httpPort = (httpServer.address() as { port: number }).port
    const downPort = await freePort()
    await net.policy('Bind', ['#tun-hosts'], ['#tun'], 'tun-bind')
    const addService = async (
      name: string,
      intercept: Record<string, unknown>,
      hostConfig: Record<string, unknown>,
      dial = true,
    ): Promise<void> => {
      const ic = await net.config(`${name}-intercept`, 'intercept.v1', intercept)
      const hc = await net.config(`${name}-host`, 'host.v1', hostConfig)
      // end-to-end encryption on, as for every real service
      await net.service(name, { roleAttributes: ['tun'], configs: [ic.id, hc.id], encryptionRequired: true })
      if (dial) await net.policy('Dial', ['#tun-clients'], [`@${name}`], `dial-${name}`)
    }
    const tcp = (addresses: string[], low: number, high = low) => ({
      protocols: ['tcp'],
      addresses,
      portRanges: [{ low, high }],
    })
    await addService('pg', tcp(['pg.tunnel.test'], 5432), {
      protocol: 'tcp',
      address: '127.0.0.1',
      port: 5432,
    })
    await addService('redis', tcp(['redis.tunnel.test'], 6379), {
      protocol: 'tcp',
      address: '127.0.0.1',
      port: 6379,
    })
    await addService('web', tcp(['*.web.test', 'web.test'], 80), {
      protocol: 'tcp',
      address: '127.0.0.1',
      port: httpPort,
    })
    await addService('down', tcp(['down.test'], 80), {
      protocol: 'tcp',
      address: '127.0.0.1',
      port: downPort,
    })
    await addService('fwd', tcp(['fwd.test', '10.99.0.0/16'], 1, 65535), {
      protocol: 'tcp',
      address: '127.0.0.1',
      forwardPort: true,
      allowedPortRanges: [{ low: httpPort, high: httpPort }],
    })
    return {
      ...net,
      hostPath: host.path,
      clientPath: client.path,
      httpServer,
      httpPort,
      downPort,
      addService,
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}
