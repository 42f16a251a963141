/**
 * Per-project rate limits (docs/limits.md): the token bucket itself, then through the HTTP server
 * on the embedded SQLite store (in-process buckets) and on a Redis pool with a Redis catalog
 * (buckets in Redis, shared by two proxies): 429 + Retry-After + JSON error, projects isolated,
 * per-project overrides through the admin API, messages per second on posts.
 */
import t from 'tap'
import { LocalBuckets } from '../../proxy/limits/bucket.js'
import { zaqarClient } from '../helpers/http.js'
import { backend, startProxy } from '../auth/harness.js'

t.test('token bucket', async (t) => {
  const b = new LocalBuckets()
  t.same([0, 0, 0].map(() => b.take('k', 1, 2, 3, 1000)), [0, 0, 0], 'the burst passes')
  t.equal(b.take('k', 1, 2, 3, 1000), 0.5, 'then refused: half a second to the next token at 2/s')
  t.equal(b.take('k', 1, 2, 3, 1250), 0.25, 'a quarter second later: a quarter second left')
  t.equal(b.take('k', 1, 2, 3, 1500), 0, 'refilled')
  t.equal(b.take('other', 1, 2, 3, 1500), 0, 'keys are separate')
  t.equal(b.take('big', 10, 1, 3, 0), 0, 'more than the burst costs a full bucket and passes when full')
  t.equal(b.take('big', 10, 1, 3, 0), 3, '…and waits for a full bucket again')
  const small = new LocalBuckets(2)
  small.take('a', 1, 1, 1, 0)
  small.take('b', 1, 1, 1, 0)
  t.equal(small.take('c', 1, 1, 1, 0), 0, 'bounded: a third key evicts the oldest')
  t.equal(small.take('a', 1, 1, 1, 0), 0, 'the evicted key starts full again')
})

// Slow rates: nothing refills noticeably while a test runs, so counts are exact.
const LIMITED = { adminToken: 'op', rateLimits: { enabled: true, requestsPerSecond: 0.01, requestBurst: 3, messagesPerSecond: 0.01, messageBurst: 5 } }

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`rate limits on ${store}`, async (t) => {
    const b = await backend(t, store)
    const p = await startProxy(t, b, LIMITED)
    const a = zaqarClient(p.base)
    for (let i = 0; i < 3; i++) t.equal((await a.req('GET', '/v2/queues')).status, 200, `request ${i + 1} of the burst`)
    const refused = await a.req('GET', '/v2/queues')
    t.equal(refused.status, 429, 'over the burst: 429')
    t.equal(refused.json.title, 'Too many requests')
    t.match(refused.json.description, /limit of 0\.01 requests per second/)
    t.ok(Number(refused.headers.get('retry-after')) >= 90, `Retry-After in seconds (${refused.headers.get('retry-after')})`)
    t.equal((await zaqarClient(p.base).req('GET', '/v2/queues')).status, 200, 'another project is not limited by it')

    // An override for one project, through the admin API.
    const op = zaqarClient(p.base, { project: 'ops' })
    const adm = (method: string, path: string, body?: unknown) => op.req(method, path, { body, headers: { 'X-Auth-Token': 'op' } })
    // The operator's own project is limited like any other: lift its limit first (its first request).
    t.equal((await adm('PUT', '/v2/admin/limits/ops', { requestsPerSecond: 0 })).status, 200, 'ops unlimited')
    const put = await adm('PUT', `/v2/admin/limits/${a.project}`, { requestsPerSecond: 1000, requestBurst: 50, messagesPerSecond: 0 })
    t.equal(put.status, 200)
    t.same(put.json.effective, { requestsPerSecond: 1000, requestBurst: 50, messagesPerSecond: 0, messageBurst: 5, queuesPerProject: 0, messagesPerQueue: 0, bytesPerProject: 0 })
    t.equal((await a.req('GET', '/v2/queues')).status, 200, 'the override is in force at once on this proxy')
    t.equal((await a.req('PUT', '/v2/queues/q')).status, 201)
    for (let i = 0; i < 4; i++) {
      t.equal((await a.req('POST', '/v2/queues/q/messages', { body: { messages: Array.from({ length: 25 }, () => ({ body: i, ttl: 300 })) } })).status, 201, `messagesPerSecond 0 in the override: no message limit (post ${i + 1})`)
    }
    t.equal((await adm('DELETE', `/v2/admin/limits/${a.project}`)).status, 204)
    t.same((await adm('GET', `/v2/admin/limits/${a.project}`)).json.override, null, 'override dropped')
    let passed = 0
    while ((await a.req('GET', '/v2/queues')).status === 200 && passed < 10) passed++
    t.ok(passed <= 3, `the default limit is back: ${passed} more requests passed, at most the burst of 3`)
    for (const bad of [{ requestsPerSecond: -1 }, { rps: 1 }, { requestBurst: 'x' }]) {
      const r = await adm('PUT', `/v2/admin/limits/${a.project}`, bad)
      t.equal(r.status, 400, `override ${JSON.stringify(bad)} → 400`)
    }
    t.equal((await zaqarClient(p.base, { project: 'ops2' }).req('GET', `/v2/admin/limits/x`)).status, 403, 'admin only')

    t.test('messages per second', async (t) => {
      const m = zaqarClient(p.base)
      // Requests are unlimited for this project; messages keep the default 0.01/s, burst 5.
      await adm('PUT', `/v2/admin/limits/${m.project}`, { requestsPerSecond: 0 })
      const post = (n: number) => m.req('POST', '/v2/queues/mq/messages', { body: { messages: Array.from({ length: n }, (_, i) => ({ body: i, ttl: 300 })) } })
      t.equal((await post(3)).status, 201, '3 of 5')
      t.equal((await post(2)).status, 201, '5 of 5')
      const r = await post(1)
      t.equal(r.status, 429, 'the sixth message: 429')
      t.match(r.json.description, /0\.01 messages per second/)
      t.ok(r.headers.get('retry-after') !== null, 'Retry-After')
      const listed = await m.req('GET', '/v2/queues/mq/messages?echo=true&limit=20')
      t.equal(listed.json.messages.length, 5, 'the refused post stored nothing')
    })

    if (store === 'redis') {
      t.test('two proxies on one Redis catalog share one bucket per project', async (t) => {
        const q = await startProxy(t, b, LIMITED)
        const c1 = zaqarClient(p.base)
        const c2 = zaqarClient(q.base, { project: c1.project, clientId: c1.clientId })
        t.equal((await c1.req('GET', '/v2/queues')).status, 200)
        t.equal((await c2.req('GET', '/v2/queues')).status, 200)
        t.equal((await c1.req('GET', '/v2/queues')).status, 200)
        t.equal((await c2.req('GET', '/v2/queues')).status, 429, 'the fourth request, on the other proxy: 429')
        t.equal((await c1.req('GET', '/v2/queues')).status, 429, 'and on the first')
      })
    }
  })
}

t.test('off by default: no limit, and the admin API answers 404', async (t) => {
  const b = await backend(t, 'sqlite')
  const p = await startProxy(t, b, { adminToken: 'op' })
  const a = zaqarClient(p.base)
  for (let i = 0; i < 20; i++) t.equal((await a.req('GET', '/v2/queues')).status, 200)
  t.equal((await a.req('GET', '/v2/admin/limits/x', { headers: { 'X-Auth-Token': 'op' } })).status, 404)
})
