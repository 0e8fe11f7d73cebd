/** `nullport edge delete TYPE NAME`. */
import type { Command } from 'commander'
import { api, enc } from './api.js'
import { findKind, type Row } from './kinds.js'
import { out, printJson } from './output.js'

/** Registers `edge delete`. */
export function registerDelete(edge: Command): void {
  edge
    .command('delete')
    .description('delete an entity by name or id')
    .argument('<type>', 'identity, service, config, config-type, service-policy, edge-router, ...')
    .argument('<name>', 'name or id')
    .option('--json', 'print the answer as JSON')
    .action(async (type: string, name: string, o: { json?: boolean }) => {
      const k = findKind(type, { writable: true })
      const r = await api<Row>('DELETE', `/${k.plural}/${enc(name)}`, {}, { kind: k, name })
      if (o.json) printJson(r.data ?? { deleted: name })
      else out(`${k.label} ${name} deleted`)
    })
}
