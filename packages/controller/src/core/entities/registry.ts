/**
 * THE table of entity kinds the management API serves (`/edge/management/v1/<type>`): one module
 * per kind, looked up by type for list, get, create, update and delete.
 */
import { ConfigTypes } from './config-types.js'
import { Configs } from './configs.js'
import { Identities } from './identities.js'
import type { EntityDeps, EntityKind, EntityType } from './kind.js'
import { POLICY_DEFS, Policies } from './policies.js'
import { Routers } from './routers.js'
import { Services } from './services.js'

export function createEntityTable(d: EntityDeps) {
  return {
    identities: new Identities(d),
    services: new Services(d),
    configs: new Configs(d),
    'config-types': new ConfigTypes(d),
    'service-policies': new Policies(d, POLICY_DEFS['service-policies']),
    'edge-routers': new Routers(d),
    'edge-router-policies': new Policies(d, POLICY_DEFS['edge-router-policies']),
    'service-edge-router-policies': new Policies(d, POLICY_DEFS['service-edge-router-policies']),
  } satisfies Record<EntityType, EntityKind>
}

export type EntityTable = ReturnType<typeof createEntityTable>
