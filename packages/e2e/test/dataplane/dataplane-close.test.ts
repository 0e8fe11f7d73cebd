/**
 * Circuits close like TCP connections: a peer that ends or destroy()s after a completed exchange
 * reaches the other side as 'end' + 'close', never 'error', also when its process (context) goes
 * away right after; `remoteClose` tells how. An abort (destroy(err)) is an 'error' with its code.
 * The echo host is the second seed's `sock.pipe(sock)` with no 'error' handler: an 'error' would
 * crash this test process.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { after, before, describe, it } from 'node:test'
import { type Context, loadContext, type OverlaySocket } from '@nullport/sdk'
import { startNetwork, type TestNetwork } from '@nullport/testkit'

interface HostSide {
  events: string[]
  socket: OverlaySocket
  closed: Promise<void>
}

describe('dataplane: close semantics', () => {
  let net: TestNetwork
  let host: Context
  let dialerPath: string
  const accepted: HostSide[] = []
  let onAccept: ((h: HostSide) => void) | null = null

  before(async () => {
    net = await startNetwork({ routers: [{ name: 'r1' }] })
    const h = await net.identity('host-c')
    const d = await net.identity('dialer-c')
    dialerPath = d.path
    for (const svc of ['echo-c', 'echo-plain']) {
      await net.service(svc, svc === 'echo-plain' ? { encryptionRequired: false } : {})
      await net.policy('Bind', ['@host-c'], [`@${svc}`])
      await net.policy('Dial', ['@dialer-c'], [`@${svc}`])
    }
    host = await loadContext(h.path)
    for (const svc of ['echo-c', 'echo-plain']) {
      const server = host.listen(svc)
      server.on('connection', (sock: OverlaySocket) => {
        const events: string[] = []
        const side: HostSide = {
          events,
          socket: sock,
          closed: new Promise((r) => sock.once('close', () => r())),
        }
        sock.on('end', () => events.push('end'))
        sock.on('close', () => events.push('close'))
        // record an error if one comes, without handling it: the process would crash first
        sock.prependListener('error', (e: Error & { code?: string }) => events.push(`error:${e.code}`))
        sock.pipe(sock)
        accepted.push(side)
        onAccept?.(side)
      })
      await once(server, 'listening')
    }
  })

  after(async () => {
    await host?.close()
    await net?.close()
  })

  const nextAccepted = (): Promise<HostSide> => new Promise((r) => (onAccept = r))

  async function exchange(ctx: Context, service: string): Promise<{ sock: OverlaySocket; side: HostSide }> {
    const accepted = nextAccepted()
    const sock = await ctx.dial(service)
    sock.write('ping')
    const [echo] = (await once(sock, 'data')) as [Buffer]
    assert.equal(echo.toString(), 'ping')
    return { sock, side: await accepted }
  }

  for (const service of ['echo-c', 'echo-plain']) {
    it(`${service}: the dialer destroy()s after an exchange: the host sees end + close`, async () => {
      const ctx = await loadContext(dialerPath)
      try {
        const { sock, side } = await exchange(ctx, service)
        sock.destroy()
        await side.closed
        assert.deepEqual(side.events, ['end', 'close'])
      } finally {
        await ctx.close()
      }
    })

    it(`${service}: the dialer destroy()s and its context closes at once: still end + close`, async () => {
      const ctx = await loadContext(dialerPath)
      const { sock, side } = await exchange(ctx, service)
      sock.destroy()
      await ctx.close()
      await side.closed
      assert.deepEqual(side.events, ['end', 'close'])
    })

    it(`${service}: a dialer process that destroy()s and exits at once: end + close`, async () => {
      const accepted = nextAccepted()
      // the process exits right after destroy(): its CLOSE may never leave, the router then
      // tells the host ERR_PEER_GONE after the (already delivered) end of stream
      const script = `
        import { loadContext } from '@nullport/sdk'
        const ctx = await loadContext(${JSON.stringify(dialerPath)})
        const sock = await ctx.dial(${JSON.stringify(service)})
        sock.write('ping')
        sock.once('data', () => { sock.destroy(); process.exit(0) })
      `
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'inherit', 'inherit'],
      })
      const [code] = (await once(child, 'exit')) as [number]
      assert.equal(code, 0)
      const side = await accepted
      await side.closed
      assert.deepEqual(side.events, ['end', 'close'])
    })

    it(`${service}: the dialer ends: end + close on both sides`, async () => {
      const ctx = await loadContext(dialerPath)
      try {
        const { sock, side } = await exchange(ctx, service)
        const dialerEvents: string[] = []
        sock.on('end', () => dialerEvents.push('end'))
        sock.on('error', (e: Error & { code?: string }) => dialerEvents.push(`error:${e.code}`))
        const closed = once(sock, 'close')
        sock.end()
        await Promise.all([side.closed, closed])
        assert.deepEqual(side.events, ['end', 'close'])
        assert.deepEqual(dialerEvents, ['end'])
      } finally {
        await ctx.close()
      }
    })
  }

  it('an abort (destroy(err)) reaches the host as an error with its code', async () => {
    const ctx = await loadContext(dialerPath)
    try {
      const accepted = nextAccepted()
      const sock = await ctx.dial('echo-c')
      sock.write('ping')
      await once(sock, 'data')
      const side = await accepted
      sock.on('error', () => {})
      // the host must handle this one: give it a handler before the abort arrives
      side.socket.on('error', () => {})
      sock.destroy(Object.assign(new Error('boom'), { code: 'ERR_APP_ABORT' }))
      await side.closed
      assert.ok(
        side.events.some((e) => e.startsWith('error:')),
        `host events: ${side.events.join(', ')}`,
      )
    } finally {
      await ctx.close()
    }
  })
})
