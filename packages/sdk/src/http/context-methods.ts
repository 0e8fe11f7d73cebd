/**
 * `ctx.fetch()`, `ctx.dispatcher()`, `ctx.httpAgent()`, `ctx.httpsAgent()` and `ctx.serve()`:
 * the free functions of src/http and serve.ts attached to Context (declaration merging), so the
 * core's context.ts is not touched. Loaded by index.ts.
 */
import type { Server } from 'node:net'
import { Context } from '../context.js'
import { type ServeHandle, type ServeOptions, serve } from '../serve.js'
import type {
  OverlayAgentOptions,
  OverlayHttpAgent,
  OverlayHttpsAgent,
  OverlayHttpsAgentOptions,
} from './agent.js'
import type { OverlayDispatcherOptions } from './dispatcher.js'
import { dispatcherOf, httpAgentOf, httpsAgentOf, type OverlayRequestInit, overlayFetch } from './fetch.js'

declare module '../context.js' {
  interface Context {
    /** fetch() over the overlay; see `overlayFetch()`. Refuses non-intercepted hosts (ERR_NOT_INTERCEPTED). */
    fetch(input: string | URL | { url: string }, init?: OverlayRequestInit): Promise<Response>
    /** An undici Dispatcher dialing the overlay, for `fetch(url, { dispatcher })`; shared when no options are given. */
    dispatcher(opts?: OverlayDispatcherOptions): import('undici').Agent
    /** An http.Agent dialing the overlay (keep-alive), for http.request, axios, got, ws. */
    httpAgent(opts?: OverlayAgentOptions): OverlayHttpAgent
    /** An https.Agent dialing the overlay, TLS inside the circuit. */
    httpsAgent(opts?: OverlayHttpsAgentOptions): OverlayHttpsAgent
    /** Serves an http/https/http2/net server on a service with no listening socket; see `serve()`. */
    serve(server: Server, service: string, opts?: ServeOptions): Promise<ServeHandle>
  }
}

const proto = Context.prototype as Context
proto.fetch = function (this: Context, input, init) {
  return overlayFetch(this, input, init)
}
proto.dispatcher = function (this: Context, opts) {
  return dispatcherOf(this, opts)
}
proto.httpAgent = function (this: Context, opts) {
  return httpAgentOf(this, opts)
}
proto.httpsAgent = function (this: Context, opts) {
  return httpsAgentOf(this, opts)
}
proto.serve = function (this: Context, server, service, opts) {
  return serve(this, server, service, opts)
}
