/** The environment of the `@nullport/sdk/register` hook (parsed without side effects, for tests). */
import { SdkError } from '../errors.js'
import { parseBindingKey } from '../zitify.js'

/** What the register hook reads from the environment. */
export interface RegisterConfig {
  identityPath: string
  bindings: Array<{ key: string; service: string }>
  intercept: boolean
}

/** Parses the environment; throws SdkError/ProtocolError with a code. */
export function parseRegisterEnv(env: NodeJS.ProcessEnv): RegisterConfig {
  const identityPath = env.NULLPORT_IDENTITY?.trim()
  if (!identityPath) {
    throw new SdkError(
      'ERR_IDENTITY_FILE',
      'NULLPORT_IDENTITY is not set: point it at an enrolled identity file (NULLPORT_IDENTITY=host.json node --import @nullport/sdk/register app.js)',
    )
  }
  const bindings: RegisterConfig['bindings'] = []
  const raw = env.NULLPORT_BINDINGS?.trim() ?? ''
  if (raw.length > 0) {
    for (const part of raw.split(/[,;\s]+/).filter((p) => p.length > 0)) {
      const eq = part.lastIndexOf('=')
      const key = eq > 0 ? part.slice(0, eq) : ''
      const service = eq > 0 ? part.slice(eq + 1) : ''
      if (!key || !service || !/:\d+$|^\d+$/.test(key)) {
        throw new SdkError(
          'ERR_INVALID_BINDINGS',
          `NULLPORT_BINDINGS entry "${part}" is malformed: expected host:port=service, e.g. 127.0.0.1:18080=family.tools (several separated by commas)`,
          { entry: part },
        )
      }
      parseBindingKey(key)
      bindings.push({ key, service })
    }
  }
  const ic = (env.NULLPORT_INTERCEPT ?? '1').trim()
  if (ic !== '0' && ic !== '1') {
    throw new SdkError('ERR_INVALID_OPTION', `NULLPORT_INTERCEPT must be 0 or 1, got "${ic}"`)
  }
  return { identityPath, bindings, intercept: ic === '1' }
}
