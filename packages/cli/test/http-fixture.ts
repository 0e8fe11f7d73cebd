/**
 * A small overlay network for the HTTP/zitify tests: the real controller and one real router
 * process, a hosting identity (#web-hosts), a dialing identity (#web-clients), a stranger, and
 * services with intercept.v1 configs. Identity files are written to a temp dir (0600).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { IdentityFile } from '@nullport/protocol'
import { type Context, enroll, loadContext } from '@nullport/sdk'
import { type RunningTestController, spawnController } from './helpers/controller.js'
import { startTestRouter, type TestRouter } from './helpers/router.js'

export interface FixtureService {
  name: string
  /** intercept.v1 addresses and port ranges (omit for a service reachable by name only). */
  intercept?: { addresses: string[]; portRanges: Array<{ low: number; high: number }> }
  /** Default true: #web-hosts may Bind. */
  bind?: boolean
  /** Default true: #web-clients may Dial. */
  dial?: boolean
}

export interface OverlayFixture {
  ctl: RunningTestController
  router: TestRouter
  dir: string
  hostFile: IdentityFile
  clientFile: IdentityFile
  strangerFile: IdentityFile
  hostPath: string
  clientPath: string
  strangerPath: string
  // biome-ignore lint/suspicious/noExplicitAny: JSON of any shape
  api(method: string, path: string, body?: unknown): Promise<any>
  /** Loads a context and closes it in stop(). */
  context(file: IdentityFile | string): Promise<Context>
  stop(): Promise<void>
}

export async function startOverlayFixture(services: FixtureService[]): Promise<OverlayFixture> {
  const ctl = await spawnController()
  const contexts: Context[] = []
  let router: TestRouter | undefined
  const dir = mkdtempSync(join(tmpdir(), 'nullport-http-'))
  try {
    router = await startTestRouter(ctl, { name: 'edge-http', allPolicies: true })
    // biome-ignore lint/suspicious/noExplicitAny: JSON of any shape
    const api = async (method: string, path: string, body?: unknown): Promise<any> => {
      const r = await ctl.api(method, path, body)
      if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`)
      return r.body.data
    }
    const identity = async (name: string, roleAttributes: string[]): Promise<[IdentityFile, string]> => {
      const d = (await api('POST', 'identities', { name, type: 'Device', roleAttributes })) as {
        enrollment: { jwt: string }
      }
      const file = (await enroll({ jwt: d.enrollment.jwt })).file
      const path = join(dir, `${name}.json`)
      writeFileSync(path, JSON.stringify(file), { mode: 0o600 })
      return [file, path]
    }
    const [hostFile, hostPath] = await identity('web-host', ['web-hosts'])
    const [clientFile, clientPath] = await identity('web-client', ['web-clients'])
    const [strangerFile, strangerPath] = await identity('web-stranger', [])
    for (const s of services) {
      const configs: string[] = []
      if (s.intercept) {
        await api('POST', 'configs', {
          name: `${s.name}.intercept`,
          configTypeId: 'intercept.v1',
          data: { protocols: ['tcp'], addresses: s.intercept.addresses, portRanges: s.intercept.portRanges },
        })
        configs.push(`${s.name}.intercept`)
      }
      await api('POST', 'services', { name: s.name, configs })
      if (s.bind !== false) {
        await api('POST', 'service-policies', {
          name: `${s.name}.bind`,
          type: 'Bind',
          semantic: 'AnyOf',
          identityRoles: ['#web-hosts'],
          serviceRoles: [`@${s.name}`],
        })
      }
      if (s.dial !== false) {
        await api('POST', 'service-policies', {
          name: `${s.name}.dial`,
          type: 'Dial',
          semantic: 'AnyOf',
          identityRoles: ['#web-clients'],
          serviceRoles: [`@${s.name}`],
        })
      }
    }
    // Wait until the router knows the services and policies: bind each bindable service once
    // (the router refuses a bind for a service it has not heard of yet).
    const probe = await loadContext(hostFile)
    try {
      for (const s of services) {
        if (s.bind === false) continue
        const deadline = Date.now() + 15_000
        for (;;) {
          const server = probe.listen(s.name)
          const ok = await new Promise<boolean>((resolve) => {
            server.once('listening', () => resolve(true))
            server.on('error', () => resolve(false))
          })
          await server.close()
          if (ok) break
          if (Date.now() > deadline) throw new Error(`the router never accepted a bind of ${s.name}`)
          await new Promise((r) => setTimeout(r, 200))
        }
      }
    } finally {
      await probe.close()
    }
    const r = router
    return {
      ctl,
      router: r,
      dir,
      hostFile,
      clientFile,
      strangerFile,
      hostPath,
      clientPath,
      strangerPath,
      api,
      async context(file) {
        const ctx = await loadContext(file)
        contexts.push(ctx)
        return ctx
      },
      async stop() {
        for (const c of contexts) await c.close().catch(() => undefined)
        await r.stop().catch(() => undefined)
        await ctl.stop().catch(() => undefined)
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    for (const c of contexts) await c.close().catch(() => undefined)
    await router?.stop().catch(() => undefined)
    await ctl.stop().catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** Waits until `ctx` has `service` with the given permission (pushes are asynchronous). */
export async function waitForService(
  ctx: Context,
  service: string,
  permission: 'Dial' | 'Bind' = 'Dial',
): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!ctx.services().some((s) => s.name === service && s.permissions.includes(permission))) {
    if (Date.now() > deadline) throw new Error(`${ctx.identity.name} never saw ${service} (${permission})`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** TCP listening sockets of this process (from `ss -ltnp`), as "addr:port" strings. */
export async function listeningPorts(pid = process.pid): Promise<string[]> {
  const { execFileSync } = await import('node:child_process')
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
