/**
 * The core: what the APIs and the edge runtime call. A facade over the modules that own each
 * concept; it holds no logic of its own beyond start-up and housekeeping:
 *
 * - write.ts (one transaction per write, `record()`), replication.ts (PostgreSQL change log),
 *   snapshot.ts (policy data from the store), repo.ts, roles.ts;
 * - entities/: one module per entity kind, in one table (entities/registry.ts), plus terminators;
 * - sessions.ts (login, session tokens); enrollment/records.ts and enrollment/certificates.ts;
 * - read-models.ts (client service lists, policy advisor, audit log).
 */
import type {
  AdvisorReport,
  ClientEdgeRouter,
  ClientService,
  PolicyIndex,
  PolicySnapshot,
  Terminator,
  TerminatorPrecedence,
} from '@nullport/protocol'
import type { Logger } from 'pino'
import type { ControllerConfig } from '../config.js'
import { Certificates } from '../enrollment/certificates.js'
import { type EnrollmentRecord, EnrollmentRecords, type EnrollmentSigning } from '../enrollment/records.js'
import type { EnrolledKind } from '../enrollment/tokens.js'
import type { Store } from '../store/db.js'
import type { ChangeFeed } from './change-feed.js'
import type { IdentityInput } from './entities/identities.js'
import type { EntityType, EntityView } from './entities/kind.js'
import { createEntityTable, type EntityTable } from './entities/registry.js'
import type { RouterStatus } from './entities/routers.js'
import { type TerminatorInput, Terminators } from './entities/terminators.js'
import type { ListQuery } from './query.js'
import { ReadModels } from './read-models.js'
import { ChangeLog } from './replication.js'
import type { ListResult } from './repo.js'
import { type SessionKind, Sessions } from './sessions.js'
import { readSnapshot } from './snapshot.js'
import { type Actor, type WriteCtx, WritePipeline, type WriteResult } from './write.js'

export interface CoreDeps {
  config: ControllerConfig
  log: Logger
  store: Store
  policy: PolicyIndex
  feed: ChangeFeed
  /** Signs enrollment tokens (the edge's EnrollmentSigner); without one, creating identities and routers answers ERR_UNAVAILABLE. */
  signer?: EnrollmentSigning
}

export class CoreService {
  readonly log: Logger
  private readonly store: Store
  private readonly policy: PolicyIndex
  private readonly feed: ChangeFeed
  /** PostgreSQL: the change log shared with other controllers. */
  private readonly changeLog: ChangeLog | undefined
  private readonly writes: WritePipeline
  private readonly entities: EntityTable
  private readonly terminators: Terminators
  private readonly sessions: Sessions
  private readonly enrollments: EnrollmentRecords
  private readonly certificates: Certificates
  private readonly reads: ReadModels

  constructor(deps: CoreDeps) {
    this.log = deps.log
    this.store = deps.store
    this.policy = deps.policy
    this.feed = deps.feed
    const db = deps.store.db
    this.changeLog =
      deps.store.dialect === 'postgres' ? new ChangeLog(deps.store, deps.feed, deps.log) : undefined
    this.writes = new WritePipeline(deps.store, deps.feed, this.changeLog)
    this.enrollments = new EnrollmentRecords(db, this.writes, deps.config, deps.signer)
    this.certificates = new Certificates(db, this.writes)
    this.entities = createEntityTable({ db, writes: this.writes, enrollments: this.enrollments })
    this.terminators = new Terminators(deps.store.db, this.writes, deps.policy)
    this.sessions = new Sessions(deps.store.db, this.writes, deps.config)
    this.reads = new ReadModels(deps.store.db, deps.policy, this.entities['edge-routers'])
  }

  /** Login failures per username + client address. */
  get loginLimiter(): Sessions['loginLimiter'] {
    return this.sessions.loginLimiter
  }

  // ---------------------------------------------------------------------------------------------
  // start-up, housekeeping, transactions

  /** Creates built-in config types, resets router online state, loads the policy index. */
  async init(): Promise<void> {
    await this.entities['config-types'].ensureBuiltins()
    // one controller per SQLite file: no router is connected to us yet
    if (this.store.dialect === 'sqlite') await this.entities['edge-routers'].markAllOffline()
    await this.changeLog?.listen()
    const { snapshot, logId } = await readSnapshot(this.store)
    this.changeLog?.startAfter(logId)
    this.policy.load(snapshot)
    this.feed.version = snapshot.version
    // batches committed while the snapshot was read are replayed (the index ignores older versions)
    await this.changeLog?.catchUp()
  }

  /** Housekeeping (run every few minutes): expired sessions, old change-log rows. */
  async maintenance(): Promise<{ sessions: number; changeLog: number }> {
    const sessions = await this.sessions.purgeExpired()
    const changeLog = this.changeLog ? await this.changeLog.prune() : 0
    return { sessions, changeLog }
  }

  /** Reads the whole policy data from the store (consistent: one transaction). */
  async loadSnapshot(): Promise<PolicySnapshot> {
    return (await readSnapshot(this.store)).snapshot
  }

  /** Runs `fn` as one write (see write.ts). */
  write<T>(actor: Actor, fn: (w: WriteCtx) => Promise<T>): Promise<T> {
    return this.writes.write(actor, fn)
  }

  /** PostgreSQL: publishes the change-log batches not seen yet. */
  catchUp(): Promise<void> {
    return this.changeLog?.catchUp() ?? Promise.resolve()
  }

  // ---------------------------------------------------------------------------------------------
  // entities (management API), by kind

  list(type: EntityType, q: ListQuery): Promise<ListResult<EntityView>> {
    return this.entities[type].list(q)
  }

  get(type: EntityType, ref: string): Promise<EntityView> {
    return this.entities[type].get(ref)
  }

  create(type: EntityType, body: Record<string, unknown>, actor: Actor): Promise<WriteResult> {
    return this.entities[type].create(body as never, actor)
  }

  update(type: EntityType, ref: string, body: Record<string, unknown>, actor: Actor): Promise<WriteResult> {
    return this.entities[type].update(ref, body as never, actor)
  }

  remove(type: EntityType, ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.entities[type].remove(ref, actor)
  }

  updateIdentity(ref: string, body: Partial<IdentityInput>, actor: Actor): Promise<WriteResult> {
    return this.entities.identities.update(ref, body, actor)
  }

  /** First-start admin bootstrap (a no-op once an admin exists; ERR_NO_ADMIN without credentials). */
  ensureAdmin(creds: {
    username?: string
    password?: string
  }): Promise<{ created: boolean; name: string | null }> {
    return this.entities.identities.ensureAdmin(creds)
  }

  /** New enrollment JWT; the old token and the existing certificates are invalidated at once. */
  async reEnroll(kind: EnrolledKind, ref: string, actor: Actor): Promise<WriteResult> {
    const r = await this.enrollments.reEnroll(kind, ref, actor)
    const view = await this.get(kind === 'identity' ? 'identities' : 'edge-routers', r.id)
    return { data: { ...view, enrollment: r.enrollment }, warnings: [] }
  }

  // ---------------------------------------------------------------------------------------------
  // routers and terminators (fabric API, edge runtime)

  setRouterStatus(routerId: string, s: RouterStatus): Promise<void> {
    return this.entities['edge-routers'].setStatus(routerId, s)
  }

  routerStreamOpened(routerId: string): Promise<void> {
    return this.entities['edge-routers'].streamOpened(routerId)
  }

  listTerminators(q: ListQuery & { serviceId?: string; routerId?: string }): Promise<ListResult<EntityView>> {
    return this.terminators.list(q)
  }

  createTerminator(t: TerminatorInput, actor: Actor): Promise<Terminator> {
    return this.terminators.create(t, actor)
  }

  bindTerminator(
    routerId: string,
    body: { serviceId: string; identityId: string; cost?: number; precedence?: TerminatorPrecedence },
    actor: Actor,
  ): Promise<Terminator> {
    return this.terminators.bind(routerId, body, actor)
  }

  deleteTerminator(id: string, actor: Actor): Promise<{ id: string }> {
    return this.terminators.remove(id, actor)
  }

  unbindTerminator(routerId: string, id: string, actor: Actor): Promise<{ id: string }> {
    return this.terminators.unbind(routerId, id, actor)
  }

  routerTerminatorIds(routerId: string): Promise<string[]> {
    return this.terminators.idsOfRouter(routerId)
  }

  // ---------------------------------------------------------------------------------------------
  // sessions

  authenticatePassword(username: string, password: string, clientIp: string) {
    return this.sessions.authenticatePassword(username, password, clientIp)
  }

  createSession(identityId: string, kind: SessionKind, info: Record<string, unknown> = {}) {
    return this.sessions.create(identityId, kind, info)
  }

  verifySession(token: string, kind?: SessionKind) {
    return this.sessions.verify(token, kind)
  }

  deleteSession(sessionId: string, actor: Actor): Promise<void> {
    return this.sessions.remove(sessionId, actor)
  }

  // ---------------------------------------------------------------------------------------------
  // enrollment records and certificates

  findEnrollment(jti: string): Promise<EnrollmentRecord | null> {
    return this.enrollments.find(jti)
  }

  completeEnrollment(o: Parameters<EnrollmentRecords['complete']>[0]): Promise<{ id: string; name: string }> {
    return this.enrollments.complete(o)
  }

  addCertificate(o: Parameters<Certificates['add']>[0]): Promise<void> {
    return this.certificates.add(o)
  }

  findCertificate(fingerprint: string) {
    return this.certificates.find(fingerprint)
  }

  // ---------------------------------------------------------------------------------------------
  // read models

  clientServices(identityId: string): Promise<ClientService[]> {
    return this.reads.clientServices(identityId)
  }

  clientEdgeRouters(identityId: string): Promise<ClientEdgeRouter[]> {
    return this.reads.clientEdgeRouters(identityId)
  }

  policyAdvisor(identityRef: string, serviceRef: string): Promise<AdvisorReport> {
    return this.reads.policyAdvisor(identityRef, serviceRef)
  }

  auditLog(q: ListQuery & { entityId?: string; entityType?: string; actor?: string }) {
    return this.reads.auditLog(q)
  }
}
