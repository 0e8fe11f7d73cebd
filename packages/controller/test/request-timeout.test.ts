/**
 * A client that declares a request body and sends it too slowly is cut off after the configured
 * requestTimeout (a slow-body sender must not hold a connection and a body buffer forever).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { connect } from 'node:tls'
import { runControllerToExit, spawnController, type TestController } from '@nullport/testkit'

describe('controller requestTimeout', () => {
  let c: TestController
  let dir: string
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'np-ctl-timeout-'))
    const configFile = join(dir, 'controller.json')
    writeFileSync(configFile, JSON.stringify({ requestTimeout: '1s' }))
    c = await spawnController({ runner: 'library', configFile })
  })
  after(async () => {
    await c?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('drops a request whose body never arrives (no indefinite hold before authentication)', async () => {
    const u = new URL(c.url)
    const s = connect({ host: u.hostname, port: Number(u.port), ca: c.caPem, servername: 'localhost' })
    await new Promise<void>((res, rej) => {
      s.once('secureConnect', () => res())
      s.once('error', rej)
    })
    s.write(
      `POST /edge/management/v1/authenticate HTTP/1.1\r\nhost: ${u.host}\r\ncontent-type: application/json\r\ncontent-length: 500000\r\n\r\n{"username":`,
    )
    const outcome = await new Promise<string>((res) => {
      let text = ''
      const t = setTimeout(() => res('still open after 15 s'), 15_000)
      s.on('data', (d: Buffer) => {
        text += d.toString('utf8')
      })
      s.on('close', () => {
        clearTimeout(t)
        res(text === '' ? 'closed' : text.split('\r\n')[0]!)
      })
      s.on('error', () => undefined)
    })
    s.destroy()
    assert.notEqual(outcome, 'still open after 15 s')
    // Node answers 408 Request Timeout (or just closes) once requestTimeout has passed
    assert.match(outcome, /^(closed|HTTP\/1\.1 408)/)
  })

  it('rejects a bad requestTimeout in the config file, naming the field', async () => {
    const bad = join(dir, 'bad.json')
    writeFileSync(bad, JSON.stringify({ requestTimeout: 'soon' }))
    const r = await runControllerToExit({
      runner: 'library',
      configFile: bad,
      dataDir: mkdtempSync(join(dir, 'd-')),
    })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr + r.stdout, /requestTimeout/)
  })
})
