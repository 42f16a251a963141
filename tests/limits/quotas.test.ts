/**
 * Quotas per project (docs/limits.md, "Quotas"), through the HTTP server on the embedded SQLite
 * store and on a Redis pool with a Redis catalog: messages per queue (checked inside the store's
 * atomic post: a post that would exceed is refused whole, large chunked posts included), queues
 * per project (checked where the catalog places a new queue: PUT and lazy creation by a post),
 * per-project overrides through the admin API, concurrent posts and creates never overshooting.
 */
import t from 'tap'
import { zaqarClient, type ZaqarClient } from '../helpers/http.js'
import { backend, startProxy } from '../auth/harness.js'

const msgs = (n: number, tag = 'm') => ({ messages: Array.from({ length: n }, (_, i) => ({ body: `${tag}${i}`, ttl: 300 })) })

/** Every message of `q`, claimed and delayed ones too (the queue's stats). */
async function count(c: ZaqarClient, q: string): Promise<number> {
  const r = await c.req('GET', `/v2/queues/${q}/stats`)
  return r.json.messages.total
}

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`quotas on ${store}`, async (t) => {
    const b = await backend(t, store)
    const p = await startProxy(t, b, { adminToken: 'op', quotas: { enabled: true, queuesPerProject: 3, messagesPerQueue: 5 } })
    const op = zaqarClient(p.base, { project: 'ops' })
    const adm = (method: string, path: string, body?: unknown) => op.req(method, path, { body, headers: { 'X-Auth-Token': 'op' } })

    t.test('messages per queue', async (t) => {
      const a = zaqarClient(p.base)
      t.equal((await a.req('POST', '/v2/queues/q/messages', { body: msgs(3) })).status, 201, '3 of 5')
      t.equal((await a.req('POST', '/v2/queues/q/messages', { body: msgs(2) })).status, 201, '5 of 5: the quota itself is allowed')
      const over = await a.req('POST', '/v2/queues/q/messages', { body: msgs(1) })
      t.equal(over.status, 403, 'the sixth message: 403')
      t.equal(over.json.title, 'Quota exceeded')
      t.match(over.json.description, /Queue q may hold at most 5 messages/)
      t.equal(await count(a, 'q'), 5, 'the refused post stored nothing')

      const whole = await a.req('POST', '/v2/queues/q2/messages', { body: msgs(6) })
      t.equal(whole.status, 403, 'a post of more than the quota into an empty queue: 403')
      t.equal(await count(a, 'q2'), 0, 'refused whole: not the first five')
      t.equal((await a.req('POST', '/v2/queues/q2/messages', { body: msgs(4) })).status, 201)
      t.equal((await a.req('POST', '/v2/queues/q2/messages', { body: msgs(2) })).status, 403, '4 + 2 > 5: refused whole')
      t.equal(await count(a, 'q2'), 4, 'not the first of the two')

      // Consuming makes room: the quota counts the messages a queue holds now.
      const claim = await a.req('POST', '/v2/queues/q/claims?limit=2', { body: { ttl: 60, grace: 60 } })
      t.equal(claim.status, 201)
      t.equal((await a.req('POST', '/v2/queues/q/messages', { body: msgs(1) })).status, 403, 'claimed messages still count')
      for (const m of claim.json.messages as { href: string }[]) t.equal((await a.req('DELETE', m.href)).status, 204, 'claimed message deleted')
      t.equal((await a.req('POST', '/v2/queues/q/messages', { body: msgs(2) })).status, 201, 'two deleted: two fit again')
      t.equal((await a.req('POST', '/v2/queues/q/messages', { body: msgs(1) })).status, 403)

      t.equal((await zaqarClient(p.base).req('POST', '/v2/queues/q/messages', { body: msgs(5) })).status, 201, "another project's queue q has its own count")

      // An idempotent replay of a post that was stored is answered, full queue or not.
      const k = zaqarClient(p.base)
      const first = await k.req('POST', '/v2/queues/k/messages', { body: msgs(5), headers: { 'Idempotency-Key': 'once' } })
      t.equal(first.status, 201)
      const again = await k.req('POST', '/v2/queues/k/messages', { body: msgs(5), headers: { 'Idempotency-Key': 'once' } })
      t.equal(again.status, 201, 'the replay of a stored post: its ids, not 403')
      t.same(again.json.resources, first.json.resources)
    })

    t.test('a large post (written in chunks) is refused whole', async (t) => {
      const a = zaqarClient(p.base)
      t.equal((await adm('PUT', `/v2/admin/limits/${a.project}`, { messagesPerQueue: 300 })).status, 200)
      // 200 messages: more than one bounded store call (POST_CHUNK = 128).
      t.equal((await a.req('POST', '/v2/queues/big/messages', { body: msgs(200) })).status, 201, '200 of 300')
      const r = await a.req('POST', '/v2/queues/big/messages', { body: msgs(200, 'x') })
      t.equal(r.status, 403, '400 > 300: 403')
      t.equal(r.json.title, 'Quota exceeded')
      t.equal(await count(a, 'big'), 200, 'not one chunk of the refused post was stored')
      t.equal((await a.req('POST', '/v2/queues/big/messages', { body: msgs(100, 'y') })).status, 201, 'exactly up to the quota')
      t.equal(await count(a, 'big'), 300)
    })

    t.test('queues per project', async (t) => {
      const a = zaqarClient(p.base)
      for (const q of ['a1', 'a2']) t.equal((await a.req('PUT', `/v2/queues/${q}`)).status, 201, `PUT ${q}`)
      t.equal((await a.req('POST', '/v2/queues/a3/messages', { body: msgs(1) })).status, 201, 'a third queue, created by a post')
      const put = await a.req('PUT', '/v2/queues/a4')
      t.equal(put.status, 403, 'a fourth queue: 403')
      t.equal(put.json.title, 'Quota exceeded')
      t.match(put.json.description, /at most 3 queues/)
      t.equal((await a.req('POST', '/v2/queues/a5/messages', { body: msgs(1) })).status, 403, 'a post to a new queue over the quota: 403')
      const names = (await a.req('GET', '/v2/queues?limit=20')).json.queues.map((q: { name: string }) => q.name)
      t.same(names, ['a1', 'a2', 'a3'], 'nothing was created by the refused calls')
      t.equal((await a.req('PUT', '/v2/queues/a1')).status, 204, 'an existing queue is still reachable (PUT: 204)')
      t.equal((await a.req('POST', '/v2/queues/a2/messages', { body: msgs(1) })).status, 201, 'and posted to')
      t.equal((await a.req('DELETE', '/v2/queues/a2')).status, 204)
      t.equal((await a.req('PUT', '/v2/queues/a4')).status, 201, 'one deleted: one may be created')
      t.equal((await zaqarClient(p.base).req('PUT', '/v2/queues/a4')).status, 201, 'another project has its own count')
    })

    t.test('concurrent creates and posts do not overshoot', async (t) => {
      const a = zaqarClient(p.base)
      const creates = await Promise.all(Array.from({ length: 12 }, (_, i) => a.req(i % 2 ? 'PUT' : 'POST', i % 2 ? `/v2/queues/c${i}` : `/v2/queues/c${i}/messages`, i % 2 ? {} : { body: msgs(1) })))
      const codes = creates.map((r) => r.status)
      t.equal(codes.filter((s) => s === 201).length, 3, `exactly 3 queues created (${codes.join(' ')})`)
      t.equal(codes.filter((s) => s === 403).length, 9, 'the rest refused')
      t.equal((await a.req('GET', '/v2/queues?limit=20')).json.queues.length, 3)

      const posts = await Promise.all(Array.from({ length: 20 }, () => zaqarClient(p.base, { project: a.project }).req('POST', '/v2/queues/c0x/messages', { body: msgs(1) })))
      t.equal(posts.filter((r) => r.status === 403).length, 20, 'the project is at its queue quota: a new queue is refused to all')
      const b2 = zaqarClient(p.base)
      const racing = await Promise.all(Array.from({ length: 20 }, () => zaqarClient(p.base, { project: b2.project }).req('POST', '/v2/queues/r/messages', { body: msgs(1) })))
      t.equal(racing.filter((r) => r.status === 201).length, 5, '20 concurrent posts of one message: exactly 5 stored')
      t.equal(await count(b2, 'r'), 5)
    })

    t.test('overrides through the admin API', async (t) => {
      const a = zaqarClient(p.base)
      const put = await adm('PUT', `/v2/admin/limits/${a.project}`, { queuesPerProject: 1, messagesPerQueue: 2, bytesPerProject: 0 })
      t.equal(put.status, 200)
      t.same(put.json.effective, { requestsPerSecond: 0, requestBurst: 1, messagesPerSecond: 0, messageBurst: 1, queuesPerProject: 1, messagesPerQueue: 2, bytesPerProject: 0 })
      t.same(put.json.defaults.queuesPerProject, 3)
      t.equal((await a.req('POST', '/v2/queues/o1/messages', { body: msgs(2) })).status, 201)
      t.equal((await a.req('POST', '/v2/queues/o1/messages', { body: msgs(1) })).status, 403, 'messagesPerQueue 2 from the override')
      t.equal((await a.req('PUT', '/v2/queues/o2')).status, 403, 'queuesPerProject 1 from the override')
      t.equal((await adm('PUT', `/v2/admin/limits/${a.project}`, { messagesPerQueue: 0 })).status, 200, 'messagesPerQueue 0: no quota')
      t.equal((await a.req('POST', '/v2/queues/o1/messages', { body: msgs(10) })).status, 201, 'no message quota for this project now')
      t.equal((await a.req('PUT', '/v2/queues/o2')).status, 201, 'queuesPerProject absent: the default 3 again')
      t.equal((await adm('DELETE', `/v2/admin/limits/${a.project}`)).status, 204)
      t.equal((await a.req('POST', '/v2/queues/o1/messages', { body: msgs(1) })).status, 403, 'override dropped: the default 5 applies to a queue of 12')
      for (const bad of [{ queuesPerProject: -1 }, { messagesPerQueue: 1.5 }, { messagesPerQueue: 'x' }, { queues: 1 }]) {
        const r = await adm('PUT', `/v2/admin/limits/${a.project}`, bad)
        t.equal(r.status, 400, `override ${JSON.stringify(bad)} → 400`)
        t.equal(r.json.title, 'Invalid request body')
      }
    })
  })
}

t.test('off by default: no quota, and nothing asked of the limits store', async (t) => {
  const b = await backend(t, 'sqlite')
  const p = await startProxy(t, b, { adminToken: 'op' })
  const a = zaqarClient(p.base)
  for (let i = 0; i < 5; i++) t.equal((await a.req('PUT', `/v2/queues/q${i}`)).status, 201)
  t.equal((await a.req('POST', '/v2/queues/q0/messages', { body: msgs(200) })).status, 201)
  t.equal((await a.req('GET', '/v2/admin/limits/x', { headers: { 'X-Auth-Token': 'op' } })).status, 404)
})

t.test('quotas on, rate limits off: no request is counted', async (t) => {
  const b = await backend(t, 'sqlite')
  const p = await startProxy(t, b, { adminToken: 'op', quotas: { enabled: true, messagesPerQueue: 1000 }, rateLimits: { requestsPerSecond: 0.01, requestBurst: 1 } })
  const a = zaqarClient(p.base)
  for (let i = 0; i < 5; i++) t.equal((await a.req('GET', '/v2/queues')).status, 200, 'rateLimits.enabled is false: its rates are not applied')
})
