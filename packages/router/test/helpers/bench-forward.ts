/**
 * Not a test: measures forwarding throughput of one router (fake controller, raw clients, real
 * TLS on loopback). Run: node packages/router/dist/test/helpers/bench-forward.js [MB] [streams]
 */
import { FrameType, INITIAL_WINDOW } from '@nullport/protocol'
import { FakeController, RawClient } from '@nullport/testkit'
import { startRouter } from '../../src/index.js'

const MB = Number(process.argv[2] ?? 512)
const STREAMS = Number(process.argv[3] ?? 1)
const fake = new FakeController()
await fake.init()
await fake.start()
const rc = await fake.issue('router', 'r1', 'r1')
const d = await fake.issue('identity', 'd', 'd')
const h = await fake.issue('identity', 'h', 'h')
fake.addRouter(rc)
fake.addIdentity(d, ['x'])
fake.addIdentity(h, ['x'])
fake.addService('s', 's')
fake.addServicePolicy('p1', 'Dial', ['#x'], ['#all'])
fake.addServicePolicy('p2', 'Bind', ['#x'], ['#all'])
fake.allowAllRouters()
const router = await startRouter({
  identity: fake.identityFile(rc),
  listen: '127.0.0.1:0',
  logLevel: 'silent',
})
await router.ready
const host = await RawClient.connect(router.address, h, fake.caBundle)
host.bind(1, 's')
await host.next((f) => f.type === FrameType.BIND_SUCCESS)
const dialer = await RawClient.connect(router.address, d, fake.caBundle)
const circuits: Array<{ cid: number; hid: number; credit: number; sent: number; got: number }> = []
for (let i = 0; i < STREAMS; i++) {
  const cid = dialer.dial('s')
  const dial = await host.next((f) => f.type === FrameType.DIAL)
  host.conn.send({
    type: FrameType.DIAL_SUCCESS,
    circuitId: dial.circuitId,
    flags: 0,
    payload: {
      hostIdentity: { id: 'h', name: 'h' },
      circuitTag: (dial.payload as { circuitTag: string }).circuitTag,
    },
  })
  await dialer.next((f) => f.type === FrameType.DIAL_SUCCESS && f.circuitId === cid)
  circuits.push({ cid, hid: dial.circuitId, credit: INITIAL_WINDOW, sent: 0, got: 0 })
}
const byHid = new Map(circuits.map((c) => [c.hid, c]))
const byCid = new Map(circuits.map((c) => [c.cid, c]))
const total = MB * 1024 * 1024
const per = Math.floor(total / STREAMS)
const chunk = Buffer.alloc(64 * 1024, 5)
// host side: count and grant credit per 1 MiB
host.conn.removeAllListeners('frame')
dialer.conn.removeAllListeners('frame')
let done = 0
const t0 = performance.now()
const finished = new Promise<void>((resolve) => {
  host.conn.on('frame', (f) => {
    if (f.type !== FrameType.DATA) return
    const c = byHid.get(f.circuitId)!
    const n = (f.payload as Uint8Array).byteLength
    c.got += n
    host.conn.send({ type: FrameType.WINDOW_UPDATE, circuitId: c.hid, flags: 0, payload: { credit: n } })
    if (c.got >= per && ++done === STREAMS) resolve()
  })
})
let paused = false
const pump = (): void => {
  paused = false
  let progress = true
  while (progress) {
    progress = false
    for (const c of circuits) {
      if (c.sent >= per || c.credit < chunk.length) continue
      c.sent += chunk.length
      c.credit -= chunk.length
      progress = true
      if (!dialer.conn.sendData(c.cid, 0, chunk)) {
        paused = true
        return
      }
    }
  }
}
dialer.conn.on('drain', pump)
dialer.conn.on('frame', (f) => {
  if (f.type !== FrameType.WINDOW_UPDATE) return
  byCid.get(f.circuitId)!.credit += f.payload.credit
  if (!paused) pump()
})
pump()
await finished
const secs = (performance.now() - t0) / 1000
console.log(
  `${STREAMS} stream(s), ${MB} MiB in ${secs.toFixed(2)} s: ${((total * 8) / secs / 1e9).toFixed(2)} Gbit/s`,
)
host.close()
dialer.close()
await router.stop()
await fake.stop()
