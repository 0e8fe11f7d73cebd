/**
 * Not a test: forwarding throughput of a router PROCESS (real controller), raw frame clients in
 * this process, compared with the same clients talking TLS directly. Run after a build:
 * node packages/e2e/dist/test/router/router-bench.js [MiB] [streams]
 */
import { once } from 'node:events'
import tls from 'node:tls'
import { type Frame, FrameConnection, FrameType, INITIAL_WINDOW } from '@nullport/protocol'
import { enrollIdentity, RawClient, spawnController, startTestRouter } from '@nullport/testkit'

const MB = Number(process.argv[2] ?? 1024)
const STREAMS = Number(process.argv[3] ?? 1)

/** Pumps `total` bytes over `circuits` with end-to-end credit; resolves to seconds. */
async function pump(
  sender: FrameConnection,
  receiver: FrameConnection,
  circuits: Array<{ sid: number; rid: number }>,
  total: number,
): Promise<number> {
  const per = Math.floor(total / circuits.length)
  const chunk = Buffer.alloc(64 * 1024, 5)
  const st = circuits.map((c) => ({ ...c, credit: INITIAL_WINDOW, sent: 0, got: 0 }))
  const bySid = new Map(st.map((c) => [c.sid, c]))
  const byRid = new Map(st.map((c) => [c.rid, c]))
  receiver.removeAllListeners('frame')
  sender.removeAllListeners('frame')
  let done = 0
  const t0 = performance.now()
  const finished = new Promise<void>((resolve) => {
    receiver.on('frame', (f: Frame) => {
      if (f.type !== FrameType.DATA) return
      const c = byRid.get(f.circuitId)!
      const n = f.payload.byteLength
      c.got += n
      receiver.send({ type: FrameType.WINDOW_UPDATE, circuitId: c.rid, flags: 0, payload: { credit: n } })
      if (c.got >= per && ++done === st.length) resolve()
    })
  })
  let paused = false
  const go = (): void => {
    paused = false
    let progress = true
    while (progress) {
      progress = false
      for (const c of st) {
        if (c.sent >= per || c.credit < chunk.length) continue
        c.sent += chunk.length
        c.credit -= chunk.length
        progress = true
        if (!sender.sendData(c.sid, 0, chunk)) {
          paused = true
          return
        }
      }
    }
  }
  sender.on('drain', go)
  sender.on('frame', (f: Frame) => {
    if (f.type !== FrameType.WINDOW_UPDATE) return
    bySid.get(f.circuitId)!.credit += f.payload.credit
    if (!paused) go()
  })
  go()
  await finished
  return (performance.now() - t0) / 1000
}

const ctl = await spawnController()
const cleanup: Array<() => Promise<unknown> | unknown> = [() => ctl.stop()]
process.on('uncaughtException', (err) => {
  console.error(err)
  void Promise.allSettled(cleanup.reverse().map((f) => f())).then(() => process.exit(1))
})
const router = await startTestRouter(ctl, {
  name: 'bench',
  allPolicies: true,
  logLevel: 'warn',
  inProcess: process.env.BENCH_IN_PROCESS === '1',
})
cleanup.push(() => router.stop())
const d = await enrollIdentity(ctl, 'bd', ['b'])
const h = await enrollIdentity(ctl, 'bh', ['b'])
await ctl.api('POST', 'services', { name: 'bench', encryptionRequired: false })
for (const type of ['Dial', 'Bind']) {
  await ctl.api('POST', 'service-policies', {
    name: `p${type}`,
    type,
    semantic: 'AnyOf',
    identityRoles: ['#b'],
    serviceRoles: ['@bench'],
  })
}
await new Promise((r) => setTimeout(r, 300))
async function main(): Promise<void> {
  const host = await RawClient.connect(router.address, h, ctl.caPem)
  host.bind(1, 'bench')
  await host.next((f) => f.type === FrameType.BIND_SUCCESS)
  const dialer = await RawClient.connect(router.address, d, ctl.caPem)
  const circuits: Array<{ sid: number; rid: number }> = []
  for (let i = 0; i < STREAMS; i++) {
    const cid = dialer.dial('bench')
    const dial = await host.next((f) => f.type === FrameType.DIAL)
    host.accept(dial)
    await dialer.next((f) => f.type === FrameType.DIAL_SUCCESS && f.circuitId === cid)
    circuits.push({ sid: cid, rid: dial.circuitId })
  }
  const total = MB * 1024 * 1024
  const viaRouter = await pump(dialer.conn, host.conn, circuits, total)
  // direct TLS between the same two identities, same framing and credit
  const server = tls.createServer({
    cert: h.cert,
    key: h.key,
    ca: h.ca,
    requestCert: true,
    rejectUnauthorized: true,
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const accepted = once(server, 'secureConnection')
  const cs = tls.connect({
    host: '127.0.0.1',
    port,
    cert: d.cert,
    key: d.key,
    // identity certificates are clientAuth only: the baseline skips the server purpose check
    rejectUnauthorized: false,
  })
  await once(cs, 'secureConnect')
  const [ss] = (await accepted) as [tls.TLSSocket]
  const direct = await pump(
    new FrameConnection(cs),
    new FrameConnection(ss),
    circuits.map((_, i) => ({ sid: 2 * i + 1, rid: 2 * i + 1 })),
    total,
  )
  const gbit = (s: number) => ((total * 8) / s / 1e9).toFixed(2)
  console.log(
    `${STREAMS} stream(s), ${MB} MiB: via router ${gbit(viaRouter)} Gbit/s, direct TLS ${gbit(direct)} Gbit/s, ratio ${(direct / viaRouter).toFixed(2)}x`,
  )
  cs.destroy()
  ss.destroy()
  server.close()
  host.close()
  dialer.close()
}
try {
  await main()
} finally {
  for (const f of cleanup.reverse()) await f()
}
