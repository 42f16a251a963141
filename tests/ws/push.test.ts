// Push (docs/websocket.md, "Push") with the `ws` client, on both stores: a socket subscribed with
// `subscription_create` (no subscriber) gets each message posted to the queue — over HTTP or
// over another socket — in its subscription's encoding; subscriptions are per socket and end
// with it; a reader that does not keep up is closed (1008) instead of buffered for.
import t from 'tap'
import { RedisWakeups } from '../../proxy/long-poll-redis.js'
import { createLogger } from '../../shared/log.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { openDriver } from '../../worker/storage/index.js'
import { startRedis, tempDir, waitFor, type Teardown } from '../helpers/index.js'
import { startHarness, type Harness } from '../http/harness.js'
import { WsClient } from './client.js'

async function stores(t: Teardown): Promise<[string, string][]> {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  return [
    ['sqlite', 'sqlite:'],
    ['redis', `${redis.url}/0`],
  ]
}

async function open(t: Teardown, h: Harness, project = h.project): Promise<WsClient> {
  const c = await WsClient.open(`${h.base.replace(/^http/, 'ws')}/v2/ws`, project)
  t.teardown(() => c.close())
  return c
}

t.test('each posted message is pushed to the subscribed sockets, as posted', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, {}, uri)
      const sub = await open(t, h)
      const created = await sub.send('subscription_create', { queue_name: 'news', ttl: 600, options: { a: 1 } })
      t.equal(created.headers.status, 201)
      const sid = created.body.subscription_id as string
      t.same(created.body, { subscription_id: sid, message: 'Subscription news created.' })
      t.equal((await sub.send('subscription_create', { queue_name: 'news' })).headers.status, 409, 'once per socket and queue')
      const listed = await sub.send('subscription_list', { queue_name: 'news' })
      t.match(listed.body, { subscriptions: [{ id: sid, source: 'news', ttl: 600, options: { a: 1 } }] })
      t.match((await sub.send('subscription_get', { queue_name: 'news', subscription_id: sid })).body, { id: sid, subscriber: /^ws:\/v2\/ws\// })

      // Binary subscriber of the same queue: pushes in MessagePack.
      const bin = await open(t, h)
      t.equal((await bin.send('subscription_create', { queue_name: 'news' }, { binary: true })).headers.status, 201)
      // Another project's subscriber of a queue with the same name hears nothing.
      const stranger = await open(t, h, `p-stranger-${Date.now()}`)
      t.equal((await stranger.send('subscription_create', { queue_name: 'news' })).headers.status, 201)

      const r = await h.req('POST', '/v2/queues/news/messages', { body: { messages: [{ body: { n: 1 }, ttl: 300 }, { body: 'two' }] } })
      t.equal(r.status, 201)
      const ids = (r.json.resources as string[]).map((href) => href.split('/').pop())
      await sub.until(() => sub.pushes.length === 2, 'two pushes')
      t.same(
        sub.pushes.map((p) => [p.id, p.body, p.queue_name, p.Message_Type, p.binary]),
        [
          [ids[0], { n: 1 }, 'news', 'Notification', false],
          [ids[1], 'two', 'news', 'Notification', false],
        ],
        'in post order, JSON frames',
      )
      t.equal(sub.pushes[0]!.ttl, 300)
      await bin.until(() => bin.pushes.length === 2, 'two binary pushes')
      t.same(bin.pushes.map((p) => [p.id, p.binary]), [[ids[0], true], [ids[1], true]], 'MessagePack frames')

      // A post over a socket: its answer first, then the push.
      const poster = await open(t, h)
      const p = await poster.send('message_post', { queue_name: 'news', messages: [{ body: 'ws' }] })
      await sub.until(() => sub.pushes.length === 3, 'the third push')
      t.equal(sub.pushes[2]!.id, p.body.message_ids[0])

      // Unsubscribed: nothing more. The push of a post is sent before the post's answer reaches
      // anyone else's request, so a request answered after the post proves no push is coming.
      t.equal((await sub.send('subscription_delete', { queue_name: 'news', subscription_id: sid })).headers.status, 204)
      t.equal((await sub.send('subscription_get', { queue_name: 'news', subscription_id: sid })).headers.status, 404)
      await h.req('POST', '/v2/queues/news/messages', { body: { messages: [{ body: 'after' }] } })
      await bin.until(() => bin.pushes.length === 4, 'the binary socket still hears')
      await sub.send('queue_get_stats', { queue_name: 'news' })
      t.equal(sub.pushes.length, 3, 'no push after unsubscribing')
      t.same(stranger.pushes, [], 'other projects hear nothing')

      bin.close()
      await waitFor(() => h.server.websocket!.subscriptions.size === 1, { what: "the closed socket's subscription gone" })
    })
  }
})

t.test("a subscription's ttl ends it: no pushes after, gone from the list, and the socket may subscribe again", async (t) => {
  const h = await startHarness(t)
  const sub = await open(t, h)
  const created = await sub.send('subscription_create', { queue_name: 'brief', ttl: 1 })
  t.equal(created.headers.status, 201)
  t.equal((await h.req('POST', '/v2/queues/brief/messages', { body: { messages: [{ body: 'alive' }] } })).status, 201)
  await sub.until(() => sub.pushes.length === 1, 'the push while the subscription lives')
  // Expiry is seen where subscriptions are read: wait for the list to drop it (about a second).
  await waitFor(async () => ((await sub.send('subscription_list', { queue_name: 'brief' })).body.subscriptions as unknown[]).length === 0, {
    what: 'the subscription to expire',
    intervalMs: 100,
  })
  t.equal((await sub.send('subscription_get', { queue_name: 'brief', subscription_id: created.body.subscription_id })).headers.status, 404)
  t.equal((await h.req('POST', '/v2/queues/brief/messages', { body: { messages: [{ body: 'expired' }] } })).status, 201)
  // A push is sent before the post's answer reaches another request: this answer proves none is coming.
  await sub.send('queue_get_stats', { queue_name: 'brief' })
  t.same(sub.pushes.map((p) => p.body), ['alive'], 'nothing pushed after the ttl')
  t.equal(h.server.websocket!.subscriptions.size, 0, 'nothing held for it')
  t.equal((await sub.send('subscription_create', { queue_name: 'brief', ttl: 600 })).headers.status, 201, 'subscribing again is not a 409')
})

t.test('a slow reader is closed, never buffered for without bound', async (t) => {
  const h = await startHarness(t, { wsMaxBackpressure: 64 * 1024 })
  const slow = await open(t, h)
  const fast = await open(t, h)
  t.equal((await slow.send('subscription_create', { queue_name: 'flood' })).headers.status, 201)
  t.equal((await fast.send('subscription_create', { queue_name: 'flood' })).headers.status, 201)
  // The slow one stops reading: the kernel buffers fill, then uWS's.
  const raw = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
  raw.pause()
  const body = 'x'.repeat(16 * 1024)
  let posts = 0
  while (h.server.websocket!.size === 2 && posts < 2000) {
    const r = await h.req('POST', '/v2/queues/flood/messages', { body: { messages: Array.from({ length: 10 }, () => ({ body })) } })
    if (r.status !== 201) throw new Error(`post ${posts}: ${r.status} ${r.text}`)
    posts++
  }
  t.equal(h.server.websocket!.size, 1, `the slow socket was closed by the server after ${posts} posts`)
  t.ok(posts < 2000, 'well before the posts ran out')
  raw.resume()
  await slow.until(() => slow.closed !== undefined, 'the close frame')
  // The close frame (1008) waits behind the unsent data uWS still holds, and uWS gives up on it:
  // the client usually sees the connection end without it (1006).
  t.ok([1006, 1008].includes(slow.closed!.code), `closed (${slow.closed!.code})`)
  t.ok(slow.pushes.length < posts * 10, `the slow reader got ${slow.pushes.length} of ${posts * 10} pushes before the close`)
  await fast.until(() => fast.pushes.length === posts * 10, 'every push on the fast socket')
  t.equal(fast.pushes.length, posts * 10, 'the reader that keeps up got them all')
  t.equal((await h.req('GET', '/v2/queues/flood/stats')).json.messages.total, posts * 10, 'and every message is still in the queue')
})

t.test('redis: posts made through another proxy are pushed too, each message once', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  const uri = `${redis.url}/0`
  const h = await startHarness(t, {}, uri)
  const subs = h.server.websocket!.subscriptions
  // Wired as proxy/main.ts wires it: the pool's announcements reach long polls and pushes.
  const wakeups = new RedisWakeups(parseRedisUri(uri, 'fast'), h.longPoll, createLogger('test', 'silent'), (ref, ids) => subs.remote(ref, ids))
  t.teardown(() => wakeups.close())
  await wakeups.ready()
  const elsewhere = await openDriver(uri, { dataDir: await tempDir(t), durability: 'fast' })
  t.teardown(() => elsewhere.close())

  const c = await open(t, h)
  t.equal((await c.send('subscription_create', { queue_name: 'far' })).headers.status, 201)
  // Through this proxy: pushed at once; the pool's announcement of the same post is skipped.
  const local = await h.req('POST', '/v2/queues/far/messages', { body: { messages: [{ body: 'here' }] } })
  t.equal(local.status, 201)
  // Through another proxy (its driver announces the ids): read back and pushed, after the echo
  // of the first post, which the pool delivers first.
  const opts = { clientId: c.clientId, defaultTtl: 300, postBytes: 10, queuePolicy: true }
  const ids = await elsewhere.postMessages({ project: h.project, queue: 'far' }, [{ body: '{"n":1}', ttl: 120 }, { body: '"two"' }], opts)
  await c.until(() => c.pushes.length >= 3, 'three pushes')
  t.same(
    c.pushes.map((p) => [p.id, p.body]),
    [
      [local.json.resources[0].split('/').pop(), 'here'],
      [ids[0], { n: 1 }],
      [ids[1], 'two'],
    ],
    'each message once, in order',
  )
  t.equal(c.pushes[1]!.ttl, 120)
  // One more post elsewhere proves nothing else was queued before it.
  const [last] = await elsewhere.postMessages({ project: h.project, queue: 'far' }, [{ body: '"last"' }], opts)
  await c.until(() => c.pushes.length >= 4, 'the fourth push')
  t.equal(c.pushes.length, 4)
  t.equal(c.pushes[3]!.id, last)
})
