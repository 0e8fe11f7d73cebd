/**
 * Edge routers renew their own certificate (packages/router/src/renew.ts) against a real
 * controller issuing 120 s certificates: on demand (`renewCertificate()`), on schedule (a small
 * `renew.fraction`), and when the controller refuses (ERR_RATE_LIMITED) the current certificate
 * stays in use. Checks the identity file on disk, the certificate the listener presents to a new
 * TLS client, the metrics gauge, and that SDK circuits (old and new) keep working.
 */
import assert from 'node:assert/strict'
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import tls from 'node:tls'
import { fingerprintSha256, type IdentityFile, loadIdentityFile } from '@nullport/protocol'
import { type RouterHandle, type StartRouterOptions, startRouter } from '@nullport/router'
import { type Context, enroll, loadContext, type OverlaySocket } from '@nullport/sdk'
import {
  ensureAllRouterPolicies,
  scrapeMetric,
  startNetwork,
  type TestIdentity,
  type TestNetwork,
  waitFor,
} from '@nullport/testkit'

interface LogLine {
  level: number
  msg: string
  [k: string]: unknown
}

interface OwnRouter {
  handle: RouterHandle
  identityPath: string
  logs: LogLine[]
}

/** The SHA-256 fingerprint (hex) of the certificate the router's listener presents to a new TLS client. */
async function presentedFingerprint(address: string, client: IdentityFile): Promise<string> {
  const i = address.lastIndexOf(':')
  const socket = tls.connect({
    host: address.slice(0, i),
    port: Number(address.slice(i + 1)),
    cert: client.cert,
    key: client.key,
    ca: client.ca,
    checkServerIdentity: () => undefined,
  })
  try {
    await once(socket, 'secureConnect')
    const cert = socket.getPeerX509Certificate()
    assert.ok(cert, 'the router presents a certificate')
    return createHash('sha256').update(cert.raw).digest('hex')
  } finally {
    socket.destroy()
  }
}

/** Sends `text` and reads the same number of bytes back (the host echoes). */
async function echo(s: OverlaySocket, text: string): Promise<string> {
  const want = Buffer.byteLength(text)
  const chunks: Buffer[] = []
  let got = 0
  const done = new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no echo of "${text}" within 10 s`)), 10_000)
    const onData = (d: Buffer): void => {
      chunks.push(d)
      got += d.length
      if (got >= want) {
        clearTimeout(t)
        s.off('data', onData)
        resolve(Buffer.concat(chunks).toString('utf8'))
      }
    }
    s.on('data', onData)
    s.once('error', reject)
  })
  s.write(text)
  return done
}

const metricValue = (address: string, name: string) => scrapeMetric(address, name)

describe('router: certificate renewal', () => {
  let net: TestNetwork
  let dir: string
  let hostId: TestIdentity
  let dialerId: TestIdentity
  let host: Context
  let dialer: Context
  const routers: OwnRouter[] = []
  const contexts: Context[] = []
  /** Router A's fingerprint after the first test's renewal. */
  let renewedOnce = ''
  let enrolledWith = ''

  /** Creates, enrolls and starts an in-process router from its identity file, capturing its logs. */
  async function ownRouter(name: string, extra: Partial<StartRouterOptions>): Promise<OwnRouter> {
    const created = await net.api<{ id: string; enrollment?: { jwt?: string } }>('POST', 'edge-routers', {
      name,
    })
    const jwt = created.enrollment?.jwt
    assert.ok(jwt, 'the controller returns an enrollment token')
    const identityPath = join(dir, `${name}.identity.json`)
    await enroll({ jwt, output: identityPath, advertise: '127.0.0.1:3022' })
    const logs: LogLine[] = []
    const handle = await startRouter({
      identity: identityPath,
      listen: '127.0.0.1:0',
      advertise: '127.0.0.1',
      logLevel: 'info',
      logDestination: {
        write(line: string) {
          try {
            logs.push(JSON.parse(line) as LogLine)
          } catch {
            // not JSON
          }
        },
      },
      ...extra,
    })
    const r = { handle, identityPath, logs }
    routers.push(r)
    await handle.ready
    return r
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nullport-renew-'))
    const config = join(dir, 'controller.json')
    await writeFile(config, JSON.stringify({ identityCertLifetime: '120s' }))
    net = await startNetwork({ routers: [], controllerArgs: ['--config', config] })
    await ensureAllRouterPolicies(net.controller)
    hostId = await net.identity('renew-host')
    dialerId = await net.identity('renew-dialer')
    await net.service('renew-echo')
    await net.service('renew-echo2')
    await net.policy('Bind', ['@renew-host'], ['@renew-echo', '@renew-echo2'])
    await net.policy('Dial', ['@renew-dialer'], ['@renew-echo', '@renew-echo2'])
  })

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined)
    for (const r of routers) await r.handle.stop().catch(() => undefined)
    await net?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  function echoServer(ctx: Context, service: string): Promise<void> {
    const server = ctx.listen(service)
    server.on('connection', (s: OverlaySocket) => {
      s.on('data', (d: Buffer) => s.write(d))
      s.on('end', () => s.end())
      s.on('error', () => undefined)
    })
    return once(server, 'listening').then(() => undefined)
  }

  it('renews on demand: new fingerprint and expiry, identity file rewritten, listener presents the new certificate, circuits keep working', async () => {
    const r = await ownRouter('renew-a', { renew: false, metricsListen: '127.0.0.1:0' })
    host = await loadContext(hostId.path)
    dialer = await loadContext(dialerId.path)
    contexts.push(host, dialer)
    await echoServer(host, 'renew-echo')

    const before = r.handle.certificate()
    const fileBefore = await loadIdentityFile(r.identityPath)
    assert.equal(before.fingerprint, fingerprintSha256(fileBefore.cert))
    assert.equal(await presentedFingerprint(r.handle.address, dialerId.file), before.fingerprint)
    const expiry = await metricValue(r.handle.metricsAddress!, 'nullport_router_cert_expiry_seconds')
    assert.ok(
      expiry > 0 && expiry <= 120,
      `the expiry gauge is the seconds left of a 120 s certificate: ${expiry}`,
    )

    // a circuit opened before the renewal
    const early = await dialer.dial('renew-echo')
    assert.equal(await echo(early, 'before'), 'before')

    // make sure the new certificate's notAfter (second precision) can be later
    await new Promise((res) => setTimeout(res, 1100))
    const after = await r.handle.renewCertificate()
    assert.notEqual(after.fingerprint, before.fingerprint, 'a new certificate')
    assert.ok(
      Date.parse(after.notAfter) > Date.parse(before.notAfter),
      `${after.notAfter} > ${before.notAfter}`,
    )
    assert.deepEqual(r.handle.certificate(), after)
    renewedOnce = after.fingerprint
    enrolledWith = before.fingerprint
    const renewedLog = r.logs.find((l) => l.msg === 'certificate renewed')
    assert.ok(renewedLog, 'logged "certificate renewed"')
    assert.equal(renewedLog.oldFingerprint, before.fingerprint)
    assert.equal(renewedLog.newFingerprint, after.fingerprint)

    // the identity file holds the new certificate and its key, mode 0600
    const st = await stat(r.identityPath)
    assert.equal(st.mode & 0o777, 0o600, 'identity file mode 0600')
    const file = await loadIdentityFile(r.identityPath)
    assert.equal(fingerprintSha256(file.cert), after.fingerprint)
    assert.notEqual(file.key, fileBefore.key, 'a new key')
    assert.ok(
      new X509Certificate(file.cert).checkPrivateKey(createPrivateKey(file.key)),
      'the key matches the certificate',
    )
    assert.equal(file.id, fileBefore.id)
    assert.deepEqual(
      Object.keys(JSON.parse(await readFile(r.identityPath, 'utf8'))).sort(),
      Object.keys(fileBefore).sort(),
    )

    // a new TLS client sees the new certificate
    assert.equal(await presentedFingerprint(r.handle.address, dialerId.file), after.fingerprint)
    // the gauge is round((notAfter - scrape time) / 1000) of the certificate in use: bracket the
    // scrape in time instead of comparing with the earlier reading (a busy machine makes the
    // renewal itself take longer than the second the new certificate gains)
    const t0 = Date.now()
    const expiry2 = await metricValue(r.handle.metricsAddress!, 'nullport_router_cert_expiry_seconds')
    const t1 = Date.now()
    const na = Date.parse(after.notAfter)
    const lo = Math.round((na - t1) / 1000)
    const hi = Math.round((na - t0) / 1000)
    assert.ok(
      expiry2 >= lo && expiry2 <= hi,
      `the expiry gauge follows the new certificate: ${expiry2} in [${lo}, ${hi}] (earlier reading ${expiry})`,
    )

    // the circuit opened before keeps working; new dials work (existing and fresh SDK connections)
    assert.equal(await echo(early, 'after'), 'after')
    const again = await dialer.dial('renew-echo')
    assert.equal(await echo(again, 'again'), 'again')
    const fresh = await loadContext(dialerId.path)
    contexts.push(fresh)
    const viaNewTls = await fresh.dial('renew-echo')
    assert.equal(await echo(viaNewTls, 'fresh'), 'fresh')

    // the router's controller calls use the new certificate: a new bind creates a terminator
    const host2 = await loadContext(hostId.path)
    contexts.push(host2)
    await echoServer(host2, 'renew-echo2')
    const s2 = await fresh.dial('renew-echo2')
    assert.equal(await echo(s2, 'bound after renewal'), 'bound after renewal')
    early.destroy()
    again.destroy()
    viaNewTls.destroy()
    s2.destroy()
  })

  it('a refused renewal (ERR_RATE_LIMITED) keeps the current certificate in use and is logged', async () => {
    const r = routers[0]!
    // renew once (waiting out the controller's 10 s limit if the previous test renewed moments ago)
    const first = await waitFor(
      async () => {
        try {
          return await r.handle.renewCertificate()
        } catch (err) {
          if ((err as { details?: { apiCode?: string } }).details?.apiCode === 'ERR_RATE_LIMITED')
            return undefined
          throw err
        }
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'a successful renewal' },
    )
    const fileBefore = await readFile(r.identityPath, 'utf8')
    const warnsBefore = r.logs.filter((l) => l.msg.startsWith('certificate renewal failed')).length
    await assert.rejects(r.handle.renewCertificate(), (err: unknown) => {
      const e = err as { code?: string; details?: { apiCode?: string } }
      assert.equal(e.code, 'ERR_CONTROLLER_RESPONSE', String(err))
      assert.equal(e.details?.apiCode, 'ERR_RATE_LIMITED', String(err))
      return true
    })
    assert.deepEqual(r.handle.certificate(), first, 'the current certificate stays')
    assert.equal(await readFile(r.identityPath, 'utf8'), fileBefore, 'the identity file is untouched')
    assert.equal(await presentedFingerprint(r.handle.address, dialerId.file), first.fingerprint)
    const warns = r.logs.filter((l) => l.msg.startsWith('certificate renewal failed'))
    assert.equal(warns.length, warnsBefore + 1, 'the failure is logged')
    assert.equal(warns.at(-1)!.code, 'ERR_RATE_LIMITED')
    assert.equal(warns.at(-1)!.level, 40, 'as a warning')
    const fresh = await loadContext(dialerId.path)
    contexts.push(fresh)
    const s = await fresh.dial('renew-echo')
    assert.equal(await echo(s, 'still works'), 'still works')
    s.destroy()

    // a second router links to this one (over the renewed certificate)
    const c = await ownRouter('renew-c', { renew: false })
    const linked = (): true | undefined =>
      r.handle.stats().links.includes(c.handle.id) && c.handle.stats().links.includes(r.handle.id)
        ? true
        : undefined
    await waitFor(linked, { timeoutMs: 20_000, intervalMs: 200, what: 'a link between the routers' })

    // A third renewal: the controller keeps the certificate the call authenticated with, the
    // newest other one, and the new one. Only if the router called with its current (renewed)
    // certificate is the enrollment certificate gone.
    const third = await waitFor(
      async () => {
        try {
          return await r.handle.renewCertificate()
        } catch (err) {
          if ((err as { details?: { apiCode?: string } }).details?.apiCode === 'ERR_RATE_LIMITED')
            return undefined
          throw err
        }
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'a third renewal' },
    )
    const view = await net.api<{ certificates: Array<{ fingerprint: string }> }>(
      'GET',
      `edge-routers/${r.handle.id}`,
    )
    const held = view.certificates.map((c) => c.fingerprint)
    assert.ok(!held.includes(enrolledWith), 'the enrollment certificate was pruned')
    assert.deepEqual(held.sort(), [renewedOnce, first.fingerprint, third.fingerprint].sort())
    // routers drop connections made with a pruned certificate: the link (re)made with the
    // router's current certificate stays up
    await new Promise((res) => setTimeout(res, 2000))
    await waitFor(linked, {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: 'the link after the enrollment certificate was pruned',
    })
  })

  it('renews on schedule by itself (renew.fraction) and rewrites the identity file', async () => {
    // 120 s certificates are backdated 60 s: 0.4 of notBefore..notAfter is ~12 s after issue
    const r = await ownRouter('renew-b', { renew: { fraction: 0.4 } })
    const before = r.handle.certificate()
    const renewed = await waitFor(
      () => {
        const now = r.handle.certificate()
        return now.fingerprint !== before.fingerprint ? now : undefined
      },
      { timeoutMs: 45_000, intervalMs: 200, what: 'a scheduled renewal' },
    )
    assert.ok(Date.parse(renewed.notAfter) > Date.parse(before.notAfter))
    assert.ok(r.logs.some((l) => l.msg === 'certificate renewed' && l.newFingerprint === renewed.fingerprint))
    const file = await waitFor(
      async () => {
        const f = await loadIdentityFile(r.identityPath)
        return fingerprintSha256(f.cert) === renewed.fingerprint ? f : undefined
      },
      { timeoutMs: 5000, intervalMs: 200, what: 'the identity file to hold the renewed certificate' },
    )
    assert.ok(new X509Certificate(file.cert).checkPrivateKey(createPrivateKey(file.key)))
    assert.equal(await presentedFingerprint(r.handle.address, dialerId.file), renewed.fingerprint)
  })

  it('refuses an invalid renew option with a message naming the field', async () => {
    const fileA = routers[0]!.identityPath
    for (const fraction of [0, 1, -0.5, Number.NaN]) {
      await assert.rejects(
        startRouter({ identity: fileA, listen: '127.0.0.1:0', renew: { fraction }, logLevel: 'silent' }),
        (err: unknown) => {
          const e = err as { code?: string; message: string }
          assert.equal(e.code, 'ERR_ROUTER_CONFIG')
          assert.match(e.message, /renew\.fraction/)
          return true
        },
      )
    }
  })
})
