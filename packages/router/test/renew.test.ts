/**
 * The router's certificate renewal (src/renew.ts) without a controller: option validation, the
 * long timer, verification of the controller's answer, and the scheduler's retry / give-up paths
 * against a local CA.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  createIntermediateCa,
  createRootCa,
  generateKeyPem,
  issueCertificate,
  makeSpiffeId,
  publicKeyPemOf,
} from '@nullport/protocol'
import { waitFor } from '@nullport/testkit'
import pino from 'pino'
import { RouterError } from '../src/errors.js'
import {
  CertRenewer,
  type Credentials,
  LongTimer,
  MAX_TIMER_MS,
  renewAt,
  resolveRenewOptions,
  verifyRenewal,
} from '../src/renew.js'

const TD = 'renew.test'

async function localCa(): Promise<{ ca: string; intermediate: { certPem: string; keyPem: string } }> {
  const root = await createRootCa({ commonName: 'test root' })
  const intermediate = await createIntermediateCa({
    issuerCertPem: root.certPem,
    issuerKeyPem: root.keyPem,
    commonName: 'test intermediate',
  })
  return { ca: root.certPem + intermediate.certPem, intermediate }
}

async function routerCert(
  ca: Awaited<ReturnType<typeof localCa>>,
  o: { keyPem: string; id: string; lifetimeSeconds?: number },
): Promise<string> {
  const leaf = await issueCertificate({
    issuerCertPem: ca.intermediate.certPem,
    issuerKeyPem: ca.intermediate.keyPem,
    publicKeyPem: publicKeyPemOf(o.keyPem),
    commonName: o.id,
    usage: 'both',
    ip: ['127.0.0.1'],
    uris: [makeSpiffeId(TD, 'router', o.id)],
    lifetimeSeconds: o.lifetimeSeconds ?? 120,
  })
  return leaf + ca.intermediate.certPem
}

function capture(): { log: pino.Logger; lines: Array<{ level: number; msg: string; code?: string }> } {
  const lines: Array<{ level: number; msg: string; code?: string }> = []
  const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l)) })
  return { log, lines }
}

describe('renew options', () => {
  it('defaults to 2/3, false disables, bad fractions name the field', () => {
    assert.equal(resolveRenewOptions(false), false)
    const d = resolveRenewOptions(undefined)
    assert.ok(d && Math.abs(d.fraction - 2 / 3) < 1e-9 && d.retryBaseMs === 5000 && d.retryMaxMs === 300_000)
    assert.equal((resolveRenewOptions({ fraction: 0.05 }) as { fraction: number }).fraction, 0.05)
    for (const fraction of [0, 1, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => resolveRenewOptions({ fraction }),
        (e: unknown) =>
          e instanceof RouterError && e.code === 'ERR_ROUTER_CONFIG' && /renew\.fraction/.test(e.message),
      )
    }
    assert.throws(() => resolveRenewOptions({ retryBaseMs: 10, retryMaxMs: 5 }), /renew\.retryMaxMs/)
  })

  it('renewAt is the fraction of notBefore..notAfter', () => {
    const at = renewAt(
      { fingerprint: 'x', notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2026-01-01T03:00:00.000Z' },
      2 / 3,
    )
    assert.equal(new Date(at).toISOString(), '2026-01-01T02:00:00.000Z')
  })
})

describe('LongTimer', () => {
  it('re-arms delays beyond setTimeout range instead of firing at once', async () => {
    const t = new LongTimer()
    let fired = false
    t.arm(Date.now() + MAX_TIMER_MS * 2, () => {
      fired = true
    })
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(fired, false, 'a 50-day delay does not fire after 50 ms')
    assert.equal(t.armed, true)
    t.clear()
    assert.equal(t.armed, false)
    let near = false
    t.arm(Date.now() + 5, () => {
      near = true
    })
    await waitFor(() => near, { timeoutMs: 2000, what: 'the near timer' })
    let cleared = false
    t.arm(Date.now() + 5, () => {
      cleared = true
    })
    t.clear()
    await new Promise((r) => setTimeout(r, 30))
    assert.equal(cleared, false)
  })
})

describe('verifyRenewal', () => {
  it('accepts the right certificate and refuses a wrong id, key or CA', async () => {
    const ca = await localCa()
    const key = await generateKeyPem()
    const cert = await routerCert(ca, { keyPem: key, id: 'r1' })
    const info = verifyRenewal({ cert, ca: ca.ca, notAfter: '' }, key, TD, 'r1', ca.ca)
    assert.match(info.fingerprint, /^[0-9a-f]{64}$/)
    const refused = (e: unknown): boolean => e instanceof RouterError && e.code === 'ERR_ROUTER_CERT_RENEWAL'
    assert.throws(() => verifyRenewal({ cert, ca: ca.ca, notAfter: '' }, key, TD, 'r2', ca.ca), refused)
    const otherKey = await generateKeyPem()
    assert.throws(() => verifyRenewal({ cert, ca: ca.ca, notAfter: '' }, otherKey, TD, 'r1', ca.ca), refused)
    const other = await localCa()
    assert.throws(() => verifyRenewal({ cert, ca: other.ca, notAfter: '' }, key, TD, 'r1', other.ca), refused)
    assert.throws(
      () => verifyRenewal({ cert: 'nope', ca: ca.ca, notAfter: '' }, key, TD, 'r1', ca.ca),
      refused,
    )
    // the CA sent with the answer is not trusted: only the router's own counts
    const forged = await routerCert(other, { keyPem: key, id: 'r1' })
    assert.throws(
      () => verifyRenewal({ cert: forged, ca: other.ca, notAfter: '' }, key, TD, 'r1', ca.ca),
      refused,
    )
  })
})

describe('CertRenewer', () => {
  async function setup(
    request: (csr: string, n: number) => Promise<{ cert: string; ca: string; notAfter: string }>,
    /** The router's network CA (the only one a renewed certificate may chain to). */
    routerCa?: Awaited<ReturnType<typeof localCa>>,
  ): Promise<{
    renewer: CertRenewer
    lines: Array<{ level: number; msg: string; code?: string }>
    applied: Credentials[]
    calls: () => number
  }> {
    const ca = routerCa ?? (await localCa())
    const key = await generateKeyPem()
    let creds: Credentials = { cert: await routerCert(ca, { keyPem: key, id: 'r1' }), key, ca: ca.ca }
    const { log, lines } = capture()
    const applied: Credentials[] = []
    let n = 0
    const renewer = new CertRenewer(
      {
        log,
        trustDomain: TD,
        routerId: 'r1',
        current: () => creds,
        request: (csr) => request(csr, ++n),
        apply: async (next) => {
          applied.push(next)
          creds = next
        },
      },
      // 120 s certificates backdated 60 s: 0.01 of the validity is already past
      { fraction: 0.01, retryBaseMs: 20, retryMaxMs: 40 },
    )
    return { renewer, lines, applied, calls: () => n }
  }

  it('retries a refused renewal with backoff, then switches to the verified certificate', async () => {
    const ca = await localCa()
    const { renewer, lines, applied, calls } = await setup(async (csr, n) => {
      if (n <= 2)
        throw new RouterError(
          'ERR_CONTROLLER_RESPONSE',
          'POST /fabric/v1/renew failed with HTTP 429 ERR_RATE_LIMITED',
          {
            status: 429,
            apiCode: 'ERR_RATE_LIMITED',
          },
        )
      const { parseCsr } = await import('@nullport/protocol')
      const parsed = await parseCsr(csr)
      const leaf = await issueCertificate({
        issuerCertPem: ca.intermediate.certPem,
        issuerKeyPem: ca.intermediate.keyPem,
        publicKeyPem: parsed.publicKeyPem,
        commonName: 'r1',
        usage: 'both',
        uris: [makeSpiffeId(TD, 'router', 'r1')],
        lifetimeSeconds: 120,
      })
      return { cert: leaf + ca.intermediate.certPem, ca: ca.ca, notAfter: '' }
    }, ca)
    const before = renewer.info()
    renewer.start()
    try {
      await waitFor(() => applied.length === 1, { what: 'the renewal' })
      assert.equal(calls(), 3, 'two refusals, then success')
      assert.notEqual(renewer.info().fingerprint, before.fingerprint)
      const warns = lines.filter((l) => l.level === 40 && l.code === 'ERR_RATE_LIMITED')
      assert.ok(warns.length >= 2, 'each refusal is logged as a warning with its code')
      assert.ok(lines.some((l) => l.msg === 'certificate renewed'))
      // the next renewal waits (at least 15 s after this one): no renewal storm
      await new Promise((r) => setTimeout(r, 200))
      assert.equal(calls(), 3)
    } finally {
      renewer.stop()
    }
  })

  it('gives up on ERR_CERT_REVOKED and keeps the current certificate', async () => {
    const { renewer, lines, applied, calls } = await setup(async () => {
      throw new RouterError('ERR_CONTROLLER_RESPONSE', 'HTTP 401 ERR_CERT_REVOKED', {
        status: 401,
        apiCode: 'ERR_CERT_REVOKED',
      })
    })
    const before = renewer.info()
    renewer.start()
    try {
      await waitFor(() => calls() === 1, { what: 'the refusal' })
      await new Promise((r) => setTimeout(r, 300))
      assert.equal(calls(), 1, 'not retried')
      assert.equal(applied.length, 0)
      assert.deepEqual(renewer.info(), before)
      assert.ok(
        lines.some((l) => l.level === 50 && l.code === 'ERR_CERT_REVOKED'),
        'logged as an error',
      )
    } finally {
      renewer.stop()
    }
  })

  it('refuses an answer for another key (kept the current certificate) and retries', async () => {
    const ca = await localCa()
    const { renewer, lines, applied, calls } = await setup(async () => ({
      cert: await routerCert(ca, { keyPem: await generateKeyPem(), id: 'r1' }),
      ca: ca.ca,
      notAfter: '',
    }))
    renewer.start()
    try {
      await waitFor(() => calls() >= 2, { what: 'two attempts' })
      assert.equal(applied.length, 0)
      assert.ok(lines.some((l) => l.code === 'ERR_ROUTER_CERT_RENEWAL'))
    } finally {
      renewer.stop()
    }
  })
})
