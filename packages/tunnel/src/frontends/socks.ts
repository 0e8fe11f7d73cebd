/** The SOCKS5 frontend: no-auth CONNECT requests to intercepted destinations become overlay dials. */
import type { Socket } from 'node:net'
import type { OverlaySocket } from '@nullport/sdk'
import { classifyDialError, dialErrorCode } from '../dial-errors.js'
import { interceptRefusal } from '../intercept.js'
import {
  parseSocksGreeting,
  parseSocksRequest,
  SOCKS_MAX_HANDSHAKE,
  SOCKS_NO_ACCEPTABLE,
  SOCKS_NO_AUTH,
  SocksCommand,
  SocksReply,
  type SocksReplyCode,
  socksReply,
} from '../socks-parser.js'
import { splice } from '../splice.js'
import { clientAddress, dialService, type FrontendEnv } from './env.js'

/**
 * Runs the SOCKS5 handshake on a new (paused) client socket within handshakeTimeoutMs, then
 * dials and splices. Bytes the client sent after its request are kept for the circuit.
 */
export function handleSocksConnection(env: FrontendEnv, s: Socket): void {
  const client = clientAddress(s)
  const conns = env.connections
  let buf: Buffer = Buffer.alloc(0)
  let stage: 'greeting' | 'request' | 'dialing' = 'greeting'
  const timer = setTimeout(() => {
    conns.refuse('ERR_MALFORMED_REQUEST', { listener: 'socks', client }, 'socks handshake timed out')
    s.destroy()
  }, env.options.handshakeTimeoutMs)
  const stop = (): void => {
    clearTimeout(timer)
    s.off('data', onData)
    s.pause()
  }
  const replyAndClose = (code: SocksReplyCode): void => {
    stop()
    s.end(socksReply(code))
  }
  const onData = (d: Buffer): void => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d])
    if (buf.length > SOCKS_MAX_HANDSHAKE) {
      conns.refuse('ERR_MALFORMED_REQUEST', { listener: 'socks', client }, 'socks handshake too long')
      stop()
      s.destroy()
      return
    }
    if (stage === 'greeting') {
      const g = parseSocksGreeting(buf)
      if (g.status === 'incomplete') return
      if (g.status === 'error') {
        conns.refuse(
          'ERR_MALFORMED_REQUEST',
          { listener: 'socks', client, reason: g.reason },
          'malformed socks greeting',
        )
        stop()
        s.destroy()
        return
      }
      if (!g.methods.includes(SOCKS_NO_AUTH)) {
        conns.refuse(
          'ERR_UNSUPPORTED',
          { listener: 'socks', client, methods: g.methods },
          'socks client offers no supported auth method (only no-auth)',
        )
        stop()
        s.end(Buffer.from([5, SOCKS_NO_ACCEPTABLE]))
        return
      }
      s.write(Buffer.from([5, SOCKS_NO_AUTH]))
      buf = buf.subarray(g.length)
      stage = 'request'
    }
    if (stage === 'request') {
      const r = parseSocksRequest(buf)
      if (r.status === 'incomplete') return
      if (r.status === 'error') {
        conns.refuse(
          'ERR_MALFORMED_REQUEST',
          { listener: 'socks', client, reason: r.reason },
          'malformed socks request',
        )
        if (r.reply !== undefined) replyAndClose(r.reply)
        else {
          stop()
          s.destroy()
        }
        return
      }
      if (r.command !== SocksCommand.CONNECT) {
        conns.refuse(
          'ERR_UNSUPPORTED',
          { listener: 'socks', client, command: r.command },
          'socks command not supported (CONNECT only)',
        )
        replyAndClose(SocksReply.COMMAND_NOT_SUPPORTED)
        return
      }
      stage = 'dialing'
      stop()
      const rest = buf.subarray(r.length)
      if (rest.length > 0) s.unshift(rest)
      void socksConnect(env, s, client, r.host, r.port)
    }
  }
  s.on('data', onData)
  s.resume()
}

/** Dials the service intercepting `host:port` and answers the SOCKS request with the outcome. */
async function socksConnect(
  env: FrontendEnv,
  s: Socket,
  client: string,
  host: string,
  port: number,
): Promise<void> {
  const { match, name } = env.route(host, port)
  if (!match.ok) {
    const { code, text } = interceptRefusal(env.ctx.identity.name, name, port, match)
    env.connections.refuse(code, { listener: 'socks', client, host: name, port }, text)
    s.end(socksReply(SocksReply.NOT_ALLOWED))
    return
  }
  let overlay: OverlaySocket
  try {
    overlay = await dialService(
      env,
      match.service,
      name,
      port,
      s,
      match.rule.dialOptions.connectTimeoutSeconds,
    )
  } catch (err) {
    const code = dialErrorCode(err)
    const c = classifyDialError(code)
    env.connections.refuse(
      code,
      {
        listener: 'socks',
        client,
        host: name,
        port,
        service: match.service,
        reply: c.socks,
        reason: (err as Error).message,
      },
      `socks dial failed: ${c.kind}`,
    )
    if (!s.destroyed) s.end(socksReply(c.socks))
    return
  }
  if (s.destroyed) {
    overlay.destroy()
    return
  }
  s.write(socksReply(SocksReply.SUCCEEDED))
  const rec = env.connections.track('socks', match.service, client, `${name}:${port}`, s, overlay)
  env.log.debug({ conn: rec.id, service: match.service, client, target: rec.target }, 'socks connected')
  splice(s, overlay, rec, env.connections, env.log)
}
