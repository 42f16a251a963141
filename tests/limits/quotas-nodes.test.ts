/**
 * Quotas across nodes (docs/limits.md, "Quotas", "Where quotas are counted"): two whole services
 * (`missive serve`, each with its own supervisor, workers, data directory and port) sharing a
 * Redis catalog and a Redis pool enforce one quota per project and per queue: concurrent posts
 * and queue creations spread over both nodes never overshoot, and an override set through one
 * node is applied by the other once its cache lapses.
 */
import t from 'tap'
import { startMissive, startRedis, waitFor } from '../helpers/index.js'
import { zaqarClient } from '../helpers/http.js'

t.setTimeout(120_000)

t.test('two nodes, one Redis catalog and pool: one quota', async (t) => {
  const [poolRedis, catalogRedis] = await Promise.all([startRedis(t, { appendfsync: 'everysec' }), startRedis(t)])
  const config = { adminToken: 'op', quotas: { enabled: true, queuesPerProject: 4, messagesPerQueue: 10 }, rateLimits: { overrideCacheMs: 200 } }
  const env = { MISSIVE_DEFAULT_POOL: poolRedis.url, MISSIVE_CATALOG: `${catalogRedis.url}?prefix=quota:`, MISSIVE_DURABILITY: 'fast' }
  const [a, b] = await Promise.all([startMissive(t, { env, config }), startMissive(t, { env, config })])
  const ca = zaqarClient(a.baseUrl, { timeoutMs: 15_000 })
  const cb = zaqarClient(b.baseUrl, { project: ca.project, timeoutMs: 15_000 })
  const nodes = [ca, cb]
  const one = { messages: [{ body: 'x', ttl: 300 }] }

  t.test('concurrent posts through both nodes: exactly the quota is stored', async (t) => {
    const posts = await Promise.all(Array.from({ length: 40 }, (_, i) => nodes[i % 2]!.req('POST', '/v2/queues/shared/messages', { body: one })))
    const codes = posts.map((r) => r.status)
    t.equal(codes.filter((s) => s === 201).length, 10, `10 stored (${codes.join(' ')})`)
    t.equal(codes.filter((s) => s === 403).length, 30, 'the other 30 refused')
    t.equal(posts.find((r) => r.status === 403)!.json.title, 'Quota exceeded')
    for (const c of nodes) t.equal((await c.req('GET', '/v2/queues/shared/stats')).json.messages.total, 10, 'both nodes see 10')
  })

  t.test('concurrent queue creations through both nodes: exactly the quota is created', async (t) => {
    // The project already has `shared`: 3 more fit.
    const puts = await Promise.all(Array.from({ length: 12 }, (_, i) => nodes[i % 2]!.req('PUT', `/v2/queues/n${i}`)))
    const codes = puts.map((r) => r.status)
    t.equal(codes.filter((s) => s === 201).length, 3, `3 created (${codes.join(' ')})`)
    t.equal(codes.filter((s) => s === 403).length, 9)
    for (const c of nodes) t.equal((await c.req('GET', '/v2/queues?limit=20')).json.queues.length, 4, 'both nodes list 4 queues')
  })

  t.test('an override set through one node is applied by the other', async (t) => {
    const op = zaqarClient(a.baseUrl, { project: 'ops' })
    const put = await op.req('PUT', `/v2/admin/limits/${ca.project}`, { body: { messagesPerQueue: 12 }, headers: { 'X-Auth-Token': 'op' } })
    t.equal(put.status, 200)
    // Node B reads the override once its cached copy (overrideCacheMs: 200) lapses; until then a
    // refused post stores nothing, so polling with posts is safe.
    await waitFor(async () => (await cb.req('POST', '/v2/queues/shared/messages', { body: one })).status === 201, { what: 'node B applies the override', timeoutMs: 10_000 })
    t.equal((await ca.req('POST', '/v2/queues/shared/messages', { body: one })).status, 201, '12 of 12')
    t.equal((await cb.req('POST', '/v2/queues/shared/messages', { body: one })).status, 403, 'the 13th: 403 on B')
    t.equal((await ca.req('POST', '/v2/queues/shared/messages', { body: one })).status, 403, 'and on A')
    t.equal((await ca.req('GET', '/v2/queues/shared/stats')).json.messages.total, 12)
  })
})
