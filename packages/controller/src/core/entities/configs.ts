/**
 * Configs: typed data (intercept addresses, host targets, ...) attached to services; the data
 * must match its config type's schema (and, for built-in types, their semantic checks). Configs
 * are not policy data: a change reaches SDKs as `services-changed` through the entity events.
 */
import { ControllerError } from '../../errors.js'
import type { ConfigRow, ConfigTypeRow } from '../../store/schema.js'
import { semanticChecks } from '../builtin-config-types.js'
import { boolOf, checkNameValue, isUniqueViolation, nameInUse, validation } from '../checks.js'
import { newId } from '../crypto.js'
import { validateJson } from '../json-schema.js'
import type { ListQuery } from '../query.js'
import { checkName, chunk, findRow, listRows, mustFind } from '../repo.js'
import { type Actor, record, touch, type WriteResult } from '../write.js'
import type { EntityDeps, EntityKind, EntityView } from './kind.js'

export type ConfigInput = {
  name: string
  /** Config type id or name. */
  configTypeId: string
  data: Record<string, unknown>
}

/** ERR_CONFIG_INVALID unless `data` matches the type's schema (and its semantic checks). */
function checkConfigData(type: ConfigTypeRow, data: unknown): Record<string, unknown> {
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new ControllerError('ERR_CONFIG_INVALID', 'data: must be a JSON object', { path: '$.data' })
  const schema = JSON.parse(type.schema)
  const errs = validateJson(schema, data)
  const semantic = semanticChecks[type.name]
  if (errs.length === 0 && semantic && boolOf(type.builtin))
    errs.push(...semantic(data as Record<string, unknown>))
  if (errs.length > 0) {
    const e = errs[0]!
    const path = `$.data${e.path.slice(1)}`
    throw new ControllerError(
      'ERR_CONFIG_INVALID',
      `${path.slice(2)}: ${e.message} (config type ${type.name})`,
      {
        path,
        configType: type.name,
        errors: errs.slice(0, 10).map((x) => ({ ...x, path: `$.data${x.path.slice(1)}` })),
      },
    )
  }
  return data as Record<string, unknown>
}

export class Configs implements EntityKind {
  constructor(private readonly d: EntityDeps) {}

  async list(q: ListQuery) {
    const r = await listRows<ConfigRow>(this.d.db, 'configs', q, {
      name: 'name',
      id: 'id',
      configTypeId: 'config_type_id',
      createdAt: 'created_at',
    })
    return { data: await this.views(r.rows), pagination: r.pagination }
  }

  async get(ref: string): Promise<EntityView> {
    return (await this.views([await mustFind<ConfigRow>(this.d.db, 'configs', ref, 'config')]))[0]!
  }

  async create(body: ConfigInput, actor: Actor): Promise<WriteResult> {
    const name = checkNameValue(body.name)
    const id = await this.d.writes.write(actor, async (w) => {
      if (typeof body.configTypeId !== 'string') throw validation('$.configTypeId', 'is required')
      const type = await findRow<ConfigTypeRow>(w.trx, 'config_types', body.configTypeId)
      if (!type)
        throw new ControllerError(
          'ERR_CONFIG_TYPE_NOT_FOUND',
          `configTypeId: no config type with id or name "${body.configTypeId}" (built in: intercept.v1, host.v1)`,
          { path: '$.configTypeId', ref: body.configTypeId },
        )
      const data = checkConfigData(type, body.data)
      await checkName(w.trx, 'configs', name, 'config')
      const id = newId()
      await w.trx
        .insertInto('configs')
        .values({
          id,
          name,
          config_type_id: type.id,
          data: JSON.stringify(data),
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('config', name) : err
        })
      await record(w, {
        action: 'create',
        type: 'config',
        id,
        name,
        details: { configType: type.name },
        touch: 'config',
      })
      return id
    })
    return { data: await this.get(id), warnings: [] }
  }

  async update(ref: string, body: Partial<ConfigInput>, actor: Actor): Promise<WriteResult> {
    const id = await this.d.writes.write(actor, async (w) => {
      const row = await mustFind<ConfigRow>(w.trx, 'configs', ref, 'config')
      if (body.configTypeId !== undefined) {
        const t = await findRow<ConfigTypeRow>(w.trx, 'config_types', body.configTypeId)
        if (!t || t.id !== row.config_type_id)
          throw validation(
            '$.configTypeId',
            'the config type of a config cannot be changed: create a new config',
          )
      }
      const name = body.name === undefined ? row.name : checkNameValue(body.name)
      if (name !== row.name) await checkName(w.trx, 'configs', name, 'config', row.id)
      const type = (await w.trx
        .selectFrom('config_types')
        .selectAll()
        .where('id', '=', row.config_type_id)
        .executeTakeFirstOrThrow()) as ConfigTypeRow
      const data = body.data === undefined ? JSON.parse(row.data) : checkConfigData(type, body.data)
      await w.trx
        .updateTable('configs')
        .set({ name, data: JSON.stringify(data), updated_at: w.now })
        .where('id', '=', row.id)
        .execute()
      await record(w, {
        action: 'update',
        type: 'config',
        id: row.id,
        name,
        details: { fields: Object.keys(body) },
        touch: 'config',
      })
      // the services using it have new data for their SDKs
      const services = await w.trx
        .selectFrom('service_configs')
        .select('service_id')
        .where('config_id', '=', row.id)
        .execute()
      for (const s of services) touch(w, 'service', 'update', s.service_id)
      return row.id
    })
    return { data: await this.get(id), warnings: [] }
  }

  async remove(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.d.writes.write(actor, async (w) => {
      const row = await mustFind<ConfigRow>(w.trx, 'configs', ref, 'config')
      const used = await w.trx
        .selectFrom('service_configs as sc')
        .innerJoin('services as s', 's.id', 'sc.service_id')
        .select(['s.id', 's.name'])
        .where('sc.config_id', '=', row.id)
        .limit(20)
        .execute()
      if (used.length > 0)
        throw new ControllerError(
          'ERR_CONFIG_IN_USE',
          `config ${row.name} is used by services ${used.map((u) => u.name).join(', ')}: remove it from them first (nullport edge update service NAME --configs ...)`,
          { services: used.map((u) => ({ id: u.id, name: u.name })) },
        )
      await w.trx.deleteFrom('configs').where('id', '=', row.id).execute()
      await record(w, { action: 'delete', type: 'config', id: row.id, name: row.name, touch: 'config' })
      return { id: row.id, name: row.name }
    })
  }

  private async views(rows: ConfigRow[]): Promise<EntityView[]> {
    const typeIds = [...new Set(rows.map((r) => r.config_type_id))]
    const types = new Map<string, string>()
    for (const part of chunk(typeIds)) {
      if (part.length === 0) continue
      for (const t of (await this.d.db
        .selectFrom('config_types')
        .select(['id', 'name'])
        .where('id', 'in', part)
        .execute()) as Array<{ id: string; name: string }>)
        types.set(t.id, t.name)
    }
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      configTypeId: r.config_type_id,
      configTypeName: types.get(r.config_type_id) ?? null,
      data: JSON.parse(r.data),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }))
  }
}
