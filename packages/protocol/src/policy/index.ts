/**
 * The policy engine, shared by the controller (client service lists, policy-advisor) and routers
 * (local authorization of every dial and bind). Indexed for 100k identities, 10k services, 1k
 * policies. OWNER: policy helper. Signatures here are the contract; implementation in ./policy-index.ts
 * (the index), ./policy-index-types.ts (its answers), ./impact.ts, ./compiled-policies.ts,
 * ./entity-table.ts, ./roles.ts, ./advisor.ts, ./fixes.ts.
 */

export { commands as policyCommands, shellWord } from './fixes.js'
export { PolicyImpact } from './impact.js'
export { PolicyIndex } from './policy-index.js'
export type {
  AdvisorReport,
  AuthzDenyCode,
  AuthzResult,
  PolicyIndexOptions,
  PolicyIndexStats,
  PostureContext,
} from './policy-index-types.js'
export {
  type CompiledRoles,
  compiledMatches,
  compileRoles,
  formatRole,
  type ParsedRole,
  parseRole,
  parseRoles,
  type RoleSubject,
  rolesMatch,
  tryParseRole,
} from './roles.js'
