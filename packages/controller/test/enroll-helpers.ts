/**
 * Helpers for the edge tests (enrollment, client API, fabric API): mTLS JSON requests, an SSE
 * reader, and enrollment of identities and routers with a key and CSR made here.
 */
import { generateKeyPairSync } from 'node:crypto'
import { request } from 'node:https'
import { createCsr, SseParser } from '@nullport/protocol'
import { type ApiResponse, httpsJson, type TestController } from '@nullport/testkit'

export interface Creds {
  ca: string
  cert?: string
  key?: string
}

/** A JSON request (on a connection of its own), with a client certificate when `cert` is given. */
export function mtls(
  url: string,
  method: string,
  o: Creds & { body?: unknown; headers?: Record<string, string> },
): Promise<ApiResponse> {
  return httpsJson(url, method, {
    ca: o.ca,
    ...(o.cert ? { cert: o.cert, key: o.key } : {}),
    ...(o.headers ? { headers: o.headers } : {}),
    ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
  })
}

export interface SseEvent {
  event: string
  // biome-ignore lint/suspicious/noExplicitAny: JSON of any event
  data: any
}

export interface SseReader {
  status: number
  events: SseEvent[]
  ended: boolean
  /** Waits for the next event of `type` after the ones already consumed (fails after timeoutMs). */
  next(type: string, timeoutMs?: number, pred?: (e: SseEvent) => boolean): Promise<SseEvent>
  /** Resolves when the server ends the stream. */
  end(timeoutMs?: number): Promise<void>
  close(): void
}

export function openSse(url: string, o: Creds & { headers?: Record<string, string> }): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'GET',
      ca: o.ca,
      ...(o.cert ? { cert: o.cert, key: o.key } : {}),
      agent: false,
      headers: { accept: 'text/event-stream', ...o.headers },
    })
    req.on('error', reject)
    req.on('response', (res) => {
      const events: SseEvent[] = []
      let consumed = 0
      const waiters = new Set<() => void>()
      const wake = () => {
        for (const w of [...waiters]) w()
      }
      const reader: SseReader = {
        status: res.statusCode ?? 0,
        events,
        ended: false,
        next(type, timeoutMs = 20_000, pred) {
          return new Promise((res2, rej2) => {
            const check = () => {
              while (consumed < events.length) {
                const e = events[consumed++]!
                if (e.event === type && (!pred || pred(e))) {
                  waiters.delete(check)
                  clearTimeout(timer)
                  res2(e)
                  return
                }
              }
              if (reader.ended) {
                waiters.delete(check)
                clearTimeout(timer)
                rej2(
                  new Error(
                    `stream ended before a "${type}" event (got: ${events.map((e) => e.event).join(', ')})`,
                  ),
                )
              }
            }
            const timer = setTimeout(() => {
              waiters.delete(check)
              rej2(
                new Error(
                  `no "${type}" event within ${timeoutMs} ms (got: ${events.map((e) => e.event).join(', ')})`,
                ),
              )
            }, timeoutMs)
            waiters.add(check)
            check()
          })
        },
        end(timeoutMs = 20_000) {
          return new Promise((res2, rej2) => {
            const check = () => {
              if (reader.ended) {
                waiters.delete(check)
                clearTimeout(timer)
                res2()
              }
            }
            const timer = setTimeout(() => {
              waiters.delete(check)
              rej2(new Error(`stream did not end within ${timeoutMs} ms`))
            }, timeoutMs)
            waiters.add(check)
            check()
          })
        },
        close() {
          req.destroy()
        },
      }
      const parser = new SseParser()
      res.on('data', (d: Buffer) => {
        for (const e of parser.push(d)) {
          let parsed: unknown = e.data
          try {
            parsed = JSON.parse(e.data)
          } catch {}
          events.push({ event: e.event, data: parsed })
        }
        wake()
      })
      const done = () => {
        reader.ended = true
        wake()
      }
      res.on('end', done)
      res.on('close', done)
      res.on('error', done)
      resolve(reader)
    })
    req.end()
  })
}

export function newKeyPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString()
}

export interface Enrolled {
  id: string
  name: string
  /** Leaf + intermediate. */
  cert: string
  key: string
  ca: string
  // biome-ignore lint/suspicious/noExplicitAny: the enroll response
  response: any
}

/** POSTs an enrollment with a fresh key and CSR. */
export async function enrollWith(
  c: TestController,
  kind: 'identity' | 'router',
  jwt: string,
  o: { advertise?: string; keyPem?: string; csr?: string } = {},
): Promise<{ res: ApiResponse; key: string }> {
  const key = o.keyPem ?? newKeyPem()
  const csr = o.csr ?? (await createCsr({ keyPem: key, commonName: 'ignored-by-the-controller' }))
  const path = kind === 'identity' ? '/edge/client/v1/enroll' : '/fabric/v1/enroll'
  const body =
    kind === 'identity'
      ? { token: jwt, csr }
      : { token: jwt, csr, advertise: o.advertise ?? '127.0.0.1:3022' }
  const res = await mtls(`${c.url}${path}`, 'POST', { ca: c.caPem, body })
  return { res, key }
}

/** Creates an identity through the management API and enrolls it. */
export async function createAndEnrollIdentity(
  c: TestController,
  name: string,
  roleAttributes: string[] = [],
): Promise<Enrolled> {
  const r = await c.api('POST', 'identities', { name, type: 'Device', roleAttributes })
  if (r.status !== 201) throw new Error(`create identity ${name}: ${r.status} ${r.text}`)
  const { res, key } = await enrollWith(c, 'identity', r.body.data.enrollment.jwt)
  if (res.status !== 200) throw new Error(`enroll ${name}: ${res.status} ${res.text}`)
  return {
    id: r.body.data.id,
    name,
    cert: res.body.data.cert,
    key,
    ca: res.body.data.ca,
    response: res.body.data,
  }
}

/** Creates an edge router through the management API and enrolls it. */
export async function createAndEnrollRouter(
  c: TestController,
  name: string,
  o: { roleAttributes?: string[]; advertise?: string; cost?: number } = {},
): Promise<Enrolled> {
  const r = await c.api('POST', 'edge-routers', {
    name,
    roleAttributes: o.roleAttributes ?? [],
    ...(o.cost !== undefined ? { cost: o.cost } : {}),
  })
  if (r.status !== 201) throw new Error(`create router ${name}: ${r.status} ${r.text}`)
  const { res, key } = await enrollWith(c, 'router', r.body.data.enrollment.jwt, {
    advertise: o.advertise ?? '127.0.0.1:3022',
  })
  if (res.status !== 200) throw new Error(`enroll router ${name}: ${res.status} ${res.text}`)
  return {
    id: r.body.data.id,
    name,
    cert: res.body.data.cert,
    key,
    ca: res.body.data.ca,
    response: res.body.data,
  }
}
