/** `nullport edge policy-advisor`: whether an identity can use a service, and why not. */
import type { Command } from 'commander'
import { api, enc } from './api.js'
import type { Row } from './kinds.js'
import { printJson } from './output.js'

/** Registers `edge policy-advisor identities|services`. */
export function registerAdvisor(edge: Command): void {
  const advisor = edge
    .command('policy-advisor')
    .description('explain whether an identity can use a service, and why not')
  const advise = async (identity: string, service: string, o: { json?: boolean }) => {
    const r = await api<Row>(
      'GET',
      `/policy-advisor/identities/${enc(identity)}/services/${enc(service)}`,
      {},
      {},
    )
    const d = (r.data ?? {}) as Row
    if (o.json) printJson(d)
    else process.stdout.write(formatAdvisor(d, identity, service))
  }
  advisor
    .command('identities')
    .argument('<identity>', 'identity name or id')
    .argument('<service>', 'service name or id')
    .option('--json', 'print the report as JSON')
    .action((identity: string, service: string, o: { json?: boolean }) => advise(identity, service, o))
  advisor
    .command('services')
    .description('the same report, service first (OpenZiti order)')
    .argument('<service>', 'service name or id')
    .argument('<identity>', 'identity name or id')
    .option('--json', 'print the report as JSON')
    .action((service: string, identity: string, o: { json?: boolean }) => advise(identity, service, o))
}

function named(v: unknown): string {
  if (v && typeof v === 'object') {
    const o = v as Row
    return `${o.name ?? o.id}${o.isOnline === true ? ' (online)' : o.isOnline === false ? ' (offline)' : ''}`
  }
  return String(v)
}

function formatAdvisor(d: Row, identityArg: string, serviceArg: string): string {
  const list = (v: unknown) => (Array.isArray(v) && v.length ? v.map(named).join(', ') : '(none)')
  const can = (yes: unknown, policies: unknown, type: string) => {
    const has = Array.isArray(policies) && policies.length > 0
    if (yes) return `yes (${type} policies: ${list(policies)})`
    return has ? `no (${type} policies: ${list(policies)}, but see the findings)` : `no (no ${type} policy)`
  }
  const ident = d.identity as Row | null | undefined
  const svc = d.service as Row | null | undefined
  const lines = [
    `identity: ${ident ? `${ident.name} (${ident.id})` : `${identityArg} (not found)`}`,
    `service:  ${svc ? `${svc.name} (${svc.id})` : `${serviceArg} (not found)`}`,
    `can dial: ${can(d.canDial, d.dialPolicies, 'Dial')}`,
    `can bind: ${can(d.canBind, d.bindPolicies, 'Bind')}`,
    `routers for the identity: ${list(d.identityRouters)}`,
    `routers for the service:  ${list(d.serviceRouters)}`,
    `common routers:           ${list(d.commonRouters)}`,
  ]
  const findings = Array.isArray(d.findings) ? d.findings : []
  lines.push(findings.length ? 'findings:' : 'findings: none')
  for (const f of findings) lines.push(`  - ${String(f)}`)
  return `${lines.join('\n')}\n`
}
