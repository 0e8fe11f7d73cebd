/**
 * The README's five-minute walkthrough, run as written: the `sh` blocks between
 * `<!-- walkthrough -->` and `<!-- /walkthrough -->` in README.md. HOME is a temp dir (so
 * `~/tool-pool` is one). Changes to the text, each needed to run it unattended next to other
 * tests, and nothing else:
 * - the quickstart line gets `--controller-port 0 --router-port 0` (other tests may hold 1280/3022);
 * - the tunneler's `127.0.0.1:1080` becomes a free port and it gets `--status 127.0.0.1:0`;
 * - the line after a background (`&`) line is retried until it succeeds (a person types slower
 *   than the app binds or the tunneler starts), and background jobs are stopped at the end.
 * Terminal 2's lines run in one `sh -e` script (exports and `cd` carry over, as in a terminal).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { REPO_ROOT } from '@nullport/testkit'

/** The walkthrough's shell lines, in order. */
function walkthroughLines(): string[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
  const start = readme.indexOf('<!-- walkthrough -->')
  const end = readme.indexOf('<!-- /walkthrough -->')
  assert.ok(start >= 0 && end > start, 'README.md has the walkthrough markers')
  const section = readme.slice(start, end)
  const lines: string[] = []
  for (const m of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const raw of m[1]!.split('\n')) {
      const l = raw.trim()
      if (l.length > 0 && !l.startsWith('#')) lines.push(l)
    }
  }
  return lines
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

const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

describe('README walkthrough', () => {
  const home = mkdtempSync(join(tmpdir(), 'nullport-readme-'))
  let group: number | undefined
  let quickstart: ReturnType<typeof spawn> | undefined
  const stopGroup = (signal: NodeJS.Signals): void => {
    if (group === undefined) return
    try {
      process.kill(-group, signal)
    } catch {
      // already gone
    }
  }
  after(() => {
    stopGroup('SIGKILL')
    if (quickstart?.pid !== undefined && quickstart.exitCode === null) {
      try {
        process.kill(-quickstart.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    rmSync(home, { recursive: true, force: true })
  })

  it('every command runs as written against a quickstart', async () => {
    const lines = walkthroughLines()
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home }
    delete env.NULLPORT_HOME
    delete env.NULLPORT_PASSWORD
    delete env.NODE_OPTIONS

    // terminal 1
    const qsLine = lines.shift()!
    assert.match(qsLine, /^npx nullport quickstart /)
    let qsOut = ''
    quickstart = spawn('/bin/sh', ['-c', `exec ${qsLine} --controller-port 0 --router-port 0`], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // its own process group, like a terminal's foreground job: Ctrl-C signals the whole group
      detached: true,
    })
    const qs = quickstart
    qs.stdout!.setEncoding('utf8').on('data', (d: string) => {
      qsOut += d
    })
    qs.stderr!.setEncoding('utf8').on('data', (d: string) => {
      qsOut += d
    })
    const qsExit = new Promise<number | null>((r) => qs.on('exit', (c) => r(c)))
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`quickstart not running after 40 s:\n${qsOut}`)), 40_000)
      const check = () => {
        if (/ is running; Ctrl-C stops everything/.test(qsOut)) {
          clearTimeout(t)
          resolve()
        }
      }
      qs.stdout!.on('data', check)
      qs.on('exit', (c) => {
        clearTimeout(t)
        reject(new Error(`quickstart exited ${c}:\n${qsOut}`))
      })
    })
    // the env line it prints is the README's
    const printed = /export NULLPORT_HOME=(\S+)/.exec(qsOut)?.[1]
    assert.equal(printed, join(home, 'tool-pool'))
    assert.ok(
      lines.includes('export NULLPORT_HOME=~/tool-pool'),
      'the README exports the NULLPORT_HOME the quickstart prints',
    )

    // terminal 2
    const socks = await freePort()
    const script: string[] = ['set -e']
    let retryNext = false
    let bg = 0
    for (let line of lines) {
      if (line.includes(' tunnel run ')) line = line.replace(/ &$/, ' --status 127.0.0.1:0 &')
      line = line.replaceAll('127.0.0.1:1080', `127.0.0.1:${socks}`)
      if (line.endsWith('&')) {
        script.push(`${line.slice(0, -1).trimEnd()} > ${sq(join(home, `bg${++bg}.log`))} 2>&1 &`)
        retryNext = true
        continue
      }
      if (retryNext) {
        script.push(
          `n=0; until eval ${sq(line)}; do n=$((n+1)); if [ $n -ge 60 ]; then exit 1; fi; sleep 0.5; done`,
        )
        retryNext = false
      } else {
        script.push(line)
      }
    }
    // its own process group: the background jobs are in it too, and all of them are stopped together
    const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const p = spawn('/bin/sh', ['-c', script.join('\n')], {
        cwd: REPO_ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      })
      group = p.pid
      let out = ''
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d
      })
      p.stderr.setEncoding('utf8').on('data', (d: string) => {
        out += d
      })
      const t = setTimeout(() => p.kill('SIGKILL'), 90_000)
      p.on('error', reject)
      // 'exit', not 'close': the background jobs do not hold its pipes, but a killed script's child might
      p.on('exit', (code) => {
        clearTimeout(t)
        setTimeout(() => resolve({ code, out }), 100)
      })
    })
    const logs = () =>
      Array.from({ length: bg }, (_, i) => {
        try {
          return `bg${i + 1}.log:\n${readFileSync(join(home, `bg${i + 1}.log`), 'utf8')}`
        } catch {
          return ''
        }
      }).join('\n')
    assert.equal(r.code, 0, `walkthrough failed:\n${r.out}\n${logs()}\nquickstart:\n${qsOut}`)
    assert.match(r.out, /enrolled identity python\.django/)
    assert.match(r.out, /enrolled identity laptop/)
    assert.match(r.out, /can dial: yes/)
    assert.match(r.out, /"name": "tile saw"/)
    assert.match(r.out, /<h1>Tool Pool<\/h1><p>Hello laptop<\/p>/)
    assert.equal(bg, 2, 'the app and the tunneler ran in the background')
    stopGroup('SIGTERM')
    process.kill(-qs.pid!, 'SIGINT')
    // npm exec ends by re-raising the signal (exit code null); the quickstart under it stops cleanly
    // (its own exit code 0 after SIGINT is checked in quickstart.test.ts)
    await qsExit
    assert.match(qsOut, /SIGINT: stopping\n(.*\n)?stopped\n/)
  })
})
