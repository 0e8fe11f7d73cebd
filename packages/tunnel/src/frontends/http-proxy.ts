/**
 * The HTTP proxy frontend: CONNECT (a raw tunnel) and absolute-URI requests (forwarded with
 * keep-alive, one circuit per origin at a time) to intercepted destinations.
 */
import type { Socket } from 'node:net'
import { policyAdvisorCommand } from '@nullport/protocol'
import type { OverlaySocket } from '@nullport/sdk'
import type { ConnRecord } from '../connections.js'
import { classifyDialError, dialErrorCode } from '../dial-errors.js'
import {
  BodyFramer,
  type BodyKind,
  forwardHead,
  headerValues,
  httpResponse,
  parseHttpRequestHead,
  proxyTarget,
  requestBodyKind,
} from '../http-parser.js'
import { interceptRefusal } from '../intercept.js'
import { splice } from '../splice.js'
import { clientAddress, dialService, type FrontendEnv } from './env.js'

/**
 * Serves one (paused) client connection: parses request heads (bounded by maxHeaderBytes, the
 * first within handshakeTimeoutMs), dials the service intercepting each request's origin and
 * frames request bodies onto the circuit, pausing the client while the circuit is full. After
 * CONNECT or an Upgrade, splice() owns both sockets. Refusals answer with an HTTP status and an
 * `X-Nullport-Error` header carrying the code.
 */
export function handleHttpProxyConnection(env: FrontendEnv, s: Socket): void {
  const conns = env.connections
  const client = clientAddress(s)
  const maxHead = env.options.maxHeaderBytes
  let buf: Buffer = Buffer.alloc(0)
  let upstream: { key: string; overlay: OverlaySocket; rec: ConnRecord } | null = null
  let framer: BodyFramer | null = null
  let busy = false
  /** After CONNECT or an Upgrade: splice() owns both sockets. */
  let raw = false
  let timer: NodeJS.Timeout | null = setTimeout(() => {
    conns.refuse('ERR_MALFORMED_REQUEST', { listener: 'http', client }, 'http proxy request head timed out')
    s.destroy()
  }, env.options.handshakeTimeoutMs)
  const clearTimer = (): void => {
    if (timer) clearTimeout(timer)
    timer = null
  }
  const fail = (
    status: number,
    reason: string,
    body: string,
    code: string,
    fields: Record<string, unknown> = {},
  ): void => {
    conns.refuse(code, { listener: 'http', client, status, ...fields }, body.split('\n')[0]!)
    clearTimer()
    s.off('data', onData)
    if (upstream) upstream.overlay.destroy()
    s.end(httpResponse(status, reason, `${body}\n`, { Connection: 'close', 'X-Nullport-Error': code }))
  }
  let waitingDrain = false
  const writeUp = (b: Buffer): void => {
    if (!upstream || b.length === 0) return
    if (!upstream.overlay.write(b) && !waitingDrain) {
      // the circuit is full: stop reading the client until it drains
      waitingDrain = true
      s.pause()
      upstream.overlay.once('drain', () => {
        waitingDrain = false
        if (!busy) s.resume()
      })
    }
  }
  const pump = (): void => {
    while (!busy && buf.length > 0) {
      if (framer) {
        const r = framer.consume(buf)
        if ('error' in r) {
          fail(400, 'Bad Request', `malformed request body: ${r.error}`, 'ERR_MALFORMED_REQUEST')
          return
        }
        writeUp(buf.subarray(0, r.used))
        buf = buf.subarray(r.used)
        if (framer.done) framer = null
        continue
      }
      const h = parseHttpRequestHead(buf, maxHead)
      if (h.status === 'incomplete') return
      if (h.status === 'error') {
        fail(
          h.httpStatus,
          h.httpStatus === 431
            ? 'Request Header Fields Too Large'
            : h.httpStatus === 505
              ? 'HTTP Version Not Supported'
              : 'Bad Request',
          `malformed proxy request: ${h.reason}`,
          h.httpStatus === 431 ? 'ERR_HEADER_TOO_LARGE' : 'ERR_MALFORMED_REQUEST',
        )
        return
      }
      clearTimer()
      const t = proxyTarget(h)
      if (t.status === 'error') {
        fail(
          t.httpStatus,
          t.httpStatus === 501 ? 'Not Implemented' : 'Bad Request',
          t.reason,
          t.httpStatus === 501 ? 'ERR_UNSUPPORTED' : 'ERR_MALFORMED_REQUEST',
        )
        return
      }
      const target = t.target
      const { match, name } = env.route(target.host, target.port)
      if (!match.ok) {
        const { code, text } = interceptRefusal(env.ctx.identity.name, name, target.port, match)
        fail(403, 'Forbidden', text, code, { host: name, port: target.port })
        return
      }
      let bodyKind: ReturnType<typeof requestBodyKind> = { kind: 'none' }
      if (target.kind === 'forward') {
        bodyKind = requestBodyKind(h)
        if (bodyKind.kind === 'error') {
          fail(400, 'Bad Request', `malformed proxy request: ${bodyKind.reason}`, 'ERR_MALFORMED_REQUEST')
          return
        }
      }
      buf = buf.subarray(h.length)
      const key = `${match.service}|${name}:${target.port}`
      const upgrade = target.kind === 'forward' && headerValues(h, 'upgrade').length > 0
      const send = (): void => {
        if (target.kind === 'connect') {
          // raw tunnel from here on
          raw = true
          s.setTimeout(0)
          s.off('data', onData)
          s.pause()
          const up = upstream!
          upstream = null
          s.write('HTTP/1.1 200 Connection Established\r\n\r\n')
          if (buf.length > 0) s.unshift(buf)
          buf = Buffer.alloc(0)
          splice(s, up.overlay, up.rec, conns, env.log)
          return
        }
        writeUp(forwardHead(h, target))
        if (upgrade) {
          raw = true
          s.setTimeout(0)
          s.off('data', onData)
          s.pause()
          const up = upstream!
          upstream = null
          if (buf.length > 0) s.unshift(buf)
          buf = Buffer.alloc(0)
          up.overlay.unpipe(s)
          splice(s, up.overlay, up.rec, conns, env.log)
          return
        }
        const f = new BodyFramer(bodyKind as BodyKind)
        framer = f.done ? null : f
      }
      if (
        upstream &&
        upstream.key === key &&
        !upstream.overlay.destroyed &&
        !upstream.overlay.writableEnded &&
        target.kind === 'forward'
      ) {
        send()
        continue
      }
      if (upstream) {
        // another origin on this connection: the previous response is complete (no pipelining across origins)
        const old = upstream
        upstream = null
        old.overlay.unpipe(s)
        old.overlay.destroy()
        conns.untrack(old.rec.id)
      }
      busy = true
      s.pause()
      dialService(
        env,
        match.service,
        name,
        target.port,
        s,
        match.rule.dialOptions.connectTimeoutSeconds,
      ).then(
        (overlay) => {
          busy = false
          if (s.destroyed) {
            overlay.destroy()
            return
          }
          const rec = conns.track('http', match.service, client, `${name}:${target.port}`, s, overlay)
          upstream = { key, overlay, rec }
          if (target.kind === 'forward') {
            overlay.on('error', (err: Error & { code?: string }) => {
              env.log.debug({ err, code: err.code, conn: rec.id }, 'http upstream error')
              s.destroy()
            })
            overlay.once('close', () => {
              conns.untrack(rec.id)
              if (upstream?.overlay === overlay) upstream = null
            })
            // the origin closing its side ends a close-delimited response: end the client too
            overlay.pipe(s)
          }
          send()
          if (!waitingDrain) s.resume()
          pump()
        },
        (err: Error) => {
          busy = false
          const code = dialErrorCode(err)
          const c = classifyDialError(code)
          const me = env.ctx.identity.name
          const fix =
            c.http === 403
              ? `Fix: \`${policyAdvisorCommand(me, match.service)}\` explains which policy is missing.`
              : code === 'ERR_UNDERLAY_UNREACHABLE'
                ? 'Fix: start the server the hosting tunneler forwards to, or correct its host.v1 config.'
                : code === 'ERR_NO_TERMINATORS'
                  ? `Fix: start a host for ${match.service} (\`nullport tunnel run\` with a Bind policy and host.v1).`
                  : 'Fix: check the routers and the hosting side.'
          fail(
            c.http,
            c.http === 403 ? 'Forbidden' : c.http === 504 ? 'Gateway Timeout' : 'Bad Gateway',
            `dial ${match.service} for ${name}:${target.port} failed (${code}: ${c.kind}): ${err.message}\n${fix}`,
            code,
            { service: match.service },
          )
        },
      )
      return
    }
  }
  const onData = (d: Buffer): void => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d])
    if (!framer && !busy && buf.length > maxHead * 2) {
      fail(
        431,
        'Request Header Fields Too Large',
        `proxy request head exceeds ${maxHead} bytes`,
        'ERR_HEADER_TOO_LARGE',
      )
      return
    }
    if (busy) s.pause()
    pump()
  }
  // an idle keep-alive connection (no bytes either way) is closed after httpIdleTimeoutMs
  s.setTimeout(env.options.httpIdleTimeoutMs, () => {
    if (raw) return
    env.log.debug({ listener: 'http', client }, 'idle http proxy connection closed')
    s.destroy()
  })
  s.on('data', onData)
  s.on('end', () => {
    clearTimer()
    if (raw) return
    if (upstream) upstream.overlay.end()
    else if (!s.writableEnded) s.end()
  })
  s.on('close', () => {
    clearTimer()
    if (upstream) {
      upstream.overlay.destroy()
      conns.untrack(upstream.rec.id)
    }
  })
  s.resume()
}
