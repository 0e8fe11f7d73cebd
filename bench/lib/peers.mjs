// The mTLS tunnels users would otherwise use, each as a client+server pair on 127.0.0.1:
// loadgen -> client (plain TCP) -> mutual TLS hop -> server -> backend. One P-256 PKI made with
// `nullport pki create` (root -> issuing intermediate -> server "localhost"/127.0.0.1 and
// client certs) serves all of them. TCP_NODELAY on every hop.
import { execFile } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { sleep, start } from './proc.mjs'

const run = promisify(execFile)
const CLI = new URL('../../packages/cli/bin/nullport.js', import.meta.url).pathname

/** Creates the PKI under dir/pki; returns file paths. */
export async function makePki(dir) {
  const root = join(dir, 'pki')
  const n = (...a) =>
    run(process.execPath, [CLI, 'pki', 'create', ...a, '--pki-root', root], { timeout: 60_000 })
  await n('ca', '--ca-file', 'root', '--ca-name', 'bench-root')
  await n('intermediate', '--ca-name', 'root', '--intermediate-file', 'issuing')
  await Promise.all([
    n('server', '--ca-name', 'issuing', '--server-file', 'server', '--dns', 'localhost', '--ip', '127.0.0.1'),
    n('client', '--ca-name', 'issuing', '--client-file', 'client'),
  ])
  const p = {
    ca: join(root, 'root/certs/root.cert'),
    serverChain: join(root, 'issuing/certs/server.chain.pem'),
    serverKey: join(root, 'issuing/keys/server.key'),
    clientChain: join(root, 'issuing/certs/client.chain.pem'),
    clientKey: join(root, 'issuing/keys/client.key'),
  }
  // haproxy wants certificate chain and key in one file
  const { readFileSync } = await import('node:fs')
  p.serverPem = join(dir, 'server.pem')
  p.clientPem = join(dir, 'client.pem')
  writeFileSync(p.serverPem, readFileSync(p.serverChain, 'utf8') + readFileSync(p.serverKey, 'utf8'), {
    mode: 0o600,
  })
  writeFileSync(p.clientPem, readFileSync(p.clientChain, 'utf8') + readFileSync(p.clientKey, 'utf8'), {
    mode: 0o600,
  })
  return p
}

export async function freePort() {
  const s = net.createServer()
  s.listen(0, '127.0.0.1')
  await new Promise((r) => s.once('listening', r))
  const port = s.address().port
  await new Promise((r) => s.close(r))
  return port
}

/** Polls until something accepts on port (or throws after timeoutMs). */
export async function waitPort(port, timeoutMs = 15_000, proc = null) {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port })
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (proc && proc.child.exitCode !== null)
      throw new Error(`${proc.name} exited (${proc.child.exitCode}): ${proc.stderr}`)
    await sleep(100)
  }
  throw new Error(
    `nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms${proc ? `: ${proc.stderr}` : ''}`,
  )
}

const has = (bin) => ['/usr/bin/', '/usr/sbin/', '/bin/', '/sbin/'].some((d) => existsSync(d + bin))

/** Each returns {entryPort, procs: [{name, pid, stop}]} or throws {skip: reason}. */
export const PEERS = {
  async stunnel(dir, pki, backendPort) {
    const bin = has('stunnel4') ? 'stunnel4' : has('stunnel') ? 'stunnel' : null
    if (!bin)
      throw Object.assign(new Error('stunnel4 not installed (apt-get install -y stunnel4)'), { skip: true })
    const [entry, mid] = [await freePort(), await freePort()]
    const common = 'foreground = yes\npid =\ndebug = 3\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n'
    const srv = join(dir, 'stunnel-server.conf')
    const cli = join(dir, 'stunnel-client.conf')
    writeFileSync(
      srv,
      `${common}[srv]\naccept = 127.0.0.1:${mid}\nconnect = 127.0.0.1:${backendPort}\ncert = ${pki.serverChain}\nkey = ${pki.serverKey}\nCAfile = ${pki.ca}\nverifyChain = yes\nrequireCert = yes\n`,
    )
    writeFileSync(
      cli,
      `${common}[cli]\nclient = yes\naccept = 127.0.0.1:${entry}\nconnect = 127.0.0.1:${mid}\ncert = ${pki.clientChain}\nkey = ${pki.clientKey}\nCAfile = ${pki.ca}\nverifyChain = yes\ncheckHost = localhost\n`,
    )
    const s = start('stunnel-server', bin, [srv])
    const c = start('stunnel-client', bin, [cli])
    await waitPort(mid, 15_000, s)
    await waitPort(entry, 15_000, c)
    return { entryPort: entry, procs: [s, c], note: `${bin} (one thread per connection)` }
  },

  async haproxy(dir, pki, backendPort) {
    if (!has('haproxy'))
      throw Object.assign(new Error('haproxy not installed (apt-get install -y haproxy)'), { skip: true })
    const [entry, mid] = [await freePort(), await freePort()]
    const g =
      'global\n  maxconn 4000\n  tune.ssl.default-dh-param 2048\ndefaults\n  mode tcp\n  timeout connect 10s\n  timeout client 120s\n  timeout server 120s\n'
    const srv = join(dir, 'haproxy-server.cfg')
    const cli = join(dir, 'haproxy-client.cfg')
    writeFileSync(
      srv,
      `${g}frontend f\n  bind 127.0.0.1:${mid} ssl crt ${pki.serverPem} ca-file ${pki.ca} verify required\n  default_backend b\nbackend b\n  server s 127.0.0.1:${backendPort}\n`,
    )
    writeFileSync(
      cli,
      `${g}frontend f\n  bind 127.0.0.1:${entry}\n  default_backend b\nbackend b\n  server s 127.0.0.1:${mid} ssl crt ${pki.clientPem} ca-file ${pki.ca} verify required sni str(localhost) verifyhost localhost\n`,
    )
    // -db: foreground, no master; haproxy sets TCP_NODELAY on its sockets itself
    const s = start('haproxy-server', 'haproxy', ['-db', '-f', srv])
    const c = start('haproxy-client', 'haproxy', ['-db', '-f', cli])
    await waitPort(mid, 15_000, s)
    await waitPort(entry, 15_000, c)
    return { entryPort: entry, procs: [s, c], note: 'haproxy (default threads = cores)' }
  },

  async nginx(dir, pki, backendPort) {
    const mod = '/usr/lib/nginx/modules/ngx_stream_module.so'
    if (!has('nginx'))
      throw Object.assign(new Error('nginx not installed (apt-get install -y nginx libnginx-mod-stream)'), {
        skip: true,
      })
    if (!existsSync(mod))
      throw Object.assign(new Error('nginx stream module missing (apt-get install -y libnginx-mod-stream)'), {
        skip: true,
      })
    const [entry, mid] = [await freePort(), await freePort()]
    const conf = (name, stream) =>
      `load_module ${mod};\ndaemon off;\nmaster_process on;\nworker_processes auto;\npid ${join(dir, `${name}.pid`)};\nerror_log ${join(dir, `${name}.err`)} warn;\nevents { worker_connections 30000; }\nstream {\n  tcp_nodelay on;\n${stream}\n}\n`
    const srv = join(dir, 'nginx-server.conf')
    const cli = join(dir, 'nginx-client.conf')
    writeFileSync(
      srv,
      conf(
        'nginx-server',
        `  server {\n    listen 127.0.0.1:${mid} ssl;\n    ssl_certificate ${pki.serverChain};\n    ssl_certificate_key ${pki.serverKey};\n    ssl_client_certificate ${pki.ca};\n    ssl_verify_client on;\n    ssl_verify_depth 3;\n    proxy_pass 127.0.0.1:${backendPort};\n  }`,
      ),
    )
    writeFileSync(
      cli,
      conf(
        'nginx-client',
        `  server {\n    listen 127.0.0.1:${entry};\n    proxy_pass 127.0.0.1:${mid};\n    proxy_ssl on;\n    proxy_ssl_certificate ${pki.clientChain};\n    proxy_ssl_certificate_key ${pki.clientKey};\n    proxy_ssl_trusted_certificate ${pki.ca};\n    proxy_ssl_verify on;\n    proxy_ssl_verify_depth 3;\n    proxy_ssl_name localhost;\n    proxy_ssl_server_name on;\n  }`,
      ),
    )
    const s = start('nginx-server', 'nginx', ['-c', srv, '-p', dir, '-e', join(dir, 'nginx-server.err')])
    const c = start('nginx-client', 'nginx', ['-c', cli, '-p', dir, '-e', join(dir, 'nginx-client.err')])
    await waitPort(mid, 15_000, s)
    await waitPort(entry, 15_000, c)
    return { entryPort: entry, procs: [s, c], note: 'nginx stream (worker_processes auto)' }
  },
}
