/**
 * A small, strict JSON Schema validator for the subset Nullport uses: request bodies (TypeBox
 * schemas), the config file, and config types' schemas. Keywords: type (incl. integer, arrays of
 * types), properties, required, additionalProperties (boolean or schema), items, enum, const,
 * minimum/maximum, exclusiveMinimum/exclusiveMaximum, minLength/maxLength, minItems/maxItems,
 * uniqueItems, pattern, oneOf/anyOf/allOf/not, $ref to `#/$defs/...` or `#/definitions/...`.
 * Annotations ($schema, $id, title, description, default, examples, format, $comment, readOnly,
 * writeOnly, deprecated) are ignored. Any other keyword makes `checkSchema` fail: a schema that
 * silently validates less than its author thinks is worse than an error.
 */

export interface SchemaError {
  /** JSON path of the bad value, `$` for the root, e.g. `$.portRanges[0].low`. */
  path: string
  keyword: string
  message: string
}

type Schema = Record<string, unknown> | boolean

const ANNOTATIONS = new Set([
  '$schema',
  '$id',
  '$comment',
  'title',
  'description',
  'default',
  'examples',
  'format',
  'readOnly',
  'writeOnly',
  'deprecated',
  '$defs',
  'definitions',
  'nullable',
])
const KEYWORDS = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'const',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'uniqueItems',
  'pattern',
  'oneOf',
  'anyOf',
  'allOf',
  'not',
  '$ref',
  'minProperties',
  'maxProperties',
])
const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'])

/** Checks a schema uses only the supported subset; returns the problems (empty when usable). */
export function checkSchema(schema: unknown): string[] {
  const problems: string[] = []
  const root = schema
  const walk = (s: unknown, at: string, depth: number): void => {
    if (depth > 64) {
      problems.push(`${at}: nested too deeply`)
      return
    }
    if (typeof s === 'boolean') return
    if (typeof s !== 'object' || s === null || Array.isArray(s)) {
      problems.push(`${at}: a schema must be an object or a boolean`)
      return
    }
    const o = s as Record<string, unknown>
    for (const [k, v] of Object.entries(o)) {
      if (ANNOTATIONS.has(k)) {
        if (k === '$defs' || k === 'definitions') {
          if (typeof v !== 'object' || v === null) problems.push(`${at}.${k}: must be an object`)
          else for (const [n, d] of Object.entries(v)) walk(d, `${at}.${k}.${n}`, depth + 1)
        }
        continue
      }
      if (!KEYWORDS.has(k)) {
        problems.push(`${at}: keyword "${k}" is not supported`)
        continue
      }
      switch (k) {
        case 'type': {
          const ts = Array.isArray(v) ? v : [v]
          for (const t of ts)
            if (typeof t !== 'string' || !TYPES.has(t))
              problems.push(`${at}.type: unknown type ${JSON.stringify(t)}`)
          break
        }
        case 'properties':
          if (typeof v !== 'object' || v === null || Array.isArray(v))
            problems.push(`${at}.properties: must be an object`)
          else for (const [n, p] of Object.entries(v)) walk(p, `${at}.properties.${n}`, depth + 1)
          break
        case 'required':
          if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
            problems.push(`${at}.required: must be an array of strings`)
          break
        case 'additionalProperties':
        case 'items':
        case 'not':
          walk(v, `${at}.${k}`, depth + 1)
          break
        case 'enum':
          if (!Array.isArray(v)) problems.push(`${at}.enum: must be an array`)
          break
        case 'oneOf':
        case 'anyOf':
        case 'allOf':
          if (!Array.isArray(v) || v.length === 0) problems.push(`${at}.${k}: must be a non-empty array`)
          else
            v.forEach((b, i) => {
              walk(b, `${at}.${k}[${i}]`, depth + 1)
            })
          break
        case 'pattern':
          try {
            if (typeof v !== 'string') throw new Error('not a string')
            new RegExp(v, 'u')
          } catch (err) {
            problems.push(`${at}.pattern: invalid regular expression (${(err as Error).message})`)
          }
          break
        case '$ref':
          if (typeof v !== 'string' || resolveRef(root, v) === undefined)
            problems.push(`${at}.$ref: cannot resolve ${String(v)}`)
          break
        case 'const':
        case 'uniqueItems':
          break
        default:
          if (typeof v !== 'number') problems.push(`${at}.${k}: must be a number`)
      }
    }
  }
  walk(schema, '$', 0)
  if (problems.length === 0) {
    // a $ref cycle that consumes no data loops on any value
    for (const probe of [null, {}, []]) {
      if (validateWithValue(schema, probe).errors.some((e) => e.keyword === '$ref')) {
        problems.push('$: $ref cycle without progress (a schema that refers to itself forever)')
        break
      }
    }
  }
  return problems
}

function resolveRef(root: unknown, ref: string): Schema | undefined {
  const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref)
  if (!m || typeof root !== 'object' || root === null) return undefined
  const defs = (root as Record<string, unknown>)[m[1]!]
  if (typeof defs !== 'object' || defs === null) return undefined
  return (defs as Record<string, Schema>)[m[2]!.replace(/~1/g, '/').replace(/~0/g, '~')]
}

function typeOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

function typeMatches(t: string, v: unknown): boolean {
  const actual = typeOf(v)
  if (t === 'number') return actual === 'number' || actual === 'integer'
  return t === actual
}

function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]))
  }
  const ka = Object.keys(a as object)
  const kb = Object.keys(b as object)
  return (
    ka.length === kb.length &&
    ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  )
}

const patternCache = new Map<string, RegExp>()
function regex(p: string): RegExp {
  let r = patternCache.get(p)
  if (!r) {
    r = new RegExp(p, 'u')
    if (patternCache.size > 1000) patternCache.clear()
    patternCache.set(p, r)
  }
  return r
}

function describe(v: unknown): string {
  const t = typeOf(v)
  return t === 'integer' ? 'number' : t
}

/**
 * Validates `value`; returns every error found (the first ones are the most useful). With
 * `coerce` (query strings), strings are converted to numbers/booleans and single values to arrays
 * where the schema asks for them; the converted value is returned in `value`.
 */
export function validateJson(
  schema: unknown,
  value: unknown,
  opts: { coerce?: boolean } = {},
): SchemaError[] {
  return validateWithValue(schema, value, opts).errors
}

export function validateWithValue(
  schema: unknown,
  value: unknown,
  opts: { coerce?: boolean } = {},
): { errors: SchemaError[]; value: unknown } {
  const root = schema
  const errors: SchemaError[] = []
  const coerce = opts.coerce === true

  const coerceTo = (s: Record<string, unknown>, v: unknown): unknown => {
    if (!coerce) return v
    const types =
      s.type === undefined ? [] : Array.isArray(s.type) ? (s.type as string[]) : [s.type as string]
    if (types.includes('array') && !Array.isArray(v) && v !== undefined) return [v]
    if (typeof v === 'string') {
      if ((types.includes('integer') || types.includes('number')) && /^-?[0-9]+(\.[0-9]+)?$/.test(v))
        return Number(v)
      if (types.includes('boolean') && (v === 'true' || v === 'false')) return v === 'true'
    }
    return v
  }

  let depth = 0
  const run = (s: Schema, v: unknown, path: string, out: SchemaError[]): unknown => {
    if (depth > 128) {
      out.push({ path, keyword: '$ref', message: 'the schema nests (or refers to itself) too deeply' })
      return v
    }
    depth++
    try {
      return step(s, v, path, out)
    } finally {
      depth--
    }
  }
  const step = (s: Schema, v: unknown, path: string, out: SchemaError[]): unknown => {
    if (s === true) return v
    if (s === false) {
      out.push({ path, keyword: 'false', message: 'no value is allowed here' })
      return v
    }
    if (typeof s.$ref === 'string') {
      const target = resolveRef(root, s.$ref)
      if (target !== undefined) v = run(target, v, path, out)
    }
    v = coerceTo(s, v)
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string]
      if (!types.some((t) => typeMatches(t, v))) {
        out.push({ path, keyword: 'type', message: `must be ${types.join(' or ')}, got ${describe(v)}` })
        return v
      }
    }
    if (s.const !== undefined && !deepEqual(s.const, v)) {
      out.push({ path, keyword: 'const', message: `must be ${JSON.stringify(s.const)}` })
    }
    if (Array.isArray(s.enum) && !s.enum.some((e) => deepEqual(e, v))) {
      out.push({
        path,
        keyword: 'enum',
        message: `must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`,
      })
    }
    if (typeof v === 'number') {
      if (typeof s.minimum === 'number' && v < s.minimum)
        out.push({ path, keyword: 'minimum', message: `must be >= ${s.minimum}` })
      if (typeof s.maximum === 'number' && v > s.maximum)
        out.push({ path, keyword: 'maximum', message: `must be <= ${s.maximum}` })
      if (typeof s.exclusiveMinimum === 'number' && v <= s.exclusiveMinimum)
        out.push({ path, keyword: 'exclusiveMinimum', message: `must be > ${s.exclusiveMinimum}` })
      if (typeof s.exclusiveMaximum === 'number' && v >= s.exclusiveMaximum)
        out.push({ path, keyword: 'exclusiveMaximum', message: `must be < ${s.exclusiveMaximum}` })
    }
    if (typeof v === 'string') {
      const len = [...v].length
      if (typeof s.minLength === 'number' && len < s.minLength)
        out.push({ path, keyword: 'minLength', message: `must have at least ${s.minLength} characters` })
      if (typeof s.maxLength === 'number' && len > s.maxLength)
        out.push({ path, keyword: 'maxLength', message: `must have at most ${s.maxLength} characters` })
      if (typeof s.pattern === 'string' && !regex(s.pattern).test(v))
        out.push({ path, keyword: 'pattern', message: `must match ${s.pattern}` })
    }
    if (Array.isArray(v)) {
      if (typeof s.minItems === 'number' && v.length < s.minItems)
        out.push({ path, keyword: 'minItems', message: `must have at least ${s.minItems} items` })
      if (typeof s.maxItems === 'number' && v.length > s.maxItems)
        out.push({ path, keyword: 'maxItems', message: `must have at most ${s.maxItems} items` })
      if (s.uniqueItems === true) {
        const arr = v as unknown[]
        for (let i = 1; i < arr.length; i++) {
          if (arr.slice(0, i).some((x) => deepEqual(x, arr[i]))) {
            out.push({
              path: childPath(path, i),
              keyword: 'uniqueItems',
              message: 'duplicates an earlier item',
            })
            break
          }
        }
      }
      if (s.items !== undefined) {
        const items = s.items as Schema
        const copy = coerce ? [...v] : v
        const arr = v as unknown[]
        for (let i = 0; i < arr.length; i++) copy[i] = run(items, arr[i], childPath(path, i), out)
        v = copy
      }
    }
    if (typeOf(v) === 'object') {
      const o = v as Record<string, unknown>
      const props = (s.properties ?? {}) as Record<string, Schema>
      const copy: Record<string, unknown> = coerce ? { ...o } : o
      if (Array.isArray(s.required)) {
        for (const r of s.required as string[]) {
          if (o[r] === undefined)
            out.push({ path: childPath(path, r), keyword: 'required', message: 'is required' })
        }
      }
      const keys = Object.keys(o)
      if (typeof s.minProperties === 'number' && keys.length < s.minProperties)
        out.push({
          path,
          keyword: 'minProperties',
          message: `must have at least ${s.minProperties} properties`,
        })
      if (typeof s.maxProperties === 'number' && keys.length > s.maxProperties)
        out.push({
          path,
          keyword: 'maxProperties',
          message: `must have at most ${s.maxProperties} properties`,
        })
      for (const k of keys) {
        if (Object.hasOwn(props, k)) {
          if (o[k] !== undefined) copy[k] = run(props[k]!, o[k], childPath(path, k), out)
        } else if (s.additionalProperties === false) {
          out.push({
            path: childPath(path, k),
            keyword: 'additionalProperties',
            message: `unknown field "${k}"`,
          })
        } else if (s.additionalProperties !== undefined && s.additionalProperties !== true) {
          copy[k] = run(s.additionalProperties as Schema, o[k], childPath(path, k), out)
        }
      }
      v = copy
    }
    if (Array.isArray(s.allOf)) for (const b of s.allOf as Schema[]) v = run(b, v, path, out)
    if (Array.isArray(s.anyOf) || Array.isArray(s.oneOf)) {
      const branches = (s.anyOf ?? s.oneOf) as Schema[]
      const results = branches.map((b) => {
        const e: SchemaError[] = []
        const nv = run(b, v, path, e)
        return { e, nv }
      })
      const ok = results.filter((r) => r.e.length === 0)
      if (Array.isArray(s.oneOf) && ok.length > 1) {
        out.push({ path, keyword: 'oneOf', message: 'matches more than one of the allowed shapes' })
      } else if (ok.length === 0) {
        const consts = branches.every((b) => typeof b === 'object' && b.const !== undefined)
        if (consts) {
          out.push({
            path,
            keyword: 'enum',
            message: `must be one of ${branches.map((b) => JSON.stringify((b as Record<string, unknown>).const)).join(', ')}`,
          })
        } else {
          // report the branch that got furthest (deepest first error)
          const best = results.reduce((a, b) => (depthOf(b.e) > depthOf(a.e) ? b : a))
          out.push(...best.e)
        }
      } else {
        v = ok[0]!.nv
      }
    }
    if (s.not !== undefined) {
      const e: SchemaError[] = []
      run(s.not as Schema, v, path, e)
      if (e.length === 0) out.push({ path, keyword: 'not', message: 'matches a shape that is not allowed' })
    }
    return v
  }
  const out = run(schema as Schema, value, '$', errors)
  return { errors, value: out }
}

function depthOf(errors: SchemaError[]): number {
  if (errors.length === 0) return -1
  return Math.max(...errors.map((e) => e.path.split(/[.[]/).length))
}
