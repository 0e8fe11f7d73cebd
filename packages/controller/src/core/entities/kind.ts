/**
 * What every entity kind of the management API implements (one module per kind under
 * core/entities/, registered in registry.ts), and the parts of the core it is built from.
 */
import type { EnrollmentRecords } from '../../enrollment/records.js'
import type { ListQuery } from '../query.js'
import type { Db } from '../../store/db.js'
import type { ListResult } from '../repo.js'
import type { Actor, WritePipeline, WriteResult } from '../write.js'

export type EntityType =
  | 'identities'
  | 'services'
  | 'configs'
  | 'config-types'
  | 'service-policies'
  | 'edge-routers'
  | 'edge-router-policies'
  | 'service-edge-router-policies'

export const ENTITY_TYPES: EntityType[] = [
  'identities',
  'services',
  'configs',
  'config-types',
  'service-policies',
  'edge-routers',
  'edge-router-policies',
  'service-edge-router-policies',
]

/** An entity as the API shows it. */
export type EntityView = Record<string, unknown>

/**
 * CRUD of one entity kind. Bodies were validated by the API's JSON Schemas; the module re-checks
 * what the schemas cannot (names, roles, references, config data).
 */
export interface EntityKind {
  list(q: ListQuery): Promise<ListResult<EntityView>>
  /** By id or name; ERR_NOT_FOUND otherwise. */
  get(ref: string): Promise<EntityView>
  create(body: Record<string, unknown>, actor: Actor): Promise<WriteResult>
  update(ref: string, body: Record<string, unknown>, actor: Actor): Promise<WriteResult>
  remove(ref: string, actor: Actor): Promise<{ id: string; name: string }>
}

/** What entity modules are built from. */
export interface EntityDeps {
  /** Reads outside a write (`store.db`). */
  db: Db
  writes: WritePipeline
  /** Identities and edge routers issue enrollment tokens when created. */
  enrollments: EnrollmentRecords
}
