/**
 * Pre-authentication limits of the controller's HTTPS listener: an unauthenticated attacker
 * cannot hold connections (idle TCP, a stalled TLS handshake, slow request headers) past the
 * pre-auth deadline, cannot take more than `maxPreAuthPerAddress` places from one address, and
 * leaves no socket behind. Attackers connect from other loopback addresses (127.0.0.2-5) so that
 * the legitimate client on 127.0.0.1 is a different source address.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import {
  freePort,
  type HeldSocket,
  holdTcp,
  scrapeMetric,
  openSocketsTowards,
  runControllerToExit,
  spawnController,
  type TestController,
  waitFor,
} from '@nullport/testkit'

const PREAUTH_MS = 1500

describe('controller pre-auth limits', () => {
  let c: TestController
  let dir: string
  let port: number
  let metricsPort: number
  const metric = (name: string, labels = '') => scrapeMetric(`127.0.0.1:${metricsPort}`, name, labels)
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'np-ctl-preauth-'))
    metricsPort = await freePort()
    const configFile = join(dir, 'controller.json')
    writeFileSync(
      configFile,
      JSON.stringify({
        preAuthTimeout: `${PREAUTH_MS}ms`,
        headersTimeout: `${PREAUTH_MS}ms`,
        maxPreAuthPerAddress: 20,
        maxConnections: 60,
        metricsListen: `127.0.0.1:${metricsPort}`,
      }),
    )
    c = await spawnController({ runner: 'library', configFile })
    port = Number(new URL(c.url).port)
  })
  after(async () => {
    await c?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('one address holds at most maxPreAuthPerAddress idle sockets, each only until the deadline', async () => {
    const held: HeldSocket[] = []
    for (let i = 0; i < 200; i++) held.push(await holdTcp(port, '127.0.0.2'))
    let closedCount = 0
    for (const h of held) void h.closed.then(() => closedCount++)
    // everything past the first 20 is refused at accept
    await waitFor(() => closedCount >= 180, {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: '180 refused sockets',
    })
    // while 20 are held, a legitimate client (another address) logs in
    const token = await c.login()
    assert.ok(token.length > 0)
    // the 20 held ones are destroyed at the deadline although the client never closes them
    const times = await Promise.all(held.map((h) => h.closed))
    assert.equal(closedCount, 200)
    assert.ok(Math.max(...times) > 0)
    await waitFor(() => openSocketsTowards(port, '127.0.0.2').length === 0, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'no socket towards 127.0.0.2',
    })
    // the metrics say what happened, and which limits apply
    // every one of the 200 was dropped by the cap or the deadline (how many by which depends on
    // how fast this machine opened them: a slow opener sees early ones time out and free places)
    const capped = await metric('nullport_controller_preauth_dropped_total', 'reason="per-address"')
    const late = await metric('nullport_controller_preauth_dropped_total', 'reason="deadline"')
    assert.equal(capped + late, 200, `per-address ${capped} + deadline ${late}`)
    assert.ok(capped >= 1 && late >= 20, `per-address ${capped}, deadline ${late}`)
    assert.equal(await metric('nullport_controller_limit', 'name="maxPreAuthPerAddress"'), 20)
    assert.equal(await metric('nullport_controller_limit', 'name="preAuthTimeoutMs"'), PREAUTH_MS)
  })

  it('a full global cap (stalled TLS handshakes from three addresses) frees itself at the deadline', async () => {
    const held: HeldSocket[] = []
    for (const a of ['127.0.0.3', '127.0.0.4', '127.0.0.5']) {
      for (let i = 0; i < 20; i++) {
        const h = await holdTcp(port, a)
        // the first bytes of a TLS ClientHello, then nothing
        h.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
        held.push(h)
      }
    }
    const started = Date.now()
    await Promise.all(held.map((h) => h.closed))
    const waited = Date.now() - started
    assert.ok(waited < PREAUTH_MS + 20_000, `held ${waited} ms`)
    // the listener serves again: a new login works
    const r = await c.api('GET', '/healthz', undefined, { token: null })
    assert.equal(r.status, 200)
    for (const a of ['127.0.0.3', '127.0.0.4', '127.0.0.5']) {
      await waitFor(() => openSocketsTowards(port, a).length === 0, {
        timeoutMs: 30_000,
        intervalMs: 50,
        what: `no socket towards ${a}`,
      })
    }
  })

  it('slow request headers (one byte at a time) are cut at the deadline, also on a kept-alive connection', async () => {
    const slow = (first: string | null): Promise<{ ms: number; got: string }> =>
      new Promise((resolve, reject) => {
        const s = tlsConnect({
          socket: netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }),
          ca: c.caPem,
          servername: 'localhost',
        })
        let got = ''
        let timer: NodeJS.Timeout | undefined
        let started = 0
        s.on('data', (d: Buffer) => {
          got += d.toString('latin1')
        })
        s.on('error', () => {})
        s.once('secureConnect', () => {
          const drip = (): void => {
            started = Date.now()
            const text = 'GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: '
            let i = 0
            timer = setInterval(() => {
              s.write(i < text.length ? text[i]! : 'a')
              i++
            }, 100)
          }
          if (first === null) drip()
          else {
            s.write(first)
            const wait = (): void => {
              if (got.includes('\r\n\r\n') && got.includes('"status":"ok"')) drip()
              else setTimeout(wait, 20)
            }
            wait()
          }
        })
        s.once('close', () => {
          clearInterval(timer)
          resolve({ ms: Date.now() - started, got })
        })
        setTimeout(() => {
          s.destroy()
          reject(new Error('slow headers held the connection for 40 s'))
        }, 40_000).unref()
      })
    const fresh = await slow(null)
    assert.ok(fresh.ms < 15_000, `fresh connection held ${fresh.ms} ms`)
    const kept = await slow('GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n')
    assert.match(kept.got, /^HTTP\/1\.1 200/)
    assert.ok(kept.ms < 15_000, `kept-alive connection held ${kept.ms} ms`)
    await waitFor(() => openSocketsTowards(port, '127.0.0.2').length === 0, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'no socket towards 127.0.0.2',
    })
  })

  it('refuses bad pre-auth limits in the config file, naming the field', async () => {
    for (const [field, value] of [
      ['maxPreAuthPerAddress', 0],
      ['preAuthTimeout', 'soon'],
      ['headersTimeout', '0s'],
    ] as const) {
      const bad = join(dir, `bad-${field}.json`)
      writeFileSync(bad, JSON.stringify({ [field]: value }))
      const r = await runControllerToExit({
        runner: 'library',
        configFile: bad,
        dataDir: mkdtempSync(join(dir, 'd-')),
      })
      assert.notEqual(r.code, 0)
      assert.match(r.stderr + r.stdout, new RegExp(field))
    }
  })
})
