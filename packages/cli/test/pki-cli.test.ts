import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import * as tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { parseCsr, verifyChain } from '@nullport/protocol'

const BIN = fileURLToPath(new URL('../../bin/nullport.js', import.meta.url))

let dir: string

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(args: string[], cwd = dir): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, NODE_OPTIONS: '' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

async function ok(args: string[]): Promise<string> {
  const r = await run(['pki', 'create', ...args])
  assert.equal(r.code, 0, `nullport pki create ${args.join(' ')} failed: ${r.stderr}`)
  return r.stdout
}

/** Runs a command that must fail with one line on stderr matching `message`, writing nothing. */
async function fails(args: string[], message: RegExp): Promise<void> {
  const before = await listFiles(join(dir, 'pki'))
  const r = await run(['pki', 'create', ...args])
  assert.notEqual(r.code, 0, `expected nullport pki create ${args.join(' ')} to fail`)
  assert.match(r.stderr, message)
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line on stderr, got: ${r.stderr}`)
  assert.deepEqual(await listFiles(join(dir, 'pki')), before, 'nothing was written')
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = []
  async function walk(d: string): Promise<void> {
    let entries: string[]
    try {
      entries = await readdir(d)
    } catch {
      return
    }
    for (const e of entries) {
      const p = join(d, e)
      if ((await stat(p)).isDirectory()) await walk(p)
      else out.push(`${p.slice(root.length)} ${(await stat(p)).mtimeMs}`)
    }
  }
  await walk(root)
  return out.sort()
}

function openssl(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile('openssl', args, { cwd: dir }, (err, stdout, stderr) => {
      resolve({ code: err ? 1 : 0, stdout, stderr })
    })
  })
}

const p = (...parts: string[]) => join(dir, 'pki', ...parts)
const text = (...parts: string[]) => readFile(p(...parts), 'utf8')

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'np-pki-cli-'))
})

after(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('nullport pki create', () => {
  test('ca, intermediate, server and client: files, modes, openssl verify', async () => {
    const caOut = await ok(['ca', '--ca-file', 'root', '--ca-name', 'Test Root CA'])
    assert.match(caOut, /created root CA "Test Root CA"/)
    assert.match(caOut, /pki\/root\/certs\/root\.cert/)
    assert.match(caOut, /pki\/root\/keys\/root\.key \(0600\)/)

    const interOut = await ok(['intermediate', '--ca-name', 'root', '--intermediate-file', 'issuing'])
    assert.match(interOut, /created intermediate CA "issuing" issued by "Test Root CA"/)

    const serverOut = await ok([
      'server',
      '--ca-name',
      'issuing',
      '--server-file',
      'api',
      '--dns',
      'localhost',
      '--ip',
      '127.0.0.1',
      '--expire-limit',
      '30',
    ])
    assert.match(serverOut, /pki\/issuing\/certs\/api\.cert/)
    assert.match(serverOut, /pki\/issuing\/certs\/api\.chain\.pem/)
    assert.match(serverOut, /pki\/issuing\/keys\/api\.key \(0600\)/)

    await ok([
      'client',
      '--ca-name',
      'issuing',
      '--client-file',
      'worker',
      '--client-name',
      'worker-1',
      '--spiffe-id',
      'spiffe://nullport/identity/worker-1',
    ])

    for (const key of [
      ['root', 'keys', 'root.key'],
      ['issuing', 'keys', 'issuing.key'],
      ['issuing', 'keys', 'api.key'],
      ['issuing', 'keys', 'worker.key'],
    ]) {
      assert.equal((await stat(p(...key))).mode & 0o777, 0o600, `${key.join('/')} is 0600`)
    }
    assert.equal((await stat(p('issuing', 'keys'))).mode & 0o077, 0, 'keys/ is private to its owner')
    assert.match(await text('issuing', 'keys', 'api.key'), /^-----BEGIN PRIVATE KEY-----/)

    const server = new X509Certificate(await text('issuing', 'certs', 'api.cert'))
    assert.equal(server.subject, 'CN=localhost')
    assert.equal(server.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1')
    const lifetimeDays = (Date.parse(server.validTo) - Date.now()) / 86_400_000
    assert.ok(lifetimeDays > 29 && lifetimeDays <= 30, `--expire-limit 30 gives ${lifetimeDays} days`)
    const client = new X509Certificate(await text('issuing', 'certs', 'worker.cert'))
    assert.equal(client.subject, 'CN=worker-1')
    assert.equal(client.subjectAltName, 'URI:spiffe://nullport/identity/worker-1')
    assert.equal((await text('issuing', 'certs', 'api.chain.pem')).match(/BEGIN CERTIFICATE/g)?.length, 2)

    const base = [
      'verify',
      '-CAfile',
      p('root', 'certs', 'root.cert'),
      '-untrusted',
      p('issuing', 'certs', 'issuing.chain.pem'),
    ]
    const vs = await openssl([...base, '-purpose', 'sslserver', p('issuing', 'certs', 'api.cert')])
    assert.equal(vs.code, 0, vs.stderr)
    assert.match(vs.stdout, /api\.cert: OK/)
    const vc = await openssl([...base, '-purpose', 'sslclient', p('issuing', 'certs', 'worker.cert')])
    assert.equal(vc.code, 0, vc.stderr)
    assert.match(vc.stdout, /worker\.cert: OK/)
    // the chain file alone is enough as -untrusted
    const vchain = await openssl([
      'verify',
      '-CAfile',
      p('root', 'certs', 'root.cert'),
      '-untrusted',
      p('issuing', 'certs', 'api.chain.pem'),
      p('issuing', 'certs', 'api.cert'),
    ])
    assert.equal(vchain.code, 0, vchain.stderr)

    const v = verifyChain({
      chainPem: await text('issuing', 'certs', 'worker.chain.pem'),
      rootsPem: await text('root', 'certs', 'root.cert'),
      usage: 'client',
    })
    assert.equal(v.spiffeId, 'spiffe://nullport/identity/worker-1')
  })

  test('a Node TLS server and client using the files complete a mutual-TLS handshake', async () => {
    const ca = await text('root', 'certs', 'root.cert')
    const seen: string[] = []
    const server = tls.createServer(
      {
        key: await text('issuing', 'keys', 'api.key'),
        cert: await text('issuing', 'certs', 'api.chain.pem'),
        ca,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (sock) => {
        seen.push(sock.getPeerX509Certificate()?.subject ?? '')
        sock.end('pong')
      },
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const port = (server.address() as { port: number }).port
      const key = await text('issuing', 'keys', 'worker.key')
      const cert = await text('issuing', 'certs', 'worker.chain.pem')
      const reply = await new Promise<string>((resolve, reject) => {
        let data = ''
        const sock = tls.connect({
          host: '127.0.0.1',
          port,
          ca,
          key,
          cert,
        })
        sock.setEncoding('utf8')
        sock.on('data', (d: string) => {
          data += d
        })
        sock.on('error', reject)
        sock.on('end', () => resolve(data))
      })
      assert.equal(reply, 'pong')
      assert.deepEqual(seen, ['CN=worker-1'])
    } finally {
      await new Promise((r) => server.close(r))
    }
  })

  test('key, csr, and a certificate for a CSR or a reused key', async () => {
    await ok(['key', '--ca-name', 'issuing', '--key-file', 'shared'])
    assert.equal((await stat(p('issuing', 'keys', 'shared.key'))).mode & 0o777, 0o600)
    await ok([
      'csr',
      '--ca-name',
      'issuing',
      '--csr-file',
      'web',
      '--key-file',
      'shared',
      '--dns',
      'web.example',
    ])
    const csr = await parseCsr(await text('issuing', 'csrs', 'web.csr'))
    assert.deepEqual(csr.dns, ['web.example'])
    const check = await openssl(['req', '-in', p('issuing', 'csrs', 'web.csr'), '-noout', '-verify'])
    assert.equal(check.code, 0, check.stderr)

    const out = await ok([
      'server',
      '--ca-name',
      'issuing',
      '--server-file',
      'web',
      '--csr',
      'web',
      '--dns',
      'web.example',
    ])
    assert.doesNotMatch(out, /keys\/web\.key/, 'no key is written for a CSR')
    await assert.rejects(stat(p('issuing', 'keys', 'web.key')))
    const web = new X509Certificate(await text('issuing', 'certs', 'web.cert'))
    assert.ok(web.checkPrivateKey(createPrivateKey(await text('issuing', 'keys', 'shared.key'))))

    await ok(['client', '--ca-name', 'issuing', '--client-file', 'again', '--key-file', 'shared'])
    const again = new X509Certificate(await text('issuing', 'certs', 'again.cert'))
    assert.ok(again.checkPrivateKey(createPrivateKey(await text('issuing', 'keys', 'shared.key'))))
  })

  test('bad input fails with one line naming the fix, and writes nothing', async () => {
    await fails(
      ['server', '--ca-name', 'nope', '--server-file', 's', '--dns', 'x'],
      /ERR_PKI_CA_NOT_FOUND: CA "nope" not found.*one of: issuing, root/,
    )
    await fails(
      ['server', '--ca-name', 'issuing', '--server-file', 's', '--ip', '1.2.3'],
      /--ip: "1\.2\.3" is not an IPv4 or IPv6 address/,
    )
    await fails(
      ['server', '--ca-name', 'issuing', '--server-file', 's'],
      /pass --dns NAME.* and\/or --ip ADDRESS/,
    )
    await fails(
      ['server', '--ca-name', 'issuing', '--server-file', 'api', '--dns', 'localhost'],
      /ERR_PKI_FILE_EXISTS: .*api\.cert.*pass --force/,
    )
    await fails(['ca', '--ca-file', 'root'], /ERR_PKI_FILE_EXISTS: .*pass --force/)
    await fails(
      ['client', '--ca-name', 'issuing', '--client-file', '../escape'],
      /--client-file must be a simple name/,
    )
    await fails(
      ['client', '--ca-name', 'issuing', '--client-file', 'c', '--spiffe-id', 'https://x/y'],
      /--spiffe-id: .* is not a SPIFFE id/,
    )
    await fails(
      ['client', '--ca-name', 'issuing', '--client-file', 'c', '--expire-limit', 'ten'],
      /--expire-limit must be a number of days/,
    )
    await fails(
      ['client', '--ca-name', 'issuing', '--client-file', 'c', '--key-file', 'missing'],
      /--key-file: .*missing\.key does not exist/,
    )
    await fails(
      ['intermediate', '--ca-name', 'issuing', '--intermediate-file', 'sub'],
      /pathLength 0 and cannot sign another CA/,
    )

    // --force replaces the files
    const old = await text('issuing', 'certs', 'api.cert')
    await ok(['server', '--ca-name', 'issuing', '--server-file', 'api', '--dns', 'localhost', '--force'])
    assert.notEqual(await text('issuing', 'certs', 'api.cert'), old)
    assert.equal((await stat(p('issuing', 'keys', 'api.key'))).mode & 0o777, 0o600)
  })
})
