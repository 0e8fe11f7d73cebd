/** Plain-text tables for list output (`--json` prints the raw data instead). */
import { terminalSafe } from './terminal-text.js'

export interface Column<T> {
  header: string
  value: (row: T) => unknown
}

export function cell(v: unknown): string {
  if (v === null || v === undefined) return ''
  if (Array.isArray(v)) {
    return v
      .map((x) => (x && typeof x === 'object' && 'name' in x ? cell((x as { name: unknown }).name) : cell(x)))
      .join(',')
  }
  if (typeof v === 'object') return JSON.stringify(v)
  return terminalSafe(String(v).replace(/[\r\n\t]+/g, ' '))
}

/** Renders rows as an aligned table with a header and a separator line. */
export function renderTable<T>(rows: T[], columns: Column<T>[]): string {
  const grid = rows.map((r) => columns.map((c) => cell(c.value(r))))
  const widths = columns.map((c, i) => Math.max(c.header.length, ...grid.map((g) => g[i]!.length)))
  const line = (cells: string[]) =>
    cells
      .map((x, i) => (i === cells.length - 1 ? x : x.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  const out = [line(columns.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...grid.map(line)]
  return `${out.join('\n')}\n`
}
