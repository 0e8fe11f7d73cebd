import { WIRE_MESSAGE_MAX } from '@nullport/protocol'
import { SDK_ERROR_CODES, SdkError, type SdkErrorCode } from './errors.js'

/**
 * Turns a code received from a router or the peer SDK (DIAL_FAILED, CLOSE, BIND_FAILED, UNBIND)
 * into an SdkError. Known codes are passed through as they are; an unknown one becomes
 * `fallback` with the received code in `details.remoteCode` and in the message.
 */
export function remoteError(
  code: string | undefined,
  message: string | undefined,
  fallback: SdkErrorCode,
  details: Record<string, unknown> = {},
): SdkError {
  const c = code ?? fallback
  const text = message && message.length > 0 ? message : c
  if (SDK_ERROR_CODES.has(c)) return new SdkError(c as SdkErrorCode, text, { ...details, remoteCode: c })
  return new SdkError(fallback, `${c}: ${text}`, { ...details, remoteCode: c })
}

/** The error code to put on the wire for a local error (CLOSE / DIAL_FAILED `code`). */
export function wireCode(err: unknown, fallback: string): string {
  const c = (err as { code?: unknown } | null)?.code
  if (typeof c === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(c)) return c
  return fallback
}

/** A message that fits the wire limit (WIRE_MESSAGE_MAX, 1024 characters). */
export function wireMessage(err: unknown): string {
  const m = (err as { message?: unknown } | null)?.message
  return typeof m === 'string' ? m.slice(0, WIRE_MESSAGE_MAX) : ''
}
