/**
 * Data plane (a): a hosting process with NO listening socket (it dials out to the router and
 * binds) is reached by an authorized dialer; 256 MiB each way, end-to-end encrypted, with equal
 * sha256 on both ends. The same exchange on a plain circuit (a service with
 * encryptionRequired=false: TLS hops only) checks the receive path that keeps payload bytes
 * instead of decrypting them (the SDK reuses its reassembly buffer and must copy there).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { type Context, loadContext } from '@nullport/sdk'
import { type HostProcess, hostStream, spawnHost, startNetwork, type TestNetwork } from '@nullport/testkit'

function listeningSocketsOf(pid: number): string[] {
  let out = ''
  try {
    out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' })
  } catch {
    out = execFileSync('ss', ['-ltnp'], { encoding: 'utf8' })
  }
  return out.split('\n').filter((l) => l.includes(`pid=${pid},`))
}

for (const { e2e, SIZE } of [
  { e2e: true, SIZE: 256 * 1024 * 1024 },
  { e2e: false, SIZE: 64 * 1024 * 1024 },
]) {
  describe(`dataplane: transfer through a dark host (${e2e ? 'end-to-end encrypted' : 'plain circuit'})`, () => {
    let net: TestNetwork
    let host: HostProcess
    let dialer: Context

    before(async () => {
      net = await startNetwork({ routers: [{ name: 'r1' }] })
      const h = await net.identity('host-a')
      const d = await net.identity('dialer-a')
      await net.service('bulk', { encryptionRequired: e2e })
      await net.policy('Bind', ['@host-a'], ['@bulk'])
      await net.policy('Dial', ['@dialer-a'], ['@bulk'])
      host = await spawnHost(net, h.path, 'bulk')
      dialer = await loadContext(d.path)
    })

    after(async () => {
      await dialer?.close()
      await host?.stop()
      await net?.close()
    })

    it('the hosting process listens on no port', async () => {
      assert.equal(
        (await host.waitFor((e) => e.event === 'listening' || e.event === 'error')).event,
        'listening',
      )
      // sanity: ss does list the router's own listener (so the check below can fail)
      const routerPid = net.routers[0]!.process!.pid!
      assert.ok(listeningSocketsOf(routerPid).length > 0, 'ss shows the router listening')
      assert.deepEqual(listeningSocketsOf(host.pid), [], 'the hosting app has no listening socket')
    })

    it(`moves ${SIZE >> 20} MiB each way with equal sha256 on both ends (${e2e ? 'e2e' : 'plain'})`, async (t) => {
      const socket = await dialer.dial('bulk', { allowHalfOpen: true })
      assert.equal(
        socket.remoteIdentity.name,
        'host-a',
        'the host identity is verified from its e2e certificate',
      )
      assert.equal(socket.encrypted, e2e)
      assert.equal(socket.remoteAddress, undefined, 'no fake IP address')
      const conn = await host.waitFor((e) => e.event === 'connection')
      assert.deepEqual(
        (conn.remote as { name: string }).name,
        'dialer-a',
        'the host sees the verified dialer',
      )

      const rx = createHash('sha256')
      let rxBytes = 0
      const ended = new Promise<void>((resolve, reject) => {
        socket.on('data', (d: Buffer) => {
          rx.update(d)
          rxBytes += d.length
        })
        socket.on('end', resolve)
        socket.on('error', reject)
      })
      const started = process.hrtime.bigint()
      const cmd = Buffer.from(`${JSON.stringify({ cmd: 'exchange', size: SIZE })}\n`)
      socket.write(cmd)
      const tx = createHash('sha256')
      const next = hostStream(SIZE + 1) // a different stream than the host's
      let left = SIZE
      await new Promise<void>((resolve, reject) => {
        const pump = (): void => {
          while (left > 0) {
            const b = next(Math.min(left, 1 << 20))
            left -= b.length
            tx.update(b)
            if (!socket.write(b)) {
              socket.once('drain', pump)
              return
            }
          }
          socket.end(resolve)
        }
        socket.once('error', reject)
        pump()
      })
      await ended
      const secs = Number(process.hrtime.bigint() - started) / 1e9
      const done = await host.waitFor((e) => e.event === 'exchange-done')
      // expected hash of what the host sent
      const expect = createHash('sha256')
      const hs = hostStream(SIZE)
      for (let l = SIZE; l > 0; l -= 1 << 20) expect.update(hs(Math.min(l, 1 << 20)))
      assert.equal(rxBytes, SIZE)
      assert.equal(done.rxBytes, SIZE)
      assert.equal(rx.digest('hex'), done.txHash, 'host -> dialer: equal sha256')
      assert.equal(done.txHash, expect.digest('hex'))
      assert.equal(tx.digest('hex'), done.rxHash, 'dialer -> host: equal sha256')
      // informational, not asserted
      t.diagnostic(
        `2 x ${SIZE >> 20} MiB through one router (${e2e ? 'e2e' : 'plain'}) in ${secs.toFixed(2)} s: ${((2 * SIZE * 8) / secs / 1e9).toFixed(2)} Gbit/s aggregate`,
      )
      if (!socket.closed) await new Promise((r) => socket.once('close', r))
    })
  })
}
