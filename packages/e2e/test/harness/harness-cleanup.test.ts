/**
 * A harness that is killed does not leave its children running: a script that starts a
 * controller through the test kit is sent SIGTERM (and, in a second run, SIGINT); the controller
 * process must be gone afterwards, not reparented to init.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { waitFor } from '@nullport/testkit'

const TESTKIT = fileURLToPath(new URL('../../../../testkit/dist/src/index.js', import.meta.url))

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('harness cleanup', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} to a harness ends the controller it started`, async () => {
      const script = `
        import { spawnController } from ${JSON.stringify(TESTKIT)}
        const ctl = await spawnController()
        process.stdout.write(JSON.stringify({ pid: ctl.proc.pid }) + '\\n')
        setInterval(() => {}, 1000)
      `
      const harness = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      const pid = await new Promise<number>((resolve, reject) => {
        let out = ''
        harness.stdout!.on('data', (d: Buffer) => {
          out += d.toString()
          const nl = out.indexOf('\n')
          if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)).pid)
        })
        harness.once('exit', (code) => reject(new Error(`harness exited ${code} before starting`)))
      })
      assert.ok(alive(pid), 'the controller runs')
      const exited = new Promise<number | null>((r) => harness.once('exit', (code) => r(code)))
      harness.kill(signal)
      await exited
      await waitFor(() => !alive(pid), { what: `controller ${pid} to end`, timeoutMs: 20_000 })
    })
  }
})
