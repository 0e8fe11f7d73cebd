import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Backoff } from '@nullport/protocol'
import { SDK_ERROR_CODES, SdkError } from '../src/errors.js'
import { remoteError, wireCode } from '../src/remote-error.js'

describe('error mapping', () => {
  it('passes known remote codes through and keeps the message', () => {
    const e = remoteError('ERR_NO_DIAL_PERMISSION', 'no policy', 'ERR_DIAL_FAILED')
    assert.equal(e.code, 'ERR_NO_DIAL_PERMISSION')
    assert.equal(e.message, 'no policy')
    assert.equal(e.details.remoteCode, 'ERR_NO_DIAL_PERMISSION')
  })
  it('maps an unknown remote code to the fallback, keeping the original in details and message', () => {
    const e = remoteError('ERR_SOMETHING_NEW', 'x', 'ERR_DIAL_FAILED')
    assert.equal(e.code, 'ERR_DIAL_FAILED')
    assert.equal(e.details.remoteCode, 'ERR_SOMETHING_NEW')
    assert.match(e.message, /ERR_SOMETHING_NEW/)
  })
  it('every policy refusal code of the router is a known SDK code', () => {
    for (const c of [
      'ERR_IDENTITY_NOT_FOUND',
      'ERR_IDENTITY_DISABLED',
      'ERR_SERVICE_NOT_FOUND',
      'ERR_NO_DIAL_PERMISSION',
      'ERR_NO_BIND_PERMISSION',
      'ERR_NO_EDGE_ROUTER_POLICY',
      'ERR_NO_SERVICE_EDGE_ROUTER_POLICY',
      'ERR_NO_TERMINATORS',
      'ERR_E2E_VERIFY_FAILED',
    ]) {
      assert.ok(SDK_ERROR_CODES.has(c), c)
    }
  })
  it('wireCode keeps valid codes and replaces anything else', () => {
    assert.equal(wireCode(new SdkError('ERR_FLOW_CONTROL', 'x'), 'ERR_X'), 'ERR_FLOW_CONTROL')
    assert.equal(wireCode(new Error('plain'), 'ERR_X'), 'ERR_X')
    assert.equal(wireCode({ code: 'has space' }, 'ERR_X'), 'ERR_X')
  })
})

describe('Backoff', () => {
  it('grows exponentially with jitter up to the maximum and resets', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000 })
    const d = Array.from({ length: 8 }, () => b.next())
    assert.ok(d[0]! >= 50 && d[0]! <= 100)
    assert.ok(d[3]! >= 400 && d[3]! <= 800)
    for (const x of d) assert.ok(x <= 1000)
    b.reset()
    assert.ok(b.next() <= 100)
  })
})
