/**
 * What the pre-auth tests do to a listener: TCP connections from a chosen loopback address (so
 * the legitimate client on 127.0.0.1 is another source address) that send nothing, or a few bytes,
 * and never close on their own; and one Prometheus value read from a `/metrics` endpoint.
 */
import { connect, type Socket } from 'node:net'

export interface HeldSocket {
  socket: Socket
  /** Resolves (with the time) when the listener closed the connection. */
  closed: Promise<number>
}

/** A TCP connection to 127.0.0.1:`port` from `localAddress`, resolved once connected. */
export function holdTcp(port: number, localAddress: string): Promise<HeldSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress })
    socket.on('error', () => {})
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())))
    socket.once('connect', () => resolve({ socket, closed }))
    socket.once('error', reject)
  })
}

/**
 * The value of the first sample of `name` whose line contains `labels` (e.g. `reason="deadline"`)
 * at `http://ADDRESS/metrics`; throws naming the metric when there is none.
 */
export async function scrapeMetric(address: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://${address}/metrics`)).text()
  const line = text
    .split('\n')
    .find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(labels))
  if (line === undefined) throw new Error(`no metric ${name}${labels ? ` with ${labels}` : ''} in\n${text}`)
  return Number(line.split(' ').pop())
}
