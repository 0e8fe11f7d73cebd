/** Context options are validated once, with messages naming the field (context-options.ts). */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { contextTimings, controllerUrl } from '../src/context-options.js'
import { isSdkError } from '../src/errors.js'

describe('context options', () => {
  it('fills in the defaults', () => {
    const t = contextTimings({})
    assert.deepEqual(t, {
      connectTimeoutMs: 10_000,
      pingIntervalMs: 15_000,
      dialTimeoutMs: 15_000,
      eventsIdleTimeoutMs: 90_000,
      reconnect: {},
      agent: 'nullport-sdk-node/0.1.0',
      stallWarningMs: 2000,
    })
  })

  it('refuses a timing that is not a positive integer, naming the field', () => {
    assert.throws(
      () => contextTimings({ dialTimeoutMs: 0 }),
      (err: unknown) => isSdkError(err, 'ERR_INVALID_OPTION') && /dialTimeoutMs/.test(err.message),
    )
  })

  it('reconnect: maxMs alone below the default first delay caps it; out-of-range values are refused', () => {
    assert.deepEqual(contextTimings({ reconnect: { maxMs: 100 } }).reconnect, { initialMs: 100, maxMs: 100 })
    assert.deepEqual(contextTimings({ reconnect: { initialMs: 100, maxMs: 1000 } }).reconnect, {
      initialMs: 100,
      maxMs: 1000,
    })
    for (const reconnect of [{ initialMs: 0 }, { initialMs: 500, maxMs: 100 }, { initialMs: Number.NaN }]) {
      assert.throws(
        () => contextTimings({ reconnect }),
        (err: unknown) => isSdkError(err, 'ERR_INVALID_OPTION') && /option reconnect/.test(err.message),
        JSON.stringify(reconnect),
      )
    }
  })

  it('controller must be an https:// URL', () => {
    assert.equal(controllerUrl({}, 'https://c.example:1280'), 'https://c.example:1280/')
    for (const controller of ['not a url', 'http://c.example:1280']) {
      assert.throws(
        () => controllerUrl({ controller }, 'https://c.example'),
        (err: unknown) => isSdkError(err, 'ERR_INVALID_OPTION') && /https:\/\//.test(err.message),
        controller,
      )
    }
  })
})
