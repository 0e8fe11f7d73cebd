import {
  type ClientService,
  type DialPayload,
  type DialSuccessPayload,
  dialerFinish,
  dialerHello,
  type E2EOwnIdentity,
  type E2ESession,
  policyAdvisorCommand,
  wireCode as wireCodeInfo,
} from '@nullport/protocol'
import { checkPositiveInt } from './context-options.js'
import type { ControlSync } from './control-sync.js'
import { SdkError } from './errors.js'
import type { OverlaySocket, PeerIdentity } from './overlay-socket.js'
import { remoteError, wireCode, wireMessage } from './remote-error.js'
import type { RouterConnection } from './router-connection.js'
import type { RouterPool } from './router-pool.js'

/** Options of `ctx.dial()`. */
export interface DialOptions {
  /** Give up after this many ms (ERR_DIAL_TIMEOUT). Default: the context's dialTimeoutMs (15000). */
  timeoutMs?: number
  /** Caller data for host.v1 forwarding (tunnelers). */
  appData?: DialPayload['appData']
  /** Abort the dial (ERR_DIAL_ABORTED). */
  signal?: AbortSignal
  /** `allowHalfOpen` of the socket (like net.Socket). Default false. */
  allowHalfOpen?: boolean
}

export interface DialerOptions {
  identity: PeerIdentity
  /** The identity's certificate and key for e2e hellos (updated in place on renewal). */
  e2eOwn: E2EOwnIdentity
  /** The network CA bundle the host's e2e certificate must chain to. */
  caPem: string
  dialTimeoutMs: number
  sync: ControlSync
  pool: RouterPool
}

/**
 * Dialing: checks what the service list already says (permission, routers), picks routers
 * (lowest latency first, a second one only when the first connection is lost), starts the e2e
 * handshake, and lets the router connection make the circuit's socket when the host answers.
 * Refusals get their fix added (`nullport edge policy-advisor ...`).
 */
export class Dialer {
  private readonly o: DialerOptions
  private readonly dialed = new Set<OverlaySocket>()

  constructor(o: DialerOptions) {
    this.o = o
  }

  /** Dials a service by name (see `Context.dial`), with the timeout and the caller's abort signal. */
  async dial(service: string, opts: DialOptions): Promise<OverlaySocket> {
    if (typeof service !== 'string' || service.length === 0 || service.length > 256) {
      throw new SdkError('ERR_INVALID_OPTION', 'dial: service must be a service name (1 to 256 characters)')
    }
    const timeoutMs = checkPositiveInt('timeoutMs', opts.timeoutMs, this.o.dialTimeoutMs)
    const ac = new AbortController()
    const timer = setTimeout(
      () =>
        ac.abort(
          new SdkError(
            'ERR_DIAL_TIMEOUT',
            `dial ${service}: no answer within ${timeoutMs} ms (raise timeoutMs, or check the host)`,
            {
              service,
              timeoutMs,
            },
          ),
        ),
      timeoutMs,
    )
    const onUserAbort = (): void =>
      ac.abort(new SdkError('ERR_DIAL_ABORTED', `dial ${service} was aborted`, { service }))
    if (opts.signal) {
      if (opts.signal.aborted) onUserAbort()
      else opts.signal.addEventListener('abort', onUserAbort, { once: true })
    }
    try {
      return await this.dialService(service, opts, ac.signal)
    } finally {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onUserAbort)
    }
  }

  /** Routers to try for `name`, best first; refuses at once what the service list rules out. */
  private async candidates(
    name: string,
    svc: ClientService | undefined,
    signal: AbortSignal,
  ): Promise<RouterConnection[]> {
    const me = this.o.identity.name
    const advisor = policyAdvisorCommand(me, name)
    let candidates: RouterConnection[]
    if (svc) {
      if (!svc.permissions.includes('Dial')) {
        throw new SdkError(
          'ERR_NO_DIAL_PERMISSION',
          `identity ${me} has no Dial policy for service ${svc.name}: run \`${advisor}\``,
          {
            identity: this.o.identity,
            service: svc.name,
          },
        )
      }
      if (svc.edgeRouterIds.length === 0) {
        throw new SdkError(
          'ERR_NO_EDGE_ROUTERS',
          `identity ${me} may use no edge router for service ${svc.name} (edge router policies and service edge router policies have no router in common): run \`${advisor}\``,
          { identity: this.o.identity, service: svc.name },
        )
      }
      candidates = await this.o.pool.routersFor(svc.edgeRouterIds, signal)
    } else {
      // Not in our list: it does not exist, or no policy grants it to us. The router knows which.
      candidates = this.o.pool.ready().sort((a, b) => a.latencyMs - b.latencyMs)
      if (candidates.length === 0) {
        throw new SdkError(
          'ERR_SERVICE_NOT_FOUND',
          `service ${name} is not visible to identity ${me}: it does not exist or no Dial policy grants it: run \`${advisor}\``,
          { identity: this.o.identity, service: name },
        )
      }
    }
    if (candidates.length === 0) {
      throw new SdkError(
        'ERR_NO_EDGE_ROUTERS',
        `no edge router for service ${name} is connected: check that routers are online`,
        {
          service: name,
        },
      )
    }
    return candidates
  }

  private async dialService(name: string, opts: DialOptions, signal: AbortSignal): Promise<OverlaySocket> {
    const svc = this.o.sync.serviceByNameOrId(name)
    const candidates = await this.candidates(name, svc, signal)
    const serviceName = svc?.name ?? name
    const useE2E = svc ? svc.encryptionRequired : true
    let lastErr: Error | null = null
    for (const conn of candidates.slice(0, 2)) {
      try {
        return await this.dialOn(conn, serviceName, useE2E, opts, signal)
      } catch (err) {
        lastErr = err as Error
        // Only a lost router connection is worth another router; refusals are final.
        if ((err as SdkError).code !== 'ERR_ROUTER_CONNECTION_LOST' || signal.aborted) break
      }
    }
    throw this.explain(lastErr!, serviceName)
  }

  /** Adds the fix to well-known refusals. */
  private explain(err: Error, service: string): Error {
    if (!(err instanceof SdkError)) return err
    const me = this.o.identity.name
    const advisor = policyAdvisorCommand(me, service)
    const d = { ...err.details, identity: this.o.identity, service }
    switch (err.code) {
      case 'ERR_NO_DIAL_PERMISSION':
        return new SdkError(
          err.code,
          `identity ${me} has no Dial policy for service ${service}: run \`${advisor}\``,
          d,
        )
      case 'ERR_SERVICE_NOT_FOUND':
        return new SdkError(
          err.code,
          `service ${service} does not exist (or is not visible to ${me}): run \`${advisor}\``,
          d,
        )
      case 'ERR_NO_TERMINATORS':
        // The router's message is already the whole story (a host on an unreachable router);
        // otherwise one clean sentence, never the router's text nested in ours.
        if (/cannot reach/.test(err.message)) return err
        return new SdkError(
          err.code,
          `service ${service} has no host: no identity is bound to it (start the hosting app, or check its Bind policy with \`${policyAdvisorCommand('HOST', service)}\`)`,
          d,
        )
      default:
        // other refusals the policy advisor explains (protocol wire-codes table): the router's
        // message, and the command
        if (wireCodeInfo(err.code)?.advisor === true)
          return new SdkError(err.code, `${err.message}: run \`${advisor}\``, d)
        return err
    }
  }

  /** One DIAL on one router connection; the connection makes the socket when the host answers. */
  private async dialOn(
    conn: RouterConnection,
    service: string,
    useE2E: boolean,
    opts: DialOptions,
    signal: AbortSignal,
  ): Promise<OverlaySocket> {
    let state: unknown = null
    const payload: DialPayload = { service }
    if (opts.appData) payload.appData = opts.appData
    if (useE2E) {
      const h = dialerHello({ service, own: this.o.e2eOwn })
      payload.e2e = h.hello
      state = h.state
    }
    if (signal.aborted) throw signal.reason
    const socket = await conn.dial({
      payload,
      signal,
      localIdentity: this.o.identity,
      allowHalfOpen: opts.allowHalfOpen ?? false,
      verify: (ok) => this.verifyHost(ok, service, useE2E, state),
    })
    this.dialed.add(socket)
    socket.once('close', () => this.dialed.delete(socket))
    process.nextTick(() => {
      if (socket.destroyed) return
      socket.emit('connect')
      socket.emit('ready')
    })
    return socket
  }

  /**
   * Checks the host's DIAL_SUCCESS: with e2e (fail closed) the host must answer with its hello,
   * which must verify against the network CA for the host the router named.
   */
  private verifyHost(
    ok: DialSuccessPayload,
    service: string,
    useE2E: boolean,
    state: unknown,
  ): { e2e: E2ESession | null; remoteIdentity: PeerIdentity } {
    if (!useE2E) return { e2e: null, remoteIdentity: ok.hostIdentity }
    if (!ok.e2e) {
      throw new SdkError(
        'ERR_E2E_VERIFY_FAILED',
        `the host of ${service} answered without end-to-end encryption: refused (fail closed)`,
        {
          service,
        },
      )
    }
    let session: E2ESession
    try {
      session = dialerFinish({
        state,
        caPem: this.o.caPem,
        hostHello: ok.e2e,
        expectedHostId: ok.hostIdentity.id,
      })
    } catch (err) {
      const code = wireCode(err, 'ERR_E2E_VERIFY_FAILED')
      throw remoteError(
        code,
        `end-to-end verification of the host of ${service} failed: ${wireMessage(err)}`,
        'ERR_E2E_VERIFY_FAILED',
        {
          service,
          hostIdentity: ok.hostIdentity,
        },
      )
    }
    return { e2e: session, remoteIdentity: { id: session.peer.identityId, name: session.peer.commonName } }
  }

  /** Destroys every dialed socket that is still open (with `err`, when given). */
  destroyAll(err: Error | undefined): void {
    for (const s of [...this.dialed]) s.destroy(err)
  }
}
