/** The management API as the edge commands call it: the stored session, and errors that name their fix. */
import { CliError } from '../../errors.js'
import { loadCliConfig } from '../../lib/config.js'
import { ApiError, type Envelope, ManagementClient } from '../../lib/rest.js'
import type { KindInfo, Row } from './kinds.js'
import { oneLine, printWarnings } from './output.js'

/** A name or id as a URL path segment. */
export function enc(nameOrId: string): string {
  return encodeURIComponent(nameOrId)
}

/** The management client of the stored session, or a one-line error naming how to log in. */
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
export function explain(
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

/** One management API request with the stored session: prints its warnings, explains its errors. */
export async function api<T = unknown>(
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
export async function resolveId(kind: KindInfo, nameOrId: string): Promise<string> {
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
