/** Local TCP ports: a free one to listen on later, and the ones a process listens on. */
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
