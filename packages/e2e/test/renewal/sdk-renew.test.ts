/**
 * Identity certificates renew themselves: a context asks the controller for a new certificate
 * (mTLS with the current one, a CSR for a new key), verifies it, rewrites its identity file
 * (atomically, 0600), and keeps working: live circuits continue, new contexts load the renewed
 * file. Certificates here live 120 s (controller config), so scheduled renewal is observable.
 */
import assert from 'node:assert/strict'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Context, loadContext, type OverlayServer, type OverlaySocket } from '@nullport/sdk'
import { startNetwork, type TestNetwork } from '@nullport/testkit'

function leafOf(chainPem: string): X509Certificate {
  return new X509Certificate(
    chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0],
  )
}
const fp = (c: X509Certificate): string => c.fingerprint256.replace(/:/g, '').toLowerCase()

async function echoOnce(ctx: Context, service: string, text: string): Promise<string> {
  const s = await ctx.dial(service)
  return roundTrip(s, text).finally(() => s.destroy())
}

async function roundTrip(s: OverlaySocket, text: string): Promise<string> {
  let got = ''
  const done = new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      got += d.toString()
      if (got.length >= text.length) {
        s.off('data', onData)
        resolve()
      }
    }
    s.on('data', onData)
    s.once('error', reject)
  })
  s.write(text)
  await done
  return got
}

describe('sdk: automatic certificate renewal', () => {
  let net: TestNetwork
  let host: Context
  let server: OverlayServer
  const contexts: Context[] = []

  before(async () => {
    const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'np-renew-'))
    const cfg = join(dir, 'controller.json')
    writeFileSync(cfg, JSON.stringify({ identityCertLifetime: '120s' }))
    net = await startNetwork({ routers: [{ name: 'r1' }], controllerArgs: ['--config', cfg] })
    const h = await net.identity('renew-host')
    await net.service('echo-renew')
    await net.policy('Bind', ['@renew-host'], ['@echo-renew'])
    await net.policy('Dial', ['#renewers'], ['@echo-renew'])
    host = await loadContext(h.path, { renew: false })
    server = host.listen('echo-renew')
    server.on('connection', (s: OverlaySocket) => s.pipe(s))
    if (!server.listening) await once(server, 'listening')
  })

  after(async () => {
    for (const c of contexts) await c.close()
    await host?.close()
    await net?.close()
  })

  it('renews on demand: new cert and key in the file (0600), live circuit continues, the file loads again', async () => {
    const d = await net.identity('renew-dialer', { roleAttributes: ['renewers'] })
    const before0 = readFileSync(d.path, 'utf8')
    const ctx = await loadContext(d.path, { renew: false })
    contexts.push(ctx)
    const info0 = ctx.certificate()
    assert.equal(info0.fingerprint, fp(leafOf(JSON.parse(before0).cert)))
    const live = await ctx.dial('echo-renew')
    assert.equal(await roundTrip(live, 'before'), 'before')
    const events: unknown[] = []
    ctx.on('certificate', (e) => events.push(e))

    const info1 = await ctx.renewCertificate()
    assert.notEqual(info1.fingerprint, info0.fingerprint)
    assert.ok(Date.parse(info1.notAfter) >= Date.parse(info0.notAfter))
    assert.deepEqual(ctx.certificate(), info1)
    assert.deepEqual(events, [{ ...info1, previous: info0.fingerprint }])

    // the identity file now holds the new certificate and its key, mode 0600
    const file = JSON.parse(readFileSync(d.path, 'utf8'))
    assert.equal(statSync(d.path).mode & 0o777, 0o600)
    const leaf = leafOf(file.cert)
    assert.equal(fp(leaf), info1.fingerprint)
    assert.ok(leaf.checkPrivateKey(createPrivateKey(file.key)), 'the saved key is the new certificate key')
    assert.notEqual(file.key, JSON.parse(before0).key, 'a new key, not the old one re-certified')
    assert.ok(leaf.subjectAltName?.includes(`spiffe://`) && leaf.subjectAltName.includes(`/identity/${d.id}`))

    // the circuit opened before renewal keeps working; new dials work too
    assert.equal(await roundTrip(live, 'after'), 'after')
    live.destroy()
    assert.equal(await echoOnce(ctx, 'echo-renew', 'new dial'), 'new dial')

    // a fresh process-like context from the renewed file authenticates with the new certificate
    const again = await loadContext(d.path, { renew: false })
    contexts.push(again)
    assert.equal(again.certificate().fingerprint, info1.fingerprint)
    assert.equal(await echoOnce(again, 'echo-renew', 'reloaded'), 'reloaded')
  })

  it('a refused renewal (too soon after the last) keeps the current certificate and says why', async () => {
    const d = await net.identity('renew-twice', { roleAttributes: ['renewers'] })
    const ctx = await loadContext(d.path, { renew: false })
    contexts.push(ctx)
    const first = await ctx.renewCertificate()
    const fileAfterFirst = readFileSync(d.path, 'utf8')
    await assert.rejects(
      ctx.renewCertificate(),
      (e: Error & { code?: string; details?: { remoteCode?: string } }) => {
        assert.equal(e.code, 'ERR_RENEW_FAILED')
        assert.equal(e.details?.remoteCode, 'ERR_RATE_LIMITED')
        assert.match(e.message, /retry in \d+ s/)
        return true
      },
    )
    assert.equal(
      ctx.certificate().fingerprint,
      first.fingerprint,
      'still the certificate of the first renewal',
    )
    assert.equal(readFileSync(d.path, 'utf8'), fileAfterFirst, 'the file was not touched')
    assert.equal(await echoOnce(ctx, 'echo-renew', 'still fine'), 'still fine')
  })

  it('renews by itself once the configured share of the lifetime has passed', async () => {
    const d = await net.identity('renew-auto', { roleAttributes: ['renewers'] })
    const issued = leafOf(JSON.parse(readFileSync(d.path, 'utf8')).cert)
    // 120 s lifetime: renewal due 6 s after issue
    const ctx = await loadContext(d.path, { renew: { fraction: 0.05 } })
    contexts.push(ctx)
    const renewed = (await Promise.race([
      once(ctx, 'certificate'),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no renewal within 45 s')), 45_000)),
    ])) as [{ fingerprint: string; previous: string }]
    assert.equal(renewed[0].previous, fp(issued))
    assert.equal(fp(leafOf(JSON.parse(readFileSync(d.path, 'utf8')).cert)), renewed[0].fingerprint)
    assert.equal(await echoOnce(ctx, 'echo-renew', 'auto'), 'auto')
  })

  it('bad renew options are refused before anything starts', async () => {
    const d = await net.identity('renew-opts', { roleAttributes: ['renewers'] })
    for (const fraction of [0, 1, 1.5, -1, Number.NaN]) {
      await assert.rejects(loadContext(d.path, { renew: { fraction } }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ERR_INVALID_OPTION')
        assert.match(e.message, /renew\.fraction/)
        return true
      })
    }
  })
})
