/**
 * Issue 17's last backlog metrics, through a real `missive serve` on the embedded SQLite store
 * (served by a worker, and inside the proxy with `workers: 0`) and on a Redis pool:
 * - `missive_pool_messages_delayed{pool}`: messages whose delay has not run out, summed by the
 *   background scan from each queue's stats (and `delayed` in the admin top-N listing);
 * - `missive_messages_dead_lettered_total{pool}`: messages a claim moved to a dead-letter queue,
 *   counted where the move happens (the store's driver) and exported under the pool's label.
 * Labels stay per pool: never a queue or a project.
 */
import t from 'tap'
import { startMissive, startRedis, waitFor } from '../helpers/index.js'
import { zaqarClient } from '../helpers/http.js'
import { metricSum as sum } from '../helpers/metrics.js'

const ADMIN = 'delayed-admin-token'

t.setTimeout(240_000)


const CASES = [
  { name: 'sqlite, one worker', store: 'sqlite', workers: undefined },
  { name: 'sqlite, inside the proxy (workers: 0)', store: 'sqlite', workers: '0' },
  { name: 'redis', store: 'redis', workers: undefined },
] as const

for (const c of CASES) {
  t.test(c.name, async (t) => {
    const env: Record<string, string> = { MISSIVE_ADMIN_TOKEN: ADMIN, MISSIVE_METRICS_CACHE_MS: '0' }
    if (c.workers !== undefined) env.MISSIVE_WORKERS = c.workers
    if (c.store === 'redis') env.MISSIVE_DEFAULT_POOL = (await startRedis(t, { appendfsync: 'always' })).url
    const m = await startMissive(t, { env })
    const scrape = async (): Promise<string> => (await fetch(`${m.baseUrl}/metrics`)).text()
    const api = zaqarClient(m.baseUrl, { project: 'tenant-d' })

    t.test('delayed messages per pool, and per queue in the top listing', async (t) => {
      // Delays apply on queues with a default delay (shared/storage/queue-policy.ts, docs/api.md).
      t.equal((await api.req('PUT', '/v2/queues/later', { body: { _default_message_delay: 600 } })).status, 201)
      const posted = await api.req('POST', '/v2/queues/later/messages', { body: { messages: [{ body: 1 }, { body: 2, delay: 0 }, { body: 3, delay: 900 }] } })
      t.equal(posted.status, 201)
      t.equal((await api.req('POST', '/v2/queues/now/messages', { body: { messages: [{ body: 'x' }] } })).status, 201)
      const text = (await waitFor(
        async () => {
          const s = await scrape()
          return sum(s, 'missive_pool_messages', { pool: 'default', state: 'free' }) === 4 && sum(s, 'missive_pool_messages_delayed', { pool: 'default' }) === 2
            ? s
            : undefined
        },
        { timeoutMs: 60_000, intervalMs: 250, what: 'a backlog pass with 4 free messages, 2 of them delayed' },
      ))!
      t.notMatch(text, /missive_pool_messages_delayed\{[^}]*(queue|project)=/, 'no queue or project label')
      const top = await api.req('GET', '/v2/admin/queues/top?by=backlog', { headers: { 'X-Auth-Token': ADMIN } })
      t.equal(top.status, 200)
      t.same(
        top.json.queues.map((q: { name: string; free: number; delayed: number }) => [q.name, q.free, q.delayed]),
        [['later', 3, 2], ['now', 1, 0]],
        'each queue says how many of its free messages are delayed',
      )
    })

    t.test('messages moved to a dead-letter queue, counted per pool', async (t) => {
      const before = await scrape()
      t.equal(sum(before, 'missive_messages_dead_lettered_total', { pool: 'default' }), 0, 'the counter exists at 0')
      t.equal(
        (await api.req('PUT', '/v2/queues/jobs', { body: { _dead_letter_queue: 'jobs-dlq', _max_claim_count: 1 } })).status,
        201,
      )
      t.equal((await api.req('POST', '/v2/queues/jobs/messages', { body: { messages: [{ body: 'a' }, { body: 'b' }, { body: 'c' }] } })).status, 201)
      // First claim: each message claimed once (its count reaches _max_claim_count); released.
      const first = await api.req('POST', '/v2/queues/jobs/claims?limit=3', { body: { ttl: 60, grace: 60 } })
      t.equal(first.status, 201)
      const claimId = String(first.headers.get('location')).split('/').pop()!
      t.equal((await api.req('DELETE', `/v2/queues/jobs/claims/${claimId}`)).status, 204)
      // Second claim: all three are due, moved to jobs-dlq instead of being claimed.
      t.equal((await api.req('POST', '/v2/queues/jobs/claims?limit=3', { body: { ttl: 60, grace: 60 } })).status, 204)
      const dlq = await api.req('GET', '/v2/queues/jobs-dlq/messages?echo=true')
      t.equal(dlq.json?.messages?.length, 3, 'the dead-letter queue holds them')
      const after = await scrape()
      t.equal(sum(after, 'missive_messages_dead_lettered_total', { pool: 'default' }), 3, 'three dead-lettered on pool default')
      t.notMatch(after, /missive_messages_dead_lettered_total\{[^}]*(queue|project)=/, 'no queue or project label')
      // A claim that moves nothing adds nothing.
      t.equal((await api.req('POST', '/v2/queues/jobs/claims', { body: { ttl: 60, grace: 60 } })).status, 204)
      t.equal(sum(await scrape(), 'missive_messages_dead_lettered_total', { pool: 'default' }), 3)
    })
  })
}
