/**
 * Issue 17's metrics, through a real `missive serve` on the embedded SQLite store and on a Redis
 * pool: the admin health probe is not tenant traffic; status codes by code; per-pool backlog
 * (free, claimed, queues, oldest age) and the admin top-N queues; the supervisor's own metrics
 * (child state and restarts, its process metrics) merged into the page.
 */
import t from 'tap'
import { startMissive, startRedis, waitFor } from '../helpers/index.js'
import { zaqarClient } from '../helpers/http.js'
import { metricSum as sum } from '../helpers/metrics.js'

const ADMIN = 'backlog-admin-token'

// Two real services (SQLite, Redis), each waiting for a background backlog pass.
t.setTimeout(240_000)


/** True when the page has a sample of `name` with these labels. */
const has = (text: string, name: string, match: Record<string, string>): boolean =>
  text.split('\n').some((l) => l.startsWith(`${name}{`) && Object.entries(match).every(([k, v]) => l.includes(`${k}="${v}"`)))

const COUNTERS = ['missive_messages_posted_total', 'missive_messages_claimed_total', 'missive_messages_deleted_total']

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`${store}: probe, status codes, backlog, top queues, supervisor`, async (t) => {
    const env: Record<string, string> = { MISSIVE_ADMIN_TOKEN: ADMIN, MISSIVE_METRICS_CACHE_MS: '0' }
    // A worker process, whatever the host's CPUs ("auto" may serve a loopback Redis in the proxy):
    // the supervisor's child metrics below count it.
    if (store === 'redis') Object.assign(env, { MISSIVE_DEFAULT_POOL: (await startRedis(t, { appendfsync: 'always' })).url, MISSIVE_WORKERS: '1' })
    const m = await startMissive(t, { env })
    const scrape = async (): Promise<string> => (await fetch(`${m.baseUrl}/metrics`)).text()
    const c = zaqarClient(m.baseUrl, { project: 'tenant-a' })
    const admin = (path: string) => c.req('GET', path, { headers: { 'X-Auth-Token': ADMIN } })

    t.test('the admin health probe is not counted as tenant traffic', async (t) => {
      const before = await scrape()
      const health = await admin('/v2/health')
      t.equal(health.status, 200)
      t.equal(health.json?.default?.operation_status?.post_messages?.succeeded, true, 'the probe posted its messages')
      const after = await scrape()
      for (const name of COUNTERS) t.equal(sum(after, name), sum(before, name), `${name} unchanged by the probe`)
      t.equal((await c.req('POST', '/v2/queues/q1/messages', { body: { messages: [{ body: 1 }, { body: 2 }, { body: 3 }] } })).status, 201)
      t.equal(sum(await scrape(), 'missive_messages_posted_total'), sum(after, 'missive_messages_posted_total') + 3, 'tenant posts are counted')
    })

    t.test('requests are counted by status code as well as class', async (t) => {
      t.equal((await c.req('GET', '/v2/queues/nope/messages/0123456789abcdef01234567')).status, 404)
      const text = await scrape()
      t.ok(sum(text, 'missive_http_requests_total', { method: 'GET', status: '4xx', code: '404' }) >= 1, 'a 404 under code="404"')
      t.equal(sum(text, 'missive_http_requests_total', { route: '/v2/queues/{queue}/messages', method: 'POST', code: '201' }), 1)
      t.equal(sum(text, 'missive_http_requests_total', { route: '/v2/queues/{queue}/messages', method: 'POST', status: '2xx' }), 1, 'the class label stays')
    })

    t.test('per-pool backlog and the top queues', async (t) => {
      t.equal((await c.req('POST', '/v2/queues/q1/claims?limit=1', { body: { ttl: 300, grace: 60 } })).status, 201)
      t.equal((await c.req('POST', '/v2/queues/q2/messages', { body: { messages: [{ body: 'x' }] } })).status, 201)
      // The scan runs in the background: wait for a pass that saw all of it.
      const text = (await waitFor(
        async () => {
          const s = await scrape()
          return sum(s, 'missive_pool_messages', { pool: 'default', state: 'free' }) === 3 &&
            sum(s, 'missive_pool_messages', { pool: 'default', state: 'claimed' }) === 1 &&
            sum(s, 'missive_pool_queues', { pool: 'default' }) === 2
            ? s
            : undefined
        },
        { timeoutMs: 60_000, intervalMs: 250, what: 'a backlog pass with q1 (2 free, 1 claimed) and q2 (1 free)' },
      ))!
      t.ok(has(text, 'missive_pool_oldest_message_age_seconds', { pool: 'default' }), 'oldest age per pool')
      t.ok(has(text, 'missive_pool_backlog_scan_age_seconds', { pool: 'default' }), 'how old the numbers are')
      t.equal(sum(text, 'missive_pool_backlog_unread_queues', { pool: 'default' }), 0)
      t.notMatch(text, /missive_pool_[a-z_]+\{[^}]*(queue|project)=/, 'no queue or project labels')

      const top = await admin('/v2/admin/queues/top?by=backlog&limit=5')
      t.equal(top.status, 200)
      t.same(
        top.json.queues.map((q: { project: string; name: string; free: number; claimed: number }) => [q.project, q.name, q.free, q.claimed]),
        [['tenant-a', 'q1', 2, 1], ['tenant-a', 'q2', 1, 0]],
        'by free messages, most first',
      )
      t.match(top.json.as_of, /^\d{4}-\d\d-\d\dT/)
      const byAge = await admin('/v2/admin/queues/top?by=age&limit=1')
      t.equal(byAge.json.queues.length, 1, 'limit applies')
      t.equal(byAge.json.queues[0].name, 'q1', 'q1 holds the oldest message')
      t.equal((await admin('/v2/admin/queues/top?by=size')).status, 400)
      t.equal((await admin('/v2/admin/queues/top?limit=101')).status, 400)
      t.equal((await c.req('GET', '/v2/admin/queues/top')).status, 403, 'admin only')
    })

    t.test("the supervisor's own metrics: child state, restarts, its process", async (t) => {
      const text = await scrape()
      t.equal(sum(text, 'missive_supervisor_child_up', { child: 'worker-0', process: 'supervisor' }), 1)
      t.equal(sum(text, 'missive_supervisor_child_up', { child: 'proxy', process: 'supervisor' }), 1)
      t.equal(sum(text, 'missive_supervisor_child_restarts_total', { child: 'worker-0', process: 'supervisor' }), 0)
      t.ok(has(text, 'missive_process_resident_memory_bytes', { process: 'supervisor' }), "the supervisor's process metrics")
      const { workers } = await m.children()
      process.kill(workers[0]!, 'SIGKILL')
      const later = await waitFor(
        async () => {
          const s = await scrape()
          return sum(s, 'missive_supervisor_child_restarts_total', { child: 'worker-0' }) === 1 && sum(s, 'missive_supervisor_child_up', { child: 'worker-0' }) === 1 ? s : undefined
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'worker-0 restarted and counted' },
      )
      t.ok(later!.length > 0, 'restart counted, child up again')
    })
  })
}
