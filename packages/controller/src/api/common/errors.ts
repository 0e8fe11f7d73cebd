/**
 * One error shape for every HTTP error: `{"error":{"code":"ERR_...","message":"...", ...fields}}`,
 * with the status from the registry (src/errors.ts). Fastify's own errors (body too large,
 * malformed JSON, unknown routes) are mapped to registry codes; anything else is a 500
 * ERR_CONTROLLER_INTERNAL carrying the request id (the details go to the log, not the client).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ControllerError, type ControllerErrorCode, ERRORS } from '../../errors.js'

export interface ErrorBody {
  error: { code: ControllerErrorCode; message: string; [field: string]: unknown }
}

export function errorBody(
  code: ControllerErrorCode,
  message?: string,
  fields: Record<string, unknown> = {},
): ErrorBody {
  const { code: _c, message: _m, ...rest } = fields
  return { error: { code, message: message ?? ERRORS[code].message, ...rest } }
}

/** Maps any thrown value to (status, body). */
export function toHttpError(
  err: unknown,
  bodyLimit: number,
  requestId: string,
): { status: number; body: ErrorBody; internal: boolean } {
  if (err instanceof ControllerError) {
    return {
      status: ERRORS[err.code].status,
      body: errorBody(err.code, err.message, err.details),
      internal: false,
    }
  }
  const e = err as FastifyError & { validation?: unknown; statusCode?: number }
  const mapped = (code: ControllerErrorCode, message?: string, fields?: Record<string, unknown>) => ({
    status: ERRORS[code].status,
    body: errorBody(code, message, fields),
    internal: false,
  })
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return mapped('ERR_BODY_TOO_LARGE', `the request body is larger than ${bodyLimit} bytes`, {
        limit: bodyLimit,
      })
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return mapped('ERR_MALFORMED_JSON', `the request body is not valid JSON: ${e.message}`)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return mapped('ERR_UNSUPPORTED_MEDIA_TYPE', `unsupported Content-Type: send application/json`)
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return mapped('ERR_BAD_REQUEST', 'the Content-Length does not match the body')
    case 'FST_ERR_VALIDATION':
      return mapped('ERR_VALIDATION', e.message)
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return mapped(
        'ERR_VALIDATION',
        'a path parameter is too long: ids and names have at most 255 characters',
      )
    case 'FST_ERR_BAD_URL':
      return mapped('ERR_BAD_REQUEST', 'the URL is not validly percent-encoded')
  }
  if (e instanceof SyntaxError && e.statusCode === 400)
    return mapped('ERR_MALFORMED_JSON', `the request body is not valid JSON: ${e.message}`)
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 413)
      return mapped('ERR_BODY_TOO_LARGE', `the request body is larger than ${bodyLimit} bytes`, {
        limit: bodyLimit,
      })
    if (e.statusCode === 404) return mapped('ERR_NOT_FOUND', e.message)
    if (e.statusCode === 415) return mapped('ERR_UNSUPPORTED_MEDIA_TYPE')
    return mapped('ERR_BAD_REQUEST', e.message)
  }
  return {
    status: 500,
    body: errorBody(
      'ERR_CONTROLLER_INTERNAL',
      `internal error (request id ${requestId}): see the controller log`,
      { requestId },
    ),
    internal: true,
  }
}

export function installErrorHandling(app: FastifyInstance, bodyLimit: number): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const { status, body, internal } = toHttpError(err, bodyLimit, String(req.id))
    if (internal) req.log.error({ err }, 'request failed')
    else req.log.info({ code: body.error.code, status }, 'request refused')
    if (body.error.code === 'ERR_RATE_LIMITED' && typeof body.error.retryAfterSeconds === 'number') {
      reply.header('retry-after', String(body.error.retryAfterSeconds))
    }
    if (status === 401) reply.header('www-authenticate', 'Bearer realm="nullport"')
    return reply.status(status).type('application/json; charset=utf-8').send(body)
  })
  app.setNotFoundHandler((req, reply) => {
    reply
      .status(404)
      .type('application/json; charset=utf-8')
      .send(
        errorBody('ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, { method: req.method }),
      )
  })
}
