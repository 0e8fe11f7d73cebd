/** `nullport edge login` and `logout`: a management session, stored in $NULLPORT_HOME/cli.json. */
import { fingerprintSha256 } from '@nullport/protocol'
import type { Command } from 'commander'
import { CliError } from '../../errors.js'
import { readTextFile } from '../../lib/args.js'
import { type CliSession, loadCliConfig, saveCliConfig } from '../../lib/config.js'
import {
  bundleRoot,
  colonFingerprint,
  type Envelope,
  httpRequest,
  ManagementClient,
  MGMT,
  parseEnvelope,
  pemCerts,
} from '../../lib/rest.js'
import { TtyReader } from '../../lib/tty-reader.js'
import { explain } from './api.js'
import { out, printJson } from './output.js'

interface LoginOpts {
  username: string
  password?: string
  passwordFile?: string
  ca?: string
  caFingerprint?: string
  yes?: boolean
  json?: boolean
}

/** `--ca-fingerprint`: 64 hex digits, colons and case optional; lower-case hex out. */
function parseCaFingerprint(v: string): string {
  const hex = v.replace(/:/g, '').toLowerCase()
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new CliError(
      'ERR_CLI_USAGE',
      `--ca-fingerprint must be a SHA-256 fingerprint (64 hex digits, colons allowed), got "${v}"`,
    )
  }
  return hex
}

async function login(urlArg: string, o: LoginOpts): Promise<void> {
  let url: URL
  try {
    url = new URL(urlArg)
  } catch {
    throw new CliError('ERR_CLI_USAGE', `"${urlArg}" is not a URL: use https://HOST:PORT`)
  }
  if (url.protocol !== 'https:') throw new CliError('ERR_CLI_USAGE', `"${urlArg}" must be an https:// URL`)
  const base = url.origin
  let password = o.password
  if (password === undefined && o.passwordFile)
    password = (await readTextFile(o.passwordFile, 'password file')).replace(/\r?\n$/, '')
  if (password === undefined && process.env.NULLPORT_PASSWORD) password = process.env.NULLPORT_PASSWORD
  const tty = process.stdin.isTTY === true && process.stderr.isTTY === true
  let reader: TtyReader | undefined
  try {
    if (password === undefined && tty) {
      reader = new TtyReader()
      const p = await reader.line(`password for ${o.username}: `, true)
      if (p === null) throw new CliError('ERR_CLI_USAGE', 'login cancelled')
      password = p
    }
    await loginWith(base, password, o, tty, () => (reader ??= new TtyReader()))
  } finally {
    reader?.close()
  }
}

async function loginWith(
  base: string,
  password: string | undefined,
  o: LoginOpts,
  tty: boolean,
  getReader: () => TtyReader,
): Promise<void> {
  if (password === undefined) {
    throw new CliError(
      'ERR_CLI_USAGE',
      'no password: pass -p PASSWORD, --password-file FILE or set NULLPORT_PASSWORD',
    )
  }
  let ca: string
  const pinned = o.caFingerprint !== undefined ? parseCaFingerprint(o.caFingerprint) : undefined
  if (o.ca && pinned) throw new CliError('ERR_CLI_USAGE', 'pass --ca FILE or --ca-fingerprint, not both')
  if (o.ca) {
    ca = await readTextFile(o.ca, 'CA file')
    if (pemCerts(ca).length === 0)
      throw new CliError(
        'ERR_CLI_FILE',
        `${o.ca} holds no PEM certificate: pass the network's CA bundle (ca-bundle.pem or root.crt)`,
      )
  } else {
    const r = await httpRequest({
      method: 'GET',
      url: `${base}/.well-known/est/cacerts`,
      insecure: true,
      maxBytes: 256 * 1024,
      headers: { accept: 'application/pem-certificate-chain' },
    })
    if (r.status !== 200 || pemCerts(r.body).length === 0) {
      throw new CliError(
        'ERR_CLI_BAD_RESPONSE',
        `${base} did not serve a CA bundle at /.well-known/est/cacerts (HTTP ${r.status}): is it a Nullport controller? Or pass --ca FILE`,
      )
    }
    const root = bundleRoot(r.body)!
    const fp = fingerprintSha256(root)
    if (pinned !== undefined && fp !== pinned) {
      // Never log in to a controller whose CA is not the one the user pinned: not even with -y.
      throw new CliError(
        'ERR_CLI_UNTRUSTED_CA',
        `the controller at ${base} presents a network CA with SHA-256 fingerprint ${fp}, not the ${pinned} you passed with --ca-fingerprint: login refused (wrong address, a re-initialized controller, or an interception)`,
        { fingerprint: fp, expected: pinned },
      )
    }
    if (pinned === undefined && !o.yes && !tty) {
      throw new CliError(
        'ERR_CLI_UNTRUSTED_CA',
        `the controller's CA (sha256 ${fp}) is not trusted yet: pass --ca-fingerprint ${fp} after comparing it with the controller's (its 'edge ready' log line, rootFingerprint), or --ca FILE, or -y to trust it as fetched`,
        { fingerprint: fp },
      )
    }
    if (pinned === undefined) {
      process.stderr.write(
        `warning: the controller at ${base} presents a network CA with SHA-256 fingerprint ${colonFingerprint(fp)} (${fp})\n`,
      )
    }
    if (pinned === undefined && !o.yes) {
      const a = await getReader().line('trust this CA for the session? [y/N] ', false)
      if (a === null || !/^y(es)?$/i.test(a.trim())) {
        throw new CliError(
          'ERR_CLI_UNTRUSTED_CA',
          'CA not trusted: login cancelled (pass --ca FILE to verify against a CA you have)',
          {
            fingerprint: fp,
          },
        )
      }
    }
    ca = pemCerts(r.body).join('\n')
  }

  const r = await httpRequest({
    method: 'POST',
    url: `${base}${MGMT}/authenticate`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: o.username, password }),
    ca,
  })
  let env: Envelope<{ token?: unknown; expiresAt?: unknown }>
  try {
    env = parseEnvelope(r, 'login')
  } catch (err) {
    throw explain(err)
  }
  const d = env.data
  if (!d || typeof d.token !== 'string' || typeof d.expiresAt !== 'string') {
    throw new CliError(
      'ERR_CLI_BAD_RESPONSE',
      'the controller answered the login without a token: is this a Nullport controller?',
    )
  }
  const session: CliSession = { url: base, token: d.token, expiresAt: d.expiresAt, ca, username: o.username }
  const cfg = await loadCliConfig()
  cfg.session = session
  await saveCliConfig(cfg)
  if (o.json) printJson({ url: base, username: o.username, expiresAt: d.expiresAt })
  else out(`logged in to ${base} as ${o.username} (session expires at ${d.expiresAt})`)
}

async function logout(): Promise<void> {
  const cfg = await loadCliConfig()
  if (!cfg.session) {
    out('not logged in')
    return
  }
  const c = new ManagementClient(cfg.session)
  try {
    await c.request('DELETE', '/current-api-session')
  } catch {
    // an expired or unknown session is logged out anyway
  }
  const url = cfg.session.url
  delete cfg.session
  await saveCliConfig(cfg)
  out(`logged out of ${url}`)
}

/** Registers `edge login` and `edge logout`. */
export function registerLogin(edge: Command): void {
  edge
    .command('login')
    .description('log in to a controller (management API) and store the session in $NULLPORT_HOME/cli.json')
    .argument('<url>', 'controller URL, e.g. https://127.0.0.1:1280')
    .requiredOption('-u, --username <user>', 'admin user name')
    .option('-p, --password <password>', 'password (or --password-file, or env NULLPORT_PASSWORD)')
    .option('--password-file <file>', 'read the password from a file')
    .option(
      '--ca <file>',
      'verify the controller against this CA bundle (PEM) instead of confirming its fingerprint',
    )
    .option(
      '--ca-fingerprint <sha256>',
      "trust the controller's CA only if its SHA-256 fingerprint is this (hex, colons optional; the controller logs it as rootFingerprint)",
    )
    .option('-y, --yes', "trust the controller's CA as fetched (prints its fingerprint; no prompt)")
    .option('--json', 'print JSON')
    .action((url: string, o: LoginOpts) => login(url, o))
  edge
    .command('logout')
    .description('end the session and forget it')
    .action(() => logout())
}
