#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/test/**/*.test.js) with node:test: each
// package's unit tests and the system tests in packages/e2e/test/<area>/.
// Usage: node scripts/test.mjs [substring ...]   (only files whose path contains a substring)
// A compiled test whose source (packages/*/test/**/*.test.ts) is gone, e.g. after a test moved,
// is not run; one older than its source is run with a warning (run `npm run build`).
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const filters = process.argv.slice(2)
const files = []
const stale = []
function walk(pkgDir, dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(pkgDir, p)
    else if (name.endsWith('.test.js')) {
      const source = join(pkgDir, 'test', relative(join(pkgDir, 'dist', 'test'), p)).replace(/\.js$/, '.ts')
      if (!existsSync(source)) continue
      if (statSync(source).mtimeMs > statSync(p).mtimeMs) stale.push(p)
      files.push(p)
    }
  }
}
for (const pkg of readdirSync(join(root, 'packages'))) {
  const pkgDir = join(root, 'packages', pkg)
  const dir = join(pkgDir, 'dist', 'test')
  if (existsSync(dir)) walk(pkgDir, dir)
}
const selected = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort()
if (selected.length === 0) {
  console.error('no test files found: run `npm run build` first')
  process.exit(1)
}
for (const p of stale.filter((f) => selected.includes(f)))
  console.error(
    `warning: the source of ${relative(root, p)} changed after its last build: run \`npm run build\``,
  )
const concurrency = process.env.NULLPORT_TEST_CONCURRENCY ?? '2'
const r = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...selected],
  { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } },
)
process.exit(r.status ?? 1)
