/**
 * Client and fabric APIs authenticate the client certificate when the request arrives (onRequest),
 * before its body is read: a client without a network certificate cannot make the controller
 * buffer a body (the 2026 advisory: bodies buffered before authentication).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { connect } from 'node:tls'
import { spawnController, type TestController } from '@nullport/testkit'

/** Sends only the request head (declaring a body it never sends) and returns the first answer bytes, or null. */
async function headOnly(
  c: TestController,
  method: string,
  path: string,
  waitMs = 5000,
): Promise<string | null> {
  const u = new URL(c.url)
  const s = connect({ host: u.hostname, port: Number(u.port), ca: c.caPem, servername: 'localhost' })
  try {
    await new Promise<void>((res, rej) => {
      s.once('secureConnect', () => res())
      s.once('error', rej)
    })
    s.write(
      `${method} ${path} HTTP/1.1\r\nhost: ${u.host}\r\ncontent-type: application/json\r\ncontent-length: 500000\r\n\r\n{"links":[`,
    )
    return await new Promise<string | null>((res) => {
      let text = ''
      const t = setTimeout(() => res(text === '' ? null : text), waitMs)
      s.on('data', (d: Buffer) => {
        text += d.toString('utf8')
        if (text.includes('\r\n\r\n') && text.includes('}')) {
          clearTimeout(t)
          res(text)
        }
      })
      s.on('close', () => {
        clearTimeout(t)
        res(text === '' ? null : text)
      })
      s.on('error', () => undefined)
    })
  } finally {
    s.destroy()
  }
}

describe('client certificate checked before the body is read', () => {
  let c: TestController
  before(async () => {
    c = await spawnController({ runner: 'library' })
  })
  after(async () => {
    await c?.stop()
  })

  it('fabric POST without a certificate -> 401 ERR_CERT_REQUIRED while the body is still unsent', async () => {
    const r = await headOnly(c, 'POST', '/fabric/v1/links')
    assert.ok(r !== null, 'the controller answered without waiting for the 500000-byte body')
    assert.match(r, /^HTTP\/1\.1 401/)
    assert.match(r, /ERR_CERT_REQUIRED/)
  })

  it('client API POST without a certificate -> 401 ERR_CERT_REQUIRED while the body is still unsent', async () => {
    const r = await headOnly(c, 'POST', '/edge/client/v1/authenticate?method=cert')
    assert.ok(r !== null, 'the controller answered without waiting for the body')
    assert.match(r, /^HTTP\/1\.1 401/)
    assert.match(r, /ERR_CERT_REQUIRED/)
  })
})
