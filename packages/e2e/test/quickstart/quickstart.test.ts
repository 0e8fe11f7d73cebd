/**
 * `nullport quickstart --demo`, the README's first command. `npm start` is
 * `npm run build && node packages/cli/dist/src/bin.js quickstart --demo`; the build is already done
 * by `npm test`, so this test runs the exact underlying command (`node packages/cli/dist/src/bin.js
 * quickstart --demo`) as a child process, with HOME pointing to a temp dir (the default layout:
 * data in ~/.nullport/quickstart, CLI session in ~/.nullport/cli.json) and free ports passed with
 * --controller-port / --router-port (other tests may run at the same time). It waits for the
 * demo's success line, checks the entities with the CLI using the saved session, curls the demo
 * service through the tunneler as the quickstart's "next" lines say, stops it with SIGINT (exit
 * 0), starts it again (same admin, nothing duplicated), and checks the port-in-use messages.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { REPO_ROOT } from '@nullport/testkit'

const BIN = join(REPO_ROOT, 'packages/cli/dist/src/bin.js')
const OK_LINE = /^demo: OK — fetched "Tool Pool" through the overlay; the host app opened no port$/m

interface Run {
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolves when stdout matches, rejects if the process exits first or after timeoutMs. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  exited: Promise<number | null>
}

function cleanEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home }
  delete env.NULLPORT_HOME
  delete env.NULLPORT_PASSWORD
  delete env.NODE_OPTIONS
  return env
}

function start(args: string[], home: string): Run {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env: cleanEnv(home),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  const listeners = new Set<() => void>()
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d
    for (const l of listeners) l()
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(re, timeoutMs = 40_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(re)
          if (m) {
            done()
            resolve(m)
          }
        }
        const t = setTimeout(() => {
          done()
          reject(new Error(`timed out waiting for ${re}\nstdout: ${out}\nstderr: ${err}`))
        }, timeoutMs)
        const onExit = (code: number | null) => {
          done()
          reject(new Error(`quickstart exited (${code}) before ${re}\nstdout: ${out}\nstderr: ${err}`))
        }
        const done = () => {
          clearTimeout(t)
          listeners.delete(check)
          child.off('exit', onExit)
        }
        listeners.add(check)
        child.on('exit', onExit)
        check()
      })
    },
  }
}

/** Runs a CLI command to completion. */
function cli(args: string[], home: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      env: cleanEnv(home),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000)
    p.on('error', reject)
    p.on('close', (code) => {
      clearTimeout(t)
      resolve({ code, stdout, stderr })
    })
  })
}

async function listJson(kind: string, home: string): Promise<Array<Record<string, unknown>>> {
  const r = await cli(['edge', 'list', kind, '--json'], home)
  assert.equal(r.code, 0, `edge list ${kind}: ${r.stderr}`)
  const v = JSON.parse(r.stdout) as unknown
  return (Array.isArray(v) ? v : ((v as { data: unknown[] }).data ?? [])) as Array<Record<string, unknown>>
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

function stopWithSigint(run: Run): Promise<number | null> {
  run.child.kill('SIGINT')
  const t = setTimeout(() => run.child.kill('SIGKILL'), 20_000)
  return run.exited.finally(() => clearTimeout(t))
}

/** Entity names per kind, to compare two starts. */
async function inventory(home: string): Promise<Record<string, string[]>> {
  const kinds = [
    'identities',
    'services',
    'configs',
    'service-policies',
    'edge-routers',
    'edge-router-policies',
    'service-edge-router-policies',
  ]
  const inv: Record<string, string[]> = {}
  for (const k of kinds) inv[k] = (await listJson(k, home)).map((e) => String(e.name)).sort()
  return inv
}

describe('nullport quickstart --demo (npm start)', () => {
  let home: string
  let ctrlPort: number
  let routerPort: number
  const running: Run[] = []
  let firstInventory: Record<string, string[]>
  let adminId: string

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'nullport-qs-'))
    ctrlPort = await freePort()
    routerPort = await freePort()
  })
  after(async () => {
    for (const r of running) if (r.child.exitCode === null) r.child.kill('SIGKILL')
    rmSync(home, { recursive: true, force: true })
  })

  const args = () => [
    'quickstart',
    '--demo',
    '--controller-port',
    String(ctrlPort),
    '--router-port',
    String(routerPort),
  ]

  it('first start: builds the demo, prints the password once, logs the CLI in; SIGINT exits 0', async () => {
    const run = start(args(), home)
    running.push(run)
    await run.waitFor(OK_LINE)
    // the "next, in another terminal" lines follow the success line: wait for the last one
    await run.waitFor(/Ctrl-C stops everything/)
    const out = run.stdout()
    assert.match(out, new RegExp(`controller {2}https://127\\.0\\.0\\.1:${ctrlPort}`))
    const pw = out.match(/admin {7}admin {2}password: (\S+)/)
    assert.ok(pw, `the password is printed on the first start:\n${out}`)
    for (const step of [
      'config family.tools.intercept.v1 (intercept.v1 family.tools.ziti:80): created',
      'service family.tools: created',
      'identity family.tools.host with attribute #family.tools.servers: created',
      'identity family.tools.client with attribute #family.tools.clients: created',
      'Bind policy family.tools.bind',
      'Dial policy family.tools.dial',
      'edge-router policy family.tools.routers',
      'service-edge-router policy family.tools.routers',
      "ctx.fetch('http://family.tools.ziti/') -> HTTP 200",
    ])
      assert.ok(out.includes(step), `missing step "${step}"\n${out}`)
    // the listening sockets line names the controller and the router only
    const socketsLine = out.split('\n').find((l) => l.includes('listening sockets of this process'))
    assert.ok(socketsLine, out)
    assert.deepEqual(
      [...socketsLine.matchAll(/:(\d+) \((\w+)\)/g)].map((m) => [Number(m[1]), m[2]]),
      [
        [ctrlPort, 'controller'],
        [routerPort, 'router'],
      ].sort((a, b) => (a[0] as number) - (b[0] as number)),
    )

    // the CLI works at once from "another terminal" (same HOME, no NULLPORT_HOME)
    const cliJson = join(home, '.nullport', 'cli.json')
    assert.equal(statSync(cliJson).mode & 0o777, 0o600)
    assert.equal(statSync(join(home, '.nullport', 'quickstart', 'admin.password')).mode & 0o777, 0o600)
    const services = await listJson('services', home)
    assert.deepEqual(
      services.map((s) => s.name),
      ['family.tools'],
    )
    firstInventory = await inventory(home)
    assert.deepEqual(firstInventory, {
      identities: ['admin', 'family.tools.client', 'family.tools.host'],
      services: ['family.tools'],
      configs: ['family.tools.intercept.v1'],
      'service-policies': ['family.tools.bind', 'family.tools.dial'],
      'edge-routers': ['quickstart-router'],
      'edge-router-policies': ['family.tools.routers'],
      'service-edge-router-policies': ['family.tools.routers'],
    })
    const admin = (await listJson('identities', home)).find((i) => i.name === 'admin')!
    adminId = String(admin.id)
    const advisor = await cli(
      ['edge', 'policy-advisor', 'identities', 'family.tools.client', 'family.tools'],
      home,
    )
    assert.equal(advisor.code, 0, advisor.stderr)

    // the printed tunneler + curl lines work (SOCKS port 0 here: the tunneler reports the one it got)
    const tunnelLine = out.split('\n').find((l) => l.includes(' tunnel run -i '))
    assert.ok(tunnelLine, out)
    const clientFile = /-i (\S+)/.exec(tunnelLine)![1]!
    const tunnel = start(['tunnel', 'run', '-i', clientFile, '--socks', '127.0.0.1:0', '--no-status'], home)
    running.push(tunnel)
    try {
      const ready = await tunnel.waitFor(/"socks":"127\.0\.0\.1:(\d+)"/)
      const curl = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn(
          'curl',
          [
            '-sS',
            '--max-time',
            '20',
            '--socks5-hostname',
            `127.0.0.1:${ready[1]}`,
            'http://family.tools.ziti/',
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        )
        let o = ''
        p.stdout.setEncoding('utf8').on('data', (d: string) => {
          o += d
        })
        p.stderr.setEncoding('utf8').on('data', (d: string) => {
          o += d
        })
        p.on('error', () => resolve({ code: -1, out: 'curl not available' }))
        p.on('close', (code) => resolve({ code, out: o }))
      })
      if (curl.code !== -1) {
        assert.equal(curl.code, 0, curl.out)
        assert.match(curl.out, /<h1>Tool Pool<\/h1>/)
        assert.match(curl.out, /Hello, family\.tools\.client/)
      }
    } finally {
      await stopWithSigint(tunnel)
    }

    assert.equal(await stopWithSigint(run), 0, `exit code after SIGINT\n${run.stdout()}\n${run.stderr()}`)
    assert.match(run.stdout(), /SIGINT: stopping\nstopped\n/)
  })

  it('second start reuses everything: same admin, no duplicates, no new password', async () => {
    assert.ok(firstInventory, 'needs the first start')
    // a demo identity whose file is gone is re-enrolled (the other one is reused as it is)
    const demoDir = join(home, '.nullport', 'quickstart', 'demo')
    rmSync(join(demoDir, 'family.tools.client.json'))
    // a failed first test must not leave its quickstart holding the ports
    for (const r of running) {
      if (r.child.exitCode === null) {
        r.child.kill('SIGKILL')
        await r.exited
      }
    }
    const run = start(args(), home)
    running.push(run)
    await run.waitFor(OK_LINE)
    const out = run.stdout()
    assert.doesNotMatch(out, /password: /, 'the password is printed only once')
    assert.match(out, /admin {7}admin {2}\(password in .*admin\.password\)/)
    assert.doesNotMatch(out, /: created$/m)
    assert.match(out, /service family\.tools: exists, reused/)
    assert.match(out, /enrolled: .*family\.tools\.host\.json \(reused\)/)
    assert.match(out, /its identity file is missing: re-enrolling/)
    assert.equal(statSync(join(demoDir, 'family.tools.client.json')).mode & 0o777, 0o600)
    assert.deepEqual(await inventory(home), firstInventory)
    const admin = (await listJson('identities', home)).find((i) => i.name === 'admin')!
    assert.equal(admin.id, adminId)
    assert.equal(await stopWithSigint(run), 0, run.stderr())
  })

  it('a port in use gives a message naming the port and the flag', async () => {
    const busy: Server = createServer()
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()))
    const port = (busy.address() as { port: number }).port
    const homes: string[] = []
    try {
      // both cases at once (each creates a controller PKI first)
      await Promise.all(
        (
          [
            ['--controller-port', '--router-port', 'controller'],
            ['--router-port', '--controller-port', 'router'],
          ] as const
        ).map(async ([flag, other, what]) => {
          const qsHome = mkdtempSync(join(tmpdir(), 'nullport-qs-busy-'))
          homes.push(qsHome)
          const r = await cli(['quickstart', '--home', qsHome, flag, String(port), other, '0'], home)
          assert.equal(r.code, 1, `${flag}: ${r.stdout}\n${r.stderr}`)
          assert.match(
            r.stderr,
            new RegExp(
              `^nullport: ERR_CLI_PORT_IN_USE: port ${port} \\(${what}\\) is already in use on 127\\.0\\.0\\.1: .*choose another port with ${flag} PORT`,
              'm',
            ),
          )
        }),
      )
    } finally {
      busy.close()
      for (const h of homes) rmSync(h, { recursive: true, force: true })
    }
  })
})
