/**
 * A host keeps answering new circuits under CPU load: 2,000 circuits are opened (64 in flight)
 * from one dialer to one echo host process while a CPU hog runs on the machine; every one is
 * answered. The host runs with a small young generation (--max-semi-space-size=1), the condition
 * under which the X25519 key export froze hosting processes (the bench smoke test's "no answer
 * from the host"; see protocol e2e-freeze.test).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { type Context, loadContext } from '@nullport/sdk'
import { startNetwork, type TestNetwork } from '@nullport/testkit'

const CIRCUITS = 2000
const IN_FLIGHT = 64

describe('dataplane: a host under CPU load', () => {
  let net: TestNetwork
  let hostProc: ChildProcess | undefined
  let dialer: Context
  let hog: ChildProcess | undefined

  before(async () => {
    net = await startNetwork({ routers: [{ name: 'r1' }] })
    const h = await net.identity('host-load')
    const d = await net.identity('dialer-load')
    await net.service('echo-load')
    await net.policy('Bind', ['@host-load'], ['@echo-load'])
    await net.policy('Dial', ['@dialer-load'], ['@echo-load'])
    dialer = await loadContext(d.path)
    const script = `
      import { loadContext } from '@nullport/sdk'
      const ctx = await loadContext(${JSON.stringify(h.path)})
      const server = ctx.listen('echo-load')
      server.on('connection', (s) => s.pipe(s))
      server.on('listening', () => process.stdout.write('listening\\n'))
      server.on('error', (e) => { console.error(e); process.exit(2) })
    `
    hostProc = spawn(process.execPath, ['--max-semi-space-size=1', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    await new Promise<void>((resolve, reject) => {
      let out = ''
      hostProc!.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('listening')) resolve()
      })
      hostProc!.once('exit', (code) => reject(new Error(`host exited ${code}`)))
    })
  })

  after(async () => {
    hog?.kill('SIGKILL')
    hostProc?.kill('SIGKILL')
    await dialer?.close()
    await net?.close()
  })

  it(`answers ${CIRCUITS} circuits while a CPU hog runs`, async () => {
    hog = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' })
    let next = 0
    let answered = 0
    const failures: string[] = []
    async function one(i: number): Promise<void> {
      const sock = await dialer.dial('echo-load', { timeoutMs: 60_000 })
      const text = `circuit-${i}`
      const got = await new Promise<string>((resolve, reject) => {
        const parts: Buffer[] = []
        sock.on('data', (b: Buffer) => parts.push(b))
        sock.on('end', () => resolve(Buffer.concat(parts).toString()))
        sock.on('error', reject)
        sock.end(text)
      })
      assert.equal(got, text)
      answered++
    }
    async function worker(): Promise<void> {
      while (next < CIRCUITS) {
        const i = next++
        try {
          await one(i)
        } catch (err) {
          failures.push(`${i}: ${(err as Error & { code?: string }).code ?? ''} ${(err as Error).message}`)
        }
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, () => worker()))
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} circuits failed`)
    assert.equal(answered, CIRCUITS)
  })
})
