/**
 * `nullport quickstart --demo`: the first seed's story ("Tool Pool", a family site made dark in
 * two lines), built through the management API and shown step by step with the equivalent
 * `nullport edge` command. Idempotent: entities that exist are reused, demo identities are
 * (re-)enrolled only when their identity file is missing.
 */
import { mkdir } from 'node:fs/promises'
import type { Server } from 'node:http'
import { join } from 'node:path'
import { ProtocolError, tryParseHostPort } from '@nullport/protocol'
import { type Context, enroll, loadContext, type SdkError, zitify } from '@nullport/sdk'
import express from 'express'
import { CliError } from '../errors.js'
import { ApiError } from '../lib/rest.js'
import type { Quickstart } from './run.js'
import { listeningSockets } from './sockets.js'

export const SERVICE = 'family.tools'
export const INTERCEPT_CONFIG = 'family.tools.intercept.v1'
export const HOST_IDENTITY = 'family.tools.host'
export const CLIENT_IDENTITY = 'family.tools.client'
export const BIND_POLICY = 'family.tools.bind'
export const DIAL_POLICY = 'family.tools.dial'
export const ROUTER_POLICY = 'family.tools.routers'
export const INTERCEPT_ADDRESS = 'family.tools.ziti'
/** The address the Express app "listens" on; zitify serves it on the overlay instead. */
export const APP_HOST = '127.0.0.1'
export const APP_PORT = 18080

export interface Demo {
  hostFile: string
  clientFile: string
  /** The page fetched through the overlay. */
  page: string
  stop(): Promise<void>
}

type Row = Record<string, unknown> & { id?: string; name?: string }

/** The Tool Pool page. */
function toolPool(caller: string): string {
  return `<!doctype html>
<title>Tool Pool</title>
<h1>Tool Pool</h1>
<p>Who has which tool, so nobody buys a second one. Hello, ${caller.replace(/[<>&"]/g, '')}.</p>
<table>
  <tr><th>tool</th><th>owner</th><th>borrowed by</th></tr>
  <tr><td>tile saw</td><td>Geoff</td><td>-</td></tr>
  <tr><td>pressure washer</td><td>Ann</td><td>Geoff</td></tr>
  <tr><td>stud finder</td><td>Sam</td><td>-</td></tr>
</table>
`
}

export async function runDemo(
  qs: Quickstart,
  out: (line: string) => void,
  nullportCmd: string,
): Promise<Demo> {
  const client = qs.client
  const cleanup: Array<() => Promise<void>> = []
  const stop = async (): Promise<void> => {
    for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined)
  }
  let n = 0
  const step = (text: string, cmd?: string): void => {
    out(`demo ${String(++n).padStart(2)}: ${text}`)
    if (cmd) out(`           = ${nullportCmd} edge ${cmd}`)
  }

  /** GET by name; create when missing. Returns the entity and whether it was created now. */
  async function ensure(plural: string, name: string, body: Row): Promise<{ data: Row; created: boolean }> {
    try {
      const r = await client.request<Row>('GET', `/${plural}/${encodeURIComponent(name)}`)
      return { data: r.data, created: false }
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err
    }
    const r = await client.request<Row>('POST', `/${plural}`, { body: { name, ...body } })
    return { data: r.data, created: true }
  }
  const state = (created: boolean): string => (created ? 'created' : 'exists, reused')

  const demoDir = join(qs.home, 'demo')
  await mkdir(demoDir, { recursive: true, mode: 0o700 })

  /** An identity with its enrolled file in HOME/demo (enrolled when created or when the file is missing). */
  async function identity(name: string, attr: string): Promise<string> {
    const path = join(demoDir, `${name}.json`)
    const { data, created } = await ensure('identities', name, {
      type: 'Device',
      isAdmin: false,
      roleAttributes: [attr],
    })
    step(
      `identity ${name} with attribute #${attr}: ${state(created)}`,
      `create identity device ${name} -a ${attr} -o ${name}.jwt`,
    )
    let jwt: string | undefined
    if (created) {
      jwt = (data.enrollment as { jwt?: string } | undefined)?.jwt
    } else {
      try {
        await qs.currentIdentity(path)
        out(`           enrolled: ${path} (reused)`)
        return path
      } catch (err) {
        if (!(err instanceof ProtocolError) || err.code !== 'ERR_IDENTITY_FILE_MISSING') throw err
      }
      const r = await client.request<Row>('POST', `/identities/${encodeURIComponent(name)}/re-enroll`, {
        body: {},
      })
      jwt = ((r.data.enrollment ?? r.data) as { jwt?: string }).jwt
      out(
        `           its identity file is missing: re-enrolling (= ${nullportCmd} edge re-enroll identity ${name} -o ${name}.jwt)`,
      )
    }
    if (!jwt)
      throw new CliError('ERR_CLI_BAD_RESPONSE', `the controller returned no enrollment token for ${name}`)
    await enroll({ jwt, output: path, overwrite: true })
    out(`           enrolled: ${path} (0600)   = ${nullportCmd} edge enroll ${name}.jwt`)
    return path
  }

  try {
    out('')
    out(
      `demo: the Tool Pool family site, dark: service ${SERVICE}, reachable as http://${INTERCEPT_ADDRESS}/`,
    )
    const interceptData = {
      protocols: ['tcp'],
      addresses: [INTERCEPT_ADDRESS],
      portRanges: [{ low: 80, high: 80 }],
    }
    const cfg = await ensure('configs', INTERCEPT_CONFIG, {
      configTypeId: 'intercept.v1',
      data: interceptData,
    })
    step(
      `config ${INTERCEPT_CONFIG} (intercept.v1 ${INTERCEPT_ADDRESS}:80): ${state(cfg.created)}`,
      `create config ${INTERCEPT_CONFIG} intercept.v1 '${JSON.stringify(interceptData)}'`,
    )
    const svc = await ensure('services', SERVICE, { configs: [INTERCEPT_CONFIG], roleAttributes: [] })
    step(
      `service ${SERVICE}: ${state(svc.created)}`,
      `create service ${SERVICE} --configs ${INTERCEPT_CONFIG}`,
    )

    const hostFile = await identity(HOST_IDENTITY, 'family.tools.servers')
    const clientFile = await identity(CLIENT_IDENTITY, 'family.tools.clients')

    const bind = await ensure('service-policies', BIND_POLICY, {
      type: 'Bind',
      semantic: 'AnyOf',
      serviceRoles: [`@${SERVICE}`],
      identityRoles: ['#family.tools.servers'],
    })
    step(
      `Bind policy ${BIND_POLICY} (#family.tools.servers may host ${SERVICE}): ${state(bind.created)}`,
      `create service-policy ${BIND_POLICY} Bind --service-roles '@${SERVICE}' --identity-roles '#family.tools.servers'`,
    )
    const dial = await ensure('service-policies', DIAL_POLICY, {
      type: 'Dial',
      semantic: 'AnyOf',
      serviceRoles: [`@${SERVICE}`],
      identityRoles: ['#family.tools.clients'],
    })
    step(
      `Dial policy ${DIAL_POLICY} (#family.tools.clients may use ${SERVICE}): ${state(dial.created)}`,
      `create service-policy ${DIAL_POLICY} Dial --service-roles '@${SERVICE}' --identity-roles '#family.tools.clients'`,
    )
    const erp = await ensure('edge-router-policies', ROUTER_POLICY, {
      semantic: 'AnyOf',
      edgeRouterRoles: ['#all'],
      identityRoles: ['#family.tools.servers', '#family.tools.clients'],
    })
    step(
      `edge-router policy ${ROUTER_POLICY} (both identities may use every router): ${state(erp.created)}`,
      `create edge-router-policy ${ROUTER_POLICY} --edge-router-roles '#all' --identity-roles '#family.tools.servers,#family.tools.clients'`,
    )
    const serp = await ensure('service-edge-router-policies', ROUTER_POLICY, {
      semantic: 'AnyOf',
      edgeRouterRoles: ['#all'],
      serviceRoles: [`@${SERVICE}`],
    })
    step(
      `service-edge-router policy ${ROUTER_POLICY} (${SERVICE} is reachable through every router): ${state(serp.created)}`,
      `create service-edge-router-policy ${ROUTER_POLICY} --edge-router-roles '#all' --service-roles '@${SERVICE}'`,
    )

    // the host: an Express app made dark with zitify (no listening port)
    const hostCtx = await loadContext(await qs.currentIdentity(hostFile))
    cleanup.push(() => hostCtx.close())
    const undoZitify = zitify({ [`${APP_HOST}:${APP_PORT}`]: { identity: hostCtx, service: SERVICE } })
    cleanup.push(async () => undoZitify())
    const app = express()
    app.get('/', (req, res) => {
      const who = (req.socket as unknown as { remoteIdentity?: { name?: string } }).remoteIdentity?.name
      res.type('html').send(toolPool(who ?? 'stranger'))
    })
    const server: Server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(APP_PORT, APP_HOST, (err?: Error) => (err ? reject(err) : resolve(s)))
    })
    cleanup.push(
      () =>
        new Promise<void>((r) => {
          server.closeAllConnections?.()
          server.close(() => r())
        }),
    )
    step(`host ${HOST_IDENTITY}: an Express app made dark in two lines, serving ${SERVICE} on the overlay`)
    out(
      `           zitify({ '${APP_HOST}:${APP_PORT}': { identity: '${hostFile}', service: '${SERVICE}' } })`,
    )
    out(`           app.listen(${APP_PORT}, '${APP_HOST}')`)

    // the client: fetch through the overlay
    const clientCtx: Context = await loadContext(await qs.currentIdentity(clientFile))
    cleanup.push(() => clientCtx.close())
    let page = ''
    let status = 0
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await clientCtx.fetch(`http://${INTERCEPT_ADDRESS}/`)
        status = res.status
        page = await res.text()
        break
      } catch (err) {
        // the terminator may still be on its way to the router
        const code = (err as SdkError).code
        if (attempt >= 20 || (code !== 'ERR_NO_TERMINATORS' && code !== 'ERR_NOT_INTERCEPTED')) throw err
        await new Promise((r) => setTimeout(r, 250))
      }
    }
    const title = /<h1>([^<]*)<\/h1>/.exec(page)?.[1] ?? ''
    step(
      `client ${CLIENT_IDENTITY}: ctx.fetch('http://${INTERCEPT_ADDRESS}/') -> HTTP ${status}, page "${title}"`,
    )
    if (status !== 200 || title !== 'Tool Pool')
      throw new CliError(
        'ERR_CLI_DEMO_FAILED',
        `the page fetched through the overlay is not the Tool Pool (HTTP ${status})`,
      )

    // the host opened no port: this process listens on the controller's and the router's ports only
    const sockets = await listeningSockets()
    const ctrlPort = Number(new URL(qs.url).port)
    const routerHp = tryParseHostPort(qs.router.address, { host: 'any' })
    const routerPort = routerHp.ok ? routerHp.port : Number.NaN
    let noPort: boolean
    if (sockets === null) {
      step('listening sockets: /proc is not available on this system, not checked')
      noPort = true
    } else {
      const label = (p: number): string =>
        p === ctrlPort ? 'controller' : p === routerPort ? 'router' : 'UNEXPECTED'
      step(
        `listening sockets of this process (pid ${process.pid}): ${sockets.map((s) => `${s.address} (${label(s.port)})`).join(', ') || 'none'}`,
      )
      const extra = sockets.filter((s) => s.port !== ctrlPort && s.port !== routerPort)
      noPort = extra.length === 0
      if (!noPort)
        throw new CliError(
          'ERR_CLI_DEMO_FAILED',
          `this process listens on ${extra.map((s) => s.address).join(', ')}, which is neither the controller nor the router`,
        )
      out(
        `           the host app called app.listen(${APP_PORT}, '${APP_HOST}'): nothing listens on ${APP_PORT}`,
      )
    }
    out(`demo: OK — fetched "${title}" through the overlay; the host app opened no port`)
    return { hostFile, clientFile, page, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
