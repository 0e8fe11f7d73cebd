/** TypeBox schemas of the management API bodies and entities (additionalProperties false everywhere). */
import { type TObject, type TProperties, Type } from '@sinclair/typebox'
import { Precedence, Strategy } from '../common/terminator-options.js'

const strict = <T extends TProperties>(p: T, description?: string) =>
  Type.Object(p, { additionalProperties: false, ...(description ? { description } : {}) })

/**
 * Text that names something (names, role attributes, roles): no control or format characters
 * (NUL, ESC, newlines, bidi overrides, zero-width characters), no unpaired surrogates, no line or
 * paragraph separators, and no whitespace at either end. Names are normalised to NFC before
 * validation (api/common/validation.ts), so one name has one spelling.
 */
export const SAFE_TEXT_PATTERN = '^(?!\\s)[^\\p{Cc}\\p{Cf}\\p{Cs}\\p{Zl}\\p{Zp}]*(?<!\\s)$'
/** The longest name of any entity (characters after NFC). Ids and names in URLs are bounded by it too. */
export const NAME_MAX = 255
const Name = Type.String({ minLength: 1, maxLength: NAME_MAX, pattern: SAFE_TEXT_PATTERN })
const Attrs = Type.Array(Type.String({ minLength: 1, maxLength: 129, pattern: SAFE_TEXT_PATTERN }), {
  maxItems: 256,
  uniqueItems: true,
  description: 'role attributes (without #)',
})
const Roles = Type.Array(Type.String({ minLength: 2, maxLength: 300, pattern: SAFE_TEXT_PATTERN }), {
  maxItems: 256,
  uniqueItems: true,
  description: '#attr, @id-or-name or #all',
})
const Semantic = Type.String({ description: 'AnyOf (default) or AllOf, any case' })
const Password = Type.String({
  minLength: 8,
  maxLength: 1024,
  description: 'write-only; username = identity name',
})

function partial<T extends TObject>(o: T): TObject {
  const props: TProperties = {}
  for (const [k, v] of Object.entries(o.properties)) props[k] = Type.Optional(v)
  return Type.Object(props, { additionalProperties: false, minProperties: 1 })
}

export const IdentityCreate = strict({
  name: Name,
  type: Type.Optional(
    Type.String({ description: 'Device, User, Service or Default (any case); default Default' }),
  ),
  roleAttributes: Type.Optional(Attrs),
  isAdmin: Type.Optional(Type.Boolean()),
  disabled: Type.Optional(Type.Boolean()),
  defaultHostingCost: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  defaultHostingPrecedence: Type.Optional(Precedence),
  password: Type.Optional(Password),
})
export const IdentityPatch = (() => {
  const p = partial(IdentityCreate)
  p.properties.password = Type.Optional(Type.Union([Password, Type.Null()]))
  return p
})()

export const ServiceCreate = strict({
  name: Name,
  roleAttributes: Type.Optional(Attrs),
  configs: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 255 }), {
      maxItems: 64,
      description: 'config ids or names',
    }),
  ),
  encryptionRequired: Type.Optional(Type.Boolean({ default: true })),
  terminatorStrategy: Type.Optional(Strategy),
  maxIdleTimeMillis: Type.Optional(Type.Integer({ minimum: 0 })),
})
export const ServicePatch = partial(ServiceCreate)

export const ConfigTypeCreate = strict({
  name: Name,
  schema: Type.Optional(
    Type.Object(
      {},
      {
        additionalProperties: true,
        description: 'JSON Schema (supported subset: docs/api-errors.md, ERR_SCHEMA_INVALID)',
      },
    ),
  ),
})
export const ConfigTypePatch = partial(ConfigTypeCreate)

export const ConfigCreate = strict({
  name: Name,
  configTypeId: Type.String({
    minLength: 1,
    maxLength: 255,
    description: 'config type id or name, e.g. intercept.v1',
  }),
  data: Type.Object({}, { additionalProperties: true }),
})
export const ConfigPatch = partial(ConfigCreate)

export const RouterCreate = strict({
  name: Name,
  roleAttributes: Type.Optional(Attrs),
  disabled: Type.Optional(Type.Boolean()),
  cost: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
})
export const RouterPatch = partial(RouterCreate)

export const ServicePolicyCreate = strict({
  name: Name,
  type: Type.String({ description: 'Dial or Bind (any case)' }),
  semantic: Type.Optional(Semantic),
  identityRoles: Type.Optional(Roles),
  serviceRoles: Type.Optional(Roles),
  postureCheckRoles: Type.Optional(Roles),
})
export const ServicePolicyPatch = partial(ServicePolicyCreate)

export const EdgeRouterPolicyCreate = strict({
  name: Name,
  semantic: Type.Optional(Semantic),
  identityRoles: Type.Optional(Roles),
  edgeRouterRoles: Type.Optional(Roles),
})
export const EdgeRouterPolicyPatch = partial(EdgeRouterPolicyCreate)

export const ServiceEdgeRouterPolicyCreate = strict({
  name: Name,
  semantic: Type.Optional(Semantic),
  serviceRoles: Type.Optional(Roles),
  edgeRouterRoles: Type.Optional(Roles),
})
export const ServiceEdgeRouterPolicyPatch = partial(ServiceEdgeRouterPolicyCreate)

const Ts = { createdAt: Type.String(), updatedAt: Type.String() }
const RoleDisplay = Type.Array(Type.Object({ role: Type.String(), name: Type.String() }))
const Enrollment = Type.Union([
  Type.Object({
    method: Type.String(),
    expiresAt: Type.String(),
    expired: Type.Optional(Type.Boolean()),
    jwt: Type.Optional(Type.String()),
  }),
  Type.Null(),
])
const Cert = Type.Object({ fingerprint: Type.String(), expiresAt: Type.Union([Type.String(), Type.Null()]) })

export const IdentityView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  roleAttributes: Type.Array(Type.String()),
  isAdmin: Type.Boolean(),
  disabled: Type.Boolean(),
  defaultHostingCost: Type.Integer(),
  defaultHostingPrecedence: Type.String(),
  hasPassword: Type.Boolean(),
  enrolled: Type.Boolean(),
  certificates: Type.Array(Cert),
  certExpiresAt: Type.Union([Type.String(), Type.Null()]),
  enrollment: Enrollment,
  ...Ts,
})
export const ServiceView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  roleAttributes: Type.Array(Type.String()),
  configs: Type.Array(Type.String()),
  configsDisplay: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), type: Type.String() })),
  encryptionRequired: Type.Boolean(),
  terminatorStrategy: Type.String(),
  maxIdleTimeMillis: Type.Integer(),
  ...Ts,
})
export const ConfigTypeView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  schema: Type.Object({}, { additionalProperties: true }),
  builtin: Type.Boolean(),
  ...Ts,
})
export const ConfigView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  configTypeId: Type.String(),
  configTypeName: Type.Union([Type.String(), Type.Null()]),
  data: Type.Object({}, { additionalProperties: true }),
  ...Ts,
})
export const RouterView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  roleAttributes: Type.Array(Type.String()),
  disabled: Type.Boolean(),
  advertise: Type.Union([Type.String(), Type.Null()]),
  isOnline: Type.Boolean(),
  cost: Type.Integer(),
  version: Type.Union([Type.String(), Type.Null()]),
  enrolled: Type.Boolean(),
  certificates: Type.Array(Cert),
  certExpiresAt: Type.Union([Type.String(), Type.Null()]),
  enrollment: Enrollment,
  ...Ts,
})
export const ServicePolicyView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  semantic: Type.String(),
  identityRoles: Type.Array(Type.String()),
  identityRolesDisplay: RoleDisplay,
  serviceRoles: Type.Array(Type.String()),
  serviceRolesDisplay: RoleDisplay,
  postureCheckRoles: Type.Array(Type.String()),
  postureCheckRolesDisplay: RoleDisplay,
  ...Ts,
})
export const EdgeRouterPolicyView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  semantic: Type.String(),
  identityRoles: Type.Array(Type.String()),
  identityRolesDisplay: RoleDisplay,
  edgeRouterRoles: Type.Array(Type.String()),
  edgeRouterRolesDisplay: RoleDisplay,
  ...Ts,
})
export const ServiceEdgeRouterPolicyView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  semantic: Type.String(),
  serviceRoles: Type.Array(Type.String()),
  serviceRolesDisplay: RoleDisplay,
  edgeRouterRoles: Type.Array(Type.String()),
  edgeRouterRolesDisplay: RoleDisplay,
  ...Ts,
})
export const TerminatorView = Type.Object({
  id: Type.String(),
  serviceId: Type.String(),
  service: Type.Object({ id: Type.String(), name: Type.String() }),
  routerId: Type.String(),
  router: Type.Object({ id: Type.String(), name: Type.String() }),
  identityId: Type.String(),
  identity: Type.Object({ id: Type.String(), name: Type.String() }),
  cost: Type.Integer(),
  precedence: Type.String(),
  createdAt: Type.String(),
})
export const AuditView = Type.Object({
  id: Type.Integer(),
  at: Type.String(),
  actor: Type.Object({
    id: Type.Union([Type.String(), Type.Null()]),
    name: Type.Union([Type.String(), Type.Null()]),
  }),
  action: Type.String(),
  entityType: Type.String(),
  entityId: Type.String(),
  entityName: Type.Union([Type.String(), Type.Null()]),
  details: Type.Object({}, { additionalProperties: true }),
})
export const AdvisorView = Type.Object(
  {},
  { additionalProperties: true, description: 'AdvisorReport (protocol/policy)' },
)
