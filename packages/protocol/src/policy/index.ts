/**
 * The policy engine, shared by the controller (client service lists, policy-advisor) and routers
 * (local authorization of every dial and bind). Indexed for 100k identities, 10k services, 1k
 * policies. OWNER: policy helper. Signatures here are the contract; implementation in ./policy-index.ts.
 */

export { commands as policyCommands, shellWord } from './fixes.js'
export * from './policy-index.js'
export {
  type CompiledRoles,
  compiledMatches,
  compileRoles,
  formatRole,
  parseRoles,
  type RoleSubject,
  rolesMatch,
  tryParseRole,
} from './roles.js'
