/**
 * SOCKS5 bytes for the tunneler's tests, below any client library: a CONNECT request by name,
 * and one raw exchange (send, collect until close) that reports what the server did.
 */
import { connect } from 'node:net'
import { parseHostPort } from '@nullport/protocol'

/** A raw SOCKS5 exchange: sends `bytes`, resolves with everything received until close (or 5 s). */
export async function rawExchange(
  address: string,
  bytes: Buffer,
  waitMs = 5000,
): Promise<{ data: Buffer; closed: boolean; error?: NodeJS.ErrnoException }> {
  const a = parseHostPort(address)
  const sock = connect(a.port, a.host)
  const chunks: Buffer[] = []
  let error: NodeJS.ErrnoException | undefined
  sock.on('data', (d: Buffer) => chunks.push(d))
  // A server that resets the connection at once (a refused dial) can do so before this
  // process has seen its own 'connect': the kernel completed the handshake, the RST arrived,
  // and libuv reports ECONNRESET from connect. That is a closed connection with no data,
  // not a failure to reach the server; ECONNREFUSED still surfaces to the caller.
  sock.on('error', (e: NodeJS.ErrnoException) => {
    error = e
  })
  sock.once('connect', () => sock.write(bytes))
  const closed = await Promise.race([
    new Promise<boolean>((r) => sock.once('close', () => r(true))),
    new Promise<boolean>((r) => setTimeout(() => r(false), waitMs)),
  ])
  sock.destroy()
  if (error && error.code !== 'ECONNRESET' && error.code !== 'EPIPE') throw error
  return { data: Buffer.concat(chunks), closed, ...(error ? { error } : {}) }
}

/** SOCKS5 greeting + CONNECT by domain name. */
export function socksConnectBytes(name: string, port: number, command = 1): Buffer {
  const n = Buffer.from(name)
  return Buffer.concat([
    Buffer.from([5, 1, 0, 5, command, 0, 3, n.length]),
    n,
    Buffer.from([port >> 8, port & 0xff]),
  ])
}
