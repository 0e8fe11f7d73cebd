/**
 * What `nullport edge create` and `update` accept for each kind, and which body field each input
 * sets: one table (KIND_FIELDS) that both verbs register their commands from and build request
 * bodies with. A flag belongs to a verb when it has help text for that verb.
 */
import { TERMINATOR_PRECEDENCES, TERMINATOR_STRATEGIES } from '@nullport/protocol'
import { type Command, Option } from 'commander'
import { CliError } from '../../errors.js'
import {
  oneOf,
  parseAttributes,
  parseBool,
  parseJsonObject,
  parseNonNegInt,
  parseRoles,
  readTextFile,
  splitList,
} from '../../lib/args.js'
import { resolveId } from './api.js'
import { findKind, type Row } from './kinds.js'

const IDENTITY_TYPES = { device: 'Device', user: 'User', service: 'Service' } as const
const SEMANTICS = ['AnyOf', 'AllOf'] as const
const POLICY_TYPES = ['Dial', 'Bind'] as const

export type Verb = 'create' | 'update'

/** A positional argument: commander's `<name>` / `[name]`, and its help. */
export type ArgSpec = readonly [name: string, description?: string]

/** One input (a flag, a positional argument, or inline-or-file JSON) and the body field it sets. */
export interface FieldSpec {
  /** The body field; none for a flag that only steers the command (`-o`). */
  field?: string
  /** The flag, e.g. `-a, --role-attributes <attrs>` (for `json`: the file flag). */
  flags?: string
  /** Help of the flag per verb; a verb without it has no such flag. */
  create?: string
  update?: string
  /** create: the flag must be given. */
  required?: boolean
  /** The values commander accepts (shown in the help). */
  choices?: readonly string[]
  /** create: the value parsed when the flag is absent (else the field is left out). */
  createDefault?: string
  /** A positional argument the field is read from (a verb has it if its `args` declare it). */
  arg?: string
  /** How messages name the argument (flags are named by their long form). */
  label?: string
  /** The raw value as the body wants it; `what` names the input in messages. */
  parse?: (value: string | true, what: string) => unknown
  /** The field is a role list (the fix of ERR_ROLE_NOT_FOUND names where to look the role up). */
  roles?: boolean
  /** A JSON object given inline (`arg`) or in a file (`flags`); required on create. */
  json?: { what: string; example: string }
}

export interface KindFields {
  /** The KINDS name. */
  kind: string
  /** `--json` help on create: `print the created NOUN as JSON`. */
  noun: string
  create: {
    description: string
    args: readonly ArgSpec[]
    /** The name (and fields) from the positional arguments; default: the first one is the name. */
    positional?: (args: ReadonlyArray<string | undefined>) => { name: string; body: Row }
    /** Checks the combination of options before any field is read. */
    check?: (o: Record<string, unknown>) => void
  }
  update: { args: readonly ArgSpec[] }
  fields: readonly FieldSpec[]
}

// ---------------------------------------------------------------------------------------------
// inputs used by several kinds

const str = (v: string | true): string => String(v)

const ROLE_ATTRIBUTES: FieldSpec = {
  field: 'roleAttributes',
  flags: '-a, --role-attributes <attrs>',
  create: 'comma-separated role attributes',
  update: 'replace the role attributes (comma separated)',
  createDefault: '',
  parse: (v) => parseAttributes(str(v)),
}
const JWT_OUTPUT: FieldSpec = {
  flags: '-o, --jwt-output-file <file>',
  create: 'write the enrollment token (JWT) here',
}
const SEMANTIC: FieldSpec = {
  field: 'semantic',
  flags: '--semantic <semantic>',
  choices: SEMANTICS,
  create: 'how roles combine',
  update: 'how roles combine',
  createDefault: 'AnyOf',
}

function roles(field: string, flags: string, create: string, update: string, required = true): FieldSpec {
  return {
    field,
    flags,
    create,
    update,
    roles: true,
    ...(required ? { required } : { createDefault: '' }),
    parse: (v, what) => parseRoles(str(v), what),
  }
}
const SERVICE_ROLES = roles(
  'serviceRoles',
  '--service-roles <roles>',
  "comma-separated: '@service-name', '#attribute', '#all'",
  'replace the service roles',
)
const IDENTITY_ROLES = roles(
  'identityRoles',
  '--identity-roles <roles>',
  "comma-separated: '@identity-name', '#attribute', '#all'",
  'replace the identity roles',
)
const EDGE_ROUTER_ROLES = roles(
  'edgeRouterRoles',
  '--edge-router-roles <roles>',
  "comma-separated: '@router-name', '#attribute', '#all'",
  'replace the edge router roles',
)
const POSTURE_CHECK_ROLES = roles(
  'postureCheckRoles',
  '--posture-check-roles <roles>',
  'comma-separated posture check roles',
  'replace the posture check roles',
  false,
)

const bool = (v: string | true, what: string) => parseBool(str(v), what)
const count = (v: string | true, what: string) => parseNonNegInt(str(v), what)

/** Config names or ids -> ids, one lookup each, in order. */
async function configIds(v: string | true): Promise<string[]> {
  const ids: string[] = []
  for (const c of splitList(str(v))) ids.push(await resolveId(findKind('config'), c))
  return ids
}

// ---------------------------------------------------------------------------------------------
// the table (in `nullport edge update` order; create lists configs first, see CREATE_ORDER)

export const KIND_FIELDS: readonly KindFields[] = [
  {
    kind: 'identity',
    noun: 'identity',
    create: {
      description: 'create an identity and (with -o) write its enrollment token',
      args: [['<type-or-name>', 'device | user | service (optional), then NAME'], ['[name]']],
      positional: ([a, b]) => {
        if (b === undefined) return { name: a!, body: { type: 'Default' } }
        const t = IDENTITY_TYPES[a!.toLowerCase() as keyof typeof IDENTITY_TYPES]
        if (!t)
          throw new CliError(
            'ERR_CLI_USAGE',
            `identity type must be device, user or service, not "${a}": \`nullport edge create identity device NAME\``,
          )
        return { name: b, body: { type: t } }
      },
      check: (o) => {
        if (o.admin && o.jwtOutputFile) {
          throw new CliError(
            'ERR_CLI_USAGE',
            'admin identities get no enrollment token (they log in with a password): drop -o, or drop --admin',
          )
        }
      },
    },
    update: { args: [['<name>', 'identity name or id']] },
    fields: [
      ROLE_ATTRIBUTES,
      JWT_OUTPUT,
      {
        field: 'isAdmin',
        flags: '--admin',
        create: 'give the identity admin rights (admins log in with a password, see --password-file)',
        parse: () => true,
      },
      {
        field: 'password',
        flags: '--password-file <file>',
        create: 'set a password for `nullport edge login` (admins) from a file',
        parse: async (v) => (await readTextFile(str(v), 'password file')).replace(/\r?\n$/, ''),
      },
      { field: 'isAdmin', flags: '--admin <bool>', update: 'admin rights (true|false)', parse: bool },
      {
        field: 'disabled',
        flags: '--disabled <bool>',
        update: 'disable (true) or enable (false) the identity',
        parse: bool,
      },
      {
        field: 'defaultHostingCost',
        flags: '--default-hosting-cost <n>',
        update: 'default cost of its terminators',
        parse: count,
      },
      {
        field: 'defaultHostingPrecedence',
        flags: '--default-hosting-precedence <p>',
        update: `one of ${TERMINATOR_PRECEDENCES.join(', ')}`,
        parse: (v, what) => oneOf(str(v), TERMINATOR_PRECEDENCES, what),
      },
    ],
  },
  {
    kind: 'service',
    noun: 'service',
    create: { description: 'create a service', args: [['<name>']] },
    update: { args: [['<name>', 'service name or id']] },
    fields: [
      {
        field: 'configs',
        flags: '-c, --configs <names>',
        create: 'comma-separated config names or ids',
        update: 'replace the configs (comma separated names or ids)',
        createDefault: '',
        parse: configIds,
      },
      ROLE_ATTRIBUTES,
      {
        field: 'encryptionRequired',
        flags: '-e, --encryption-required <bool>',
        create: 'require end-to-end encryption (true|false)',
        update: 'true|false',
        parse: bool,
      },
      {
        field: 'terminatorStrategy',
        flags: '--terminator-strategy <s>',
        create: `one of ${TERMINATOR_STRATEGIES.join(', ')}`,
        update: `one of ${TERMINATOR_STRATEGIES.join(', ')}`,
        parse: (v, what) => oneOf(str(v), TERMINATOR_STRATEGIES, what),
      },
      {
        field: 'maxIdleTimeMillis',
        flags: '--max-idle-time <ms>',
        create: 'close circuits idle this many milliseconds (0: never)',
        update: 'milliseconds (0: never)',
        parse: count,
      },
    ],
  },
  {
    kind: 'config',
    noun: 'config',
    create: {
      description: "create a config: nullport edge create config NAME TYPE 'JSON' (or -f FILE)",
      args: [
        ['<name>'],
        ['<type>', 'config type name, e.g. intercept.v1 or host.v1'],
        ['[json]', 'the config data as a JSON object'],
      ],
    },
    update: {
      args: [
        ['<name>', 'config name or id'],
        ['[json]', 'the new config data (JSON object)'],
      ],
    },
    fields: [
      {
        field: 'data',
        arg: 'json',
        flags: '-f, --json-file <file>',
        create: 'read the config data from a file',
        update: 'read the new config data from a file',
        json: { what: 'the config data', example: '{"key":"value"}' },
      },
      { field: 'configTypeId', arg: 'type', parse: (v) => resolveId(findKind('config-type'), str(v)) },
    ],
  },
  {
    kind: 'config-type',
    noun: 'config type',
    create: {
      description: "create a config type: nullport edge create config-type NAME 'JSON-SCHEMA' (or -f FILE)",
      args: [['<name>'], ['[schema]', 'JSON Schema (object)']],
    },
    update: {
      args: [
        ['<name>', 'config type name or id'],
        ['[schema]', 'the new JSON Schema'],
      ],
    },
    fields: [
      {
        field: 'schema',
        arg: 'schema',
        flags: '-f, --schema-file <file>',
        create: 'read the schema from a file',
        update: 'read the new schema from a file',
        json: { what: 'the schema', example: '{"type":"object"}' },
      },
    ],
  },
  {
    kind: 'service-policy',
    noun: 'policy',
    create: {
      description: 'create a service policy: who may Dial or Bind which services',
      args: [['<name>'], ['<type>', 'Dial | Bind']],
    },
    update: { args: [['<name>', 'policy name or id']] },
    fields: [
      {
        field: 'type',
        flags: '--type <type>',
        update: 'Dial | Bind',
        parse: (v, what) => oneOf(str(v), POLICY_TYPES, what),
      },
      SERVICE_ROLES,
      IDENTITY_ROLES,
      POSTURE_CHECK_ROLES,
      SEMANTIC,
      {
        field: 'type',
        arg: 'type',
        label: 'the policy type',
        parse: (v, what) => oneOf(str(v), POLICY_TYPES, what),
      },
    ],
  },
  {
    kind: 'edge-router',
    noun: 'router',
    create: {
      description: 'create an edge router and (with -o) write its enrollment token',
      args: [['<name>']],
    },
    update: { args: [['<name>', 'router name or id']] },
    fields: [
      ROLE_ATTRIBUTES,
      JWT_OUTPUT,
      {
        field: 'cost',
        flags: '--cost <n>',
        create: 'static link cost added to measured latency',
        update: 'static link cost',
        parse: count,
      },
      {
        field: 'disabled',
        flags: '--disabled <bool>',
        update: 'disable (true) or enable (false) the router',
        parse: bool,
      },
    ],
  },
  {
    kind: 'edge-router-policy',
    noun: 'policy',
    create: {
      description: 'create an edge router policy: which identities may use which routers',
      args: [['<name>']],
    },
    update: { args: [['<name>', 'policy name or id']] },
    fields: [EDGE_ROUTER_ROLES, IDENTITY_ROLES, SEMANTIC],
  },
  {
    kind: 'service-edge-router-policy',
    noun: 'policy',
    create: {
      description: 'create a service edge router policy: which services may use which routers',
      args: [['<name>']],
    },
    update: { args: [['<name>', 'policy name or id']] },
    fields: [EDGE_ROUTER_ROLES, SERVICE_ROLES, SEMANTIC],
  },
]

/** `nullport edge create` lists configs and config types before services (a service names its configs). */
export const CREATE_ORDER = [
  'identity',
  'config',
  'config-type',
  'service',
  'service-policy',
  'edge-router',
  'edge-router-policy',
  'service-edge-router-policy',
] as const

/** `<type>` / `[json]` -> `type` / `json`. */
export function argName(spec: ArgSpec): string {
  return spec[0].replace(/^[<[]|[>\]]$/g, '')
}

/** What one create or update command was given. */
export interface CommandInputs {
  /** The positional arguments in order. */
  given: ReadonlyArray<string | undefined>
  /** The positional arguments by name (`<type>` -> `type`). */
  args: Readonly<Record<string, string | undefined>>
  /** The options by commander attribute name. */
  o: Readonly<Record<string, unknown>>
}

/** The inputs of `cmd` (a create or update command of `k`) after commander parsed them. */
export function commandInputs(k: KindFields, verb: Verb, cmd: Command): CommandInputs {
  const given = cmd.processedArgs as Array<string | undefined>
  const args: Record<string, string | undefined> = {}
  k[verb].args.forEach((a, i) => {
    args[argName(a)] = given[i]
  })
  return { given, args, o: cmd.opts() }
}

/**
 * The request body of one `create` or `update`, from the command's positional arguments (by
 * name) and options (by commander attribute name), reading the fields in table order. Also the
 * role lists given, for the fix of ERR_ROLE_NOT_FOUND.
 */
export async function buildBody(
  k: KindFields,
  verb: Verb,
  { given, args, o }: CommandInputs,
): Promise<{ body: Row; roles: Record<string, string[]> }> {
  const body: Row = {}
  const roleLists: Record<string, string[]> = {}
  for (const f of k.fields) {
    if (!f.field) continue
    if (f.json) {
      if (f[verb] === undefined) continue
      const inline = args[f.arg!]
      const file = o[optionKey(f.flags!)] as string | undefined
      if (verb === 'update' && inline === undefined && file === undefined) continue
      const usage =
        verb === 'create'
          ? `nullport edge create ${k.kind} ${given.filter((a) => a !== undefined).join(' ')} '${f.json.example}'`
          : ''
      body[f.field] = await jsonArg(inline, file, f.json.what, usage)
      continue
    }
    let raw: string | true | undefined
    let what: string
    if (f.arg !== undefined) {
      if (!(f.arg in args)) continue
      raw = args[f.arg]
      what = f.label ?? f.arg
    } else {
      if (f[verb] === undefined) continue
      raw = o[optionKey(f.flags!)] as string | true | undefined
      if (raw === undefined && verb === 'create') raw = f.createDefault
      what = longFlag(f.flags!)
    }
    if (raw === undefined) continue
    const v = f.parse ? await f.parse(raw, what) : raw
    body[f.field] = v
    if (f.roles) roleLists[f.field] = v as string[]
  }
  return { body, roles: roleLists }
}

/** A JSON object given inline or with -f FILE (not both). */
async function jsonArg(
  inline: string | undefined,
  file: string | undefined,
  what: string,
  usage: string,
): Promise<Record<string, unknown>> {
  if (inline !== undefined && file !== undefined)
    throw new CliError('ERR_CLI_USAGE', `give ${what} either inline or with -f FILE, not both`)
  if (file !== undefined) return parseJsonObject(await readTextFile(file, what), `${what} in ${file}`)
  if (inline === undefined) throw new CliError('ERR_CLI_USAGE', `missing ${what}: ${usage}`)
  return parseJsonObject(inline, what)
}

/** `-a, --role-attributes <attrs>` -> `--role-attributes`. */
export function longFlag(flags: string): string {
  return /--[a-z-]+/.exec(flags)![0]
}

/** `-a, --role-attributes <attrs>` -> `roleAttributes` (commander's attribute name). */
export function optionKey(flags: string): string {
  return longFlag(flags)
    .slice(2)
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

/** The commander option of a field's flag for `verb`, or null when the verb has no such flag. */
export function fieldOption(f: FieldSpec, verb: Verb): Option | null {
  const help = f[verb]
  if (f.flags === undefined || help === undefined) return null
  const opt = new Option(f.flags, help)
  if (f.choices) opt.choices([...f.choices])
  if (verb === 'create' && f.required) opt.makeOptionMandatory()
  return opt
}
