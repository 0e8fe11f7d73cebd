/**
 * Refusal messages and the `nullport` commands that fix them, in one place so the CLI grammar can
 * change in one file. Names are shell-quoted when needed; role lists are always single-quoted
 * (`'#a'` would start a comment in most shells).
 */
import type { PolicyType } from '../model.js'

/** Quotes a word for a POSIX shell only when it needs it. */
export function shellWord(s: string): string {
  if (/^[A-Za-z0-9._@%+=:,/-]+$/.test(s)) return s
  return quoteAlways(s)
}

function quoteAlways(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** A role list argument: `'@a,#b'`. */
export function rolesArg(roles: readonly string[]): string {
  return quoteAlways(roles.join(','))
}

export const commands = {
  advisor: (identity: string, service: string): string =>
    `nullport edge policy-advisor identities ${shellWord(identity)} ${shellWord(service)}`,
  createServicePolicy: (
    name: string,
    type: PolicyType,
    serviceRoles: string[],
    identityRoles: string[],
  ): string =>
    `nullport edge create service-policy ${shellWord(name)} ${type} --service-roles ${rolesArg(serviceRoles)} --identity-roles ${rolesArg(identityRoles)}`,
  updateServicePolicyIdentityRoles: (name: string, roles: string[]): string =>
    `nullport edge update service-policy ${shellWord(name)} --identity-roles ${rolesArg(roles)}`,
  updateServicePolicyServiceRoles: (name: string, roles: string[]): string =>
    `nullport edge update service-policy ${shellWord(name)} --service-roles ${rolesArg(roles)}`,
  createEdgeRouterPolicy: (name: string, identityRoles: string[], routerRoles: string[]): string =>
    `nullport edge create edge-router-policy ${shellWord(name)} --identity-roles ${rolesArg(identityRoles)} --edge-router-roles ${rolesArg(routerRoles)}`,
  createServiceEdgeRouterPolicy: (name: string, serviceRoles: string[], routerRoles: string[]): string =>
    `nullport edge create service-edge-router-policy ${shellWord(name)} --service-roles ${rolesArg(serviceRoles)} --edge-router-roles ${rolesArg(routerRoles)}`,
  /** `-a` replaces the attribute list (as in OpenZiti), so pass the full new list. */
  updateIdentityAttributes: (name: string, attributes: string[]): string =>
    `nullport edge update identity ${shellWord(name)} -a ${shellWord(attributes.join(','))}`,
  updateServiceAttributes: (name: string, attributes: string[]): string =>
    `nullport edge update service ${shellWord(name)} -a ${shellWord(attributes.join(','))}`,
  enableIdentity: (name: string): string =>
    `nullport edge update identity ${shellWord(name)} --disabled=false`,
  enableRouter: (name: string): string =>
    `nullport edge update edge-router ${shellWord(name)} --disabled=false`,
  list: (what: 'identities' | 'services' | 'edge-routers' | 'terminators'): string =>
    `nullport edge list ${what}`,
}

export const fixes = {
  identityNotFound: (id: string): string =>
    `identity ${id} is not known here (deleted, or this component has not yet received it): check with \`${commands.list('identities')}\``,
  identityDisabled: (name: string): string =>
    `identity ${name} is disabled: enable it with \`${commands.enableIdentity(name)}\``,
  serviceNotFound: (id: string): string =>
    `service ${id} does not exist: check the name with \`${commands.list('services')}\``,
  noPermission: (identity: string, service: string, type: PolicyType, policyName: string): string =>
    `identity ${identity} has no ${type} policy for service ${service}: run \`${commands.advisor(identity, service)}\`, or create one with \`${commands.createServicePolicy(policyName, type, [`@${service}`], [`@${identity}`])}\``,
  routerNotFound: (id: string): string =>
    `edge router ${id} is not known (deleted, or not yet synchronized): check with \`${commands.list('edge-routers')}\``,
  routerDisabled: (name: string): string =>
    `edge router ${name} is disabled: enable it with \`${commands.enableRouter(name)}\``,
  noEdgeRouterPolicy: (identity: string, service: string, router: string): string =>
    `identity ${identity} may not use edge router ${router} (no edge router policy gives it): create one with \`${commands.createEdgeRouterPolicy(`${identity}.routers`, [`@${identity}`], [`@${router}`])}\`, or run \`${commands.advisor(identity, service)}\``,
  noServiceEdgeRouterPolicy: (identity: string, service: string, router: string): string =>
    `service ${service} may not be reached through edge router ${router} (no service edge router policy gives it): create one with \`${commands.createServiceEdgeRouterPolicy(`${service}.routers`, [`@${service}`], [`@${router}`])}\`, or run \`${commands.advisor(identity, service)}\``,
}
