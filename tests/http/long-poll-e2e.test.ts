// Long polling through whole deployments (supervisor → worker → proxy): on SQLite, a claim parked
// in the proxy is woken by a post through it (the store sits in a worker process); on Redis, a
// claim parked in one deployment is woken by a post through another one sharing the pool (the
// Redis driver's announcement, the proxy's subscriber). A claim is known to be parked when
// /metrics shows it (`missive_long_poll_waiting`).
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { zaqarClient, type ZaqarClient } from '../helpers/http.js'
import { startMissive, startRedis, waitFor, within } from '../helpers/index.js'
import { WsClient } from '../ws/client.js'

t.setTimeout(120_000)

const config = { accessLog: false, metricsCacheMs: 0 }

const waiting = async (c: ZaqarClient): Promise<number> => {
  const page = (await c.req('GET', '/metrics')).text
  return Number(/^missive_long_poll_waiting(?:{[^}]*})? (\d+)$/m.exec(page)?.[1] ?? -1)
}

async function parkedClaim(waiter: ZaqarClient, producer: ZaqarClient, t: Test): Promise<void> {
  const claim = waiter.req('POST', '/v2/queues/e2e/claims?wait=20', { body: { ttl: 60 }, timeoutMs: 30_000 })
  await waitFor(async () => (await waiting(waiter)) === 1, { what: 'the claim parked' })
  const marker = randomUUID()
  t.equal((await producer.req('POST', '/v2/queues/e2e/messages', { body: { messages: [{ body: marker }] } })).status, 201)
  const c = await within(claim, 5_000)
  t.ok(c, 'answered long before its 20 s wait ends')
  t.equal(c?.status, 201)
  t.same(
    c?.json.messages.map((m: { body: string }) => m.body),
    [marker],
    'with the message posted while it waited',
  )
  t.equal(await waiting(waiter), 0, 'nothing left waiting')
}

t.test('sqlite, store in a worker process: a post through the proxy wakes its parked claim', async (t) => {
  const m = await startMissive(t, { config })
  const waiter = zaqarClient(m.baseUrl)
  await parkedClaim(waiter, zaqarClient(m.baseUrl, { project: waiter.project }), t)
  // The WebSocket API is served by the deployment's proxy too, and counted.
  const ws = await WsClient.open(`${m.baseUrl.replace(/^http/, 'ws')}/v2/ws`, waiter.project)
  t.teardown(() => ws.close())
  t.equal((await ws.send('queue_get_stats', { queue_name: 'e2e' })).headers.status, 200)
  const page = (await waiter.req('GET', '/metrics')).text
  t.match(page, /^missive_websocket_connections(?:{[^}]*})? 1$/m, 'missive_websocket_connections')
})

t.test('redis: a post through another deployment wakes a parked claim', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  const env = { MISSIVE_DEFAULT_POOL: `${redis.url}/0?durability=fast`, MISSIVE_DURABILITY: 'fast' }
  const a = await startMissive(t, { config, env })
  const b = await startMissive(t, { config, env })
  const waiter = zaqarClient(b.baseUrl)
  await parkedClaim(waiter, zaqarClient(a.baseUrl, { project: waiter.project }), t)
})
