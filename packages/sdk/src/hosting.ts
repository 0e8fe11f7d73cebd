import { type ClientService, type E2EOwnIdentity, policyAdvisorCommand } from '@nullport/protocol'
import type { ControlSync } from './control-sync.js'
import { SdkError } from './errors.js'
import type { Logger } from './logger.js'
import { type ListenOptions, OverlayServer, type ServerHost } from './overlay-server.js'
import type { PeerIdentity } from './overlay-socket.js'
import type { PendingAccept, RouterConnection } from './router-connection.js'

export interface HostingOptions {
  identity: PeerIdentity
  /** The identity's certificate and key for e2e hellos (updated in place on renewal). */
  e2eOwn: E2EOwnIdentity
  caPem: string
  logger: Logger
  sync: ControlSync
  /** The ready router connections (router-pool.ts). */
  readyRouters: () => RouterConnection[]
  /** How many routers this identity may use. */
  routerCount: () => number
}

/**
 * The listener side of a context: the servers it hosts, one per service, and the routing of each
 * incoming DIAL straight to the server bound to its service (by name, or by id).
 */
export class Hosting implements ServerHost {
  readonly identity: PeerIdentity
  readonly e2eOwn: E2EOwnIdentity
  readonly caPem: string
  readonly logger: Logger
  private readonly o: HostingOptions
  private readonly servers = new Map<string, OverlayServer>()

  constructor(o: HostingOptions) {
    this.o = o
    this.identity = o.identity
    this.e2eOwn = o.e2eOwn
    this.caPem = o.caPem
    this.logger = o.logger
  }

  /** Hosts `service` (see `Context.listen`). */
  listen(service: string, opts: ListenOptions): OverlayServer {
    if (this.servers.has(service)) {
      throw new SdkError(
        'ERR_INVALID_OPTION',
        `service ${service} is already hosted by this context: close the other listener first`,
      )
    }
    const server = new OverlayServer(this, service, opts)
    this.servers.set(service, server)
    process.nextTick(() => {
      server.reconcile()
      if (this.o.routerCount() === 0 && !server.listening && !server.closed) {
        server.emit(
          'error',
          new SdkError(
            'ERR_NO_EDGE_ROUTERS',
            `identity ${this.identity.name} may use no edge router: run \`${policyAdvisorCommand(this.identity.name, service)}\``,
            { service },
          ),
        )
      }
    })
    return server
  }

  /** An incoming DIAL (router-connection.ts `onDial`): to the server bound to its service, or refused. */
  readonly route = (conn: RouterConnection, dial: PendingAccept): void => {
    const name = dial.payload.service
    let server = this.servers.get(name)
    if (!server) {
      const svc = this.o.sync.services().find((s) => s.id === name)
      if (svc) server = this.servers.get(svc.name)
    }
    if (!server || server.closed) {
      conn.refuse(
        dial,
        'ERR_SERVICE_NOT_LISTENING',
        `identity ${this.identity.name} is not listening on ${name}`,
      )
      return
    }
    server.handleDial(conn, dial)
  }

  /** Binds every server on the routers it should be bound on; `retryRefused` after the service list changed. */
  reconcileAll(retryRefused: boolean): void {
    for (const s of this.servers.values()) s.reconcile(retryRefused)
  }

  /** Closes every server and destroys its connections (with `err`, when given). */
  destroyAll(err: Error | undefined): void {
    for (const s of [...this.servers.values()]) s.destroyAll(err)
  }

  // ServerHost
  serviceInfo(name: string): ClientService | undefined {
    return this.o.sync.service(name)
  }
  readyRouters(): RouterConnection[] {
    return this.o.readyRouters()
  }
  removeServer(server: OverlayServer): void {
    if (this.servers.get(server.service) === server) this.servers.delete(server.service)
  }
}
