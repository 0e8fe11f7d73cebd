/**
 * `nullport tunnel run|proxy|status`: the tunneler (@nullport/tunnel) as a process. `run`
 * intercepts (SOCKS5, HTTP proxy, DNS, local ports) and hosts (host.v1) until SIGINT/SIGTERM,
 * JSON logs (pino) on stdout; `status` prints the JSON status of a running tunneler.
 */
import { request } from 'node:http'
import { tryParseHostPort } from '@nullport/protocol'
import { type Context, loadContext } from '@nullport/sdk'
import {
  createTunnelLogger,
  FakeIpPool,
  type ListenAddress,
  TunnelError,
  Tunneler,
  type TunnelOptions,
} from '@nullport/tunnel'
import type { Command } from 'commander'
import { CliError } from '../errors.js'

const DEFAULT_STATUS = '127.0.0.1:7171'

/** A listen address flag: `HOST:PORT` or `[IPv6]:PORT`, port 0 allowed (any free port). */
function parseAddress(flag: string, text: string): ListenAddress {
  const r = tryParseHostPort(text.trim(), { host: 'any', allowPortZero: true })
  if (!r.ok) {
    throw new TunnelError(
      'ERR_TUNNEL_OPTION',
      `${flag} must be HOST:PORT (e.g. 127.0.0.1:1080), got "${text}"`,
    )
  }
  return { host: r.host, port: r.port }
}

function parseProxy(text: string): { service: string; host: string; port: number } {
  const i = text.lastIndexOf(':')
  const service = i > 0 ? text.slice(0, i) : ''
  const portText = i > 0 ? text.slice(i + 1) : ''
  if (service.length === 0 || !/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new TunnelError(
      'ERR_TUNNEL_OPTION',
      `--proxy must be SERVICE:LOCALPORT (e.g. postgres:15432), got "${text}"`,
    )
  }
  return { service, host: '127.0.0.1', port: Number(portText) }
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

interface RunFlags {
  identity: string
  socks?: string
  httpProxy?: string
  dns?: string
  dnsUpstream?: string
  dnsRange?: string
  proxy?: string[]
  status: string | false
  host: boolean
  logLevel: string
  maxConnections?: string
}

async function runTunnel(flags: RunFlags, extraProxies: string[], hostDefault: boolean): Promise<void> {
  const opts: TunnelOptions = {}
  if (flags.socks) opts.socks = parseAddress('--socks', flags.socks)
  if (flags.httpProxy) opts.httpProxy = parseAddress('--http-proxy', flags.httpProxy)
  if (flags.dns) opts.dns = parseAddress('--dns', flags.dns)
  if (flags.dnsUpstream) opts.dnsUpstream = parseAddress('--dns-upstream', flags.dnsUpstream)
  if (flags.dnsRange) {
    try {
      new FakeIpPool(flags.dnsRange, 1)
    } catch (err) {
      throw new TunnelError('ERR_TUNNEL_OPTION', `--dns-range: ${(err as Error).message}`)
    }
    opts.dnsRange = flags.dnsRange
  }
  const proxies = [...(flags.proxy ?? []), ...extraProxies].map(parseProxy)
  if (proxies.length > 0) opts.proxies = proxies
  if (flags.status !== false) opts.status = parseAddress('--status', flags.status)
  opts.host = hostDefault && flags.host
  if (flags.maxConnections !== undefined) {
    const n = Number(flags.maxConnections)
    if (!Number.isInteger(n) || n <= 0)
      throw new TunnelError('ERR_TUNNEL_OPTION', '--max-connections must be a positive integer')
    opts.maxConnections = n
  }
  const log = createTunnelLogger(flags.logLevel)
  opts.logger = log
  let ctx: Context
  try {
    ctx = await loadContext(flags.identity, { logger: log.child({ component: 'sdk' }) })
  } catch (err) {
    log.error({ err, code: (err as { code?: string }).code }, 'cannot load the identity')
    throw err
  }
  const tunnel = new Tunneler(ctx, opts)
  try {
    await tunnel.start()
  } catch (err) {
    await ctx.close()
    throw err
  }
  ctx.on('revoked', (err: Error) =>
    log.error({ err, code: 'ERR_IDENTITY_REVOKED' }, 'identity revoked: every intercept and host is closed'),
  )
  await new Promise<void>((resolveStop) => {
    let stopping = false
    const onSignal = (sig: string): void => {
      if (stopping) return
      stopping = true
      log.info({ signal: sig }, 'shutting down')
      tunnel
        .close()
        .then(() => ctx.close())
        .then(resolveStop, resolveStop)
    }
    process.once('SIGINT', () => onSignal('SIGINT'))
    process.once('SIGTERM', () => onSignal('SIGTERM'))
  })
}

function getStatus(a: ListenAddress): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: a.host, port: a.port, path: '/status', method: 'GET', timeout: 5000 },
      (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > 16 * 1024 * 1024) req.destroy(new Error('the status answer is larger than 16 MiB'))
          else chunks.push(c)
        })
        res.on('end', () => {
          const url = `http://${a.host}:${a.port}/status`
          let doc: { data?: unknown } | null = null
          try {
            doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: unknown }
          } catch {}
          if (res.statusCode !== 200 || doc === null || typeof doc !== 'object' || doc.data === undefined) {
            reject(
              new CliError(
                'ERR_CLI_BAD_RESPONSE',
                `${url} answered HTTP ${res.statusCode} without a tunneler status document: is another program listening there? Start the tunneler with \`nullport tunnel run --status HOST:PORT\` and pass that address`,
                { url, status: res.statusCode },
              ),
            )
            return
          }
          resolve(doc.data)
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')))
    req.on('error', (err) =>
      reject(
        new TunnelError(
          'ERR_TUNNEL_LISTEN',
          `no tunneler status at http://${a.host}:${a.port}/status (${(err as Error).message}): is \`nullport tunnel run --status ${a.host}:${a.port}\` running?`,
        ),
      ),
    )
    req.end()
  })
}

interface StatusDoc {
  identity: { name: string }
  listeners: Record<string, string>
  intercepted: Array<{
    service: string
    addresses: string[]
    portRanges: Array<{ low: number; high: number }>
  }>
  hosted: Array<{
    service: string
    listening: boolean
    terminators: number
    connections: number
    target: string
    error: string | null
  }>
  connections: Array<{
    id: number
    kind: string
    service: string
    client: string
    target: string
    bytesFromClient: number
    bytesToClient: number
  }>
  refusals: Record<string, number>
}

function printStatus(d: StatusDoc): void {
  const out: string[] = []
  out.push(`identity: ${d.identity.name}`)
  out.push(
    `listeners: ${
      Object.entries(d.listeners)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || '-'
    }`,
  )
  out.push('intercepted:')
  for (const s of d.intercepted)
    out.push(
      `  ${s.service}  ${s.addresses.join(',')}  ports ${s.portRanges.map((r) => (r.low === r.high ? r.low : `${r.low}-${r.high}`)).join(',')}`,
    )
  out.push('hosted:')
  for (const h of d.hosted)
    out.push(
      `  ${h.service}  -> ${h.target}  ${h.listening ? `listening (${h.terminators} terminators)` : 'not listening'}  ${h.connections} connections${h.error ? `  error: ${h.error}` : ''}`,
    )
  out.push('connections:')
  for (const c of d.connections)
    out.push(
      `  #${c.id} ${c.kind} ${c.service} ${c.client} -> ${c.target}  in ${c.bytesFromClient} B  out ${c.bytesToClient} B`,
    )
  const r = Object.entries(d.refusals)
  out.push(`refusals: ${r.length ? r.map(([k, v]) => `${k}=${v}`).join(' ') : '-'}`)
  process.stdout.write(`${out.join('\n')}\n`)
}

/** Registers the `nullport tunnel ...` commands. */
export function register(program: Command): void {
  const tunnel = program.command('tunnel').description('intercept and host services for apps without the SDK')
  const common = (c: Command): Command =>
    c
      .requiredOption('-i, --identity <file>', 'identity file (from `nullport edge enroll`)')
      .option('--status <host:port>', 'serve the JSON status on http://HOST:PORT/status', DEFAULT_STATUS)
      .option('--no-status', 'do not serve the status endpoint')
      .option('--max-connections <n>', 'most concurrent client connections per listener (default 1024)')
      .option('--log-level <level>', 'pino log level', 'info')
  common(
    tunnel
      .command('run')
      .description(
        'intercept (SOCKS5, HTTP proxy, DNS, local ports) and host (host.v1) services until SIGINT/SIGTERM',
      )
      .option('--socks <host:port>', 'SOCKS5 listener, e.g. 127.0.0.1:1080')
      .option('--http-proxy <host:port>', 'HTTP proxy listener, e.g. 127.0.0.1:3128')
      .option('--dns <host:port>', 'DNS server for intercepted names (UDP and TCP), e.g. 127.0.0.1:5353')
      .option('--dns-upstream <host:port>', 'forward other names to this resolver (default: REFUSED)')
      .option('--dns-range <cidr>', 'addresses for intercepted names', '100.64.0.0/10')
      .option(
        '--proxy <service:localport>',
        'listen on 127.0.0.1:LOCALPORT and dial SERVICE (repeatable)',
        collect,
      )
      .option('--no-host', 'do not host services (host.v1)'),
  ).action((o: RunFlags) => runTunnel(o, [], true))
  common(
    tunnel
      .command('proxy')
      .description('listen on 127.0.0.1:LOCALPORT for each SERVICE:LOCALPORT and dial SERVICE (no hosting)')
      .argument('<service:localport...>', 'e.g. postgres:15432'),
  ).action((list: string[], o: RunFlags) => runTunnel({ ...o, host: false }, list, false))
  tunnel
    .command('status')
    .description('print the status of a running tunneler (intercepted and hosted services, connections)')
    .option('--status <host:port>', 'status address of the tunneler', DEFAULT_STATUS)
    .option('--json', 'print the JSON document', false)
    .action(async (o: { status: string; json: boolean }) => {
      const d = await getStatus(parseAddress('--status', o.status))
      if (o.json) process.stdout.write(`${JSON.stringify(d, null, 2)}\n`)
      else printStatus(d as StatusDoc)
    })
}
