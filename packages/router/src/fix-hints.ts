/**
 * The fix hints the router appends to refusal messages it puts on the wire (DIAL_FAILED,
 * BIND_FAILED, GOAWAY). Internal: not part of the package API.
 */

/** Extra words for refusal messages: the command that fixes each cause. */
const FIX_HINTS: Partial<Record<string, string>> = {
  ERR_NO_DIAL_PERMISSION:
    'grant it with a Dial service-policy (nullport edge create service-policy NAME Dial ...)',
  ERR_NO_BIND_PERMISSION:
    'grant it with a Bind service-policy (nullport edge create service-policy NAME Bind ...)',
  ERR_NO_EDGE_ROUTER_POLICY: 'add an edge-router-policy giving the identity this router',
  ERR_NO_SERVICE_EDGE_ROUTER_POLICY: 'add a service-edge-router-policy giving the service this router',
  ERR_IDENTITY_DISABLED: 'enable the identity (nullport edge update identity NAME --disabled=false)',
  ERR_SERVICE_NOT_FOUND: 'check the service name (nullport edge list services)',
}

/** A refusal message with the fix for its code appended (once), at most 1024 characters. */
export function withHint(code: string, message: string): string {
  const hint = FIX_HINTS[code]
  const m = hint && !message.includes(hint) ? `${message}: ${hint}` : message
  return m.slice(0, 1024)
}
