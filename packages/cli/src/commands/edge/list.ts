/** `nullport edge list TYPE [FILTER]`: a table of one kind, with the columns of its KINDS entry. */
import type { Command } from 'commander'
import { parseNonNegInt } from '../../lib/args.js'
import { renderTable } from '../../lib/table.js'
import { api } from './api.js'
import { findKind, KINDS, type Row } from './kinds.js'
import { out, printJson } from './output.js'

const collect = (v: string, prev: string[] = []) => [...prev, v]

/** Registers `edge list`. */
export function registerList(edge: Command): void {
  edge
    .command('list')
    .description(`list entities: ${KINDS.map((k) => k.plural).join(', ')}`)
    .argument('<type>', 'what to list, e.g. identities')
    .argument('[filter]', 'e.g. \'name contains "web"\' or \'name = "x"\'')
    .option('--role-filter <role>', "only entities with this role, e.g. '#servers' (repeatable)", collect)
    .option('--limit <n>', 'at most this many (default 100, max 1000)')
    .option('--offset <n>', 'skip this many')
    .option('--json', 'print the raw JSON array')
    .action(
      async (
        type: string,
        filter: string | undefined,
        o: { roleFilter?: string[]; limit?: string; offset?: string; json?: boolean },
      ) => {
        const k = findKind(type)
        const query: Array<[string, string]> = []
        if (filter !== undefined && filter.trim() !== '') query.push(['filter', filter])
        for (const r of o.roleFilter ?? []) query.push(['roleFilter', r])
        if (o.limit !== undefined) query.push(['limit', String(parseNonNegInt(o.limit, '--limit'))])
        if (o.offset !== undefined) query.push(['offset', String(parseNonNegInt(o.offset, '--offset'))])
        const r = await api<Row[]>('GET', `/${k.plural}`, { query }, { kind: k })
        const rows = Array.isArray(r.data) ? r.data : []
        if (o.json) {
          printJson(rows)
          return
        }
        if (rows.length === 0) {
          out(`no ${k.plural}${filter ? ` match ${filter}` : ''}`)
          return
        }
        process.stdout.write(renderTable(rows, k.columns))
        const p = r.meta?.pagination
        if (p) out(`results: ${p.offset + 1}-${p.offset + rows.length} of ${p.totalCount}`)
      },
    )
}
