/** Success envelope `{data, meta}` and the TypeBox helpers for documenting it. */
import { type TSchema, Type } from '@sinclair/typebox'
import type { Pagination } from '../../core/query.js'

export interface Meta {
  pagination?: Pagination
  warnings?: string[]
  [k: string]: unknown
}

export function ok<T>(data: T, meta: Meta = {}): { data: T; meta: Meta } {
  return { data, meta }
}

export const ErrorSchema = Type.Object(
  {
    error: Type.Object(
      { code: Type.String(), message: Type.String() },
      { additionalProperties: true, description: 'code: see docs/api-errors.md' },
    ),
  },
  { $id: undefined, description: 'Error' },
)

export const PaginationSchema = Type.Object({
  limit: Type.Integer(),
  offset: Type.Integer(),
  totalCount: Type.Integer(),
})

export function envelope(data: TSchema, list = false): TSchema {
  return Type.Object({
    data: list ? Type.Array(data) : data,
    meta: Type.Object(
      {
        ...(list ? { pagination: PaginationSchema } : {}),
        warnings: Type.Optional(Type.Array(Type.String())),
      },
      { additionalProperties: true },
    ),
  })
}

export const ListQuerySchema = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647, default: 0 })),
    filter: Type.Optional(
      Type.String({ maxLength: 1024, description: 'e.g. name contains "web" and name != "web-old"' }),
    ),
    roleFilter: Type.Optional(
      Type.Array(Type.String({ maxLength: 256 }), {
        maxItems: 64,
        description: '#attr or @id-or-name; repeatable',
      }),
    ),
    roleSemantic: Type.Optional(Type.Union([Type.Literal('AllOf'), Type.Literal('AnyOf')])),
  },
  { additionalProperties: false },
)

export const IdParams = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 255, description: 'id or name' }) },
  { additionalProperties: false },
)
