import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { connect } from 'node:tls'
import { spawnController, type TestController } from '@nullport/testkit'
import { ERRORS } from '../src/errors.js'

describe('controller process: health, OpenAPI, logs, shutdown', () => {
  let c: TestController
  before(async () => {
    c = await spawnController({ runner: 'library' })
  })
  after(async () => {
    await c?.stop()
  })

  it('/healthz without credentials', async () => {
    const r = await c.api('GET', '/healthz', undefined, { token: null })
    assert.equal(r.status, 200)
    assert.equal(r.body.data.status, 'ok')
    assert.equal(typeof r.body.data.version, 'string')
  })

  it('OpenAPI 3 documents for the management and client APIs', async () => {
    const m = await c.api('GET', '/openapi/management.json', undefined, { token: null })
    assert.equal(m.status, 200)
    assert.match(m.body.openapi, /^3\./)
    const paths = Object.keys(m.body.paths)
    for (const p of [
      '/edge/management/v1/authenticate',
      '/edge/management/v1/identities',
      '/edge/management/v1/identities/{id}',
      '/edge/management/v1/services',
      '/edge/management/v1/configs',
      '/edge/management/v1/config-types',
      '/edge/management/v1/service-policies',
      '/edge/management/v1/edge-routers',
      '/edge/management/v1/edge-router-policies',
      '/edge/management/v1/service-edge-router-policies',
      '/edge/management/v1/policy-advisor/identities/{identity}/services/{service}',
      '/edge/management/v1/audit-log',
    ]) {
      assert.ok(paths.includes(p), `${p} missing from management.json`)
    }
    assert.ok(!paths.some((p) => p.startsWith('/edge/client/')), 'client routes leak into management.json')
    const create = m.body.paths['/edge/management/v1/identities'].post
    assert.equal(create.requestBody.content['application/json'].schema.additionalProperties, false)
    const cl = await c.api('GET', '/openapi/client.json', undefined, { token: null })
    assert.equal(cl.status, 200)
    assert.match(cl.body.openapi, /^3\./)
    assert.ok(!Object.keys(cl.body.paths ?? {}).some((p) => p.startsWith('/edge/management/')))
  })

  it('JSON logs with a request id per request; x-request-id echoed', async () => {
    const r = await c.api('GET', 'identities', undefined, { headers: { 'x-request-id': 'trace-me-42' } })
    assert.equal(r.headers['x-request-id'], 'trace-me-42')
    await new Promise((res) => setTimeout(res, 100))
    const lines = c.logs.map((l) => JSON.parse(l))
    const mine = lines.filter((l) => l.reqId === 'trace-me-42')
    assert.ok(mine.length >= 1, 'no log line with the request id')
    assert.ok(mine.every((l) => l.component === 'http'))
    assert.ok(lines.some((l) => l.component === 'store'))
    // never the password or token in logs
    assert.ok(!c.logs.some((l) => l.includes(c.adminPassword)))
  })

  it('malformed HTTP is answered in the error shape too', async () => {
    const u = new URL(c.url)
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(
        { host: u.hostname, port: Number(u.port), ca: c.caPem, servername: 'localhost' },
        () => {
          s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n')
        },
      )
      let out = ''
      s.setEncoding('utf8')
      s.on('data', (d) => {
        out += d
      })
      s.on('end', () => resolve(out))
      s.on('error', reject)
    })
    assert.match(text, /^HTTP\/1\.1 400 /)
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))
    assert.equal(body.error.code, 'ERR_BAD_REQUEST')
    assert.equal(ERRORS[body.error.code as keyof typeof ERRORS].status, 400)
  })

  it('SIGTERM: an in-flight request finishes, then the process exits 0', async () => {
    const inflight = c.api('GET', 'identities?limit=1000', undefined, {
      headers: { 'x-request-id': 'inflight-1' },
    })
    // wait until the controller has received the request, then signal it
    for (let i = 0; i < 200 && !c.logs.some((l) => l.includes('"reqId":"inflight-1"')); i++) {
      await new Promise((r) => setTimeout(r, 5))
    }
    const code = c.stop({ keepData: true })
    const r = await inflight
    assert.equal(r.status, 200)
    assert.equal(await code, 0)
    assert.ok(c.logs.some((l) => l.includes('controller stopped')))
  })
})
