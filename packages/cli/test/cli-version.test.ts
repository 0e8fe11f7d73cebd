import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

const BIN = new URL('../../bin/nullport.js', import.meta.url).pathname
const PKG = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string
}

test('nullport --version and -V print the package version and exit 0; an unknown option exits 1', () => {
  for (const flag of ['--version', '-V']) {
    const r = spawnSync(process.execPath, [BIN, flag], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.trim(), `nullport ${PKG.version} (node ${process.versions.node})`)
  }
  const bad = spawnSync(process.execPath, [BIN, '--verzion'], { encoding: 'utf8' })
  assert.equal(bad.status, 1)
  assert.match(bad.stderr, /unknown option '--verzion'/)
})
