/**
 * Two whole services (different data directories and ports) sharing one Redis catalog and one
 * Redis default pool: a pool added through one is routed to by the other within a second, and
 * served as soon as the other's supervisor has the pool's worker up (from its spare process) —
 * neither service restarted.
 */
import t from 'tap'
import { RedisCatalog } from '../../catalog/stores/redis.js'
import { startMissive, startRedis, waitFor } from '../helpers/index.js'
import { ADMIN_TOKEN, client, queuesWithMessages, redisClient } from './util.js'

t.setTimeout(180_000)

t.test('a pool added through one proxy is used by the other within 1 s', async (t) => {
  const catalog = await startRedis(t)
  const shared = await startRedis(t, { appendfsync: 'everysec' })
  const extra = await startRedis(t, { appendfsync: 'everysec' })
  const env = {
    MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN,
    MISSIVE_DURABILITY: 'fast',
    MISSIVE_CATALOG: `${catalog.url}?prefix=two:`,
    MISSIVE_DEFAULT_POOL: `${shared.url}?durability=fast`,
  }
  const a = await startMissive(t, { env })
  const b = await startMissive(t, { env })
  const ca = client(a.baseUrl)
  const cb = client(b.baseUrl, ca.project)

  // Both serve the shared default pool: a queue made through A is read through B.
  t.equal((await ca.req('POST', '/v2/queues/hello/messages', { body: { messages: [{ body: 'hi' }] } })).status, 201)
  t.equal((await cb.req('GET', '/v2/queues/hello/stats')).json.messages.total, 1, 'B sees what A wrote')

  // From now on new queues can only go to the pool we are about to add.
  t.equal((await ca.req('PATCH', '/v2/pools/default', { body: { weight: 0 }, admin: true })).status, 200)
  let probes = 0
  await waitFor(async () => (await cb.req('PUT', `/v2/queues/probe-${probes++}`)).status === 503, { what: 'B refusing new queues' })

  const put = await ca.req('PUT', '/v2/pools/extra', { body: { weight: 1, uri: `${extra.url}?durability=fast` }, admin: true })
  t.equal(put.status, 201)
  const added = performance.now()
  // Two clocks: when B first places a new queue on the new pool (the catalog change reached B's
  // pool set), and when B first serves a post on it (B's supervisor also had to start the pool's
  // worker, from its spare process).
  const cat = await RedisCatalog.open({ host: '127.0.0.1', port: catalog.port, prefix: 'two:' })
  t.teardown(() => cat.close())
  let routed = 0
  let used = 0
  let attempts = 0
  const statuses = new Set<number>()
  while (used === 0 && performance.now() - added < 15_000) {
    attempts++
    const r = await cb.req('POST', `/v2/queues/fresh-${attempts}/messages`, { body: { messages: [{ body: attempts }] } })
    statuses.add(r.status)
    if (routed === 0 && (await cat.getPlacement({ project: ca.project, queue: `fresh-${attempts}` })) === 'extra') routed = performance.now() - added
    if (r.status === 201) used = performance.now() - added
    else await new Promise((r) => setTimeout(r, 20))
  }
  t.comment(`pool added through A: B placed a queue on it after ${Math.round(routed)} ms, served a post on it after ${Math.round(used)} ms`)
  t.ok(routed > 0 && routed <= 1000, `B routes new queues to the pool within 1 s (${Math.round(routed)} ms)`)
  t.ok(used > 0 && used <= 10_000, `and serves them once its worker is up (${Math.round(used)} ms)`)
  t.same([...statuses].filter((s) => s !== 201 && s !== 503), [], 'meanwhile only retryable 503s')
  const inExtra = await queuesWithMessages(redisClient(t, extra.port))
  t.ok(inExtra.has(`${ca.project}/fresh-${attempts}`), "the message is in the new pool's Redis")
  // A's own supervisor starts its worker for the new pool on its own schedule: 503 until then.
  let fromA = await ca.req('GET', `/v2/queues/fresh-${attempts}/stats`)
  for (const until = performance.now() + 10_000; fromA.status === 503 && performance.now() < until; ) {
    await new Promise((r) => setTimeout(r, 50))
    fromA = await ca.req('GET', `/v2/queues/fresh-${attempts}/stats`)
  }
  t.equal(fromA.json?.messages?.total, 1, 'and A reads it too')
  const listing = await cb.req('GET', '/v2/queues?limit=20')
  t.ok(
    listing.json.queues.some((q: { name: string }) => q.name === 'hello') &&
      listing.json.queues.some((q: { name: string }) => q.name === `fresh-${attempts}`),
    'B lists queues of both pools',
  )
})
