/**
 * WHATWG fetch over the overlay (undici's fetch with an overlay dispatcher).
 */
import { type Agent, fetch as undiciFetch } from 'undici'
import type { Context } from '../context.js'
import { SdkError } from '../errors.js'
import {
  type OverlayAgentOptions,
  OverlayHttpAgent,
  OverlayHttpsAgent,
  type OverlayHttpsAgentOptions,
} from './agent.js'
import { type OverlayDispatcherOptions, overlayDispatcher } from './dispatcher.js'
import { defaultPort, explainNotIntercepted, resolveIntercept } from './intercept.js'

interface Shared {
  dispatcher?: Agent
  httpAgent?: OverlayHttpAgent
  httpsAgent?: OverlayHttpsAgent
}
const shared = new WeakMap<Context, Shared>()

function sharedOf(ctx: Context): Shared {
  let s = shared.get(ctx)
  if (!s) {
    const created: Shared = {}
    s = created
    shared.set(ctx, created)
    ctx.once('close', () => {
      shared.delete(ctx)
      created.dispatcher?.destroy().catch(() => undefined)
      created.httpAgent?.destroy()
      created.httpsAgent?.destroy()
    })
  }
  return s
}

/**
 * The context's dispatcher: with no options, one shared per context (closed with it); with
 * options, a new one the caller closes.
 */
export function dispatcherOf(ctx: Context, opts?: OverlayDispatcherOptions): Agent {
  if (opts !== undefined) return overlayDispatcher(ctx, opts)
  const s = sharedOf(ctx)
  if (!s.dispatcher || s.dispatcher.closed || s.dispatcher.destroyed) s.dispatcher = overlayDispatcher(ctx)
  return s.dispatcher
}

/** The context's http.Agent (shared when no options are given). */
export function httpAgentOf(ctx: Context, opts?: OverlayAgentOptions): OverlayHttpAgent {
  if (opts !== undefined) return new OverlayHttpAgent(ctx, opts)
  const s = sharedOf(ctx)
  s.httpAgent ??= new OverlayHttpAgent(ctx)
  return s.httpAgent
}

/** The context's https.Agent (shared when no options are given). */
export function httpsAgentOf(ctx: Context, opts?: OverlayHttpsAgentOptions): OverlayHttpsAgent {
  if (opts !== undefined) return new OverlayHttpsAgent(ctx, opts)
  const s = sharedOf(ctx)
  s.httpsAgent ??= new OverlayHttpsAgent(ctx)
  return s.httpsAgent
}

/** `init` of `overlayFetch()`: fetch's RequestInit, plus a dispatcher to use instead of the context's. */
export type OverlayRequestInit = NonNullable<Parameters<typeof undiciFetch>[1]>

/**
 * fetch() over the overlay. The URL's host must match a service this identity may dial (an
 * intercept.v1 address such as `family.tools.ziti`, a `*.domain` wildcard, or the service name)
 * on a port of its ranges; anything else is refused with ERR_NOT_INTERCEPTED before any I/O.
 * Dial failures reject with the SdkError (ERR_NO_TERMINATORS, ERR_NO_DIAL_PERMISSION, ...), not
 * undici's generic "fetch failed". Streaming request bodies need `duplex: 'half'` as usual.
 *
 * @example
 * const res = await overlayFetch(ctx, 'http://family.tools.ziti/tools')
 * console.log(res.status, await res.json())
 */
export async function overlayFetch(
  ctx: Context,
  input: string | URL | { url: string },
  init: OverlayRequestInit = {},
): Promise<Response> {
  let href: string
  if (typeof input === 'string') href = input
  else if (input instanceof URL) href = input.href
  else {
    // A Request (Node's global one is not undici's class): carry its fields into init.
    const r = input as Partial<Request> & { url: string }
    href = r.url
    init = {
      ...(r.method ? { method: r.method } : {}),
      ...(r.headers ? { headers: r.headers as never } : {}),
      ...(r.body ? { body: r.body as never, duplex: 'half' } : {}),
      ...(r.signal ? { signal: r.signal as never } : {}),
      ...(r.redirect ? { redirect: r.redirect } : {}),
      ...init,
    } as OverlayRequestInit
  }
  let url: URL
  try {
    url = new URL(href)
  } catch (err) {
    throw new SdkError(
      'ERR_INVALID_OPTION',
      `fetch: ${JSON.stringify(href)} is not an absolute URL`,
      {},
      { cause: err },
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SdkError(
      'ERR_INVALID_OPTION',
      `fetch: only http: and https: URLs go over the overlay, got ${url.protocol}`,
    )
  }
  try {
    resolveIntercept(ctx, url.hostname, url.port ? Number(url.port) : defaultPort(url.protocol))
  } catch (err) {
    throw await explainNotIntercepted(ctx, err)
  }
  const dispatcher = init.dispatcher ?? dispatcherOf(ctx)
  try {
    return (await undiciFetch(href, { ...init, dispatcher })) as unknown as Response
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause
    if (cause instanceof SdkError) throw cause
    throw err
  }
}
