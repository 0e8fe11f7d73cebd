/**
 * Input the management API refuses or normalises: bounded pagination, one name limit that
 * create and lookup share, no control/format characters or unpaired surrogates in names and
 * attributes, NFC names, no duplicate or padded roles.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { spawnController, type TestController } from '@nullport/testkit'

describe('management API input limits', () => {
  let c: TestController
  before(async () => {
    c = await spawnController({ runner: 'library' })
  })
  after(async () => {
    await c?.stop()
  })

  it('offset is a bounded integer (no 500 from the database)', async () => {
    for (const q of ['offset=99999999999999999999', 'offset=-1', 'offset=1.5', 'limit=0', 'limit=100000']) {
      const r = await c.api('GET', `identities?${q}`)
      assert.equal(r.status, 400, `${q}: ${r.text}`)
      assert.equal(r.body.error.code, 'ERR_VALIDATION', q)
    }
    const ok = await c.api('GET', 'identities?offset=2147483647')
    assert.equal(ok.status, 200, ok.text)
    assert.deepEqual(ok.body.data, [])
  })

  it('a name up to 255 characters can be created and addressed; 256 is refused at create', async () => {
    for (const n of [101, 200, 255]) {
      const name = `n${'x'.repeat(n - 1)}`
      const r = await c.api('POST', 'identities', { name, type: 'Device' })
      assert.equal(r.status, 201, r.text)
      const g = await c.api('GET', `identities/${encodeURIComponent(name)}`)
      assert.equal(g.status, 200, `${n}: ${g.text}`)
      assert.equal(g.body.data.name, name)
    }
    const wide = 'é'.repeat(255) // 510 bytes, 1530 characters percent-encoded
    assert.equal((await c.api('POST', 'services', { name: wide })).status, 201)
    assert.equal((await c.api('GET', `services/${encodeURIComponent(wide)}`)).status, 200)
    const long = 'y'.repeat(256)
    const r = await c.api('POST', 'identities', { name: long, type: 'Device' })
    assert.equal(r.status, 400)
    assert.equal(r.body.error.code, 'ERR_VALIDATION')
    const g = await c.api('GET', `identities/${long}`)
    assert.equal(g.status, 400, g.text)
    assert.equal(g.body.error.code, 'ERR_VALIDATION')
    const huge = await c.api('GET', `identities/${'z'.repeat(5000)}`)
    assert.ok(huge.status === 400 || huge.status === 404, huge.text)
    assert.match(huge.body.error.code, /^ERR_/)
  })

  it('refuses control, bidi and zero-width characters and unpaired surrogates in names and attributes', async () => {
    const bad = [
      'a\u0000b',
      'esc\u001b[31m',
      'two\nlines',
      'evil\u202egnp.exe',
      'zero\u200bwidth',
      'lone\ud800',
      'bom\ufeff',
      ' padded',
      'padded ',
    ]
    for (const name of bad) {
      const r = await c.api('POST', 'identities', { name, type: 'Device' })
      assert.equal(r.status, 400, `${JSON.stringify(name)}: ${r.text}`)
      assert.equal(r.body.error.code, 'ERR_VALIDATION')
      assert.match(r.body.error.message, /^name: must not contain control or format characters/)
      const a = await c.api('POST', 'services', { name: `svc-${bad.indexOf(name)}`, roleAttributes: [name] })
      assert.equal(a.status, 400, `attribute ${JSON.stringify(name)}: ${a.text}`)
      assert.equal(a.body.error.code, 'ERR_VALIDATION')
    }
    // ordinary Unicode stays allowed
    for (const name of ['café', '東京-web', 'db primary', 'emoji-🚀']) {
      const r = await c.api('POST', 'identities', { name, type: 'Device' })
      assert.equal(r.status, 201, `${name}: ${r.text}`)
    }
  })

  it('normalises names to NFC: one name, one spelling', async () => {
    const nfd = 'Zu\u0308rich' // Z u + combining diaeresis
    const r = await c.api('POST', 'services', { name: nfd })
    assert.equal(r.status, 201, r.text)
    assert.equal(r.body.data.name, 'Z\u00fcrich')
    const dup = await c.api('POST', 'services', { name: 'Z\u00fcrich' })
    assert.equal(dup.status, 409, dup.text)
    assert.equal(dup.body.error.code, 'ERR_NAME_IN_USE')
    const g = await c.api('GET', `services/${encodeURIComponent(nfd)}`)
    assert.equal(g.status, 200, g.text)
  })

  it('refuses duplicate roles and roles padded with whitespace', async () => {
    for (const identityRoles of [['#all', '#all'], ['#all '], [' #web'], ['#web', '#db', '#web']]) {
      const r = await c.api('POST', 'service-policies', {
        name: `sp-${identityRoles
          .join('')
          .trim()
          .replace(/[^a-z]/g, '')}`,
        type: 'Dial',
        identityRoles,
        serviceRoles: ['#all'],
      })
      assert.equal(r.status, 400, `${JSON.stringify(identityRoles)}: ${r.text}`)
      assert.equal(r.body.error.code, 'ERR_VALIDATION')
    }
    const dupAttr = await c.api('POST', 'identities', {
      name: 'dup-attr',
      type: 'Device',
      roleAttributes: ['a', 'a'],
    })
    assert.equal(dupAttr.status, 400, dupAttr.text)
  })
})
