/**
 * The write pipeline. Every write runs in ONE store transaction, serialized with every other write
 * of this controller; `record()` adds what the write did (its audit row, its policy DataChange, its
 * entity event) in one call. At commit the batch's DataChanges get versions from the
 * `change_version` counter (in the same transaction) and, after commit, the batch is published to
 * the change feed in commit order (on PostgreSQL through the change log, see replication.ts).
 */
import type { DataChange, DataEntity, DataEntityName } from '@nullport/protocol'
import { sql } from 'kysely'
import type { Store, Tx } from '../store/db.js'
import type { ChangeBatch, ChangeFeed, EntityEvent, EntityKind } from './change-feed.js'
import type { ChangeLog } from './replication.js'
import { anyDb } from './repo.js'

/** Who makes a change (audit log). */
export interface Actor {
  id: string | null
  name: string
}
export const SYSTEM_ACTOR: Actor = { id: null, name: 'system' }

type PendingChange = { op: 'upsert' } & DataEntity extends infer U ? U : never
/** A policy data change of a write, before commit gives it a version. */
export type Pending = PendingChange | { op: 'delete'; entity: DataEntityName; id: string }

/** The state of one write transaction. */
export interface WriteCtx {
  trx: Tx
  actor: Actor
  now: string
  pending: Pending[]
  entities: EntityEvent[]
  warnings: string[]
}

/** Result of a write: the entity as the API shows it, and warnings (e.g. roles matching nothing). */
export interface WriteResult<T = Record<string, unknown>> {
  data: T
  warnings: string[]
}

/** What one write did to one entity (see `record`). */
export interface WriteRecord {
  /** Audit action: create, update, delete, re-enroll, enroll, login, ... */
  action: string
  /** Audit entity type: identity, edge-router, service-policy, api-session, ... */
  type: string
  id: string
  name: string | null
  details?: Record<string, unknown>
  /** The policy data change routers and SDKs receive, when the entity is policy data. */
  change?: Pending
  /**
   * The entity event (SDK and router pushes, config refreshes). Its op is the action for create,
   * update and delete, else `update`.
   */
  touch?: EntityKind
}

/** Records one entity's write: the audit row, then its policy change and its entity event. */
export async function record(w: WriteCtx, r: WriteRecord): Promise<void> {
  await w.trx
    .insertInto('audit_log')
    .values({
      at: w.now,
      actor_id: w.actor.id,
      actor_name: w.actor.name,
      action: r.action,
      entity_type: r.type,
      entity_id: r.id,
      entity_name: r.name,
      details: JSON.stringify(r.details ?? {}),
    })
    .execute()
  if (r.change) w.pending.push(r.change)
  if (r.touch) {
    const op = r.action === 'create' || r.action === 'delete' ? r.action : 'update'
    touch(w, r.touch, op, r.id)
  }
}

/** An entity event without an audit row (router presence, services whose config changed). */
export function touch(w: WriteCtx, entity: EntityKind, op: EntityEvent['op'], id: string): void {
  w.entities.push({ entity, op, id })
}

export class WritePipeline {
  private queue: Promise<unknown> = Promise.resolve()

  /** `changeLog`: PostgreSQL only; batches are then published through the log. */
  constructor(
    private readonly store: Store,
    private readonly feed: ChangeFeed,
    private readonly changeLog: ChangeLog | undefined,
  ) {}

  /**
   * Runs `fn` in one transaction (serialized with every other write of this controller), then
   * writes versions for its DataChanges and publishes the batch after commit.
   */
  write<T>(actor: Actor, fn: (w: WriteCtx) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      let w!: WriteCtx
      let batch: ChangeBatch | undefined
      let logged = false
      const result = await this.store.transaction(async (trx) => {
        w = { trx, actor, now: new Date().toISOString(), pending: [], entities: [], warnings: [] }
        const r = await fn(w)
        const n = w.pending.length
        const row = await anyDb(trx)
          .updateTable('change_version')
          .set({ version: sql`version + ${n}` })
          .where('id', '=', 1)
          .returning('version')
          .executeTakeFirstOrThrow()
        const current = Number(row.version)
        const changes = w.pending.map((p, i) => ({ ...p, version: current - n + 1 + i }) as DataChange)
        batch = { version: current, changes, entities: w.entities, actor: w.actor }
        if (this.changeLog && (n > 0 || w.entities.length > 0)) {
          // other controllers on this database replay the batch (ids follow commit order: the
          // change_version row lock is held from the update above until commit)
          await this.changeLog.append(trx, batch, w.now)
          logged = true
        }
        return r
      })
      if (logged) await this.changeLog!.afterCommit()
      else if (batch && (batch.changes.length > 0 || batch.entities.length > 0)) this.feed.publish(batch)
      return result
    }
    const p = this.queue.then(run, run)
    this.queue = p.catch(() => {})
    return p
  }
}
