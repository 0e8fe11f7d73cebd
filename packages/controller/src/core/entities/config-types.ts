/**
 * Config types: a name and the JSON Schema its configs' data must match. The built-in ones
 * (intercept.v1, host.v1) are created and kept current at start and cannot be changed.
 */
import { ControllerError } from '../../errors.js'
import type { ConfigRow, ConfigTypeRow } from '../../store/schema.js'
import { BUILTIN_CONFIG_TYPES } from '../builtin-config-types.js'
import { boolOf, checkNameValue, isUniqueViolation, nameInUse } from '../checks.js'
import { newId } from '../crypto.js'
import { checkSchema, validateJson } from '../json-schema.js'
import type { ListQuery } from '../query.js'
import { checkName, listRows, mustFind } from '../repo.js'
import { type Actor, record, SYSTEM_ACTOR, type WriteResult } from '../write.js'
import type { EntityDeps, EntityKind, EntityView } from './kind.js'

export type ConfigTypeInput = {
  name: string
  schema?: Record<string, unknown>
}

function parseSchema(schema: unknown): Record<string, unknown> {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema))
    throw new ControllerError('ERR_SCHEMA_INVALID', 'schema: must be a JSON Schema object', {
      path: '$.schema',
    })
  const problems = checkSchema(schema)
  if (problems.length > 0)
    throw new ControllerError('ERR_SCHEMA_INVALID', `schema: ${problems.slice(0, 5).join('; ')}`, {
      path: '$.schema',
      problems,
    })
  return schema as Record<string, unknown>
}

function builtinReadonly(row: ConfigTypeRow, verb: 'changed' | 'deleted'): ControllerError {
  return new ControllerError(
    'ERR_BUILTIN_READONLY',
    `config type ${row.name} is built in and cannot be ${verb}`,
    {
      id: row.id,
    },
  )
}

function view(r: ConfigTypeRow): EntityView {
  return {
    id: r.id,
    name: r.name,
    schema: JSON.parse(r.schema),
    builtin: boolOf(r.builtin),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}

export class ConfigTypes implements EntityKind {
  constructor(private readonly d: EntityDeps) {}

  /** Creates the built-in config types, or updates their schema when it changed. */
  async ensureBuiltins(): Promise<void> {
    for (const t of BUILTIN_CONFIG_TYPES) {
      const existing = await this.d.db
        .selectFrom('config_types')
        .select(['id', 'schema'])
        .where('name', '=', t.name)
        .executeTakeFirst()
      const schema = JSON.stringify(t.schema)
      if (!existing) {
        await this.d.writes.write(SYSTEM_ACTOR, async (w) => {
          const id = newId()
          await w.trx
            .insertInto('config_types')
            .values({ id, name: t.name, schema, builtin: 1, created_at: w.now, updated_at: w.now })
            .execute()
          await record(w, {
            action: 'create',
            type: 'config-type',
            id,
            name: t.name,
            details: { builtin: true },
          })
        })
      } else if (existing.schema !== schema) {
        await this.d.writes.write(SYSTEM_ACTOR, async (w) => {
          await w.trx
            .updateTable('config_types')
            .set({ schema, updated_at: w.now })
            .where('id', '=', existing.id)
            .execute()
          await record(w, {
            action: 'update',
            type: 'config-type',
            id: existing.id,
            name: t.name,
            details: { builtin: true, fields: ['schema'] },
          })
        })
      }
    }
  }

  async list(q: ListQuery) {
    const r = await listRows<ConfigTypeRow>(this.d.db, 'config_types', q, {
      name: 'name',
      id: 'id',
      createdAt: 'created_at',
    })
    return { data: r.rows.map(view), pagination: r.pagination }
  }

  async get(ref: string): Promise<EntityView> {
    return view(await mustFind<ConfigTypeRow>(this.d.db, 'config_types', ref, 'config type'))
  }

  async create(body: ConfigTypeInput, actor: Actor): Promise<WriteResult> {
    const name = checkNameValue(body.name)
    const schema = parseSchema(body.schema ?? { type: 'object' })
    const id = await this.d.writes.write(actor, async (w) => {
      await checkName(w.trx, 'config_types', name, 'config type')
      const id = newId()
      await w.trx
        .insertInto('config_types')
        .values({
          id,
          name,
          schema: JSON.stringify(schema),
          builtin: 0,
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('config type', name) : err
        })
      await record(w, {
        action: 'create',
        type: 'config-type',
        id,
        name,
        details: { fields: Object.keys(body) },
        touch: 'configType',
      })
      return id
    })
    return { data: await this.get(id), warnings: [] }
  }

  async update(ref: string, body: Partial<ConfigTypeInput>, actor: Actor): Promise<WriteResult> {
    const schema = body.schema === undefined ? undefined : parseSchema(body.schema)
    const id = await this.d.writes.write(actor, async (w) => {
      const row = await mustFind<ConfigTypeRow>(w.trx, 'config_types', ref, 'config type')
      if (boolOf(row.builtin)) throw builtinReadonly(row, 'changed')
      const name = body.name === undefined ? row.name : checkNameValue(body.name)
      if (name !== row.name) await checkName(w.trx, 'config_types', name, 'config type', row.id)
      if (schema !== undefined) {
        // every existing config of this type must still be valid
        const configs = (await w.trx
          .selectFrom('configs')
          .selectAll()
          .where('config_type_id', '=', row.id)
          .execute()) as ConfigRow[]
        for (const c of configs) {
          const errs = validateJson(schema, JSON.parse(c.data))
          if (errs.length > 0)
            throw new ControllerError(
              'ERR_CONFIG_INVALID',
              `config ${c.name} would not match the new schema: ${errs[0]!.path.replace(/^\$\.?/, '') || 'data'} ${errs[0]!.message}`,
              { config: c.name, path: errs[0]!.path },
            )
        }
      }
      await w.trx
        .updateTable('config_types')
        .set({ name, schema: schema === undefined ? row.schema : JSON.stringify(schema), updated_at: w.now })
        .where('id', '=', row.id)
        .execute()
      await record(w, {
        action: 'update',
        type: 'config-type',
        id: row.id,
        name,
        details: { fields: Object.keys(body) },
        touch: 'configType',
      })
      return row.id
    })
    return { data: await this.get(id), warnings: [] }
  }

  async remove(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.d.writes.write(actor, async (w) => {
      const row = await mustFind<ConfigTypeRow>(w.trx, 'config_types', ref, 'config type')
      if (boolOf(row.builtin)) throw builtinReadonly(row, 'deleted')
      const used = await w.trx
        .selectFrom('configs')
        .select('name')
        .where('config_type_id', '=', row.id)
        .limit(10)
        .execute()
      if (used.length > 0)
        throw new ControllerError(
          'ERR_CONFIG_TYPE_IN_USE',
          `config type ${row.name} is used by configs ${used.map((u) => u.name).join(', ')}: delete them first`,
          { configs: used.map((u) => u.name) },
        )
      await w.trx.deleteFrom('config_types').where('id', '=', row.id).execute()
      await record(w, {
        action: 'delete',
        type: 'config-type',
        id: row.id,
        name: row.name,
        touch: 'configType',
      })
      return { id: row.id, name: row.name }
    })
  }
}
