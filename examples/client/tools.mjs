// A client of the Tool Pool over the overlay: ctx.fetch reaches http://family.tools.ziti/ (the
// service's intercept.v1 address); a host that matches no service is refused (fail closed).
//
//   CLIENT_IDENTITY=ann.json node examples/client/tools.mjs list | add NAME | borrow ID | return ID | loans
import { loadContext } from '@nullport/sdk'

const BASE = process.env.FAMILY_URL ?? 'http://family.tools.ziti'
const [cmd = 'list', arg] = process.argv.slice(2)
const ctx = await loadContext(process.env.CLIENT_IDENTITY ?? './client.json')
try {
  const call = async (method, path, body) => {
    const res = await ctx.fetch(`${BASE}${path}`, {
      method,
      ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    })
    const data = await res.json()
    if (!res.ok)
      throw Object.assign(new Error(data.error ?? `HTTP ${res.status}`), { code: `HTTP_${res.status}` })
    return data
  }
  const out = {
    list: () => call('GET', '/api/tools'),
    add: () => call('POST', '/api/tools', { name: arg }),
    borrow: () => call('POST', `/api/tools/${arg}/borrow`),
    return: () => call('POST', `/api/tools/${arg}/return`),
    loans: () => call('GET', '/api/loans'),
    me: () => call('GET', '/api/me'),
  }[cmd]
  if (!out) throw Object.assign(new Error(`unknown command ${cmd}`), { code: 'USAGE' })
  console.log(JSON.stringify(await out(), null, 2))
} catch (err) {
  console.error(`${err.code ?? 'ERR'}: ${err.message}`)
  process.exitCode = 1
} finally {
  await ctx.close()
}
