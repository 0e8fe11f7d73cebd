/**
 * Replication between controllers on one PostgreSQL: each committed batch is also a `change_log`
 * row (ids in commit order, pruned after an hour) and a `NOTIFY nullport_changes_<schema>`; every
 * controller replays the log in id order into its change feed (and so its PolicyIndex), its own
 * batches included.
 */
import { sql } from 'kysely'
import type { Logger } from 'pino'
import type { Store, Tx } from '../store/db.js'
import type { ChangeBatch, ChangeFeed } from './change-feed.js'
import { newId } from './crypto.js'

const RETENTION_MS = 3_600_000
const PRUNE_EVERY_WRITES = 500

export class ChangeLog {
  /** This controller process, in the change log. */
  readonly instanceId = newId()
  private lastLogId = 0
  private catchUpChain: Promise<void> = Promise.resolve()
  private writesSincePrune = 0

  constructor(
    private readonly store: Store,
    private readonly feed: ChangeFeed,
    private readonly log: Logger,
  ) {}

  /** Replays from after `logId` (the last log row a loaded snapshot includes). */
  startAfter(logId: number): void {
    this.lastLogId = logId
  }

  /** Follows other controllers' commits: catch up on every NOTIFY and after a reconnect. */
  async listen(): Promise<void> {
    if (!this.store.listen) return
    const onEvent = () => {
      this.catchUp().catch(() => {})
    }
    await this.store.listen(this.store.channelName('nullport_changes'), onEvent, onEvent)
  }

  /** Inside the write's transaction: the batch as a log row, and the NOTIFY (sent at commit). */
  async append(trx: Tx, batch: ChangeBatch, at: string): Promise<void> {
    const row = await trx
      .insertInto('change_log')
      .values({ origin: this.instanceId, at, batch: JSON.stringify(batch) })
      .returning('id')
      .executeTakeFirstOrThrow()
    await sql`select pg_notify(${this.store.channelName('nullport_changes')}, ${String(row.id)})`.execute(trx)
  }

  /**
   * After a local commit: publishes through the log, in order with other controllers' batches. The
   * write is committed either way (a failed read here is retried on the next write or NOTIFY).
   */
  async afterCommit(): Promise<void> {
    await this.catchUp().catch((err) => this.log.error({ err }, 'change-log catch-up after a write failed'))
    if (++this.writesSincePrune >= PRUNE_EVERY_WRITES) {
      this.writesSincePrune = 0
      await this.prune().catch(() => 0)
    }
  }

  /** Deletes log rows older than an hour; returns how many. */
  async prune(): Promise<number> {
    const cutoff = new Date(Date.now() - RETENTION_MS).toISOString()
    const r = await this.store.db.deleteFrom('change_log').where('at', '<', cutoff).executeTakeFirst()
    return Number(r.numDeletedRows ?? 0)
  }

  /**
   * Publishes every change-log batch after the last one seen, in id order (own and other
   * controllers' writes alike). Serialized; called after each local commit and on NOTIFY.
   */
  catchUp(): Promise<void> {
    const run = async () => {
      for (;;) {
        const rows = await this.store.db
          .selectFrom('change_log')
          .select(['id', 'batch'])
          .where('id', '>', this.lastLogId)
          .orderBy('id')
          .limit(500)
          .execute()
        for (const r of rows) {
          this.lastLogId = Number(r.id)
          try {
            const b = JSON.parse(r.batch) as ChangeBatch
            this.feed.publish(b)
          } catch (err) {
            this.log.error({ err, id: r.id }, 'cannot replay a change-log batch')
          }
        }
        if (rows.length < 500) return
      }
    }
    const p = this.catchUpChain.then(run, run)
    this.catchUpChain = p.catch((err) => {
      this.log.error({ err }, 'change-log catch-up failed')
    })
    return p
  }
}
