/**
 * Input checks and the entity errors every core module raises the same way: validation (with the
 * JSON path of the bad field), name in use, not found, and the store's unique-violation test.
 */
import { ControllerError } from '../errors.js'

/** SQLite stores booleans as 0/1, PostgreSQL as true/false. */
export function boolOf(v: number | boolean): boolean {
  return v === true || v === 1
}

/** Whether a store error is a unique-constraint violation (SQLite or PostgreSQL). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string }
  return (
    e?.code === '23505' ||
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    /UNIQUE constraint failed/.test(e?.message ?? '')
  )
}

/** ERR_VALIDATION naming the field (`path` is a JSON path such as `$.roleAttributes[2]`). */
export function validation(
  path: string,
  message: string,
  extra: Record<string, unknown> = {},
): ControllerError {
  return new ControllerError('ERR_VALIDATION', `${path.replace(/^\$\.?/, '') || 'body'}: ${message}`, {
    path,
    ...extra,
  })
}

export function nameInUse(type: string, name: string): ControllerError {
  return new ControllerError(
    'ERR_NAME_IN_USE',
    `a ${type} named "${name}" already exists: choose another name`,
    {
      name,
      entity: type,
    },
  )
}

export function notFound(type: string, ref: string): ControllerError {
  return new ControllerError('ERR_NOT_FOUND', `no ${type} with id or name "${ref}"`, { entity: type, ref })
}

/** An entity name: a string of 1-255 characters without leading or trailing spaces. */
export function checkNameValue(name: unknown, path = '$.name'): string {
  if (typeof name !== 'string') throw validation(path, 'must be a string')
  const n = name.trim()
  if (n.length === 0 || n.length > 255) throw validation(path, 'must be 1-255 characters')
  if (n !== name) throw validation(path, 'must not start or end with spaces')
  return n
}
