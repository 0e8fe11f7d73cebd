/**
 * The controller context: everything a component needs, created once by `startController`
 * (server.ts) and passed to route registrars. The edge runtime (edge/runtime.ts: pushes, router
 * presence, routes, circuit reports) is built on it and registered as `ctx.edge`.
 */
import type { PolicyIndex } from '@nullport/protocol'
import type { Logger } from 'pino'
import type { ControllerConfig } from '../config.js'
import type { Db, Store } from '../store/db.js'
import type { ChangeFeed } from './change-feed.js'
import type { CoreService } from './service.js'

/** What the edge runtime provides to the server (see edge/runtime.ts). */
export interface EdgeModule {
  /** TLS material of the HTTPS server (client certs requested, not required). */
  tls: { key: string; cert: string; ca: string }
  /** Network CA bundle (root, then intermediate), PEM. */
  caBundlePem: string
  /** Called once the server listens, with the advertised base URL (the token issuer). */
  onListening?(baseUrl: string): Promise<void> | void
  /** Called on shutdown before the store closes (end SSE streams, timers). */
  close?(): Promise<void> | void
}

export interface ControllerContext {
  config: ControllerConfig
  /** Root logger; use `log(component)` for a named child. */
  logger: Logger
  log(component: string): Logger
  store: Store
  /** The Kysely handle (same as store.db); use `store.transaction` or core.write for writes. */
  db: Db
  core: CoreService
  /** Committed change batches; the policy index is updated before listeners run. */
  changes: ChangeFeed
  /** In-memory policy data, loaded at start and kept current by the change feed. */
  policy: PolicyIndex
  /** Set by startController before the server is built. */
  edge: EdgeModule
  /** The advertised base URL (`https://host:port`), known once listening. */
  baseUrl: string
}
