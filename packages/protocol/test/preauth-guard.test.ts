import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { PreAuthGuard } from '../src/index.js'

/** A TCP server whose every accepted socket goes through `guard` first. */
async function guarded(guard: PreAuthGuard, onAdmitted?: (s: Socket) => void): Promise<Server> {
  const server = createServer((s) => {
    s.on('error', () => {})
    if (guard.admit(s)) onAdmitted?.(s)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

function port(server: Server): number {
  const a = server.address()
  assert.ok(a !== null && typeof a === 'object')
  return a.port
}

/** Opens a client socket and resolves once connected; records when the server closes it. */
function open(p: number): Promise<Socket & { closedByPeer: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const c = connect(p, '127.0.0.1') as Socket & { closedByPeer: Promise<void> }
    c.on('error', () => {})
    c.closedByPeer = new Promise((r) => c.once('close', () => r()))
    c.once('connect', () => resolve(c))
    c.once('error', reject)
  })
}

async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('PreAuthGuard', () => {
  it('refuses limits that are not positive integers', () => {
    assert.throws(() => new PreAuthGuard({ deadlineMs: 0, perAddress: 1 }), /deadlineMs/)
    assert.throws(() => new PreAuthGuard({ deadlineMs: 10, perAddress: 1.5 }), /perAddress/)
  })

  it('destroys a socket that does not authenticate before the deadline', async () => {
    const drops: string[] = []
    const guard = new PreAuthGuard({ deadlineMs: 300, perAddress: 10 }, (r) => drops.push(r))
    const server = await guarded(guard)
    try {
      const c = await open(port(server))
      await c.closedByPeer
      assert.deepEqual(drops, ['deadline'])
      assert.equal(guard.stats().timedOut, 1)
      assert.equal(guard.stats().pending, 0)
    } finally {
      server.close()
    }
  })

  it('keeps an authenticated socket past the deadline', async () => {
    const guard = new PreAuthGuard({ deadlineMs: 200, perAddress: 10 })
    let serverSide: Socket | undefined
    const server = await guarded(guard, (s) => {
      serverSide = s
      s.once('data', () => {
        guard.authenticated(s)
        s.write('ok')
      })
    })
    try {
      const c = await open(port(server))
      c.write('hello')
      await new Promise((r) => c.once('data', r))
      // three deadlines later the socket is still open and still answers
      await new Promise((r) => setTimeout(r, 600))
      assert.equal(c.destroyed, false)
      assert.equal(serverSide?.destroyed, false)
      assert.deepEqual(
        { ...guard.stats(), authenticated: guard.stats().authenticated },
        { pending: 0, addresses: 0, refusedPerAddress: 0, timedOut: 0, authenticated: 1 },
      )
      c.destroy()
    } finally {
      server.close()
    }
  })

  it('caps unauthenticated sockets per source address, and frees the place when one closes', async () => {
    const guard = new PreAuthGuard({ deadlineMs: 60_000, perAddress: 3 })
    const server = await guarded(guard)
    try {
      const p = port(server)
      const held = [await open(p), await open(p), await open(p)]
      await until(() => guard.stats().pending === 3, '3 pending')
      const fourth = await open(p)
      await fourth.closedByPeer
      assert.equal(guard.stats().refusedPerAddress, 1)
      assert.equal(guard.stats().addresses, 1)
      held[0]!.destroy()
      await until(() => guard.stats().pending === 2, 'a place freed')
      const fifth = await open(p)
      await until(() => guard.stats().pending === 3, 'fifth admitted')
      assert.equal(fifth.destroyed, false)
      guard.close()
      await Promise.all([held[1]!.closedByPeer, held[2]!.closedByPeer, fifth.closedByPeer])
      assert.equal(guard.stats().pending, 0)
      assert.equal(guard.stats().addresses, 0)
    } finally {
      server.close()
    }
  })
})
