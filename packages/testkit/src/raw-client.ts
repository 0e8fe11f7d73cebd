/**
 * An SDK-less data-plane client: a TLS socket with an identity's certificate speaking frames
 * through FrameConnection, for tests that drive a router frame by frame. Frames are queued;
 * `next(pred)` takes the first match.
 *
 * @example
 * const host = await RawClient.connect(router.address, hostFile, caPem)
 * host.bind(1, 'echo')
 * await host.next((f) => f.type === FrameType.BIND_SUCCESS)
 */
import { once } from 'node:events'
import tls from 'node:tls'
import { type Frame, FrameConnection, FrameType, parseHostPort } from '@nullport/protocol'

/** A certificate chain and key: an identity file's (`cert`, `key`) or a fake controller's (`certPem`, `keyPem`). */
export type ClientCredentials = { cert: string; key: string } | { certPem: string; keyPem: string }

export class RawClient {
  readonly conn: FrameConnection
  readonly socket: tls.TLSSocket
  readonly frames: Frame[] = []
  closed = false
  private waiters: Array<() => void> = []
  nextId = 1

  constructor(socket: tls.TLSSocket) {
    this.socket = socket
    this.conn = new FrameConnection(socket)
    this.conn.on('frame', (f: Frame) => {
      this.frames.push(f)
      this.wake()
    })
    this.conn.on('error', () => {})
    this.conn.on('close', () => {
      this.closed = true
      this.wake()
    })
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Connects with `c`, trusting `ca`; sends HELLO and waits for HELLO_ACK unless `hello` is false. */
  static async connect(address: string, c: ClientCredentials, ca: string, hello = true): Promise<RawClient> {
    const { host, port } = parseHostPort(address)
    const socket = tls.connect({
      host,
      port,
      cert: 'cert' in c ? c.cert : c.certPem,
      key: 'key' in c ? c.key : c.keyPem,
      ca,
      checkServerIdentity: () => undefined,
    })
    await once(socket, 'secureConnect')
    const client = new RawClient(socket)
    if (hello) {
      client.conn.send({
        type: FrameType.HELLO,
        circuitId: 0,
        flags: 0,
        payload: { version: 1, role: 'sdk', agent: 'raw-test' },
      })
      await client.next((f) => f.type === FrameType.HELLO_ACK)
    }
    return client
  }

  /** Waits for (and removes) the first frame matching `pred`. */
  async next(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.frames.findIndex(pred)
      if (i >= 0) return this.frames.splice(i, 1)[0]!
      if (this.closed) {
        const g = this.frames.find((f) => f.type === FrameType.GOAWAY)
        throw new Error(
          `connection closed${g ? ` with GOAWAY ${JSON.stringify(g.payload)}` : ''}; frames: ${JSON.stringify(this.frames.map((f) => [f.type, f.circuitId]))}`,
        )
      }
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new Error(
          `timed out waiting for a frame; have ${JSON.stringify(this.frames.map((f) => [f.type, f.circuitId]))}`,
        )
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
  }

  /** Waits until the connection closes; returns the GOAWAY payload it got, if any. */
  async closedWith(timeoutMs = 5000): Promise<{ code: string; message: string } | null> {
    const deadline = Date.now() + timeoutMs
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection did not close')
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50)
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
    const g = this.frames.find((f) => f.type === FrameType.GOAWAY)
    return g && g.type === FrameType.GOAWAY ? g.payload : null
  }

  /** Sends DIAL {service} on the next odd circuit id; returns the id. */
  dial(service: string): number {
    const id = this.nextId
    this.nextId += 2
    this.conn.send({ type: FrameType.DIAL, circuitId: id, flags: 0, payload: { service } })
    return id
  }

  bind(bindId: number, service: string): void {
    this.conn.send({
      type: FrameType.BIND,
      circuitId: 0,
      flags: 0,
      payload: { bindId, service, cost: 0, precedence: 'default', maxConnections: 0 },
    })
  }

  /** Answers a DIAL the host received with DIAL_SUCCESS. */
  accept(dial: Frame): void {
    const p = dial.payload as { circuitTag: string }
    this.conn.send({
      type: FrameType.DIAL_SUCCESS,
      circuitId: dial.circuitId,
      flags: 0,
      payload: { hostIdentity: { id: 'set-by-router', name: 'set-by-router' }, circuitTag: p.circuitTag },
    })
  }

  close(): void {
    this.socket.destroy()
  }
}
