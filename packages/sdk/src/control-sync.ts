import {
  Backoff,
  type BackoffOptions,
  type ClientEdgeRouter,
  type ClientEvent,
  type ClientService,
} from '@nullport/protocol'
import type { ControllerClient } from './controller-client.js'
import { SdkError } from './errors.js'
import type { Logger } from './logger.js'
import type { PeerIdentity } from './overlay-socket.js'

/** Where ControlSync delivers what the controller says. */
export interface ControlSyncSink {
  /** The edge routers this identity may use (applied before the services of the same refresh). */
  routersChanged(list: ClientEdgeRouter[]): void
  /** The services this identity may Dial or Bind. */
  servicesChanged(list: ClientService[]): void
  /** The controller says this identity is revoked, disabled or deleted. */
  revoked(reason: string): void
}

export interface ControlSyncOptions {
  identity: PeerIdentity
  controller: ControllerClient
  logger: Logger
  reconnect: BackoffOptions
  eventsIdleTimeoutMs: number
  sink: ControlSyncSink
}

/**
 * A context's view of the controller: the session (certificate authentication), the service list
 * (fetched, then kept current by pushed events, never polled) and the router list, refreshed
 * once per burst of changes, and the event stream, reconnected with backoff.
 */
export class ControlSync {
  private readonly o: ControlSyncOptions
  private serviceList: ClientService[] = []
  private serviceByName = new Map<string, ClientService>()
  private closeEvents: (() => void) | null = null
  private readonly eventsBackoff: Backoff
  private eventsTimer: NodeJS.Timeout | null = null
  private refreshing: Promise<void> | null = null
  private refreshAgain = false
  private closed = false

  constructor(o: ControlSyncOptions) {
    this.o = o
    this.eventsBackoff = new Backoff(o.reconnect)
  }

  /** Authenticates with the certificate; the controller must see the identity of the file. */
  async authenticate(): Promise<void> {
    const who = await this.o.controller.authenticate()
    if (who && typeof who.id === 'string' && who.id !== this.o.identity.id) {
      throw new SdkError(
        'ERR_AUTHENTICATION_FAILED',
        `the controller authenticated this certificate as ${who.id}, but the identity file says ${this.o.identity.id}`,
      )
    }
  }

  /** The current service list (do not modify). */
  services(): readonly ClientService[] {
    return this.serviceList
  }

  /** A service by name. */
  service(name: string): ClientService | undefined {
    return this.serviceByName.get(name)
  }

  /** A service by name, or else by id. */
  serviceByNameOrId(nameOrId: string): ClientService | undefined {
    return this.serviceByName.get(nameOrId) ?? this.serviceList.find((s) => s.id === nameOrId)
  }

  /** Fetches services and routers; calls during a refresh coalesce into one more round. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true
      return this.refreshing
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false
        const [services, routers] = await Promise.all([
          this.o.controller.services(),
          this.o.controller.edgeRouters(),
        ])
        if (this.closed) return
        this.o.sink.routersChanged(routers)
        this.serviceList = services
        this.serviceByName = new Map(services.map((s) => [s.name, s]))
        this.o.sink.servicesChanged(services)
      } while (this.refreshAgain && !this.closed)
    })().finally(() => {
      this.refreshing = null
    })
    return this.refreshing
  }

  /** A router refused our certificate: asks the controller whether this identity is revoked. */
  checkRevoked(): void {
    this.refresh().catch((e) => {
      if ((e as SdkError).code === 'ERR_IDENTITY_REVOKED') this.o.sink.revoked((e as SdkError).message)
    })
  }

  /** Opens the event stream (and reopens it with backoff when it is lost). */
  subscribe(): void {
    if (this.closed) return
    let opened = false
    const { logger } = this.o
    this.closeEvents = this.o.controller.events(
      () => {
        opened = true
        this.eventsBackoff.reset()
        logger.debug?.({}, 'event stream open')
        // Changes may have happened while we were not subscribed.
        this.refresh().catch((err) => logger.warn?.({ err }, 'refresh failed'))
      },
      (ev) => this.onEvent(ev),
      (err) => {
        this.closeEvents = null
        if (this.closed) return
        if ((err as SdkError).code === 'ERR_IDENTITY_REVOKED') {
          this.o.sink.revoked((err as SdkError).message)
          return
        }
        const delay = this.eventsBackoff.next()
        logger.info?.({ err, delay, opened }, 'event stream lost, reconnecting')
        this.eventsTimer = setTimeout(() => {
          this.eventsTimer = null
          this.subscribe()
        }, delay)
        this.eventsTimer.unref()
      },
      this.o.eventsIdleTimeoutMs,
    )
  }

  private onEvent(ev: ClientEvent): void {
    switch (ev.type) {
      case 'services-changed':
      case 'routers-changed':
        this.refresh().catch((err) => {
          if ((err as SdkError).code === 'ERR_IDENTITY_REVOKED')
            this.o.sink.revoked((err as SdkError).message)
          else this.o.logger.warn?.({ err }, 'refresh failed')
        })
        return
      case 'revoked':
        this.o.sink.revoked(ev.reason)
        return
      default:
        return
    }
  }

  /** Closes the event stream; later refreshes deliver nothing. */
  close(): void {
    this.closed = true
    this.closeEvents?.()
    this.closeEvents = null
    if (this.eventsTimer) clearTimeout(this.eventsTimer)
  }
}
