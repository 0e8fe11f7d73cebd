import assert from 'node:assert/strict'
import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { type IdentityFile, isProtocolError, loadIdentityFile, saveIdentityFile } from '../src/index.js'

const sample: IdentityFile = {
  version: 1,
  kind: 'identity',
  id: 'id_1',
  name: 'laptop',
  controller: 'https://127.0.0.1:1280',
  cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
  key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
  ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
  trustDomain: 'nullport',
}

test('identity file round-trips with mode 0600 and leaves no temporary file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'np-idf-'))
  const p = join(dir, 'laptop.json')
  await saveIdentityFile(p, sample)
  assert.equal((await stat(p)).mode & 0o777, 0o600)
  assert.deepEqual(await loadIdentityFile(p), sample)
  assert.deepEqual(await readdir(dir), ['laptop.json'])
  await assert.rejects(saveIdentityFile(p, sample, { exclusive: true }), /already exists/)
})

test('missing and malformed identity files fail with stable codes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'np-idf-'))
  await assert.rejects(loadIdentityFile(join(dir, 'nope.json')), (e) =>
    isProtocolError(e, 'ERR_IDENTITY_FILE_MISSING'),
  )
  const bad = join(dir, 'bad.json')
  await writeFile(bad, '{"version":1,')
  await assert.rejects(loadIdentityFile(bad), (e) => isProtocolError(e, 'ERR_IDENTITY_FILE_MALFORMED'))
  await writeFile(bad, JSON.stringify({ ...sample, extra: 1 }))
  await assert.rejects(loadIdentityFile(bad), /unknown field "extra"/)
  await writeFile(bad, JSON.stringify({ ...sample, controller: 'http://x' }))
  await assert.rejects(loadIdentityFile(bad), /https/)
})
