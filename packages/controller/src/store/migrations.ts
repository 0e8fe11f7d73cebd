/**
 * Versioned migrations. Each runs in its own transaction and records itself in
 * `nullport_migrations`; on PostgreSQL an advisory lock keeps several controllers starting at
 * once from racing. Append new migrations; never edit a released one.
 */
import { createHash } from 'node:crypto'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Database } from './schema.js'

export type Dialect = 'sqlite' | 'postgres'

export interface Migration {
  version: number
  name: string
  up(db: Transaction<Database>, dialect: Dialect): Promise<void>
}

// biome-ignore lint/suspicious/noExplicitAny: the schema builder works on untyped tables during migrations
type AnyDb = Kysely<any>

async function roleTable(db: AnyDb, table: string, parent: string): Promise<void> {
  await db.schema
    .createTable(table)
    .addColumn('entity_id', 'text', (c) => c.notNull().references(`${parent}.id`).onDelete('cascade'))
    .addColumn('attr', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint(`${table}_pk`, ['entity_id', 'attr'])
    .execute()
  await db.schema.createIndex(`${table}_attr`).on(table).columns(['attr', 'entity_id']).execute()
}

function ts(t: ReturnType<AnyDb['schema']['createTable']>) {
  return t
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    async up(trx, dialect) {
      const db = trx as unknown as AnyDb
      await ts(
        db.schema
          .createTable('identities')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('default_hosting_cost', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('default_hosting_precedence', 'text', (c) => c.notNull().defaultTo('default')),
      ).execute()
      await ts(
        db.schema
          .createTable('edge_routers')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('advertise', 'text')
          .addColumn('is_online', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('cost', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('version', 'text'),
      ).execute()
      await ts(
        db.schema
          .createTable('services')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('encryption_required', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('terminator_strategy', 'text', (c) => c.notNull())
          .addColumn('max_idle_time_millis', 'integer', (c) => c.notNull().defaultTo(0)),
      ).execute()
      await roleTable(db, 'identity_role_attributes', 'identities')
      await roleTable(db, 'service_role_attributes', 'services')
      await roleTable(db, 'edge_router_role_attributes', 'edge_routers')
      await db.schema
        .createTable('authenticators')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('identity_id', 'text', (c) => c.references('identities.id').onDelete('cascade'))
        .addColumn('router_id', 'text', (c) => c.references('edge_routers.id').onDelete('cascade'))
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.unique())
        .addColumn('password_hash', 'text')
        .addColumn('fingerprint', 'text', (c) => c.unique())
        .addColumn('cert_pem', 'text')
        .addColumn('expires_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createIndex('authenticators_identity')
        .on('authenticators')
        .column('identity_id')
        .execute()
      await db.schema.createIndex('authenticators_router').on('authenticators').column('router_id').execute()
      await db.schema
        .createTable('enrollments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('identity_id', 'text', (c) => c.references('identities.id').onDelete('cascade'))
        .addColumn('router_id', 'text', (c) => c.references('edge_routers.id').onDelete('cascade'))
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('jwt', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('enrollments_identity').on('enrollments').column('identity_id').execute()
      await db.schema.createIndex('enrollments_router').on('enrollments').column('router_id').execute()
      await ts(
        db.schema
          .createTable('config_types')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('schema', 'text', (c) => c.notNull())
          .addColumn('builtin', 'integer', (c) => c.notNull().defaultTo(0)),
      ).execute()
      await ts(
        db.schema
          .createTable('configs')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('config_type_id', 'text', (c) =>
            c.notNull().references('config_types.id').onDelete('restrict'),
          )
          .addColumn('data', 'text', (c) => c.notNull()),
      ).execute()
      await db.schema.createIndex('configs_type').on('configs').column('config_type_id').execute()
      await db.schema
        .createTable('service_configs')
        .addColumn('service_id', 'text', (c) => c.notNull().references('services.id').onDelete('cascade'))
        .addColumn('config_id', 'text', (c) => c.notNull().references('configs.id').onDelete('restrict'))
        .addColumn('config_type_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('service_configs_pk', ['service_id', 'config_id'])
        .addUniqueConstraint('service_configs_one_per_type', ['service_id', 'config_type_id'])
        .execute()
      await db.schema
        .createIndex('service_configs_config')
        .on('service_configs')
        .column('config_id')
        .execute()
      for (const [table, cols] of [
        ['service_policies', ['type', 'semantic', 'identity_roles', 'service_roles', 'posture_check_roles']],
        ['edge_router_policies', ['semantic', 'identity_roles', 'edge_router_roles']],
        ['service_edge_router_policies', ['semantic', 'service_roles', 'edge_router_roles']],
      ] as const) {
        let t = db.schema
          .createTable(table)
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
        for (const col of cols) t = t.addColumn(col, 'text', (c) => c.notNull())
        await ts(t).execute()
      }
      await db.schema
        .createTable('terminators')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('service_id', 'text', (c) => c.notNull().references('services.id').onDelete('cascade'))
        .addColumn('router_id', 'text', (c) => c.notNull().references('edge_routers.id').onDelete('cascade'))
        .addColumn('identity_id', 'text', (c) => c.notNull().references('identities.id').onDelete('cascade'))
        .addColumn('cost', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('precedence', 'text', (c) => c.notNull().defaultTo('default'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('terminators_service').on('terminators').column('service_id').execute()
      await db.schema.createIndex('terminators_router').on('terminators').column('router_id').execute()
      await db.schema.createIndex('terminators_identity').on('terminators').column('identity_id').execute()
      await db.schema
        .createTable('api_sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('identity_id', 'text', (c) => c.notNull().references('identities.id').onDelete('cascade'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('api_sessions_identity').on('api_sessions').column('identity_id').execute()
      await db.schema
        .createTable('audit_log')
        .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('actor_name', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('entity_type', 'text', (c) => c.notNull())
        .addColumn('entity_id', 'text', (c) => c.notNull())
        .addColumn('entity_name', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createIndex('audit_log_entity')
        .on('audit_log')
        .columns(['entity_type', 'entity_id'])
        .execute()
      await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute()
      await db.schema
        .createTable('change_version')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('version', 'bigint', (c) => c.notNull())
        .execute()
      await db.insertInto('change_version').values({ id: 1, version: 0 }).execute()
    },
  },
  {
    version: 2,
    name: 'change log (several controllers on one PostgreSQL)',
    async up(trx, dialect) {
      const db = trx as unknown as AnyDb
      await db.schema
        .createTable('change_log')
        .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
          dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('origin', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('batch', 'text', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('change_log_at').on('change_log').column('at').execute()
    },
  },
  {
    version: 3,
    name: 'enrollment tokens stored as SHA-256 hashes only',
    async up(trx) {
      const db = trx as unknown as AnyDb
      await db.schema.alterTable('enrollments').addColumn('token_hash', 'text').execute()
      const rows = (await db.selectFrom('enrollments').select(['id', 'jwt']).execute()) as Array<{
        id: string
        jwt: string
      }>
      for (const r of rows) {
        await db
          .updateTable('enrollments')
          .set({ token_hash: createHash('sha256').update(r.jwt).digest('hex') })
          .where('id', '=', r.id)
          .execute()
      }
      await db.schema.alterTable('enrollments').dropColumn('jwt').execute()
    },
  },
]

/** Applies pending migrations; returns the versions applied. */
export async function migrate(db: Kysely<Database>, dialect: Dialect): Promise<number[]> {
  const any = db as unknown as AnyDb
  await any.schema
    .createTable('nullport_migrations')
    .ifNotExists()
    .addColumn('version', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('applied_at', 'text', (c) => c.notNull())
    .execute()
  const applied: number[] = []
  for (const m of MIGRATIONS) {
    const done = await db.transaction().execute(async (trx) => {
      if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(7401)`.execute(trx)
      const row = await trx
        .selectFrom('nullport_migrations')
        .select('version')
        .where('version', '=', m.version)
        .executeTakeFirst()
      if (row) return false
      await m.up(trx, dialect)
      await trx
        .insertInto('nullport_migrations')
        .values({ version: m.version, name: m.name, applied_at: new Date().toISOString() })
        .execute()
      return true
    })
    if (done) applied.push(m.version)
  }
  return applied
}
