/**
 * `nullport edge ...`: the management commands (OpenZiti's `ziti edge ...` grammar) over the
 * controller's management API, plus `enroll` (SDK enrollment). One file per verb; create and
 * update are registered from the per-kind table in fields.ts, list from the one in kinds.ts.
 */
import type { Command } from 'commander'
import { registerAdvisor } from './advisor.js'
import { registerCreate } from './create.js'
import { registerDelete } from './delete.js'
import { registerEnroll } from './enroll.js'
import { registerList } from './list.js'
import { registerLogin } from './login.js'
import { registerUpdate } from './update.js'
import { oneLineUsageErrors } from './usage.js'

/** Registers the `nullport edge ...` commands. */
export function register(program: Command): void {
  const edge = program
    .command('edge')
    .description('manage the network: identities, services, configs, policies, edge routers; enroll')
  registerLogin(edge)
  registerCreate(edge)
  registerUpdate(edge)
  registerList(edge)
  registerDelete(edge)
  registerEnroll(edge)
  registerAdvisor(edge)
  oneLineUsageErrors(edge)
}
