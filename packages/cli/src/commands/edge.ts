/**
 * `nullport edge ...`: the management commands (OpenZiti's `ziti edge ...` grammar) over the
 * controller's management API, plus `enroll` (SDK enrollment).
 */
import { readFile } from 'node:fs/promises'
import { fingerprintSha256, writeSecretFile } from '@nullport/protocol'
import { enroll } from '@nullport/sdk'
import { type Command, Option } from 'commander'
import { CliError } from '../errors.js'
import {
  oneOf,
  parseAttributes,
  parseBool,
  parseJsonObject,
  parseNonNegInt,
  parseRoles,
  readTextFile,
  splitList,
} from '../lib/args.js'
import { type CliSession, loadCliConfig, saveCliConfig } from '../lib/config.js'
import {
  ApiError,
  bundleRoot,
  colonFingerprint,
  type Envelope,
  httpRequest,
  ManagementClient,
  MGMT,
  parseEnvelope,
  pemCerts,
} from '../lib/rest.js'
import { type Column, renderTable } from '../lib/table.js'

type Row = Record<string, unknown>

interface KindInfo {
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

const KINDS: KindInfo[] = [
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

function findKind(word: string, opts: { writable?: boolean } = {}): KindInfo {
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

// ---------------------------------------------------------------------------------------------
// output helpers

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`)
}

function printJson(v: unknown): void {
  out(JSON.stringify(v, null, 2))
}

function printWarnings(meta: Envelope['meta'] | undefined): void {
  for (const w of meta?.warnings ?? [])
    process.stderr.write(`warning: ${String(w).replace(/\s*\n\s*/g, ' ')}\n`)
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').trim()
}

function enc(nameOrId: string): string {
  return encodeURIComponent(nameOrId)
}

// ---------------------------------------------------------------------------------------------
// session

async function client(): Promise<ManagementClient> {
  const cfg = await loadCliConfig()
  if (!cfg.session) {
    throw new CliError(
      'ERR_CLI_NOT_LOGGED_IN',
      'not logged in: run `nullport edge login https://HOST:PORT -u USER -p PASSWORD` first, or `export NULLPORT_HOME=DIR` for a quickstart started with --home DIR',
    )
  }
  return new ManagementClient(cfg.session)
}

/** Adds the fix to a controller error so the one printed line names it. */
function explain(
  err: unknown,
  ctx: { kind?: KindInfo; name?: string; roles?: Record<string, string[]> } = {},
): unknown {
  if (!(err instanceof ApiError)) return err
  const k = ctx.kind
  const details = err.details
  let hint = ''
  switch (err.code) {
    case 'ERR_NAME_IN_USE':
      if (k && ctx.name)
        hint = `a ${k.label} named "${ctx.name}" already exists: choose another name, or change it with \`nullport edge update ${k.name} ${ctx.name} ...\``
      break
    case 'ERR_NOT_FOUND':
      if (k && ctx.name)
        hint = `no ${k.label} "${ctx.name}": list them with \`nullport edge list ${k.plural}\``
      break
    case 'ERR_ROLE_NOT_FOUND': {
      const text = `${err.message} ${JSON.stringify(details)}`
      let listCmd = ''
      let bad = typeof details.role === 'string' ? details.role : ''
      for (const [option, roles] of Object.entries(ctx.roles ?? {})) {
        for (const r of roles) {
          if (r.startsWith('@') && (bad === r || (!bad && text.includes(r)))) {
            bad = r
            listCmd =
              option === 'serviceRoles'
                ? 'services'
                : option === 'identityRoles'
                  ? 'identities'
                  : option === 'edgeRouterRoles'
                    ? 'edge-routers'
                    : 'posture-checks'
          }
        }
      }
      hint = `${oneLine(err.message)}: check the name${listCmd ? ` with \`nullport edge list ${listCmd}\`` : ''}`
      break
    }
    case 'ERR_CONFIG_INVALID': {
      const errs = details.errors ?? details.validation ?? details.problems
      const items = Array.isArray(errs) ? errs : errs ? [errs] : []
      const extra = items
        .map((e) => {
          if (typeof e === 'string') return e
          const o = e as Row
          const path = typeof o.path === 'string' ? o.path.replace(/^\$\./, '') : ''
          return typeof o.message === 'string' ? `${path}: ${o.message}` : JSON.stringify(e)
        })
        .filter((x) => !err.message.includes(x))
        .join('; ')
      hint = `${oneLine(err.message)}${extra ? ` (also: ${extra})` : ''}: fix the JSON to match its config type's schema`
      break
    }
    case 'ERR_CONFIG_TYPE_NOT_FOUND':
      hint = `${oneLine(err.message)}: list the config types with \`nullport edge list config-types\``
      break
    case 'ERR_CONFIG_NOT_FOUND':
      hint = `${oneLine(err.message)}: list the configs with \`nullport edge list configs\``
      break
    case 'ERR_FORBIDDEN':
      hint = `${oneLine(err.message)}: log in as an admin with \`nullport edge login URL -u ADMIN\``
      break
    case 'ERR_INVALID_CREDENTIALS':
      hint = `${oneLine(err.message)}: check the user name and password`
      break
    case 'ERR_RATE_LIMITED':
      hint = `${oneLine(err.message)}`
      break
    default: {
      const field = typeof details.field === 'string' ? ` (field "${details.field}")` : ''
      hint = `${oneLine(err.message)}${field}`
    }
  }
  return new ApiError(err.code, oneLine(hint || err.message), err.status, details)
}

async function api<T = unknown>(
  method: string,
  path: string,
  opts: { body?: unknown; query?: Array<[string, string]> } = {},
  ctx: Parameters<typeof explain>[1] = {},
): Promise<Envelope<T>> {
  const c = await client()
  try {
    const r = await c.request<T>(method, path, opts)
    printWarnings(r.meta)
    return r
  } catch (err) {
    throw explain(err, ctx)
  }
}

/** GET /X/:nameOrId -> id, or a clear error naming how to list them. */
async function resolveId(kind: KindInfo, nameOrId: string): Promise<string> {
  try {
    const r = await api<Row>('GET', `/${kind.plural}/${enc(nameOrId)}`, {}, { kind, name: nameOrId })
    if (typeof r.data?.id !== 'string')
      throw new CliError(
        'ERR_CLI_BAD_RESPONSE',
        `the controller returned no id for ${kind.label} ${nameOrId}`,
      )
    return r.data.id
  } catch (err) {
    if (err instanceof ApiError && err.code === 'ERR_NOT_FOUND') {
      throw new ApiError(
        'ERR_NOT_FOUND',
        `no ${kind.label} "${nameOrId}": list them with \`nullport edge list ${kind.plural}\`${kind.name === 'config' ? ` or create it with \`nullport edge create config ${nameOrId} TYPE 'JSON'\`` : ''}`,
        404,
      )
    }
    throw err
  }
}

// ---------------------------------------------------------------------------------------------
// login / logout

/**
 * Reads lines from the terminal in raw mode (so pre-typed input is kept across prompts), echoing
 * what is typed unless hidden. Ctrl-C / Ctrl-D / end of input read as null.
 */
class TtyReader {
  private buf = ''
  private ended = false
  private wake: (() => void) | null = null
  private lastCr = false
  private readonly onData = (d: string) => {
    this.buf += d
    this.wake?.()
  }
  private readonly onEnd = () => {
    this.ended = true
    this.wake?.()
  }
  constructor() {
    process.stdin.setRawMode(true)
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', this.onData)
    process.stdin.on('end', this.onEnd)
    process.stdin.resume()
  }
  async line(question: string, hidden: boolean): Promise<string | null> {
    process.stderr.write(question)
    let out = ''
    for (;;) {
      while (this.buf.length > 0) {
        const c = this.buf[0]!
        this.buf = this.buf.slice(1)
        if (c === '\n' && this.lastCr) {
          this.lastCr = false
          continue
        }
        this.lastCr = c === '\r'
        if (c === '\r' || c === '\n') {
          process.stderr.write('\n')
          return out
        }
        if (c === '\u0003' || c === '\u0004') {
          process.stderr.write('\n')
          return null
        }
        if (c === '\u007f' || c === '\b') {
          if (out.length > 0) {
            out = out.slice(0, -1)
            if (!hidden) process.stderr.write('\b \b')
          }
          continue
        }
        out += c
        if (!hidden) process.stderr.write(c)
      }
      if (this.ended) return null
      await new Promise<void>((r) => {
        this.wake = r
      })
      this.wake = null
    }
  }
  close(): void {
    process.stdin.off('data', this.onData)
    process.stdin.off('end', this.onEnd)
    process.stdin.setRawMode(false)
    process.stdin.pause()
  }
}

interface LoginOpts {
  username: string
  password?: string
  passwordFile?: string
  ca?: string
  caFingerprint?: string
  yes?: boolean
  json?: boolean
}

/** `--ca-fingerprint`: 64 hex digits, colons and case optional; lower-case hex out. */
function parseCaFingerprint(v: string): string {
  const hex = v.replace(/:/g, '').toLowerCase()
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new CliError(
      'ERR_CLI_USAGE',
      `--ca-fingerprint must be a SHA-256 fingerprint (64 hex digits, colons allowed), got "${v}"`,
    )
  }
  return hex
}

async function login(urlArg: string, o: LoginOpts): Promise<void> {
  let url: URL
  try {
    url = new URL(urlArg)
  } catch {
    throw new CliError('ERR_CLI_USAGE', `"${urlArg}" is not a URL: use https://HOST:PORT`)
  }
  if (url.protocol !== 'https:') throw new CliError('ERR_CLI_USAGE', `"${urlArg}" must be an https:// URL`)
  const base = url.origin
  let password = o.password
  if (password === undefined && o.passwordFile)
    password = (await readTextFile(o.passwordFile, 'password file')).replace(/\r?\n$/, '')
  if (password === undefined && process.env.NULLPORT_PASSWORD) password = process.env.NULLPORT_PASSWORD
  const tty = process.stdin.isTTY === true && process.stderr.isTTY === true
  let reader: TtyReader | undefined
  try {
    if (password === undefined && tty) {
      reader = new TtyReader()
      const p = await reader.line(`password for ${o.username}: `, true)
      if (p === null) throw new CliError('ERR_CLI_USAGE', 'login cancelled')
      password = p
    }
    await loginWith(base, password, o, tty, () => (reader ??= new TtyReader()))
  } finally {
    reader?.close()
  }
}

async function loginWith(
  base: string,
  password: string | undefined,
  o: LoginOpts,
  tty: boolean,
  getReader: () => TtyReader,
): Promise<void> {
  if (password === undefined) {
    throw new CliError(
      'ERR_CLI_USAGE',
      'no password: pass -p PASSWORD, --password-file FILE or set NULLPORT_PASSWORD',
    )
  }
  let ca: string
  const pinned = o.caFingerprint !== undefined ? parseCaFingerprint(o.caFingerprint) : undefined
  if (o.ca && pinned) throw new CliError('ERR_CLI_USAGE', 'pass --ca FILE or --ca-fingerprint, not both')
  if (o.ca) {
    ca = await readTextFile(o.ca, 'CA file')
    if (pemCerts(ca).length === 0)
      throw new CliError(
        'ERR_CLI_FILE',
        `${o.ca} holds no PEM certificate: pass the network's CA bundle (ca-bundle.pem or root.crt)`,
      )
  } else {
    const r = await httpRequest({
      method: 'GET',
      url: `${base}/.well-known/est/cacerts`,
      insecure: true,
      maxBytes: 256 * 1024,
      headers: { accept: 'application/pem-certificate-chain' },
    })
    if (r.status !== 200 || pemCerts(r.body).length === 0) {
      throw new CliError(
        'ERR_CLI_BAD_RESPONSE',
        `${base} did not serve a CA bundle at /.well-known/est/cacerts (HTTP ${r.status}): is it a Nullport controller? Or pass --ca FILE`,
      )
    }
    const root = bundleRoot(r.body)!
    const fp = fingerprintSha256(root)
    if (pinned !== undefined && fp !== pinned) {
      // Never log in to a controller whose CA is not the one the user pinned: not even with -y.
      throw new CliError(
        'ERR_CLI_UNTRUSTED_CA',
        `the controller at ${base} presents a network CA with SHA-256 fingerprint ${fp}, not the ${pinned} you passed with --ca-fingerprint: login refused (wrong address, a re-initialized controller, or an interception)`,
        { fingerprint: fp, expected: pinned },
      )
    }
    if (pinned === undefined && !o.yes && !tty) {
      throw new CliError(
        'ERR_CLI_UNTRUSTED_CA',
        `the controller's CA (sha256 ${fp}) is not trusted yet: pass --ca-fingerprint ${fp} after comparing it with the controller's (its 'edge ready' log line, rootFingerprint), or --ca FILE, or -y to trust it as fetched`,
        { fingerprint: fp },
      )
    }
    if (pinned === undefined) {
      process.stderr.write(
        `warning: the controller at ${base} presents a network CA with SHA-256 fingerprint ${colonFingerprint(fp)} (${fp})\n`,
      )
    }
    if (pinned === undefined && !o.yes) {
      const a = await getReader().line('trust this CA for the session? [y/N] ', false)
      if (a === null || !/^y(es)?$/i.test(a.trim())) {
        throw new CliError(
          'ERR_CLI_UNTRUSTED_CA',
          'CA not trusted: login cancelled (pass --ca FILE to verify against a CA you have)',
          {
            fingerprint: fp,
          },
        )
      }
    }
    ca = pemCerts(r.body).join('\n')
  }

  const r = await httpRequest({
    method: 'POST',
    url: `${base}${MGMT}/authenticate`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: o.username, password }),
    ca,
  })
  let env: Envelope<{ token?: unknown; expiresAt?: unknown }>
  try {
    env = parseEnvelope(r, 'login')
  } catch (err) {
    throw explain(err)
  }
  const d = env.data
  if (!d || typeof d.token !== 'string' || typeof d.expiresAt !== 'string') {
    throw new CliError(
      'ERR_CLI_BAD_RESPONSE',
      'the controller answered the login without a token: is this a Nullport controller?',
    )
  }
  const session: CliSession = { url: base, token: d.token, expiresAt: d.expiresAt, ca, username: o.username }
  const cfg = await loadCliConfig()
  cfg.session = session
  await saveCliConfig(cfg)
  if (o.json) printJson({ url: base, username: o.username, expiresAt: d.expiresAt })
  else out(`logged in to ${base} as ${o.username} (session expires at ${d.expiresAt})`)
}

async function logout(): Promise<void> {
  const cfg = await loadCliConfig()
  if (!cfg.session) {
    out('not logged in')
    return
  }
  const c = new ManagementClient(cfg.session)
  try {
    await c.request('DELETE', '/current-api-session')
  } catch {
    // an expired or unknown session is logged out anyway
  }
  const url = cfg.session.url
  delete cfg.session
  await saveCliConfig(cfg)
  out(`logged out of ${url}`)
}

// ---------------------------------------------------------------------------------------------
// create / update helpers

interface Created {
  id?: string
  name?: string
  enrollment?: { jwt?: string; expiresAt?: string }
}

async function writeJwt(path: string, jwt: string): Promise<void> {
  try {
    await writeSecretFile(path, `${jwt.trim()}\n`)
  } catch (err) {
    throw new CliError(
      'ERR_CLI_FILE',
      `cannot write the enrollment token to ${path}: ${(err as Error).message}`,
      { path },
      { cause: err },
    )
  }
}

async function doCreate(
  kind: KindInfo,
  body: Row,
  o: { json?: boolean; output?: string },
  roles?: Record<string, string[]>,
): Promise<void> {
  const r = await api<Created>('POST', `/${kind.plural}`, { body }, { kind, name: String(body.name), roles })
  const d = r.data ?? {}
  if (o.output) {
    const jwt = d.enrollment?.jwt
    if (typeof jwt !== 'string')
      throw new CliError(
        'ERR_CLI_BAD_RESPONSE',
        `the controller returned no enrollment token for ${kind.label} ${body.name}`,
      )
    await writeJwt(o.output, jwt)
  }
  if (o.json) {
    printJson(d)
    return
  }
  out(`New ${kind.label} ${body.name} created, id: ${d.id}`)
  if (o.output)
    out(
      `enrollment token written to ${o.output}${d.enrollment?.expiresAt ? ` (expires at ${d.enrollment.expiresAt})` : ''}`,
    )
}

async function doUpdate(
  kind: KindInfo,
  name: string,
  body: Row,
  o: { json?: boolean },
  roles?: Record<string, string[]>,
): Promise<void> {
  if (Object.keys(body).length === 0) {
    throw new CliError(
      'ERR_CLI_USAGE',
      `nothing to update for ${kind.label} ${name}: give at least one option (see \`nullport edge update ${kind.name} --help\`)`,
    )
  }
  const r = await api<Row>('PATCH', `/${kind.plural}/${enc(name)}`, { body }, { kind, name, roles })
  if (o.json) printJson(r.data ?? {})
  else out(`${kind.label} ${name} updated`)
}

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

const IDENTITY_TYPES = { device: 'Device', user: 'User', service: 'Service' } as const
const STRATEGIES = ['smartrouting', 'weighted', 'random', 'sticky'] as const
const SEMANTICS = ['AnyOf', 'AllOf'] as const
const PRECEDENCES = ['default', 'required', 'failed'] as const

function kind(name: string): KindInfo {
  return findKind(name)
}

const collect = (v: string, prev: string[] = []) => [...prev, v]

// ---------------------------------------------------------------------------------------------
// registration

/** Makes commander's own errors (missing argument, unknown option...) one line in our format. */
function oneLineUsageErrors(cmd: Command): void {
  const path: string[] = []
  for (let c: Command | null = cmd; c; c = c.parent) path.unshift(c.name())
  const full = path.join(' ')
  cmd.showHelpAfterError(false)
  cmd.configureOutput({
    outputError: (str, write) =>
      write(
        `nullport: ERR_CLI_USAGE: ${str
          .replace(/^error: /, '')
          .trim()
          .replace(/\s*\n\s*/g, ' ')}: see \`${full} --help\`\n`,
      ),
  })
  for (const sub of cmd.commands) oneLineUsageErrors(sub)
}

/** An action for a group (`create`, `update`...): a kind it does not know is a one-line error. */
function unknownKindAction(group: Command, writable: boolean): void {
  group
    .argument('[kind]')
    .allowUnknownOption()
    .allowExcessArguments()
    .action((k: string | undefined) => {
      if (k === undefined) {
        throw new CliError(
          'ERR_CLI_USAGE',
          `\`nullport edge ${group.name()}\` needs an entity type: one of ${group.commands.map((c) => c.name()).join(', ')}`,
        )
      }
      if (writable) findKind(k, { writable: true })
      throw new CliError(
        'ERR_CLI_UNKNOWN_KIND',
        `unknown entity type "${k}" for ${group.name()}: use one of ${group.commands.map((c) => c.name()).join(', ')}`,
        { kind: k },
      )
    })
}

/** Registers the `nullport edge ...` commands. */
export function register(program: Command): void {
  const edge = program
    .command('edge')
    .description('manage the network: identities, services, configs, policies, edge routers; enroll')

  // login / logout
  edge
    .command('login')
    .description('log in to a controller (management API) and store the session in $NULLPORT_HOME/cli.json')
    .argument('<url>', 'controller URL, e.g. https://127.0.0.1:1280')
    .requiredOption('-u, --username <user>', 'admin user name')
    .option('-p, --password <password>', 'password (or --password-file, or env NULLPORT_PASSWORD)')
    .option('--password-file <file>', 'read the password from a file')
    .option(
      '--ca <file>',
      'verify the controller against this CA bundle (PEM) instead of confirming its fingerprint',
    )
    .option(
      '--ca-fingerprint <sha256>',
      "trust the controller's CA only if its SHA-256 fingerprint is this (hex, colons optional; the controller logs it as rootFingerprint)",
    )
    .option('-y, --yes', "trust the controller's CA as fetched (prints its fingerprint; no prompt)")
    .option('--json', 'print JSON')
    .action((url: string, o: LoginOpts) => login(url, o))
  edge
    .command('logout')
    .description('end the session and forget it')
    .action(() => logout())

  // create
  const create = edge.command('create').description('create an entity')
  create
    .command('identity')
    .description('create an identity and (with -o) write its enrollment token')
    .argument('<type-or-name>', 'device | user | service (optional), then NAME')
    .argument('[name]')
    .option('-a, --role-attributes <attrs>', 'comma-separated role attributes')
    .option('-o, --jwt-output-file <file>', 'write the enrollment token (JWT) here')
    .option('--admin', 'give the identity admin rights (admins log in with a password, see --password-file)')
    .option('--password-file <file>', 'set a password for `nullport edge login` (admins) from a file')
    .option('--json', 'print the created identity as JSON')
    .action(
      async (
        a: string,
        b: string | undefined,
        o: {
          roleAttributes?: string
          jwtOutputFile?: string
          admin?: boolean
          passwordFile?: string
          json?: boolean
        },
      ) => {
        let type = 'Default'
        let name = a
        if (b !== undefined) {
          const t = IDENTITY_TYPES[a.toLowerCase() as keyof typeof IDENTITY_TYPES]
          if (!t)
            throw new CliError(
              'ERR_CLI_USAGE',
              `identity type must be device, user or service, not "${a}": \`nullport edge create identity device NAME\``,
            )
          type = t
          name = b
        }
        const body: Row = { name, type, roleAttributes: parseAttributes(o.roleAttributes ?? '') }
        if (o.admin) body.isAdmin = true
        if (o.admin && o.jwtOutputFile) {
          throw new CliError(
            'ERR_CLI_USAGE',
            'admin identities get no enrollment token (they log in with a password): drop -o, or drop --admin',
          )
        }
        if (o.passwordFile)
          body.password = (await readTextFile(o.passwordFile, 'password file')).replace(/\r?\n$/, '')
        await doCreate(kind('identity'), body, { json: o.json, output: o.jwtOutputFile })
      },
    )
  create
    .command('config')
    .description("create a config: nullport edge create config NAME TYPE 'JSON' (or -f FILE)")
    .argument('<name>')
    .argument('<type>', 'config type name, e.g. intercept.v1 or host.v1')
    .argument('[json]', 'the config data as a JSON object')
    .option('-f, --json-file <file>', 'read the config data from a file')
    .option('--json', 'print the created config as JSON')
    .action(
      async (
        name: string,
        type: string,
        data: string | undefined,
        o: { jsonFile?: string; json?: boolean },
      ) => {
        const obj = await jsonArg(
          data,
          o.jsonFile,
          'the config data',
          `nullport edge create config ${name} ${type} '{"key":"value"}'`,
        )
        const configTypeId = await resolveId(kind('config-type'), type)
        await doCreate(kind('config'), { name, configTypeId, data: obj }, o)
      },
    )
  create
    .command('config-type')
    .description("create a config type: nullport edge create config-type NAME 'JSON-SCHEMA' (or -f FILE)")
    .argument('<name>')
    .argument('[schema]', 'JSON Schema (object)')
    .option('-f, --schema-file <file>', 'read the schema from a file')
    .option('--json', 'print the created config type as JSON')
    .action(async (name: string, schema: string | undefined, o: { schemaFile?: string; json?: boolean }) => {
      const obj = await jsonArg(
        schema,
        o.schemaFile,
        'the schema',
        `nullport edge create config-type ${name} '{"type":"object"}'`,
      )
      await doCreate(kind('config-type'), { name, schema: obj }, o)
    })
  create
    .command('service')
    .description('create a service')
    .argument('<name>')
    .option('-c, --configs <names>', 'comma-separated config names or ids')
    .option('-a, --role-attributes <attrs>', 'comma-separated role attributes')
    .option('-e, --encryption-required <bool>', 'require end-to-end encryption (true|false)')
    .option('--terminator-strategy <s>', `one of ${STRATEGIES.join(', ')}`)
    .option('--max-idle-time <ms>', 'close circuits idle this many milliseconds (0: never)')
    .option('--json', 'print the created service as JSON')
    .action(
      async (
        name: string,
        o: {
          configs?: string
          roleAttributes?: string
          encryptionRequired?: string
          terminatorStrategy?: string
          maxIdleTime?: string
          json?: boolean
        },
      ) => {
        const body: Row = { name, roleAttributes: parseAttributes(o.roleAttributes ?? '') }
        const configs = splitList(o.configs)
        body.configs = []
        for (const c of configs) (body.configs as string[]).push(await resolveId(kind('config'), c))
        if (o.encryptionRequired !== undefined)
          body.encryptionRequired = parseBool(o.encryptionRequired, '--encryption-required')
        if (o.terminatorStrategy !== undefined)
          body.terminatorStrategy = oneOf(o.terminatorStrategy, STRATEGIES, '--terminator-strategy')
        if (o.maxIdleTime !== undefined)
          body.maxIdleTimeMillis = parseNonNegInt(o.maxIdleTime, '--max-idle-time')
        await doCreate(kind('service'), body, o)
      },
    )
  create
    .command('service-policy')
    .description('create a service policy: who may Dial or Bind which services')
    .argument('<name>')
    .argument('<type>', 'Dial | Bind')
    .requiredOption('--service-roles <roles>', "comma-separated: '@service-name', '#attribute', '#all'")
    .requiredOption('--identity-roles <roles>', "comma-separated: '@identity-name', '#attribute', '#all'")
    .option('--posture-check-roles <roles>', 'comma-separated posture check roles')
    .addOption(new Option('--semantic <semantic>', 'how roles combine').choices([...SEMANTICS]))
    .option('--json', 'print the created policy as JSON')
    .action(
      async (
        name: string,
        type: string,
        o: {
          serviceRoles: string
          identityRoles: string
          postureCheckRoles?: string
          semantic?: string
          json?: boolean
        },
      ) => {
        const roles = {
          serviceRoles: parseRoles(o.serviceRoles, '--service-roles'),
          identityRoles: parseRoles(o.identityRoles, '--identity-roles'),
          postureCheckRoles: parseRoles(o.postureCheckRoles ?? '', '--posture-check-roles'),
        }
        const body: Row = {
          name,
          type: oneOf(type, ['Dial', 'Bind'] as const, 'the policy type'),
          semantic: o.semantic ?? 'AnyOf',
          ...roles,
        }
        await doCreate(kind('service-policy'), body, o, roles)
      },
    )
  create
    .command('edge-router')
    .description('create an edge router and (with -o) write its enrollment token')
    .argument('<name>')
    .option('-a, --role-attributes <attrs>', 'comma-separated role attributes')
    .option('-o, --jwt-output-file <file>', 'write the enrollment token (JWT) here')
    .option('--cost <n>', 'static link cost added to measured latency')
    .option('--json', 'print the created router as JSON')
    .action(
      async (
        name: string,
        o: { roleAttributes?: string; jwtOutputFile?: string; cost?: string; json?: boolean },
      ) => {
        const body: Row = { name, roleAttributes: parseAttributes(o.roleAttributes ?? '') }
        if (o.cost !== undefined) body.cost = parseNonNegInt(o.cost, '--cost')
        await doCreate(kind('edge-router'), body, { json: o.json, output: o.jwtOutputFile })
      },
    )
  create
    .command('edge-router-policy')
    .description('create an edge router policy: which identities may use which routers')
    .argument('<name>')
    .requiredOption('--edge-router-roles <roles>', "comma-separated: '@router-name', '#attribute', '#all'")
    .requiredOption('--identity-roles <roles>', "comma-separated: '@identity-name', '#attribute', '#all'")
    .addOption(new Option('--semantic <semantic>', 'how roles combine').choices([...SEMANTICS]))
    .option('--json', 'print the created policy as JSON')
    .action(
      async (
        name: string,
        o: { edgeRouterRoles: string; identityRoles: string; semantic?: string; json?: boolean },
      ) => {
        const roles = {
          edgeRouterRoles: parseRoles(o.edgeRouterRoles, '--edge-router-roles'),
          identityRoles: parseRoles(o.identityRoles, '--identity-roles'),
        }
        await doCreate(
          kind('edge-router-policy'),
          { name, semantic: o.semantic ?? 'AnyOf', ...roles },
          o,
          roles,
        )
      },
    )
  create
    .command('service-edge-router-policy')
    .description('create a service edge router policy: which services may use which routers')
    .argument('<name>')
    .requiredOption('--edge-router-roles <roles>', "comma-separated: '@router-name', '#attribute', '#all'")
    .requiredOption('--service-roles <roles>', "comma-separated: '@service-name', '#attribute', '#all'")
    .addOption(new Option('--semantic <semantic>', 'how roles combine').choices([...SEMANTICS]))
    .option('--json', 'print the created policy as JSON')
    .action(
      async (
        name: string,
        o: { edgeRouterRoles: string; serviceRoles: string; semantic?: string; json?: boolean },
      ) => {
        const roles = {
          edgeRouterRoles: parseRoles(o.edgeRouterRoles, '--edge-router-roles'),
          serviceRoles: parseRoles(o.serviceRoles, '--service-roles'),
        }
        await doCreate(
          kind('service-edge-router-policy'),
          { name, semantic: o.semantic ?? 'AnyOf', ...roles },
          o,
          roles,
        )
      },
    )
  unknownKindAction(create, true)

  // update
  const update = edge.command('update').description('change an entity (only the options given)')
  const nameOpt = (c: Command) =>
    c.option('--name <new-name>', 'rename').option('--json', 'print the updated entity as JSON')
  nameOpt(
    update
      .command('identity')
      .argument('<name>', 'identity name or id')
      .option('-a, --role-attributes <attrs>', 'replace the role attributes (comma separated)')
      .option('--admin <bool>', 'admin rights (true|false)')
      .option('--disabled <bool>', 'disable (true) or enable (false) the identity')
      .option('--default-hosting-cost <n>', 'default cost of its terminators')
      .option('--default-hosting-precedence <p>', `one of ${PRECEDENCES.join(', ')}`),
  ).action(
    async (
      name: string,
      o: {
        roleAttributes?: string
        admin?: string
        disabled?: string
        defaultHostingCost?: string
        defaultHostingPrecedence?: string
        name?: string
        json?: boolean
      },
    ) => {
      const body: Row = {}
      if (o.name !== undefined) body.name = o.name
      if (o.roleAttributes !== undefined) body.roleAttributes = parseAttributes(o.roleAttributes)
      if (o.admin !== undefined) body.isAdmin = parseBool(o.admin, '--admin')
      if (o.disabled !== undefined) body.disabled = parseBool(o.disabled, '--disabled')
      if (o.defaultHostingCost !== undefined)
        body.defaultHostingCost = parseNonNegInt(o.defaultHostingCost, '--default-hosting-cost')
      if (o.defaultHostingPrecedence !== undefined)
        body.defaultHostingPrecedence = oneOf(
          o.defaultHostingPrecedence,
          PRECEDENCES,
          '--default-hosting-precedence',
        )
      await doUpdate(kind('identity'), name, body, o)
    },
  )
  nameOpt(
    update
      .command('service')
      .argument('<name>', 'service name or id')
      .option('-c, --configs <names>', 'replace the configs (comma separated names or ids)')
      .option('-a, --role-attributes <attrs>', 'replace the role attributes (comma separated)')
      .option('-e, --encryption-required <bool>', 'true|false')
      .option('--terminator-strategy <s>', `one of ${STRATEGIES.join(', ')}`)
      .option('--max-idle-time <ms>', 'milliseconds (0: never)'),
  ).action(
    async (
      name: string,
      o: {
        configs?: string
        roleAttributes?: string
        encryptionRequired?: string
        terminatorStrategy?: string
        maxIdleTime?: string
        name?: string
        json?: boolean
      },
    ) => {
      const body: Row = {}
      if (o.name !== undefined) body.name = o.name
      if (o.roleAttributes !== undefined) body.roleAttributes = parseAttributes(o.roleAttributes)
      if (o.configs !== undefined) {
        const ids: string[] = []
        for (const c of splitList(o.configs)) ids.push(await resolveId(kind('config'), c))
        body.configs = ids
      }
      if (o.encryptionRequired !== undefined)
        body.encryptionRequired = parseBool(o.encryptionRequired, '--encryption-required')
      if (o.terminatorStrategy !== undefined)
        body.terminatorStrategy = oneOf(o.terminatorStrategy, STRATEGIES, '--terminator-strategy')
      if (o.maxIdleTime !== undefined)
        body.maxIdleTimeMillis = parseNonNegInt(o.maxIdleTime, '--max-idle-time')
      await doUpdate(kind('service'), name, body, o)
    },
  )
  nameOpt(
    update
      .command('config')
      .argument('<name>', 'config name or id')
      .argument('[json]', 'the new config data (JSON object)')
      .option('-f, --json-file <file>', 'read the new config data from a file'),
  ).action(
    async (
      name: string,
      data: string | undefined,
      o: { jsonFile?: string; name?: string; json?: boolean },
    ) => {
      const body: Row = {}
      if (o.name !== undefined) body.name = o.name
      if (data !== undefined || o.jsonFile !== undefined)
        body.data = await jsonArg(data, o.jsonFile, 'the config data', '')
      await doUpdate(kind('config'), name, body, o)
    },
  )
  nameOpt(
    update
      .command('config-type')
      .argument('<name>', 'config type name or id')
      .argument('[schema]', 'the new JSON Schema')
      .option('-f, --schema-file <file>', 'read the new schema from a file'),
  ).action(
    async (
      name: string,
      schema: string | undefined,
      o: { schemaFile?: string; name?: string; json?: boolean },
    ) => {
      const body: Row = {}
      if (o.name !== undefined) body.name = o.name
      if (schema !== undefined || o.schemaFile !== undefined)
        body.schema = await jsonArg(schema, o.schemaFile, 'the schema', '')
      await doUpdate(kind('config-type'), name, body, o)
    },
  )
  nameOpt(
    update
      .command('service-policy')
      .argument('<name>', 'policy name or id')
      .option('--type <type>', 'Dial | Bind')
      .option('--service-roles <roles>', 'replace the service roles')
      .option('--identity-roles <roles>', 'replace the identity roles')
      .option('--posture-check-roles <roles>', 'replace the posture check roles')
      .addOption(new Option('--semantic <semantic>', 'how roles combine').choices([...SEMANTICS])),
  ).action(
    async (
      name: string,
      o: {
        type?: string
        serviceRoles?: string
        identityRoles?: string
        postureCheckRoles?: string
        semantic?: string
        name?: string
        json?: boolean
      },
    ) => {
      const body: Row = {}
      const roles: Record<string, string[]> = {}
      if (o.name !== undefined) body.name = o.name
      if (o.type !== undefined) body.type = oneOf(o.type, ['Dial', 'Bind'] as const, '--type')
      if (o.semantic !== undefined) body.semantic = o.semantic
      if (o.serviceRoles !== undefined) roles.serviceRoles = parseRoles(o.serviceRoles, '--service-roles')
      if (o.identityRoles !== undefined) roles.identityRoles = parseRoles(o.identityRoles, '--identity-roles')
      if (o.postureCheckRoles !== undefined)
        roles.postureCheckRoles = parseRoles(o.postureCheckRoles, '--posture-check-roles')
      await doUpdate(kind('service-policy'), name, { ...body, ...roles }, o, roles)
    },
  )
  nameOpt(
    update
      .command('edge-router')
      .argument('<name>', 'router name or id')
      .option('-a, --role-attributes <attrs>', 'replace the role attributes (comma separated)')
      .option('--cost <n>', 'static link cost')
      .option('--disabled <bool>', 'disable (true) or enable (false) the router'),
  ).action(
    async (
      name: string,
      o: { roleAttributes?: string; cost?: string; disabled?: string; name?: string; json?: boolean },
    ) => {
      const body: Row = {}
      if (o.name !== undefined) body.name = o.name
      if (o.roleAttributes !== undefined) body.roleAttributes = parseAttributes(o.roleAttributes)
      if (o.cost !== undefined) body.cost = parseNonNegInt(o.cost, '--cost')
      if (o.disabled !== undefined) body.disabled = parseBool(o.disabled, '--disabled')
      await doUpdate(kind('edge-router'), name, body, o)
    },
  )
  nameOpt(
    update
      .command('edge-router-policy')
      .argument('<name>', 'policy name or id')
      .option('--edge-router-roles <roles>', 'replace the edge router roles')
      .option('--identity-roles <roles>', 'replace the identity roles')
      .addOption(new Option('--semantic <semantic>', 'how roles combine').choices([...SEMANTICS])),
  ).action(
    async (
      name: string,
      o: {
        edgeRouterRoles?: string
        identityRoles?: string
        semantic?: string
        name?: string
        json?: boolean
      },
    ) => {
      const body: Row = {}
      const roles: Record<string, string[]> = {}
      if (o.name !== undefined) body.name = o.name
      if (o.semantic !== undefined) body.semantic = o.semantic
      if (o.edgeRouterRoles !== undefined)
        roles.edgeRouterRoles = parseRoles(o.edgeRouterRoles, '--edge-router-roles')
      if (o.identityRoles !== undefined) roles.identityRoles = parseRoles(o.identityRoles, '--identity-roles')
      await doUpdate(kind('edge-router-policy'), name, { ...body, ...roles }, o, roles)
    },
  )
  nameOpt(
    update
      .command('service-edge-router-policy')
      .argument('<name>', 'policy name or id')
      .option('--edge-router-roles <roles>', 'replace the edge router roles')
      .option('--service-roles <roles>', 'replace the service roles')
      .addOption(new Option('--semantic <semantic>', 'how roles combine').choices([...SEMANTICS])),
  ).action(
    async (
      name: string,
      o: {
        edgeRouterRoles?: string
        serviceRoles?: string
        semantic?: string
        name?: string
        json?: boolean
      },
    ) => {
      const body: Row = {}
      const roles: Record<string, string[]> = {}
      if (o.name !== undefined) body.name = o.name
      if (o.semantic !== undefined) body.semantic = o.semantic
      if (o.edgeRouterRoles !== undefined)
        roles.edgeRouterRoles = parseRoles(o.edgeRouterRoles, '--edge-router-roles')
      if (o.serviceRoles !== undefined) roles.serviceRoles = parseRoles(o.serviceRoles, '--service-roles')
      await doUpdate(kind('service-edge-router-policy'), name, { ...body, ...roles }, o, roles)
    },
  )
  unknownKindAction(update, true)

  // list
  edge
    .command('list')
    .description(`list entities: ${KINDS.map((k) => k.plural).join(', ')}`)
    .argument('<type>', 'what to list, e.g. identities')
    .argument('[filter]', 'e.g. \'name contains "web"\' or \'name = "x"\'')
    .option('--role-filter <role>', "only entities with this role, e.g. '#servers' (repeatable)", collect)
    .option('--limit <n>', 'at most this many (default 100, max 1000)')
    .option('--offset <n>', 'skip this many')
    .option('--json', 'print the raw JSON array')
    .action(
      async (
        type: string,
        filter: string | undefined,
        o: { roleFilter?: string[]; limit?: string; offset?: string; json?: boolean },
      ) => {
        const k = findKind(type)
        const query: Array<[string, string]> = []
        if (filter !== undefined && filter.trim() !== '') query.push(['filter', filter])
        for (const r of o.roleFilter ?? []) query.push(['roleFilter', r])
        if (o.limit !== undefined) query.push(['limit', String(parseNonNegInt(o.limit, '--limit'))])
        if (o.offset !== undefined) query.push(['offset', String(parseNonNegInt(o.offset, '--offset'))])
        const r = await api<Row[]>('GET', `/${k.plural}`, { query }, { kind: k })
        const rows = Array.isArray(r.data) ? r.data : []
        if (o.json) {
          printJson(rows)
          return
        }
        if (rows.length === 0) {
          out(`no ${k.plural}${filter ? ` match ${filter}` : ''}`)
          return
        }
        process.stdout.write(renderTable(rows, k.columns))
        const p = r.meta?.pagination
        if (p) out(`results: ${p.offset + 1}-${p.offset + rows.length} of ${p.totalCount}`)
      },
    )

  // delete
  edge
    .command('delete')
    .description('delete an entity by name or id')
    .argument('<type>', 'identity, service, config, config-type, service-policy, edge-router, ...')
    .argument('<name>', 'name or id')
    .option('--json', 'print the answer as JSON')
    .action(async (type: string, name: string, o: { json?: boolean }) => {
      const k = findKind(type, { writable: true })
      const r = await api<Row>('DELETE', `/${k.plural}/${enc(name)}`, {}, { kind: k, name })
      if (o.json) printJson(r.data ?? { deleted: name })
      else out(`${k.label} ${name} deleted`)
    })

  // enroll
  edge
    .command('enroll')
    .description('enroll with a one-time token: makes a key and writes an identity file (0600)')
    .argument('<jwt-file>', 'the enrollment token file (NAME.jwt)')
    .option('-o, --out <file>', 'identity file to write (default: the token file with .json)')
    .option('--overwrite', 'replace an existing identity file')
    .option('--advertise <host:port>', 'edge routers only: the address it advertises')
    .option('--json', 'print a JSON summary')
    .action(
      async (
        jwtFile: string,
        o: { out?: string; overwrite?: boolean; advertise?: string; json?: boolean },
      ) => {
        let jwt: string
        try {
          jwt = await readFile(jwtFile, 'utf8')
        } catch (err) {
          throw new CliError(
            'ERR_CLI_FILE',
            `cannot read the enrollment token ${jwtFile}: ${(err as Error).message}`,
            { path: jwtFile },
            { cause: err },
          )
        }
        const output =
          o.out ?? (jwtFile.endsWith('.jwt') ? `${jwtFile.slice(0, -4)}.json` : `${jwtFile}.json`)
        const r = await enroll({ jwt, output, overwrite: o.overwrite, advertise: o.advertise })
        if (o.json)
          printJson({
            id: r.file.id,
            name: r.file.name,
            kind: r.file.kind,
            controller: r.file.controller,
            path: r.path,
          })
        else out(`enrolled ${r.file.kind} ${r.file.name} (${r.file.id}): identity file written to ${r.path}`)
      },
    )

  // re-enroll
  edge
    .command('re-enroll')
    .description('issue a new enrollment token (the old token and the current certificate stop working)')
    .argument('<type>', 'identity | edge-router')
    .argument('<name>', 'name or id')
    .option('-o, --jwt-output-file <file>', 'write the new token here (default: print it)')
    .option('--json', 'print the answer as JSON')
    .action(async (type: string, name: string, o: { jwtOutputFile?: string; json?: boolean }) => {
      const k = findKind(type)
      if (k.name !== 'identity' && k.name !== 'edge-router') {
        throw new CliError(
          'ERR_CLI_UNKNOWN_KIND',
          `re-enroll works for identity or edge-router, not "${type}"`,
          { kind: type },
        )
      }
      const r = await api<Row>('POST', `/${k.plural}/${enc(name)}/re-enroll`, { body: {} }, { kind: k, name })
      const d = (r.data ?? {}) as Row
      const e = (d.enrollment ?? d) as { jwt?: unknown; expiresAt?: unknown }
      if (typeof e.jwt !== 'string')
        throw new CliError(
          'ERR_CLI_BAD_RESPONSE',
          `the controller returned no enrollment token for ${k.label} ${name}`,
        )
      if (o.jwtOutputFile) await writeJwt(o.jwtOutputFile, e.jwt)
      if (o.json) printJson(d)
      else if (o.jwtOutputFile)
        out(
          `new enrollment token for ${k.label} ${name} written to ${o.jwtOutputFile}${typeof e.expiresAt === 'string' ? ` (expires at ${e.expiresAt})` : ''}`,
        )
      else out(e.jwt)
    })

  // policy-advisor
  const advisor = edge
    .command('policy-advisor')
    .description('explain whether an identity can use a service, and why not')
  const advise = async (identity: string, service: string, o: { json?: boolean }) => {
    const r = await api<Row>(
      'GET',
      `/policy-advisor/identities/${enc(identity)}/services/${enc(service)}`,
      {},
      {},
    )
    const d = (r.data ?? {}) as Row
    if (o.json) printJson(d)
    else process.stdout.write(formatAdvisor(d, identity, service))
  }
  advisor
    .command('identities')
    .argument('<identity>', 'identity name or id')
    .argument('<service>', 'service name or id')
    .option('--json', 'print the report as JSON')
    .action((identity: string, service: string, o: { json?: boolean }) => advise(identity, service, o))
  advisor
    .command('services')
    .description('the same report, service first (OpenZiti order)')
    .argument('<service>', 'service name or id')
    .argument('<identity>', 'identity name or id')
    .option('--json', 'print the report as JSON')
    .action((service: string, identity: string, o: { json?: boolean }) => advise(identity, service, o))

  oneLineUsageErrors(edge)
}

function named(v: unknown): string {
  if (v && typeof v === 'object') {
    const o = v as Row
    return `${o.name ?? o.id}${o.isOnline === true ? ' (online)' : o.isOnline === false ? ' (offline)' : ''}`
  }
  return String(v)
}

function formatAdvisor(d: Row, identityArg: string, serviceArg: string): string {
  const list = (v: unknown) => (Array.isArray(v) && v.length ? v.map(named).join(', ') : '(none)')
  const can = (yes: unknown, policies: unknown, type: string) => {
    const has = Array.isArray(policies) && policies.length > 0
    if (yes) return `yes (${type} policies: ${list(policies)})`
    return has ? `no (${type} policies: ${list(policies)}, but see the findings)` : `no (no ${type} policy)`
  }
  const ident = d.identity as Row | null | undefined
  const svc = d.service as Row | null | undefined
  const lines = [
    `identity: ${ident ? `${ident.name} (${ident.id})` : `${identityArg} (not found)`}`,
    `service:  ${svc ? `${svc.name} (${svc.id})` : `${serviceArg} (not found)`}`,
    `can dial: ${can(d.canDial, d.dialPolicies, 'Dial')}`,
    `can bind: ${can(d.canBind, d.bindPolicies, 'Bind')}`,
    `routers for the identity: ${list(d.identityRouters)}`,
    `routers for the service:  ${list(d.serviceRouters)}`,
    `common routers:           ${list(d.commonRouters)}`,
  ]
  const findings = Array.isArray(d.findings) ? d.findings : []
  lines.push(findings.length ? 'findings:' : 'findings: none')
  for (const f of findings) lines.push(`  - ${String(f)}`)
  return `${lines.join('\n')}\n`
}
