/**
 * Services: what identities dial and host. Each takes at most one config per config type;
 * deleting one deletes its terminators.
 */
import { DEFAULT_TERMINATOR_STRATEGY, type TerminatorStrategyName } from '@nullport/protocol'
import { ControllerError } from '../../errors.js'
import type { ConfigRow, ServiceRow } from '../../store/schema.js'
import { boolOf, checkNameValue, isUniqueViolation, nameInUse } from '../checks.js'
import { newId } from '../crypto.js'
import type { ListQuery } from '../query.js'
import { attrsFor, checkName, chunk, findRow, listRows, mustFind, setAttrs } from '../repo.js'
import { normAttrs } from '../roles.js'
import { serviceChange } from '../snapshot.js'
import { type Actor, record, type WriteCtx, type WriteResult } from '../write.js'
import type { EntityDeps, EntityKind, EntityView } from './kind.js'
import { terminatorsGoWith } from './terminators.js'

export type ServiceInput = {
  name: string
  roleAttributes?: string[]
  /** Config ids or names. */
  configs?: string[]
  encryptionRequired?: boolean
  terminatorStrategy?: TerminatorStrategyName
  maxIdleTimeMillis?: number
}

/** Replaces a service's configs (by id or name; one per config type). */
async function setServiceConfigs(w: WriteCtx, serviceId: string, refs: string[]): Promise<void> {
  const rows: ConfigRow[] = []
  for (const [i, ref] of refs.entries()) {
    const c = await findRow<ConfigRow>(w.trx, 'configs', ref)
    if (!c)
      throw new ControllerError('ERR_CONFIG_NOT_FOUND', `configs[${i}]: no config with id or name "${ref}"`, {
        path: `$.configs[${i}]`,
        ref,
      })
    if (rows.some((x) => x.id === c.id)) continue
    const same = rows.find((x) => x.config_type_id === c.config_type_id)
    if (same)
      throw new ControllerError(
        'ERR_DUPLICATE_CONFIG_TYPE',
        `configs[${i}]: "${c.name}" has the same config type as "${same.name}": a service takes one config per type`,
        { path: `$.configs[${i}]` },
      )
    rows.push(c)
  }
  await w.trx.deleteFrom('service_configs').where('service_id', '=', serviceId).execute()
  if (rows.length > 0)
    await w.trx
      .insertInto('service_configs')
      .values(rows.map((c) => ({ service_id: serviceId, config_id: c.id, config_type_id: c.config_type_id })))
      .execute()
}

export class Services implements EntityKind {
  constructor(private readonly d: EntityDeps) {}

  async list(q: ListQuery) {
    const r = await listRows<ServiceRow>(
      this.d.db,
      'services',
      q,
      { name: 'name', id: 'id', terminatorStrategy: 'terminator_strategy', createdAt: 'created_at' },
      { attrs: 'service_role_attributes', table: 'services' },
    )
    return { data: await this.views(r.rows), pagination: r.pagination }
  }

  async get(ref: string): Promise<EntityView> {
    return (await this.views([await mustFind<ServiceRow>(this.d.db, 'services', ref, 'service')]))[0]!
  }

  async create(body: ServiceInput, actor: Actor): Promise<WriteResult> {
    const name = checkNameValue(body.name)
    const attrs = normAttrs(body.roleAttributes, '$.roleAttributes')
    const r = await this.d.writes.write(actor, async (w) => {
      await checkName(w.trx, 'services', name, 'service')
      const id = newId()
      await w.trx
        .insertInto('services')
        .values({
          id,
          name,
          encryption_required: body.encryptionRequired === false ? 0 : 1,
          terminator_strategy: body.terminatorStrategy ?? DEFAULT_TERMINATOR_STRATEGY,
          max_idle_time_millis: body.maxIdleTimeMillis ?? 0,
          created_at: w.now,
          updated_at: w.now,
        })
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('service', name) : err
        })
      await setAttrs(w.trx, 'service_role_attributes', id, attrs)
      await setServiceConfigs(w, id, body.configs ?? [])
      await record(w, {
        action: 'create',
        type: 'service',
        id,
        name,
        details: { fields: Object.keys(body) },
        change: await serviceChange(w.trx, id),
        touch: 'service',
      })
      return { id, warnings: w.warnings }
    })
    return { data: await this.get(r.id), warnings: r.warnings }
  }

  async update(ref: string, body: Partial<ServiceInput>, actor: Actor): Promise<WriteResult> {
    const attrs =
      body.roleAttributes === undefined ? undefined : normAttrs(body.roleAttributes, '$.roleAttributes')
    const r = await this.d.writes.write(actor, async (w) => {
      const row = await mustFind<ServiceRow>(w.trx, 'services', ref, 'service')
      const name = body.name === undefined ? row.name : checkNameValue(body.name)
      if (name !== row.name) await checkName(w.trx, 'services', name, 'service', row.id)
      await w.trx
        .updateTable('services')
        .set({
          name,
          encryption_required:
            body.encryptionRequired === undefined ? row.encryption_required : body.encryptionRequired ? 1 : 0,
          terminator_strategy: body.terminatorStrategy ?? row.terminator_strategy,
          max_idle_time_millis: body.maxIdleTimeMillis ?? row.max_idle_time_millis,
          updated_at: w.now,
        })
        .where('id', '=', row.id)
        .execute()
        .catch((err) => {
          throw isUniqueViolation(err) ? nameInUse('service', name) : err
        })
      if (attrs !== undefined) await setAttrs(w.trx, 'service_role_attributes', row.id, attrs)
      if (body.configs !== undefined) await setServiceConfigs(w, row.id, body.configs)
      await record(w, {
        action: 'update',
        type: 'service',
        id: row.id,
        name,
        details: { fields: Object.keys(body) },
        change: await serviceChange(w.trx, row.id),
        touch: 'service',
      })
      return { id: row.id, warnings: w.warnings }
    })
    return { data: await this.get(r.id), warnings: r.warnings }
  }

  async remove(ref: string, actor: Actor): Promise<{ id: string; name: string }> {
    return this.d.writes.write(actor, async (w) => {
      const row = await mustFind<ServiceRow>(w.trx, 'services', ref, 'service')
      const terminators = await terminatorsGoWith(w, 'service_id', row.id)
      await w.trx.deleteFrom('terminators').where('service_id', '=', row.id).execute()
      await w.trx.deleteFrom('service_configs').where('service_id', '=', row.id).execute()
      await w.trx.deleteFrom('services').where('id', '=', row.id).execute()
      await record(w, {
        action: 'delete',
        type: 'service',
        id: row.id,
        name: row.name,
        details: { terminators },
        change: { op: 'delete', entity: 'service', id: row.id },
        touch: 'service',
      })
      return { id: row.id, name: row.name }
    })
  }

  private async views(rows: ServiceRow[]): Promise<EntityView[]> {
    const ids = rows.map((r) => r.id)
    const attrs = await attrsFor(this.d.db, 'service_role_attributes', ids)
    const links = new Map<string, Array<{ id: string; name: string; type: string }>>()
    for (const part of chunk(ids)) {
      if (part.length === 0) continue
      const rs = (await this.d.db
        .selectFrom('service_configs as sc')
        .innerJoin('configs as c', 'c.id', 'sc.config_id')
        .innerJoin('config_types as t', 't.id', 'c.config_type_id')
        .select(['sc.service_id', 'c.id', 'c.name', 't.name as type'])
        .where('sc.service_id', 'in', part)
        .orderBy('c.name')
        .execute()) as Array<{ service_id: string; id: string; name: string; type: string }>
      for (const x of rs) {
        const a = links.get(x.service_id)
        const v = { id: x.id, name: x.name, type: x.type }
        if (a) a.push(v)
        else links.set(x.service_id, [v])
      }
    }
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      roleAttributes: attrs.get(r.id) ?? [],
      configs: (links.get(r.id) ?? []).map((c) => c.id),
      configsDisplay: links.get(r.id) ?? [],
      encryptionRequired: boolOf(r.encryption_required),
      terminatorStrategy: r.terminator_strategy,
      maxIdleTimeMillis: r.max_idle_time_millis,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }))
  }
}
