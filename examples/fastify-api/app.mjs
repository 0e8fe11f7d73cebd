// A Fastify JSON API ("Packer Tracker": who brings what on a camping trip), dark with two lines.
// Fastify's listen({ port, host }) opens no port; request.raw.socket.remoteIdentity is the caller.
//
//   PACKER_IDENTITY=host.json node examples/fastify-api/app.mjs
import { zitify } from '@nullport/sdk'
import Fastify from 'fastify'

zitify({
  '127.0.0.1:18081': {
    identity: process.env.PACKER_IDENTITY ?? './host.json',
    service: process.env.PACKER_SERVICE ?? 'packer.tracker',
  },
})

const trips = new Map() // trip name -> [{ item, by }]
const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' }, bodyLimit: 16 * 1024 })
const caller = (request) => request.raw.socket.remoteIdentity?.name

app.get('/trips', async () => [...trips.keys()])
app.get(
  '/trips/:trip',
  async (request, reply) => trips.get(request.params.trip) ?? reply.code(404).send({ error: 'no such trip' }),
)
app.post(
  '/trips/:trip/items',
  {
    schema: {
      params: { type: 'object', properties: { trip: { type: 'string', minLength: 1, maxLength: 100 } } },
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['item'],
        properties: { item: { type: 'string', minLength: 1, maxLength: 100 } },
      },
    },
  },
  async (request, reply) => {
    const list = trips.get(request.params.trip) ?? []
    if (!trips.has(request.params.trip) && trips.size >= 1000)
      return reply.code(507).send({ error: 'too many trips' })
    if (list.length >= 1000) return reply.code(507).send({ error: 'trip is full' })
    const entry = { item: request.body.item, by: caller(request) }
    list.push(entry)
    trips.set(request.params.trip, list)
    return reply.code(201).send(entry)
  },
)

try {
  await app.listen({ port: 18081, host: '127.0.0.1' })
} catch (err) {
  app.log.error({ code: err.code }, err.message)
  process.exit(1)
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => app.close())
