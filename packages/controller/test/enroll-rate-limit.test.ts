import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { spawnController, type TestController } from '@nullport/testkit'
import { enrollWith, mtls } from './enroll-helpers.js'

/** A signed-looking JWT the controller's key did not sign (a guessed or forged token). */
function forgedToken(i: number): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${b({ alg: 'ES256', typ: 'JWT' })}.${b({ sub: `x${i}`, jti: `guess-${i}`, em: 'ott', exp: 4102444800 })}.${Buffer.alloc(64, i).toString('base64url')}`
}

describe('enrollment rate limit (token guessing, CSR floods)', () => {
  let c: TestController
  before(async () => {
    c = await spawnController({ runner: 'library' })
  })
  after(async () => {
    await c?.stop()
  })

  it('after 20 failed enrollments from one address, both enroll endpoints answer 429 ERR_RATE_LIMITED before reading the body, even for a valid token', async () => {
    const r = await c.api('POST', 'identities', { name: 'rl-victim', type: 'Device' })
    assert.equal(r.status, 201, r.text)
    const validJwt = r.body.data.enrollment.jwt as string

    for (let i = 0; i < 20; i++) {
      const { res } = await enrollWith(c, 'identity', forgedToken(i))
      assert.equal(res.status, 401, `attempt ${i}: ${res.text}`)
      assert.equal(res.body.error.code, 'ERR_ENROLLMENT_INVALID')
    }
    const blocked = await enrollWith(c, 'identity', validJwt)
    assert.equal(blocked.res.status, 429, blocked.res.text)
    assert.equal(blocked.res.body.error.code, 'ERR_RATE_LIMITED')
    assert.ok(blocked.res.body.error.retryAfterSeconds > 0)

    const router = await enrollWith(c, 'router', forgedToken(99))
    assert.equal(router.res.status, 429, router.res.text)
    assert.equal(router.res.body.error.code, 'ERR_RATE_LIMITED')

    // refused before the body is parsed: a malformed body gets 429, not a validation error
    const raw = await mtls(`${c.url}/edge/client/v1/enroll`, 'POST', { ca: c.caPem, body: { nope: 1 } })
    assert.equal(raw.status, 429, raw.text)

    // the limit is per enrollment: the rest of the API still answers this address
    const health = await mtls(`${c.url}/healthz`, 'GET', { ca: c.caPem })
    assert.equal(health.status, 200)
  })
})
