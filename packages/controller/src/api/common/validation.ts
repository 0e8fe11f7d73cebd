/**
 * Fastify validator compiler over our strict JSON Schema validator (no coercion, no removal of
 * unknown fields in bodies): an unknown field is ERR_UNKNOWN_FIELD, any other mismatch
 * ERR_VALIDATION, both with the JSON path of the bad field. Query strings and path parameters are
 * coerced (`?limit=10` -> 10, a single `roleFilter` -> [value]).
 */
import type { FastifySchemaCompiler } from 'fastify'
import { validateWithValue } from '../../core/json-schema.js'
import { ControllerError } from '../../errors.js'
import { SAFE_TEXT_PATTERN } from '../management/schemas.js'

/** Fields whose text names something: normalised to NFC before validation. */
function isNameField(key: string): boolean {
  return key === 'name' || key === 'id' || key === 'roleAttributes' || key.endsWith('Roles')
}

function nfc(v: unknown): unknown {
  if (typeof v === 'string') return v.normalize('NFC')
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x.normalize('NFC') : x))
  return v
}

/**
 * One spelling per name: `name`, `id` (path parameters that take a name), `roleAttributes` and
 * `*Roles` are NFC-normalised. A lone surrogate survives normalisation and is refused by the
 * schema's pattern.
 */
function normaliseNames(data: unknown): unknown {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return data
  let out: Record<string, unknown> | undefined
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    if (!isNameField(k)) continue
    const n = nfc(v)
    if (n === v || (Array.isArray(v) && (n as unknown[]).every((x, i) => x === v[i]))) continue
    out ??= { ...(data as Record<string, unknown>) }
    out[k] = n
  }
  return out ?? data
}

/** What a pattern means, for messages (the regular expression itself says little to a user). */
const PATTERN_MESSAGES: Record<string, string> = {
  [SAFE_TEXT_PATTERN]:
    'must not contain control or format characters (NUL, ESC, newlines, bidi overrides, zero-width characters), unpaired surrogates, or whitespace at either end',
}

const PARTS: Record<string, string> = {
  body: '$',
  querystring: '$query',
  params: '$params',
  headers: '$headers',
}

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const part = httpPart ?? 'body'
  const coerce = part !== 'body'
  const prefix = PARTS[part] ?? '$'
  return (data: unknown) => {
    if (part === 'body' && (data === null || data === undefined)) {
      return { error: new ControllerError('ERR_VALIDATION', 'a JSON body is required', { path: '$' }) }
    }
    const { errors, value } = validateWithValue(schema, normaliseNames(data), { coerce })
    if (errors.length === 0) return { value }
    const unknown = errors.find((e) => e.keyword === 'additionalProperties')
    const e = unknown ?? errors[0]!
    const path = prefix + e.path.slice(1)
    const shown = path.replace(/^\$\.?/, '') || 'body'
    if (unknown) {
      return {
        error: new ControllerError(
          'ERR_UNKNOWN_FIELD',
          `${shown}: ${e.message} (this endpoint does not accept it)`,
          {
            path,
            field: path
              .split(/[.[\]"]+/)
              .filter(Boolean)
              .pop(),
          },
        ),
      }
    }
    const message =
      e.keyword === 'pattern'
        ? (PATTERN_MESSAGES[e.message.replace(/^must match /, '')] ?? e.message)
        : e.message
    return {
      error: new ControllerError('ERR_VALIDATION', `${shown}: ${message}`, {
        path,
        errors: errors.slice(0, 10).map((x) => ({ path: prefix + x.path.slice(1), message: x.message })),
      }),
    }
  }
}
