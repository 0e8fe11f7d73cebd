/**
 * Starts a controller: config -> network PKI + enrollment signer -> store (migrations) -> core +
 * policy index + change feed -> admin bootstrap -> edge runtime -> one HTTPS Fastify server ->
 * listen. Closing is graceful: stop accepting, let in-flight requests finish, close the edge
 * runtime, then the store.
 */
import { randomUUID } from 'node:crypto'
import { createServer as createHttpsServer } from 'node:https'
import { hostname } from 'node:os'
import { PolicyIndex, PreAuthGuard } from '@nullport/protocol'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { clientRoutes } from './api/client/routes.js'
import { errorBody, installErrorHandling, toHttpError } from './api/common/errors.js'
import { validatorCompiler } from './api/common/validation.js'
import { fabricRoutes } from './api/fabric/routes.js'
import { managementRoutes } from './api/management/routes.js'
import { wellKnownRoutes } from './api/well-known.js'
import { type ControllerConfig, splitHostPort } from './config.js'
import { ChangeFeed } from './core/change-feed.js'
import type { ControllerContext } from './core/context.js'
import { componentLogger, createLogger } from './core/logger.js'
import { CoreService } from './core/service.js'
import { EdgeRuntime } from './edge/runtime.js'
import type { EnrollmentSigning } from './enrollment/records.js'
import { EnrollmentSigner } from './enrollment/tokens.js'
import { ControllerError } from './errors.js'
import { ControllerMetrics } from './metrics.js'
import { CONTROLLER_VERSION, registerSwagger } from './openapi/index.js'
import { NetworkPki } from './pki/network-pki.js'
import { openStore } from './store/db.js'

export interface StartOptions {
  config: ControllerConfig
  /** First admin (ignored when an admin exists). */
  admin?: { username?: string; password?: string }
  logger?: Logger
}

export interface RunningController {
  ctx: ControllerContext
  app: FastifyInstance
  /** The advertised base URL, e.g. `https://127.0.0.1:41234`. */
  url: string
  close(): Promise<void>
}

export interface ContextOptions {
  logger?: Logger
  /** Signs enrollment tokens; without one, creating identities and routers answers ERR_UNAVAILABLE. */
  signer?: EnrollmentSigning
}

/** Creates the context (store, core, policy index, change feed) without a server. */
export async function createContext(
  config: ControllerConfig,
  o: ContextOptions = {},
): Promise<ControllerContext> {
  const root = o.logger ?? createLogger(config.logLevel)
  const log = (c: string) => componentLogger(root, c)
  const store = await openStore({ database: config.database, dataDir: config.dataDir })
  log('store').info({ database: store.describe, dialect: store.dialect }, 'store open')
  const policy = new PolicyIndex()
  const changes = new ChangeFeed(policy, log('change-feed'))
  const ctx = {
    config,
    logger: root,
    log,
    store,
    db: store.db,
    changes,
    policy,
    baseUrl: config.advertise ?? `https://${config.listen}`,
  } as ControllerContext
  ctx.core = new CoreService({
    config,
    log: log('core'),
    store,
    policy,
    feed: changes,
    ...(o.signer ? { signer: o.signer } : {}),
  })
  try {
    await ctx.core.init()
  } catch (err) {
    await store.close()
    throw err
  }
  return ctx
}

/**
 * Opens (or creates) the network PKI in DATA/pki. The server certificate names the advertised
 * host and the listen host or, listening on every interface without an advertised name, the
 * machine's host name.
 */
async function openPki(config: ControllerConfig, logger: Logger): Promise<NetworkPki> {
  const hosts: string[] = []
  if (config.advertise) hosts.push(new URL(config.advertise).hostname)
  const listenHost = splitHostPort(config.listen).host
  const wildcard = listenHost === '' || listenHost === '0.0.0.0' || listenHost === '::'
  if (!wildcard) hosts.push(listenHost)
  else if (!config.advertise && /^[A-Za-z0-9.-]+$/.test(hostname())) hosts.push(hostname())
  return NetworkPki.open({
    dataDir: config.dataDir,
    trustDomain: config.trustDomain,
    hosts,
    identityCertLifetimeSeconds: Math.floor(config.identityCertLifetimeMs / 1000),
    logger,
  })
}

export async function startController(o: StartOptions): Promise<RunningController> {
  const root = o.logger ?? createLogger(o.config.logLevel)
  const pki = await openPki(o.config, componentLogger(root, 'pki'))
  // the issuer is the advertised base URL, final once the server listens
  let ctx!: ControllerContext
  const signer = await EnrollmentSigner.create(pki, () => ctx.baseUrl)
  ctx = await createContext(o.config, { logger: root, signer })
  const log = ctx.log('server')
  const state = { closing: false }
  let maintenance: NodeJS.Timeout | undefined
  let app: FastifyInstance | undefined
  let metrics: ControllerMetrics | undefined
  try {
    const admin = await ctx.core.ensureAdmin(o.admin ?? {})
    if (admin.created) ctx.log('core').info({ admin: admin.name }, 'created the first admin')
    else if (o.admin?.username && o.admin.username !== admin.name)
      ctx
        .log('core')
        .warn(
          { admin: admin.name, ignored: o.admin.username },
          'an admin already exists: the given admin user was not created',
        )

    const edge = new EdgeRuntime(ctx, pki, signer)
    ctx.edge = edge
    // Before authentication (TLS done and one complete request head) a connection holds a place
    // per source address and has a deadline from TCP accept; see docs/security.md.
    const httpLog = ctx.log('http')
    const guard = new PreAuthGuard(
      { deadlineMs: ctx.config.preAuthTimeoutMs, perAddress: ctx.config.maxPreAuthPerAddress },
      (reason, address) => httpLog.warn({ reason, address }, 'unauthenticated connection dropped'),
    )
    app = await buildServer(ctx, edge, guard, state)
    const { host, port } = splitHostPort(ctx.config.listen)
    await app.listen({ host, port })
    const addr = app.server.address()
    const actualPort = typeof addr === 'object' && addr ? addr.port : port
    const shownHost = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host
    ctx.baseUrl =
      ctx.config.advertise ??
      `https://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${actualPort}`
    await ctx.edge.onListening?.(ctx.baseUrl)
    let metricsAddress: string | null = null
    if (ctx.config.metricsListen !== null) {
      const m = splitHostPort(ctx.config.metricsListen)
      metrics = new ControllerMetrics({ config: ctx.config, preAuth: () => guard.stats() })
      metricsAddress = await metrics.listen(m.host, m.port)
    }
    log.info(
      {
        url: ctx.baseUrl,
        listen: `${host}:${actualPort}`,
        dataDir: ctx.config.dataDir,
        ...(metricsAddress ? { metrics: metricsAddress } : {}),
      },
      'controller listening',
    )
    maintenance = setInterval(() => {
      ctx.core.maintenance().then(
        (r) => {
          if (r.sessions + r.changeLog + r.refusedLogins > 0) ctx.log('core').debug(r, 'housekeeping')
        },
        (err) => ctx.log('core').warn({ err }, 'housekeeping failed'),
      )
    }, 60_000)
    maintenance.unref()
  } catch (err) {
    await app?.close().catch(() => {})
    await metrics?.close()
    await ctx.edge?.close?.()
    await ctx.store.close()
    throw err
  }
  const server = app
  let closing: Promise<void> | undefined
  return {
    ctx,
    app: server,
    url: ctx.baseUrl,
    close() {
      closing ??= (async () => {
        log.info('controller stopping')
        state.closing = true
        clearInterval(maintenance)
        await metrics?.close()
        await ctx.edge.close?.()
        await server.close()
        await ctx.store.close()
        log.info('controller stopped')
      })()
      return closing
    },
  }
}

/** The HTTPS Fastify server with every route (not listening yet). */
export async function buildServer(
  ctx: ControllerContext,
  edge: EdgeRuntime,
  guard: PreAuthGuard,
  state: { closing: boolean } = { closing: false },
): Promise<FastifyInstance> {
  const app = Fastify({
    https: { ...edge.tls, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    // our own server so that headersTimeout is checked often enough to matter (Node checks
    // every connectionsCheckingInterval, 30 s by default)
    serverFactory: (handler, opts) => {
      const server = createHttpsServer(
        {
          ...(opts.https as object),
          headersTimeout: ctx.config.headersTimeoutMs,
          requestTimeout: 0,
          connectionsCheckingInterval: Math.max(100, Math.min(1000, ctx.config.headersTimeoutMs / 4)),
        },
        handler as Parameters<typeof createHttpsServer>[1],
      )
      server.keepAliveTimeout = 72_000 // Fastify's default
      server.on('connection', (raw: import('node:net').Socket) => guard.admit(raw))
      server.on('request', (req) => guard.authenticated(req.socket as import('node:net').Socket))
      server.on('close', () => guard.close())
      return server
    },
    loggerInstance: ctx.log('http'),
    bodyLimit: ctx.config.bodyLimit,
    // a name of NAME_MAX characters, percent-encoded as UTF-8, fits a path parameter; the
    // parameter's schema then bounds it to NAME_MAX characters with a coded 400
    routerOptions: { maxParamLength: 4096 },
    // errors Fastify raises before routing (bad URL encoding, a parameter over maxParamLength)
    // answer in the registry's shape too
    frameworkErrors: (err, req, reply) => {
      const { status, body } = toHttpError(err, ctx.config.bodyLimit, String(req.id))
      const r = reply as unknown as import('fastify').FastifyReply
      r.status(status).type('application/json; charset=utf-8').send(body)
    },
    genReqId: (req) => {
      const h = req.headers['x-request-id']
      return typeof h === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(h) ? h : randomUUID()
    },
    requestIdHeader: false,
    // new requests while closing get ERR_UNAVAILABLE in our error shape (see the onRequest hook)
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
    // malformed HTTP (bad headers, oversized header block) also answers in our error shape
    // Only an HTTP parse error gets an answer; TLS errors and timeouts destroy the socket (an
    // ended one would wait in CLOSE-WAIT for the peer and keep its place in maxConnections).
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: import('node:net').Socket) => {
      if (!err.code?.startsWith('HPE_') || !socket.writable) {
        socket.destroy()
        return
      }
      const body = JSON.stringify(
        errorBody(
          'ERR_BAD_REQUEST',
          err.code === 'HPE_HEADER_OVERFLOW'
            ? 'the request headers are too large'
            : 'the HTTP request is malformed',
        ),
      )
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        () => socket.destroy(),
      )
      // a peer that does not read the answer cannot keep the socket either
      setTimeout(() => socket.destroy(), 5000).unref()
    },
  }) as unknown as FastifyInstance
  // the APIs speak JSON only: text/plain bodies are 415, not strings that fail validation
  app.removeContentTypeParser('text/plain')
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(() => (data) => JSON.stringify(data))
  // A request that declares a body must deliver all of it within requestTimeout, or its
  // connection is dropped: a slow sender cannot hold a connection and a body buffer forever,
  // before authentication too. (Node's own requestTimeout does not cover a body that never
  // arrives.) Requests without a body, such as the SSE streams' GETs, are not affected.
  app.addHook('onRequest', async (req) => {
    const h = req.headers
    const declared =
      (h['content-length'] !== undefined && h['content-length'] !== '0') ||
      h['transfer-encoding'] !== undefined
    if (!declared) return
    const raw = req.raw
    const timer = setTimeout(() => {
      ctx
        .log('http')
        .warn(
          { reqId: req.id, timeoutMs: ctx.config.requestTimeoutMs },
          'request body not received in time: connection dropped',
        )
      raw.socket?.destroy()
    }, ctx.config.requestTimeoutMs)
    timer.unref()
    const clear = (): void => clearTimeout(timer)
    raw.once('end', clear)
    raw.once('close', clear)
  })
  app.addHook('onRequest', async (_req, reply) => {
    if (state.closing) {
      reply.header('connection', 'close')
      throw new ControllerError('ERR_UNAVAILABLE')
    }
  })
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-request-id', String(req.id))
    return payload
  })
  installErrorHandling(app, ctx.config.bodyLimit)

  app.get('/healthz', { schema: { hide: true } }, async () => ({
    data: { status: 'ok', version: CONTROLLER_VERSION, changeVersion: ctx.changes.version },
  }))

  // management API + its OpenAPI document
  await app.register(async (m) => {
    await registerSwagger(m, {
      title: 'Nullport management API',
      description:
        'Admins: identities, services, configs, policies, edge routers. Errors: docs/api-errors.md',
    })
    await m.register(managementRoutes, { prefix: '/edge/management/v1', ctx })
    m.get('/openapi/management.json', { schema: { hide: true } }, async () => m.swagger())
  })
  // well-known endpoints, client API (enrollment), fabric API + the client OpenAPI document
  await app.register(async (c) => {
    await registerSwagger(c, {
      title: 'Nullport client API',
      description: 'SDKs and routers: enrollment, client API (mTLS), well-known endpoints',
      include: (url) => !url.startsWith('/fabric/') || url === '/fabric/v1/enroll',
    })
    await wellKnownRoutes(c, edge)
    await clientRoutes(c, edge)
    await fabricRoutes(c, edge)
    c.get('/openapi/client.json', { schema: { hide: true } }, async () => c.swagger())
  })
  app.server.maxConnections = ctx.config.maxConnections
  return app
}
