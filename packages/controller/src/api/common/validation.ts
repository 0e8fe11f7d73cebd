/**
 * Fastify validator compiler over our strict JSON Schema validator (no coercion, no removal of
 * unknown fields in bodies): an unknown field is ERR_UNKNOWN_FIELD, any other mismatch
 * ERR_VALIDATION, both with the JSON path of the bad field. Query strings and path parameters are
 * coerced (`?limit=10` -> 10, a single `roleFilter` -> [value]).
 */
import type { FastifySchemaCompiler } from 'fastify'
import { validateWithValue } from '../../core/json-schema.js'
import { ControllerError } from '../../errors.js'

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
    const { errors, value } = validateWithValue(schema, data, { coerce })
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
    return {
      error: new ControllerError('ERR_VALIDATION', `${shown}: ${e.message}`, {
        path,
        errors: errors.slice(0, 10).map((x) => ({ path: prefix + x.path.slice(1), message: x.message })),
      }),
    }
  }
}
