import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ConnectionTable, ConnRecord } from './connections.js'
import type { TunnelLogger } from './log.js'

/**
 * Joins a TCP socket and a circuit both ways with stream pipes: each direction follows the
 * reader's pace (pipe pauses the source when the destination's write() returns false), ends
 * propagate as half-closes, an error on either side destroys both. `rec` leaves `conns` when
 * both sides are closed. Resumes the TCP side (it is paused until here).
 */
export function splice(
  tcp: Socket,
  overlay: Duplex,
  rec: ConnRecord,
  conns: ConnectionTable,
  log: TunnelLogger,
): void {
  let done = false
  const finish = (err?: Error | null): void => {
    if (done) return
    done = true
    conns.untrack(rec.id)
    if (err) {
      tcp.destroy()
      overlay.destroy()
    }
  }
  tcp.on('error', (err) => {
    log.debug({ err, service: rec.service, conn: rec.id }, 'tcp side error')
    overlay.destroy()
    finish(err)
  })
  overlay.on('error', (err: Error & { code?: string }) => {
    log.debug({ err, code: err.code, service: rec.service, conn: rec.id }, 'overlay side error')
    tcp.destroy()
    finish(err)
  })
  let closes = 0
  const onClose = (): void => {
    if (++closes === 2) finish()
  }
  tcp.once('close', () => {
    settle(overlay)
    onClose()
  })
  overlay.once('close', () => {
    settle(tcp)
    onClose()
  })
  tcp.pipe(overlay)
  overlay.pipe(tcp)
  tcp.resume()
}

/**
 * One side is gone. If the other still has bytes for it, nobody will read them: drop that side
 * too (a bounded window, never a leak). Otherwise just finish its write side.
 */
function settle(other: Duplex): void {
  if (other.destroyed) return
  if (!other.readableEnded) other.destroy()
  else if (!other.writableEnded) other.end()
}
