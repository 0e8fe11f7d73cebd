/**
 * nullport tunnel, command line: option validation names the flag and the expected form, a
 * missing identity fails with the SDK's code, and `tunnel status` without a tunneler says what
 * to run. No network needed.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CLI_BIN, runCommand } from '@nullport/testkit'

const cli = (args: string[]) =>
  runCommand(process.execPath, [CLI_BIN, 'tunnel', ...args], { env: { NODE_OPTIONS: '' } })

test('tunnel run: invalid options are refused before anything starts', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', '-i', 'x.json', '--socks', 'nonsense'], /ERR_TUNNEL_OPTION: --socks must be HOST:PORT/],
    [
      ['run', '-i', 'x.json', '--http-proxy', '127.0.0.1:99999'],
      /ERR_TUNNEL_OPTION: --http-proxy must be HOST:PORT/,
    ],
    [['run', '-i', 'x.json', '--proxy', 'nope'], /ERR_TUNNEL_OPTION: --proxy must be SERVICE:LOCALPORT/],
    [['proxy', '-i', 'x.json', 'svc:abc'], /ERR_TUNNEL_OPTION: --proxy must be SERVICE:LOCALPORT/],
    [['run', '-i', 'x.json', '--max-connections', '0'], /ERR_TUNNEL_OPTION: --max-connections/],
  ]
  for (const [args, re] of cases) {
    const r = await cli(args)
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, re)
  }
  const range = await cli(['run', '-i', 'x.json', '--dns-range', 'fd00::/8', '--no-status'])
  assert.equal(range.code, 1)
  assert.match(range.stderr, /ERR_TUNNEL_OPTION: --dns-range: fake IP range must be an IPv4 CIDR/)
  const missing = await cli(['run', '-i', '/nonexistent/identity.json', '--no-status'])
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /ERR_IDENTITY_FILE|ENOENT/)
  const noId = await cli(['run'])
  assert.notEqual(noId.code, 0)
  assert.match(noId.stderr, /--identity/)
})

test('tunnel status: no tunneler at the address -> exit 1 naming the command to run', async () => {
  const r = await cli(['status', '--status', '127.0.0.1:1'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /no tunneler status at http:\/\/127.0.0.1:1\/status/)
})

test('tunnel status: another program at the address -> ERR_CLI_BAD_RESPONSE, not an uncoded JSON error', async () => {
  const { createServer } = await import('node:http')
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/html' })
    res.end('<html>not a tunneler</html>')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  try {
    const { port } = server.address() as import('node:net').AddressInfo
    const r = await cli(['status', '--status', `127.0.0.1:${port}`])
    assert.equal(r.code, 1, r.stderr)
    assert.match(
      r.stderr,
      /nullport: ERR_CLI_BAD_RESPONSE: http:\/\/127\.0\.0\.1:\d+\/status answered HTTP 404/,
    )
  } finally {
    server.close()
  }
})
