#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/test/**/*.test.js) with node:test.
// Usage: node scripts/test.mjs [substring ...]   (only files whose path contains a substring)
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const filters = process.argv.slice(2)
const files = []
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p)
    else if (name.endsWith('.test.js')) files.push(p)
  }
}
for (const pkg of readdirSync(join(root, 'packages'))) {
  const dir = join(root, 'packages', pkg, 'dist', 'test')
  if (existsSync(dir)) walk(dir)
}
const selected = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort()
if (selected.length === 0) {
  console.error('no test files found: run `npm run build` first')
  process.exit(1)
}
const concurrency = process.env.NULLPORT_TEST_CONCURRENCY ?? '2'
const r = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...selected],
  { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } },
)
process.exit(r.status ?? 1)
