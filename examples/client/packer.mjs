// Adds an item to a trip on the Packer Tracker API and prints the trip, over the overlay, with
// Node's own fetch and the context's undici dispatcher.
//
//   CLIENT_IDENTITY=ann.json node examples/client/packer.mjs TRIP ITEM
import { loadContext } from '@nullport/sdk'

const [trip = 'lake-trip', item] = process.argv.slice(2)
const ctx = await loadContext(process.env.CLIENT_IDENTITY ?? './client.json')
const dispatcher = ctx.dispatcher()
const base = process.env.PACKER_URL ?? 'http://packer.tracker' // the service name works as a host too
try {
  if (item) {
    const r = await fetch(`${base}/trips/${encodeURIComponent(trip)}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item }),
      dispatcher,
    })
    if (!r.ok) throw new Error(`HTTP ${r.status}: ${await r.text()}`)
  }
  const r = await fetch(`${base}/trips/${encodeURIComponent(trip)}`, { dispatcher })
  console.log(JSON.stringify(await r.json(), null, 2))
} catch (err) {
  const c = err.cause ?? err
  console.error(`${c.code ?? 'ERR'}: ${c.message}`)
  process.exitCode = 1
} finally {
  await ctx.close()
}
