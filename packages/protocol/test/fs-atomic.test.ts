import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { writeFileAtomic, writeFileAtomicSync, writeSecretFile, writeSecretFileSync } from '../src/index.js'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'np-atomic-'))
  dirs.push(d)
  return d
}

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777

test('writeSecretFile: mode 0600 whatever the umask, replaces, leaves no temporary file', async () => {
  const dir = await tempDir()
  const p = join(dir, 'key.pem')
  const old = process.umask(0)
  try {
    await writeSecretFile(p, 'one')
    assert.equal(await mode(p), 0o600)
    await writeSecretFile(p, new TextEncoder().encode('two'))
    assert.equal(await readFile(p, 'utf8'), 'two')
    assert.equal(await mode(p), 0o600)
  } finally {
    process.umask(old)
  }
  assert.deepEqual(await readdir(dir), ['key.pem'])
})

test('writeSecretFileSync: the same, synchronously', async () => {
  const dir = await tempDir()
  const p = join(dir, 'id.json')
  writeSecretFileSync(p, '{"a":1}\n')
  assert.equal(await mode(p), 0o600)
  writeSecretFileSync(p, '{"a":2}\n')
  assert.equal(await readFile(p, 'utf8'), '{"a":2}\n')
  assert.deepEqual(await readdir(dir), ['id.json'])
})

test('exclusive refuses an existing file with EEXIST and keeps it unchanged', async () => {
  const dir = await tempDir()
  const p = join(dir, 'token.jwt')
  await writeSecretFile(p, 'first', { exclusive: true })
  await assert.rejects(writeSecretFile(p, 'second', { exclusive: true }), { code: 'EEXIST' })
  assert.throws(() => writeSecretFileSync(p, 'second', { exclusive: true }), { code: 'EEXIST' })
  await assert.rejects(writeFileAtomic(p, 'second', { exclusive: true }), /already exists/)
  assert.equal(await readFile(p, 'utf8'), 'first')
  assert.deepEqual(await readdir(dir), ['token.jwt'])
})

test('writeFileAtomic: default 0644 narrowed by the umask, explicit modes', async () => {
  const dir = await tempDir()
  const old = process.umask(0o022)
  try {
    await writeFileAtomic(join(dir, 'ca.crt'), 'pem')
    assert.equal(await mode(join(dir, 'ca.crt')), 0o644)
    writeFileAtomicSync(join(dir, 'cfg.json'), '{}', { mode: 0o640 })
    assert.equal(await mode(join(dir, 'cfg.json')), 0o640)
    process.umask(0o077)
    await writeFileAtomic(join(dir, 'narrow.crt'), 'pem')
    assert.equal(await mode(join(dir, 'narrow.crt')), 0o600)
  } finally {
    process.umask(old)
  }
})

test('a failed write leaves no temporary file and keeps the old content', async () => {
  const dir = await tempDir()
  // The target is a non-empty directory: rename over it fails after the data was written.
  const target = join(dir, 'target')
  await mkdir(target)
  await writeFile(join(target, 'inside'), 'x')
  await assert.rejects(writeSecretFile(target, 'data'))
  assert.throws(() => writeSecretFileSync(target, 'data'))
  await assert.rejects(writeFileAtomic(target, 'data'))
  assert.deepEqual(await readdir(dir), ['target'])
  // A missing directory fails at once.
  await assert.rejects(writeSecretFile(join(dir, 'no', 'such'), 'x'), { code: 'ENOENT' })
  assert.deepEqual(await readdir(dir), ['target'])
})

test('concurrent writes to one path all succeed; the file holds one of them whole', async () => {
  const dir = await tempDir()
  const p = join(dir, 'race.json')
  const bodies = Array.from({ length: 20 }, (_, i) => `${String(i).repeat(1000)}\n`)
  await Promise.all(bodies.map((b) => writeSecretFile(p, b)))
  assert.ok(bodies.includes(await readFile(p, 'utf8')))
  assert.deepEqual(await readdir(dir), ['race.json'])
})
