// Long polling (`wait`) on claims and listings (docs/api.md, "Long polling"), on both stores: a
// parked request is answered by a post from another connection, or empty once its wait is over;
// bad values are 400; waiters are bounded per project and in all; a client that goes away
// leaves nothing parked; on Redis, a post made by another process (its own driver) wakes it too.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { RedisWakeups } from '../../proxy/long-poll-redis.js'
import { createLogger } from '../../shared/log.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { openDriver } from '../../worker/storage/index.js'
import { startRedis, tempDir, waitFor, within, type Teardown } from '../helpers/index.js'
import { sentinelClient, startSentinelGroup } from '../ha/topology.js'
import { postedChannel, postedMessage } from '../../shared/storage/posted.js'
import { startHarness, type Harness, type Resp } from './harness.js'

async function stores(t: Teardown): Promise<[string, string][]> {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  return [
    ['sqlite', 'sqlite:'],
    ['redis', `${redis.url}/0`],
  ]
}

const post = (h: Harness, q: string, body: unknown, headers?: Record<string, string>) =>
  h.req('POST', `/v2/queues/${q}/messages`, { body: { messages: [{ body, ttl: 300 }] }, ...(headers && { headers }) })

/** Resolves once `n` requests are registered with the server's long-poll table. */
const parked = (h: Harness, n: number) => waitFor(() => h.longPoll.size === n, { what: `${n} parked request(s)` })

/** A request that must be answered well before its own wait ends: null when it is not. */
const soon = (p: Promise<Resp>) => within(p, 5_000)

t.test('a parked claim is answered by a post from another connection', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, {}, uri)
      t.equal((await h.req('PUT', '/v2/queues/lp')).status, 201)
      const marker = randomUUID()
      const claim = h.req('POST', '/v2/queues/lp/claims?wait=20', { body: { ttl: 60 }, timeoutMs: 30_000 })
      await parked(h, 1)
      const started = performance.now()
      t.equal((await post(h, 'lp', { marker })).status, 201)
      const c = await soon(claim)
      t.comment(`${store}: claim answered ${(performance.now() - started).toFixed(1)} ms after the post's 201`)
      t.ok(c, 'answered long before its 20 s wait ends')
      t.equal(c!.status, 201)
      t.same(
        c!.json.messages.map((m: { body: { marker: string } }) => m.body.marker),
        [marker],
        'with the message posted after the claim started',
      )
      t.equal(h.longPoll.size, 0, 'nothing left parked')
    })
  }
})

t.test('a parked listing is answered by a post; echo rules still apply', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, {}, uri)
      const list = h.req('GET', '/v2/queues/lq/messages?wait=20', { timeoutMs: 30_000 })
      await parked(h, 1)
      // Our own post is not visible to us without echo: the listing stays parked.
      t.equal((await post(h, 'lq', 'mine')).status, 201)
      await waitFor(() => h.longPoll.size === 1, { what: 'the listing still parked after a post it cannot see' })
      const other = randomUUID()
      t.equal((await post(h, 'lq', 'theirs', { 'Client-ID': other })).status, 201)
      const r = await soon(list)
      t.ok(r, 'answered long before its wait ends')
      t.equal(r!.status, 200)
      t.same(
        r!.json.messages.map((m: { body: string }) => m.body),
        ['theirs'],
        "another client's message, not our own",
      )
      // A listing does not consume: the message is still there to claim.
      t.equal((await h.req('POST', '/v2/queues/lq/claims?limit=5')).json.messages.length, 2)
    })
  }
})

t.test('nothing posted: the wait ends with the usual empty answer, not before', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, {}, uri)
      // A post to another queue of the project, and to the same queue in another project, wake nothing.
      let halfway = false
      const timer = setTimeout(() => (halfway = true), 500)
      t.teardown(() => clearTimeout(timer))
      const claim = h.req('POST', '/v2/queues/idle/claims?wait=1')
      const list = h.req('GET', '/v2/queues/idle/messages?wait=1&echo=true')
      await parked(h, 2)
      t.equal((await post(h, 'other', 1)).status, 201)
      t.equal((await post(h, 'idle', 1, { 'X-Project-ID': `p-${randomUUID()}` })).status, 201)
      const [c, l] = await Promise.all([claim, list])
      t.ok(halfway, 'answered after a timer of half the wait fired')
      t.equal(c.status, 204, 'claim: 204 as without wait')
      t.equal(c.text, '')
      t.equal(l.status, 200)
      t.same(l.json, { messages: [], links: [] }, 'listing: empty page as without wait')
      t.equal(h.longPoll.size, 0)
    })
  }
})

t.test('a message already there is answered at once; a post wakes one parked claim per message', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, {}, uri)
      await post(h, 'now', 'ready')
      const r = await h.req('POST', '/v2/queues/now/claims?wait=20', { timeoutMs: 30_000 })
      t.equal(r.status, 201)
      t.equal(h.longPoll.size, 0, 'never parked')

      const claims = [0, 1, 2].map(() => h.req('POST', '/v2/queues/few/claims?wait=20&limit=1', { timeoutMs: 30_000 }))
      let answered = 0
      for (const c of claims) void c.then(() => answered++)
      await parked(h, 3)
      await post(h, 'few', 'one')
      await waitFor(() => answered === 1, { what: 'one claim answered' })
      t.equal(h.longPoll.size, 2, 'the other two still wait')
      t.equal((await h.req('POST', '/v2/queues/few/messages', { body: { messages: [{ body: 'two' }, { body: 'three' }] } })).status, 201)
      const all = await soon(Promise.all(claims).then((rs) => rs[0]!))
      t.ok(all, 'both woken by a post of two')
      const bodies = (await Promise.all(claims)).map((c) => c.json.messages[0].body).sort()
      t.same(bodies, ['one', 'three', 'two'], 'each message claimed once')
    })
  }
})

t.test('a released claim wakes a parked claim', async (t) => {
  const h = await startHarness(t)
  await post(h, 'rel', 'again')
  const first = await h.req('POST', '/v2/queues/rel/claims')
  t.equal(first.status, 201)
  const waiting = h.req('POST', '/v2/queues/rel/claims?wait=20', { timeoutMs: 30_000 })
  await parked(h, 1)
  t.equal((await h.req('DELETE', first.headers.get('location')!)).status, 204)
  const r = await soon(waiting)
  t.equal(r?.status, 201)
  t.equal(r?.json.messages[0].body, 'again')
})

t.test('bad wait values are 400, before anything waits', async (t) => {
  const h = await startHarness(t, { longPollMaxWait: 5 })
  for (const path of ['/v2/queues/bad/claims', '/v2/queues/bad/messages']) {
    const method = path.endsWith('claims') ? 'POST' : 'GET'
    for (const wait of ['-1', '6', 'abc', '1.5', '', '99999999999999999999']) {
      const r = await h.req(method, `${path}?wait=${wait}`)
      if (wait === '') {
        t.not(r.status, 400, `${method} wait= (blank) is no wait at all`)
        continue
      }
      t.equal(r.status, 400, `${method} wait=${wait}`)
      t.ok(r.json.title && r.json.description, `${method} wait=${wait}: a JSON error`)
    }
    t.equal((await h.req(method, `${path}?wait=6`)).json.description, 'The "wait" parameter must be at least 0 and may not be greater than 5.')
    t.match((await h.req(method, `${path}?wait=abc`)).json, { title: 'Invalid parameter' })
    t.ok([200, 204].includes((await h.req(method, `${path}?wait=0`)).status), `${method} wait=0 answers at once`)
  }
  const off = await startHarness(t, { longPollMaxWait: 0 })
  t.equal((await off.req('POST', '/v2/queues/bad/claims?wait=1')).status, 400, 'longPollMaxWait 0: no waiting at all')
  t.equal(h.longPoll.size + off.longPoll.size, 0)
})

t.test('waiters are bounded per project and in all: 429 with Retry-After', async (t) => {
  const h = await startHarness(t, { longPollMaxWaitersPerProject: 2, longPollMaxWaiters: 3 })
  const other = { 'X-Project-ID': `p-${randomUUID()}` }
  const held = [
    h.req('POST', '/v2/queues/b1/claims?wait=20', { timeoutMs: 30_000 }),
    h.req('GET', '/v2/queues/b2/messages?wait=20&echo=true', { timeoutMs: 30_000 }),
  ]
  await parked(h, 2)
  const r = await h.req('POST', '/v2/queues/b3/claims?wait=1')
  t.equal(r.status, 429, 'a third of the same project')
  t.equal(r.headers.get('retry-after'), '1')
  t.match(r.json, { title: 'Too many requests', description: /No more than 2 requests of a project/ })
  t.equal((await h.req('POST', '/v2/queues/b3/claims')).status, 204, 'without wait it is served')
  held.push(h.req('POST', '/v2/queues/b1/claims?wait=20', { headers: other, timeoutMs: 30_000 }))
  await parked(h, 3)
  const full = await h.req('POST', '/v2/queues/b1/claims?wait=1', { headers: { 'X-Project-ID': `p-${randomUUID()}` } })
  t.equal(full.status, 429, 'the server-wide bound')
  t.match(full.json.description, /Too many requests are waiting/)
  // Release them all: one post per queue.
  await post(h, 'b1', 1)
  await post(h, 'b1', 2, other)
  await post(h, 'b2', 3)
  const done = await soon(Promise.all(held).then((rs) => rs[0]!))
  t.ok(done, 'all three answered')
  t.same((await Promise.all(held)).map((x) => x.status), [201, 200, 201])
  t.equal(h.longPoll.size, 0)
})

t.test('a client that goes away leaves nothing parked', async (t) => {
  const h = await startHarness(t)
  const ac = new AbortController()
  const gone = fetch(`${h.base}/v2/queues/ab/claims?wait=20`, {
    method: 'POST',
    headers: { 'Client-ID': h.clientId, 'X-Project-ID': h.project },
    signal: ac.signal,
  }).catch((err: Error) => err.name)
  await parked(h, 1)
  ac.abort()
  t.equal(await gone, 'AbortError')
  await parked(h, 0)
  // The message is not swallowed by the abandoned claim.
  await post(h, 'ab', 'kept')
  t.equal((await h.req('POST', '/v2/queues/ab/claims')).json.messages[0].body, 'kept')
})

t.test('redis: a post made through another process wakes a parked claim (pool pub/sub)', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  const uri = `${redis.url}/0`
  const h = await startHarness(t, {}, uri)
  const log = createLogger('test', 'silent')
  const wakeups = new RedisWakeups(parseRedisUri(uri, 'fast'), h.longPoll, log)
  t.teardown(() => wakeups.close())
  await wakeups.ready()
  // Another proxy's driver, as its worker would hold it: this proxy sees none of its posts.
  const elsewhere = await openDriver(uri, { dataDir: await tempDir(t), durability: 'fast' })
  t.teardown(() => elsewhere.close())
  // A pool in another database of the same server must not wake this one.
  const otherDb = await openDriver(`${redis.url}/1`, { dataDir: await tempDir(t), durability: 'fast' })
  t.teardown(() => otherDb.close())
  const ref = { project: h.project, queue: 'far' }
  const opts = { clientId: randomUUID(), defaultTtl: 300, postBytes: 10, queuePolicy: true }

  // Every wake-up the subscriber delivers (the HTTP side posts nothing here).
  const heard: string[] = []
  const notify = h.longPoll.notify.bind(h.longPoll)
  h.longPoll.notify = (r, count) => {
    heard.push(`${r.project}/${r.queue}:${count}`)
    notify(r, count)
  }

  const claim = h.req('POST', '/v2/queues/far/claims?wait=20', { timeoutMs: 30_000 })
  await parked(h, 1)
  await otherDb.postMessages(ref, [{ body: '"db1"' }], opts)
  const [id] = await elsewhere.postMessages(ref, [{ body: '"far away"' }], opts)
  const c = await soon(claim)
  t.ok(c, 'answered long before its wait ends')
  t.equal(c!.status, 201)
  t.same(
    c!.json.messages.map((m: { id: string; body: string }) => [m.id, m.body]),
    [[id, 'far away']],
  )
  t.same(heard, [`${h.project}/far:1`], 'one wake-up, from db 0 only (published in order after db 1)')
})

t.test('redis sentinel pool: the wake-up subscription reaches the master through the Sentinels', async (t) => {
  const group = await startSentinelGroup(t, { appendfsync: 'everysec', replicas: 1, sentinels: 1 })
  const h = await startHarness(t)
  const heard: string[] = []
  const notify = h.longPoll.notify.bind(h.longPoll)
  h.longPoll.notify = (r, count) => {
    heard.push(`${r.project}/${r.queue}:${count}`)
    notify(r, count)
  }
  const wakeups = new RedisWakeups(parseRedisUri(group.uri('durability=fast'), 'fast'), h.longPoll, createLogger('test', 'silent'))
  t.teardown(() => wakeups.close())
  await wakeups.ready()
  // What the Redis driver publishes after a post on this pool, sent to the master itself
  // (a subscription on the Sentinel, the first host of the URI, would never see it).
  const master = sentinelClient(t, await group.masterPort())
  t.equal(await master.publish(postedChannel(0), postedMessage({ project: h.project, queue: 'sent' }, 2, ['a', 'b'])), 1, 'one subscriber on the master')
  await waitFor(() => heard.length === 1, { what: 'the wake-up' })
  t.same(heard, [`${h.project}/sent:2`])
})
