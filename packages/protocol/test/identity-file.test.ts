import assert from 'node:assert/strict'
import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import {
  type IdentityFile,
  isProtocolError,
  loadIdentityFile,
  loadIdentityFileSync,
  saveIdentityFile,
} from '../src/index.js'

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

test('the sync reader gives the same file and the same errors as the async one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'np-idf-'))
  const p = join(dir, 'laptop.json')
  await saveIdentityFile(p, sample)
  assert.deepEqual(loadIdentityFileSync(p), sample)
  const missing = join(dir, 'nope.json')
  const asyncErr = await loadIdentityFile(missing).catch((e: unknown) => e)
  assert.throws(
    () => loadIdentityFileSync(missing),
    (e: unknown) =>
      isProtocolError(e, 'ERR_IDENTITY_FILE_MISSING') &&
      e.message === (asyncErr as Error).message &&
      /enroll first with `nullport edge enroll NAME.jwt`/.test(e.message),
  )
  const bad = join(dir, 'bad.json')
  await writeFile(bad, '{"version":1,')
  assert.throws(
    () => loadIdentityFileSync(bad),
    (e: unknown) => isProtocolError(e, 'ERR_IDENTITY_FILE_MALFORMED'),
  )
  await writeFile(bad, JSON.stringify({ ...sample, kind: 'robot' }))
  assert.throws(() => loadIdentityFileSync(bad), /"kind" must be "identity" or "router"/)
  await writeFile(bad, 'x'.repeat(256 * 1024 + 1))
  assert.throws(() => loadIdentityFileSync(bad), /larger than 262144 bytes/)
  await assert.rejects(loadIdentityFile(bad), /larger than 262144 bytes/)
  assert.throws(
    () => loadIdentityFileSync(dir),
    (e: unknown) => isProtocolError(e, 'ERR_IDENTITY_FILE_MISSING'),
  )
})

test('label names the file in messages; details keep the path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'np-idf-'))
  const missing = join(dir, 'nope.json')
  const label = `${missing} (NULLPORT_IDENTITY)`
  assert.throws(
    () => loadIdentityFileSync(missing, { label }),
    (e: unknown) => isProtocolError(e) && e.message.includes(label) && e.details.path === missing,
  )
  const bad = join(dir, 'bad.json')
  await writeFile(bad, JSON.stringify({ ...sample, extra: 1 }))
  await assert.rejects(
    loadIdentityFile(bad, { label }),
    (e: unknown) =>
      isProtocolError(e, 'ERR_IDENTITY_FILE_MALFORMED') &&
      e.message.startsWith(`identity file ${label} is malformed`),
  )
})
