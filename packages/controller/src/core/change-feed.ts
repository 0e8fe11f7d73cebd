/**
 * The change feed: after each committed transaction the write pipeline (write.ts) publishes one batch, in
 * commit order. The controller's PolicyIndex is updated first (synchronously), then listeners run,
 * so a listener that reads the index sees the batch applied.
 *
 * - `changes` (DataChange[], ChangeBatch): policy data changes (routers, SDK pushes).
 * - `batch` (ChangeBatch): every committed batch, including entities that are not policy data
 *   (configs, config types) so SDK service lists can be refreshed.
 */
import { EventEmitter } from 'node:events'
import type { DataChange, PolicyIndex } from '@nullport/protocol'
import type { Logger } from 'pino'

export type EntityKind =
  | 'identity'
  | 'service'
  | 'config'
  | 'configType'
  | 'servicePolicy'
  | 'edgeRouter'
  | 'edgeRouterPolicy'
  | 'serviceEdgeRouterPolicy'
  | 'terminator'
  | 'authenticator'
  | 'enrollment'

export interface EntityEvent {
  entity: EntityKind
  op: 'create' | 'update' | 'delete'
  id: string
}

export interface ChangeBatch {
  /** The change version after this batch (the last DataChange's version, or the current one). */
  version: number
  changes: DataChange[]
  entities: EntityEvent[]
  actor: { id: string | null; name: string }
}

export interface ChangeFeedEvents {
  changes: [changes: DataChange[], batch: ChangeBatch]
  batch: [batch: ChangeBatch]
}

export class ChangeFeed extends EventEmitter<ChangeFeedEvents> {
  /** Highest version published. */
  version = 0
  constructor(
    private readonly policy: PolicyIndex,
    private readonly log: Logger,
  ) {
    super()
    this.setMaxListeners(0)
  }

  /** Called by the write pipeline (or the change-log replay) after commit, in commit order. */
  publish(batch: ChangeBatch): void {
    for (const c of batch.changes) {
      try {
        this.policy.apply(c)
      } catch (err) {
        this.log.error(
          { err, change: { op: c.op, entity: c.entity, version: c.version } },
          'policy index rejected a change',
        )
      }
    }
    if (batch.version > this.version) this.version = batch.version
    const safely = (fn: () => void) => {
      try {
        fn()
      } catch (err) {
        this.log.error({ err }, 'change feed listener failed')
      }
    }
    if (batch.changes.length > 0) {
      for (const l of this.listeners('changes'))
        safely(() => (l as (...a: ChangeFeedEvents['changes']) => void)(batch.changes, batch))
    }
    for (const l of this.listeners('batch'))
      safely(() => (l as (...a: ChangeFeedEvents['batch']) => void)(batch))
  }

  /** Subscribes to policy changes; returns the unsubscribe function. */
  subscribe(fn: (changes: DataChange[], batch: ChangeBatch) => void): () => void {
    this.on('changes', fn)
    return () => this.off('changes', fn)
  }
}
