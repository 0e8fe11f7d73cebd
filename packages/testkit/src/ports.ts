/** Local TCP ports: a free one to listen on later, the ones a process listens on, the sockets a listener keeps. */
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'

/** A TCP port on 127.0.0.1 that nothing listened on a moment ago. */
export async function freePort(): Promise<number> {
  const s = createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const p = (s.address() as { port: number }).port
  await new Promise((r) => s.close(r))
  return p
}

/** TCP listening sockets of a process (from `ss -ltnp`), as "addr:port" strings. */
export async function listeningPorts(pid = process.pid): Promise<string[]> {
  let out = ''
  try {
    out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' })
  } catch {
    return []
  }
  return out
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => l.trim().split(/\s+/)[3] ?? '')
}

/**
 * Server-side sockets of the listener on `port` still open towards `peer` (established,
 * close-wait or syn-recv), from `ss`, one line each: what a listener that dropped a peer has left.
 */
export function openSocketsTowards(port: number, peer: string): string[] {
  const out = execFileSync(
    'ss',
    [
      '-Htan',
      'state',
      'established',
      'state',
      'close-wait',
      'state',
      'syn-recv',
      `( sport = :${port} and dst ${peer} )`,
    ],
    { encoding: 'utf8' },
  )
  return out.split('\n').filter((l) => l.trim() !== '')
}
