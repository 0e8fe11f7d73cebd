/** The router's version (reported to the controller) and agent string (link HELLOs). */
export const ROUTER_VERSION = '0.1.0'
export const ROUTER_AGENT = `nullport-router/${ROUTER_VERSION}`
