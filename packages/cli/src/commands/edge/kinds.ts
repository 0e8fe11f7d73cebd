/** The entity kinds of `nullport edge`: names, labels for messages, and the columns `list` prints. */
import { CliError } from '../../errors.js'
import type { Column } from '../../lib/table.js'

/** One entity as the management API returns it. */
export type Row = Record<string, unknown>

export interface KindInfo {
  /** singular CLI name, e.g. `service-policy` */
  name: string
  /** plural CLI name and API collection, e.g. `service-policies` */
  plural: string
  /** words for messages */
  label: string
  columns: Column<Row>[]
  readOnly?: boolean
}

function roleCol(field: string): (r: Row) => unknown {
  return (r) => {
    const d = r[`${field}Display`]
    if (Array.isArray(d)) {
      return d.map((x) => {
        if (typeof x === 'string') return x
        if (x && typeof x === 'object') {
          const o = x as Row
          return o.name ?? o.role ?? JSON.stringify(o)
        }
        return String(x)
      })
    }
    return r[field]
  }
}

/** `2026-12-23T02:24:59.000Z` -> `2026-12-23 02:24Z` (UTC); empty for none. */
function shortTime(v: unknown): string {
  if (typeof v !== 'string' || !v) return ''
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)/.exec(v)
  return m ? `${m[1]} ${m[2]}Z` : v
}

function enrolledCol(r: Row): string {
  if (r.enrolled === true) return 'yes'
  const e = r.enrollment as Row | null | undefined
  if (e && typeof e.expiresAt === 'string') return `token until ${shortTime(e.expiresAt)}`
  if (r.enrolled === false) return r.hasPassword === true ? 'password' : 'no'
  return ''
}

const idCol: Column<Row> = { header: 'ID', value: (r) => r.id }
const nameCol: Column<Row> = { header: 'NAME', value: (r) => r.name }
const attrCol: Column<Row> = { header: 'ATTRIBUTES', value: (r) => r.roleAttributes }
const semCol: Column<Row> = { header: 'SEMANTIC', value: (r) => r.semantic }

/** Every entity kind the edge commands know, in `nullport edge list` order, with its list columns. */
export const KINDS: KindInfo[] = [
  {
    name: 'identity',
    plural: 'identities',
    label: 'identity',
    columns: [
      idCol,
      nameCol,
      { header: 'TYPE', value: (r) => r.type },
      attrCol,
      { header: 'ADMIN', value: (r) => r.isAdmin },
      { header: 'DISABLED', value: (r) => r.disabled },
      { header: 'ENROLLED', value: enrolledCol },
      { header: 'CERT EXPIRES', value: (r) => shortTime(r.certExpiresAt) },
    ],
  },
  {
    name: 'service',
    plural: 'services',
    label: 'service',
    columns: [
      idCol,
      nameCol,
      { header: 'ENCRYPTION REQUIRED', value: (r) => r.encryptionRequired },
      { header: 'CONFIGS', value: (r) => r.configsDisplay ?? r.configNames ?? r.configs },
      attrCol,
    ],
  },
  {
    name: 'config',
    plural: 'configs',
    label: 'config',
    columns: [
      idCol,
      nameCol,
      {
        header: 'CONFIG TYPE',
        value: (r) => r.configTypeName ?? (r.configType as Row | undefined)?.name ?? r.configTypeId,
      },
      { header: 'DATA', value: (r) => r.data },
    ],
  },
  { name: 'config-type', plural: 'config-types', label: 'config type', columns: [idCol, nameCol] },
  {
    name: 'service-policy',
    plural: 'service-policies',
    label: 'service policy',
    columns: [
      idCol,
      nameCol,
      { header: 'TYPE', value: (r) => r.type },
      semCol,
      { header: 'SERVICE ROLES', value: roleCol('serviceRoles') },
      { header: 'IDENTITY ROLES', value: roleCol('identityRoles') },
      { header: 'POSTURE CHECK ROLES', value: roleCol('postureCheckRoles') },
    ],
  },
  {
    name: 'edge-router',
    plural: 'edge-routers',
    label: 'edge router',
    columns: [
      idCol,
      nameCol,
      { header: 'ONLINE', value: (r) => r.isOnline },
      { header: 'ADVERTISE', value: (r) => r.advertise },
      { header: 'COST', value: (r) => r.cost },
      { header: 'DISABLED', value: (r) => r.disabled },
      attrCol,
      { header: 'ENROLLED', value: enrolledCol },
      { header: 'CERT EXPIRES', value: (r) => shortTime(r.certExpiresAt) },
    ],
  },
  {
    name: 'edge-router-policy',
    plural: 'edge-router-policies',
    label: 'edge router policy',
    columns: [
      idCol,
      nameCol,
      semCol,
      { header: 'EDGE ROUTER ROLES', value: roleCol('edgeRouterRoles') },
      { header: 'IDENTITY ROLES', value: roleCol('identityRoles') },
    ],
  },
  {
    name: 'service-edge-router-policy',
    plural: 'service-edge-router-policies',
    label: 'service edge router policy',
    columns: [
      idCol,
      nameCol,
      semCol,
      { header: 'SERVICE ROLES', value: roleCol('serviceRoles') },
      { header: 'EDGE ROUTER ROLES', value: roleCol('edgeRouterRoles') },
    ],
  },
  {
    name: 'terminator',
    plural: 'terminators',
    label: 'terminator',
    readOnly: true,
    columns: [
      idCol,
      { header: 'SERVICE', value: (r) => r.serviceName ?? r.serviceId },
      { header: 'ROUTER', value: (r) => r.routerName ?? r.routerId },
      { header: 'IDENTITY', value: (r) => r.identityName ?? r.identityId },
      { header: 'COST', value: (r) => r.cost },
      { header: 'PRECEDENCE', value: (r) => r.precedence },
    ],
  },
  {
    name: 'circuit',
    plural: 'circuits',
    label: 'circuit',
    readOnly: true,
    columns: [
      { header: 'ID', value: (r) => r.id ?? r.tag },
      { header: 'SERVICE', value: (r) => r.serviceName ?? r.serviceId },
      { header: 'IDENTITY', value: (r) => r.identityName ?? r.identityId },
      { header: 'ROUTERS', value: (r) => r.path ?? r.routers ?? r.routerId },
      { header: 'CREATED', value: (r) => r.createdAt },
    ],
  },
]

/** The kind named `word` (singular or plural), or a one-line error listing the kinds. */
export function findKind(word: string, opts: { writable?: boolean } = {}): KindInfo {
  const w = word.toLowerCase()
  const k = KINDS.find((x) => x.name === w || x.plural === w)
  const choices = KINDS.filter((x) => !opts.writable || !x.readOnly)
  if (!k || (opts.writable && k.readOnly)) {
    throw new CliError(
      'ERR_CLI_UNKNOWN_KIND',
      `unknown entity type "${word}"${k ? ' (read only)' : ''}: use one of ${choices.map((x) => x.name).join(', ')}`,
      { kind: word },
    )
  }
  return k
}
