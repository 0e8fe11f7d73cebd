/**
 * The controller's tables (Kysely types). Portable between SQLite and PostgreSQL: booleans are
 * integers 0/1, timestamps ISO-8601 UTC text (sortable), JSON as text, ids are text.
 */
import type { Generated, Insertable, Selectable, Updateable } from 'kysely'

export interface MigrationsTable {
  version: number
  name: string
  applied_at: string
}

export interface IdentitiesTable {
  id: string
  name: string
  type: string
  is_admin: number
  disabled: number
  default_hosting_cost: number
  default_hosting_precedence: string
  created_at: string
  updated_at: string
}

/** Role attributes of identities, services and edge routers (one row per attribute). */
export interface RoleAttributesTable {
  entity_id: string
  attr: string
}

export interface AuthenticatorsTable {
  id: string
  /** Exactly one of identity_id / router_id is set. */
  identity_id: string | null
  router_id: string | null
  /** `updb` (username/password) or `cert`. */
  method: string
  username: string | null
  /** `scrypt$N$r$p$saltB64$hashB64` for updb. */
  password_hash: string | null
  /** Lower-case hex SHA-256 of the certificate DER, for `cert`. */
  fingerprint: string | null
  cert_pem: string | null
  expires_at: string | null
  created_at: string
}

export interface EnrollmentsTable {
  /** The JWT `jti`. */
  id: string
  identity_id: string | null
  router_id: string | null
  /** `ott` (identity) or `erott` (edge router). */
  method: string
  /** SHA-256 (hex) of the issued JWT: the token itself is shown once, never stored. */
  token_hash: string
  expires_at: string
  used_at: string | null
  created_at: string
}

export interface ServicesTable {
  id: string
  name: string
  encryption_required: number
  terminator_strategy: string
  max_idle_time_millis: number
  created_at: string
  updated_at: string
}

export interface ServiceConfigsTable {
  service_id: string
  config_id: string
  /** Denormalized so a service has at most one config per type (unique index). */
  config_type_id: string
}

export interface ConfigTypesTable {
  id: string
  name: string
  schema: string
  builtin: number
  created_at: string
  updated_at: string
}

export interface ConfigsTable {
  id: string
  name: string
  config_type_id: string
  data: string
  created_at: string
  updated_at: string
}

export interface ServicePoliciesTable {
  id: string
  name: string
  type: string
  semantic: string
  identity_roles: string
  service_roles: string
  posture_check_roles: string
  created_at: string
  updated_at: string
}

export interface EdgeRoutersTable {
  id: string
  name: string
  disabled: number
  advertise: string | null
  is_online: number
  cost: number
  version: string | null
  created_at: string
  updated_at: string
}

export interface EdgeRouterPoliciesTable {
  id: string
  name: string
  semantic: string
  identity_roles: string
  edge_router_roles: string
  created_at: string
  updated_at: string
}

export interface ServiceEdgeRouterPoliciesTable {
  id: string
  name: string
  semantic: string
  service_roles: string
  edge_router_roles: string
  created_at: string
  updated_at: string
}

export interface TerminatorsTable {
  id: string
  service_id: string
  router_id: string
  identity_id: string
  cost: number
  precedence: string
  created_at: string
}

export interface ApiSessionsTable {
  id: string
  /** Lower-case hex SHA-256 of the bearer token; the token itself is never stored. */
  token_hash: string
  identity_id: string
  /** `management` or `client`. */
  kind: string
  created_at: string
  expires_at: string
  last_used_at: string
}

export interface AuditLogTable {
  id: Generated<number>
  at: string
  actor_id: string | null
  actor_name: string | null
  /** `create`, `update`, `delete`, `re-enroll`, `enroll`, `login`, ... */
  action: string
  entity_type: string
  entity_id: string
  entity_name: string | null
  /** JSON: what changed (field names, never secrets). */
  details: string
}

export interface ChangeVersionTable {
  id: number
  version: number
}

/**
 * Committed change batches, PostgreSQL only: how several controllers on one database learn each
 * other's writes (NOTIFY carries the id; each controller replays rows in id order).
 */
export interface ChangeLogTable {
  id: Generated<number>
  /** The controller instance that wrote the batch. */
  origin: string
  at: string
  /** JSON: {version, changes, entities, actor}. */
  batch: string
}

export interface Database {
  nullport_migrations: MigrationsTable
  identities: IdentitiesTable
  identity_role_attributes: RoleAttributesTable
  service_role_attributes: RoleAttributesTable
  edge_router_role_attributes: RoleAttributesTable
  authenticators: AuthenticatorsTable
  enrollments: EnrollmentsTable
  services: ServicesTable
  service_configs: ServiceConfigsTable
  config_types: ConfigTypesTable
  configs: ConfigsTable
  service_policies: ServicePoliciesTable
  edge_routers: EdgeRoutersTable
  edge_router_policies: EdgeRouterPoliciesTable
  service_edge_router_policies: ServiceEdgeRouterPoliciesTable
  terminators: TerminatorsTable
  api_sessions: ApiSessionsTable
  audit_log: AuditLogTable
  change_version: ChangeVersionTable
  change_log: ChangeLogTable
}

export type IdentityRow = Selectable<IdentitiesTable>
export type NewIdentityRow = Insertable<IdentitiesTable>
export type IdentityUpdate = Updateable<IdentitiesTable>
export type ServiceRow = Selectable<ServicesTable>
export type ConfigRow = Selectable<ConfigsTable>
export type ConfigTypeRow = Selectable<ConfigTypesTable>
export type ServicePolicyRow = Selectable<ServicePoliciesTable>
export type EdgeRouterRow = Selectable<EdgeRoutersTable>
export type EdgeRouterPolicyRow = Selectable<EdgeRouterPoliciesTable>
export type ServiceEdgeRouterPolicyRow = Selectable<ServiceEdgeRouterPoliciesTable>
export type TerminatorRow = Selectable<TerminatorsTable>
export type AuthenticatorRow = Selectable<AuthenticatorsTable>
export type EnrollmentRow = Selectable<EnrollmentsTable>
export type ApiSessionRow = Selectable<ApiSessionsTable>
export type AuditRow = Selectable<AuditLogTable>
