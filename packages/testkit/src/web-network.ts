/**
 * The network of the HTTP and zitify tests: a controller and one router process (`edge-http`),
 * a hosting identity (#web-hosts), a dialing identity (#web-clients), a stranger, and services
 * with intercept.v1 configs that the hosts may Bind and the clients may Dial. Resolves once the
 * router accepts a bind of every bindable service.
 *
 * @example
 * const web = await startWebNetwork([{ name: 'tools', intercept: { addresses: ['tools.ziti'], portRanges: [{ low: 80, high: 80 }] } }])
 * const client = await web.context(web.clientFile)
 * await waitForService(client, 'tools')
 */
import type { IdentityFile } from '@nullport/protocol'
import { type Context, loadContext } from '@nullport/sdk'
import { startNetwork, type TestNetwork } from './network.js'
import { waitFor } from './wait-for.js'

export interface WebService {
  name: string
  /** intercept.v1 addresses and port ranges (omit for a service reachable by name only). */
  intercept?: { addresses: string[]; portRanges: Array<{ low: number; high: number }> }
  /** Default true: #web-hosts may Bind. */
  bind?: boolean
  /** Default true: #web-clients may Dial. */
  dial?: boolean
}

export interface WebNetwork extends TestNetwork {
  hostFile: IdentityFile
  clientFile: IdentityFile
  strangerFile: IdentityFile
  hostPath: string
  clientPath: string
  strangerPath: string
  /** Loads a context and closes it in close(). */
  context(file: IdentityFile | string): Promise<Context>
}

export async function startWebNetwork(services: WebService[]): Promise<WebNetwork> {
  const net = await startNetwork({ routers: [{ name: 'edge-http' }] })
  const contexts: Context[] = []
  const close = async (): Promise<void> => {
    for (const c of contexts) await c.close().catch(() => undefined)
    await net.close()
  }
  try {
    const host = await net.identity('web-host', { roleAttributes: ['web-hosts'] })
    const client = await net.identity('web-client', { roleAttributes: ['web-clients'] })
    const stranger = await net.identity('web-stranger')
    for (const s of services) {
      const configs: string[] = []
      if (s.intercept) {
        await net.config(`${s.name}.intercept`, 'intercept.v1', {
          protocols: ['tcp'],
          addresses: s.intercept.addresses,
          portRanges: s.intercept.portRanges,
        })
        configs.push(`${s.name}.intercept`)
      }
      await net.service(s.name, { configs })
      if (s.bind !== false) await net.policy('Bind', ['#web-hosts'], [`@${s.name}`], `${s.name}.bind`)
      if (s.dial !== false) await net.policy('Dial', ['#web-clients'], [`@${s.name}`], `${s.name}.dial`)
    }
    // Wait until the router knows the services and policies: bind each bindable service once
    // (the router refuses a bind for a service it has not heard of yet).
    const probe = await loadContext(host.file)
    try {
      for (const s of services) {
        if (s.bind === false) continue
        await waitFor(
          async () => {
            const server = probe.listen(s.name)
            const ok = await new Promise<boolean>((resolve) => {
              server.once('listening', () => resolve(true))
              server.on('error', () => resolve(false))
            })
            await server.close()
            return ok
          },
          { timeoutMs: 15_000, intervalMs: 200, what: `the router to accept a bind of ${s.name}` },
        )
      }
    } finally {
      await probe.close()
    }
    return {
      ...net,
      hostFile: host.file,
      clientFile: client.file,
      strangerFile: stranger.file,
      hostPath: host.path,
      clientPath: client.path,
      strangerPath: stranger.path,
      async context(file) {
        const ctx = await loadContext(file)
        contexts.push(ctx)
        return ctx
      },
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** Waits until `ctx` has `service` with the given permission (pushes are asynchronous). */
export async function waitForService(
  ctx: Context,
  service: string,
  permission: 'Dial' | 'Bind' = 'Dial',
): Promise<void> {
  await waitFor(() => ctx.services().some((s) => s.name === service && s.permissions.includes(permission)), {
    timeoutMs: 10_000,
    intervalMs: 50,
    what: `${ctx.identity.name} to see ${service} (${permission})`,
  })
}
