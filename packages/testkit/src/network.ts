/**
 * A network for system tests: a real controller (spawnController), one or more edge routers
 * (startTestRouter, by default with `#all` edge router and service edge router policies), and
 * helpers that create identities through the management API and enroll them with the SDK's
 * `enroll()`, and create configs, services and service policies. Named fixtures:
 * `startNetwork()` (one router, r1) and `startLinkedNetwork()` (two linked routers; dialers on
 * one, hosts on the other).
 *
 * @example
 * const net = await startNetwork()
 * const host = await net.identity('host')
 * const svc = await net.service('echo')
 * await net.policy('Bind', ['@host'], ['@echo'])
 * const ctx = await loadContext(host.path)
 * ...
 * await net.close()
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { IdentityFile } from '@nullport/protocol'
import type { RouterTestHooks } from '@nullport/router'
import { enroll } from '@nullport/sdk'
import { spawnController, type TestController } from './controller.js'
import { startTestRouter, type TestRouter } from './router.js'

export interface NetworkRouterOptions {
  name: string
  /** Run in this process (needed for testHooks). Default: a separate process. */
  inProcess?: boolean
  testHooks?: RouterTestHooks
  roleAttributes?: string[]
}

export interface NetworkOptions {
  /** Default: one router, `r1`. */
  routers?: NetworkRouterOptions[]
  /** Create `#all` edge router and service edge router policies. Default true. */
  allPolicies?: boolean
  /** Extra arguments of `nullport controller run`. */
  controllerArgs?: string[]
}

export interface TestIdentity {
  id: string
  name: string
  /** Path of the enrolled identity file (0600). */
  path: string
  file: IdentityFile
}

export interface TestNetwork {
  controller: TestController
  routers: TestRouter[]
  /** Temp dir holding identity files (removed by close()). */
  dir: string
  /** A management API call that must succeed (path relative to /edge/management/v1, e.g. 'identities'); resolves to `data`. */
  // biome-ignore lint/suspicious/noExplicitAny: JSON of any shape
  api<T = any>(method: string, path: string, body?: unknown): Promise<T>
  /** Creates an identity and enrolls it with the SDK's enroll() into `dir`/NAME.json. */
  identity(name: string, opts?: { roleAttributes?: string[] }): Promise<TestIdentity>
  /** Creates a service (encryptionRequired defaults to the controller's default: true). */
  service(
    name: string,
    opts?: { roleAttributes?: string[]; encryptionRequired?: boolean; configs?: string[] },
  ): Promise<{ id: string; name: string }>
  /** Creates a config of a config type (by name or id). */
  config(
    name: string,
    configType: string,
    data: Record<string, unknown>,
  ): Promise<{ id: string; name: string }>
  /** Creates a service policy (roles like `@name`, `#attr`, `#all`). */
  policy(
    type: 'Dial' | 'Bind',
    identityRoles: string[],
    serviceRoles: string[],
    name?: string,
  ): Promise<{ id: string; name: string }>
  /** Starts one more router (e.g. in-process with test hooks). */
  addRouter(o: NetworkRouterOptions): Promise<TestRouter>
  close(): Promise<void>
}

let seq = 0

export async function startNetwork(opts: NetworkOptions = {}): Promise<TestNetwork> {
  const controller = await spawnController(opts.controllerArgs ? { args: opts.controllerArgs } : {})
  const dir = await mkdtemp(join(tmpdir(), 'nullport-net-'))
  const routers: TestRouter[] = []
  const api = controller.data
  const addRouter = async (o: NetworkRouterOptions): Promise<TestRouter> => {
    const r = await startTestRouter(controller, {
      name: o.name,
      allPolicies: opts.allPolicies ?? true,
      ...(o.inProcess !== undefined ? { inProcess: o.inProcess } : {}),
      ...(o.testHooks ? { testHooks: o.testHooks } : {}),
      ...(o.roleAttributes ? { roleAttributes: o.roleAttributes } : {}),
    })
    routers.push(r)
    return r
  }
  const net: TestNetwork = {
    controller,
    routers,
    dir,
    api,
    async identity(name, o = {}) {
      const created = await api<{ id: string; name: string; enrollment?: { jwt?: string } }>(
        'POST',
        'identities',
        {
          name,
          type: 'Device',
          isAdmin: false,
          roleAttributes: o.roleAttributes ?? [],
        },
      )
      const jwt = created.enrollment?.jwt
      if (!jwt) throw new Error(`no enrollment token for identity ${name}`)
      const path = join(dir, `${name}.json`)
      const r = await enroll({ jwt, output: path })
      return { id: created.id, name: created.name, path, file: r.file }
    },
    async service(name, o = {}) {
      return api<{ id: string; name: string }>('POST', 'services', {
        name,
        roleAttributes: o.roleAttributes ?? [],
        ...(o.encryptionRequired !== undefined ? { encryptionRequired: o.encryptionRequired } : {}),
        ...(o.configs ? { configs: o.configs } : {}),
      })
    },
    async config(name, configType, data) {
      return api<{ id: string; name: string }>('POST', 'configs', { name, configTypeId: configType, data })
    },
    async policy(type, identityRoles, serviceRoles, name) {
      return api<{ id: string; name: string }>('POST', 'service-policies', {
        name: name ?? `test-${type.toLowerCase()}-${++seq}-${process.pid}`,
        type,
        semantic: 'AnyOf',
        identityRoles,
        serviceRoles,
      })
    },
    addRouter,
    async close() {
      for (const r of routers.splice(0).reverse()) await r.stop().catch(() => undefined)
      await controller.stop().catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    },
  }
  try {
    for (const r of opts.routers ?? [{ name: 'r1' }]) await addRouter(r)
  } catch (err) {
    await net.close()
    throw err
  }
  return net
}

/**
 * Two linked routers, r1 and r2: identities with `#dialers` may use only r1, identities with
 * `#hosts` only r2, every service both; so every circuit from a dialer to a host crosses the
 * r1 <-> r2 link.
 */
export async function startLinkedNetwork(): Promise<TestNetwork> {
  const net = await startNetwork({ routers: [{ name: 'r1' }, { name: 'r2' }], allPolicies: false })
  try {
    const [r1, r2] = net.routers
    await net.api('POST', 'edge-router-policies', {
      name: 'dialers-use-r1',
      semantic: 'AnyOf',
      identityRoles: ['#dialers'],
      edgeRouterRoles: [`@${r1!.id}`],
    })
    await net.api('POST', 'edge-router-policies', {
      name: 'hosts-use-r2',
      semantic: 'AnyOf',
      identityRoles: ['#hosts'],
      edgeRouterRoles: [`@${r2!.id}`],
    })
    await net.api('POST', 'service-edge-router-policies', {
      name: 'all-services-all-routers',
      semantic: 'AnyOf',
      serviceRoles: ['#all'],
      edgeRouterRoles: ['#all'],
    })
  } catch (err) {
    await net.close()
    throw err
  }
  return net
}
