/**
 * `node --import @nullport/sdk/register app.js`: unmodified apps (child processes) on the
 * overlay. The host opens no port and is reachable through the overlay; an unmodified client's
 * fetch, http.get and net.connect to intercepted names go over the overlay, a dial with no host
 * is an error (never a plain connection), and the client exits by itself when done. Bad
 * configuration stops the process at startup with a code. The examples (Express Tool Pool with
 * SQLite, Fastify API, client scripts) run against the same network.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { createLeaf, createRootCa } from '@nullport/protocol'
import { type Context, zitify } from '@nullport/sdk'
import {
  listeningPorts,
  REPO_ROOT,
  startWebNetwork,
  type WebNetwork,
  waitForService,
} from '@nullport/testkit'

const HOST_APP = `
import http from 'node:http'
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ path: req.url, caller: req.socket.remoteIdentity?.name ?? null }))
})
server.listen(18480, '127.0.0.1', () => console.log(JSON.stringify({ listening: server.address() })))
`

const CLIENT_APP = `
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
const out = {}
const r = await fetch('http://reg.ziti/from-fetch')
out.fetch = await r.json()
out.http = await new Promise((resolve, reject) => {
  http.get('http://reg.ziti/from-http', (res) => {
    let b = ''
    res.on('data', (d) => { b += d })
    res.on('end', () => resolve(JSON.parse(b)))
  }).on('error', reject)
})
out.net = await new Promise((resolve, reject) => {
  const s = net.connect(80, 'reg.ziti')
  let b = ''
  s.on('data', (d) => { b += d })
  s.on('end', () => resolve(b.split('\\r\\n')[0]))
  s.on('error', reject)
  s.end('GET /from-net HTTP/1.1\\r\\nHost: reg.ziti\\r\\nConnection: close\\r\\n\\r\\n')
})
out.https = await new Promise((resolve, reject) => {
  https.get('https://secure.reg.ziti/tls', { ca: readFileSync(process.env.TEST_CA, 'utf8') }, (res) => {
    let b = ''
    res.on('data', (d) => { b += d })
    res.on('end', () => resolve(JSON.parse(b)))
  }).on('error', reject)
})
try {
  await fetch('http://dark.ziti/')
  out.dark = 'connected'
} catch (err) {
  out.dark = err.cause?.code ?? err.code
}
// a destination no service intercepts goes to the network as usual (the hook is not a firewall)
out.plain = await (await fetch(process.env.TEST_PLAIN_URL)).text()
try {
  await new Promise((resolve, reject) => net.connect(80, 'dark.ziti').on('connect', resolve).on('error', reject))
  out.darkNet = 'connected'
} catch (err) {
  out.darkNet = err.code
}
console.log(JSON.stringify(out))
`

let fx: WebNetwork
let client: Context
let hostApp: string
let clientApp: string
let caPath: string
let tlsServer: https.Server
let undoTls: (() => void) | undefined
const children: ChildProcess[] = []

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function run(
  script: string,
  env: Record<string, string>,
  timeoutMs = 30_000,
  argv: string[] = [],
): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const pre =
      argv.length > 0 || env.NULLPORT_IDENTITY === undefined ? [] : ['--import', '@nullport/sdk/register']
    const child = spawn(process.execPath, [...pre, script, ...argv], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d
    })
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d
    })
    const t = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${script} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(t)
      resolvePromise({ code, stdout, stderr })
    })
  })
}

before(async () => {
  fx = await startWebNetwork([
    { name: 'reg.svc', intercept: { addresses: ['reg.ziti'], portRanges: [{ low: 80, high: 80 }] } },
    { name: 'dark.svc', intercept: { addresses: ['dark.ziti'], portRanges: [{ low: 80, high: 80 }] } },
    { name: 'no.bind', bind: false },
    {
      name: 'secure.reg',
      intercept: { addresses: ['secure.reg.ziti'], portRanges: [{ low: 443, high: 443 }] },
    },
    {
      name: 'family.tools',
      intercept: { addresses: ['family.tools.ziti'], portRanges: [{ low: 80, high: 80 }] },
    },
    { name: 'packer.tracker' },
    // the host identity may Bind it but no one may Dial it: an overlay name all the same
    {
      name: 'hostonly.svc',
      intercept: { addresses: ['hostonly.ziti'], portRanges: [{ low: 80, high: 80 }] },
      dial: false,
    },
  ])
  client = await fx.context(fx.clientFile)
  await waitForService(client, 'dark.svc')
  hostApp = join(fx.dir, 'host-app.mjs')
  clientApp = join(fx.dir, 'client-app.mjs')
  writeFileSync(hostApp, HOST_APP)
  writeFileSync(clientApp, CLIENT_APP)
  // an https service hosted in this process (zitify), for the client's https.get (tls.connect patch)
  const ca = await createRootCa({ commonName: 'register test ca' })
  const leaf = await createLeaf({
    issuerCertPem: ca.certPem,
    issuerKeyPem: ca.keyPem,
    commonName: 'secure.reg.ziti',
    usage: 'server',
    dns: ['secure.reg.ziti'],
    lifetimeSeconds: 3600,
  })
  caPath = join(fx.dir, 'ca.pem')
  writeFileSync(caPath, ca.certPem)
  undoTls = zitify({ '127.0.0.1:18482': { identity: fx.hostPath, service: 'secure.reg' } })
  tlsServer = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    res.end(
      JSON.stringify({
        path: req.url,
        caller: (req.socket as unknown as { remoteIdentity?: { name: string } }).remoteIdentity?.name,
      }),
    )
  })
  tlsServer.listen(18482, '127.0.0.1')
  await once(tlsServer, 'listening')
})

after(async () => {
  undoTls?.()
  tlsServer?.closeAllConnections()
  if (tlsServer?.listening) await new Promise<void>((r) => tlsServer.close(() => r()))
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await fx?.close()
})

test('an unmodified host app under the register hook: no port, reachable over the overlay; an unmodified client reaches it', {
  timeout: 90_000,
}, async () => {
  const child = spawn(process.execPath, ['--import', '@nullport/sdk/register', hostApp], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      NULLPORT_IDENTITY: fx.hostPath,
      NULLPORT_BINDINGS: '127.0.0.1:18480=reg.svc',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d
  })
  const line = await new Promise<string>((resolveLine, reject) => {
    let buf = ''
    const t = setTimeout(() => reject(new Error(`host app did not start: ${stderr}`)), 30_000)
    child.stdout!.on('data', (d: Buffer) => {
      buf += d
      const i = buf.indexOf('\n')
      if (i >= 0) {
        clearTimeout(t)
        resolveLine(buf.slice(0, i))
      }
    })
    child.on('exit', (code) => reject(new Error(`host app exited (${code}): ${stderr}`)))
  })
  assert.deepEqual(JSON.parse(line), { listening: { address: '127.0.0.1', family: 'IPv4', port: 18480 } })
  const ports = await listeningPorts(child.pid)
  assert.deepEqual(ports, [], `the host app must not listen on TCP, ss shows ${ports.join(', ')}`)

  // from this process, through the SDK
  const r = await client.fetch('http://reg.ziti/direct')
  assert.deepEqual(await r.json(), { path: '/direct', caller: 'web-client' })

  // an unmodified client process, through the hook; it exits by itself when done
  const plain = http.createServer((_req, res) => res.end('plain network'))
  plain.listen(0, '127.0.0.1')
  await once(plain, 'listening')
  const plainUrl = `http://127.0.0.1:${(plain.address() as import('node:net').AddressInfo).port}/`
  const c = await run(clientApp, {
    NULLPORT_IDENTITY: fx.clientPath,
    TEST_CA: caPath,
    TEST_PLAIN_URL: plainUrl,
  })
  plain.close()
  assert.equal(c.code, 0, c.stderr)
  const out = JSON.parse(c.stdout.trim().split('\n').pop()!)
  assert.deepEqual(out, {
    fetch: { path: '/from-fetch', caller: 'web-client' },
    http: { path: '/from-http', caller: 'web-client' },
    net: 'HTTP/1.1 200 OK',
    https: { path: '/tls', caller: 'web-client' },
    plain: 'plain network',
    dark: 'ERR_NO_TERMINATORS',
    darkNet: 'ERR_NO_TERMINATORS',
  })
  child.kill('SIGTERM')
})

const BIND_ONLY_CLIENT = `
import net from 'node:net'
const out = {}
try {
  await fetch('http://hostonly.ziti/')
  out.fetch = 'connected'
} catch (err) {
  out.fetch = err.cause?.code ?? err.code
}
try {
  await new Promise((resolve, reject) => net.connect(80, 'hostonly.ziti').on('connect', resolve).on('error', reject))
  out.net = 'connected'
} catch (err) {
  out.net = err.code
}
console.log(JSON.stringify(out))
`

test('an overlay name this identity may only Bind is refused under the hook, never sent to the network', {
  timeout: 60_000,
}, async () => {
  const script = join(fx.dir, 'bind-only-client.mjs')
  writeFileSync(script, BIND_ONLY_CLIENT)
  // the host identity can see hostonly.svc (Bind) but may not dial it
  const c = await run(script, { NULLPORT_IDENTITY: fx.hostPath })
  assert.equal(c.code, 0, c.stderr)
  // ENOTFOUND / ECONNREFUSED would mean the hook let it go to the plain network
  assert.deepEqual(JSON.parse(c.stdout.trim().split('\n').pop()!), {
    fetch: 'ERR_NOT_INTERCEPTED',
    net: 'ERR_NOT_INTERCEPTED',
  })
})

test('bad configuration stops the process at startup with a code', { timeout: 90_000 }, async () => {
  const malformed = join(fx.dir, 'malformed.json')
  writeFileSync(malformed, '{ not json')
  const cases: Array<[Record<string, string>, string]> = [
    [{ NULLPORT_IDENTITY: '' }, 'ERR_IDENTITY_FILE'],
    [{ NULLPORT_IDENTITY: join(fx.dir, 'nope.json') }, 'ERR_IDENTITY_FILE_MISSING'],
    [{ NULLPORT_IDENTITY: malformed }, 'ERR_IDENTITY_FILE_MALFORMED'],
    [{ NULLPORT_IDENTITY: fx.hostPath, NULLPORT_BINDINGS: 'reg.svc' }, 'ERR_INVALID_BINDINGS'],
    [
      { NULLPORT_IDENTITY: fx.hostPath, NULLPORT_BINDINGS: '127.0.0.1:70000=reg.svc' },
      'ERR_INVALID_BINDINGS',
    ],
    [{ NULLPORT_IDENTITY: fx.hostPath, NULLPORT_BINDINGS: '127.0.0.1:18481=' }, 'ERR_INVALID_BINDINGS'],
  ]
  for (const [env, code] of cases) {
    const r = await run(hostApp, env)
    assert.equal(r.code, 1, `${JSON.stringify(env)}: ${r.stderr}`)
    assert.match(r.stderr, new RegExp(`nullport: ${code}: `), JSON.stringify(env))
    assert.equal(r.stdout, '', 'the app did not run')
  }
  // a binding the identity may not bind: the app's listen() fails with the code
  const r = await run(hostApp, {
    NULLPORT_IDENTITY: fx.hostPath,
    NULLPORT_BINDINGS: '127.0.0.1:18480=no.bind',
  })
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /ERR_NO_BIND_PERMISSION/)
})

/** Starts a long-running child and resolves with its first stdout line. */
async function startChild(
  script: string,
  env: Record<string, string>,
): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [script], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_OPTIONS: '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d
  })
  const line = await new Promise<string>((resolveLine, reject) => {
    let buf = ''
    const t = setTimeout(() => reject(new Error(`${script} did not start: ${stderr}`)), 30_000)
    child.stdout!.on('data', (d: Buffer) => {
      buf += d
      const i = buf.indexOf('\n')
      if (i >= 0) {
        clearTimeout(t)
        resolveLine(buf.slice(0, i))
      }
    })
    child.on('exit', (code) => reject(new Error(`${script} exited (${code}): ${stderr}`)))
  })
  return { child, line }
}

test('the examples: Tool Pool (Express + SQLite) and Packer Tracker (Fastify) dark, used by the client scripts', {
  timeout: 90_000,
}, async () => {
  const family = await startChild(join(REPO_ROOT, 'examples/family-tools/app.mjs'), {
    FAMILY_IDENTITY: fx.hostPath,
    FAMILY_DB: join(fx.dir, 'tools.db'),
  })
  assert.match(family.line, /overlay only/)
  assert.deepEqual(await listeningPorts(family.child.pid), [])
  const tools = (...argv: string[]) =>
    run(join(REPO_ROOT, 'examples/client/tools.mjs'), { CLIENT_IDENTITY: fx.clientPath }, 30_000, argv)
  const added = await tools('add', 'Hedge trimmer')
  assert.equal(added.code, 0, added.stderr)
  assert.deepEqual(JSON.parse(added.stdout), {
    id: 1,
    name: 'Hedge trimmer',
    owner: 'web-client',
    borrowedBy: null,
  })
  const own = await tools('borrow', '1')
  assert.equal(own.code, 1)
  assert.match(own.stderr, /HTTP_409: it is your own tool/)
  const list = await tools('list')
  assert.equal(JSON.parse(list.stdout)[0].owner, 'web-client')
  // the stranger may not dial the service: refused before anything is sent
  const stranger = await run(
    join(REPO_ROOT, 'examples/client/tools.mjs'),
    { CLIENT_IDENTITY: fx.strangerPath },
    30_000,
    ['list'],
  )
  assert.equal(stranger.code, 1)
  assert.match(stranger.stderr, /ERR_NOT_INTERCEPTED/)
  family.child.kill('SIGTERM')

  const packer = await startChild(join(REPO_ROOT, 'examples/fastify-api/app.mjs'), {
    PACKER_IDENTITY: fx.hostPath,
  })
  assert.deepEqual(await listeningPorts(packer.child.pid), [])
  const p = await run(
    join(REPO_ROOT, 'examples/client/packer.mjs'),
    { CLIENT_IDENTITY: fx.clientPath },
    30_000,
    ['lake', 'tent'],
  )
  assert.equal(p.code, 0, p.stderr)
  assert.deepEqual(JSON.parse(p.stdout), [{ item: 'tent', by: 'web-client' }])
  packer.child.kill('SIGTERM')
})
