/** HTTP over the overlay: fetch, undici dispatcher, http(s) agents, intercept matching. */
import './context-methods.js'

export {
  type OverlayAgentOptions,
  OverlayHttpAgent,
  OverlayHttpsAgent,
  type OverlayHttpsAgentOptions,
} from './agent.js'
export { type OverlayDispatcherOptions, overlayDispatcher } from './dispatcher.js'
export { dispatcherOf, httpAgentOf, httpsAgentOf, type OverlayRequestInit, overlayFetch } from './fetch.js'
export {
  defaultPort,
  InterceptTable,
  type InterceptTarget,
  interceptTable,
  resolveIntercept,
} from './intercept.js'
export {
  type DialTargetOptions,
  dialTarget,
  type OverlayTlsOptions,
  PendingOverlaySocket,
} from './overlay-connect.js'
