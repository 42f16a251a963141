/**
 * Topics, v2 (docs/notifications.md, "Topics"; zaqar/transport/wsgi/v2_0/topic.py): the topic
 * API, fan-out of every topic message to every subscriber through a real loopback receiver,
 * topics and queues of the same name kept apart, tenants kept apart, bad input refused with a
 * 4xx. The default pool on the embedded SQLite store and on Redis.
 */
import { createHmac, randomUUID } from 'node:crypto'
import t from 'tap'
import { startRedis, waitFor } from '../helpers/index.js'
import { zaqarClient } from '../helpers/http.js'
import { WsClient } from '../ws/client.js'
import { startNotifying, startReceiver } from './harness.js'

const sign = (secret: string, body: string): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
const PATCH = { 'Content-Type': 'application/openstack-messaging-v2.0-json-patch' }

for (const store of ['sqlite', 'redis'] as const) {
  const uri = async (t: { teardown(fn: () => unknown): void }): Promise<string> => (store === 'sqlite' ? 'sqlite:' : (await startRedis(t, { appendfsync: 'everysec' })).url)

  t.test(`${store}: the topic API`, async (t) => {
    const n = await startNotifying(t, await uri(t))
    const c = n.client
    // Create: 201, then 204; Location is the path.
    const made = await c.req('PUT', '/v2/topics/news', { body: { color: 'blue' } })
    t.equal(made.status, 201)
    t.equal(made.headers.get('location'), '/v2/topics/news')
    t.equal((await c.req('PUT', '/v2/topics/news', { body: { color: 'blue' } })).status, 204)
    t.equal((await c.req('PUT', '/v2/topics/other')).status, 201)
    // GET: the metadata and Zaqar's three topic defaults.
    const got = await c.req('GET', '/v2/topics/news')
    t.equal(got.status, 200)
    t.same(got.json, { color: 'blue', _max_messages_post_size: 262144, _default_message_ttl: 3600, _default_message_delay: 0 })
    // A topic that does not exist reads as empty (Zaqar's topic `get`).
    t.same((await c.req('GET', '/v2/topics/nope')).json, { _max_messages_post_size: 262144, _default_message_ttl: 3600, _default_message_delay: 0 })
    // PATCH (JSON Patch), as for queues; 409 on replacing what is not there; 404 for a missing topic.
    const patched = await c.req('PATCH', '/v2/topics/news', { raw: JSON.stringify([{ op: 'add', path: '/metadata/size', value: 3 }]), headers: PATCH })
    t.equal(patched.status, 200)
    t.same(patched.json, { color: 'blue', size: 3, _max_messages_post_size: 262144, _default_message_ttl: 3600, _default_message_delay: 0 })
    t.equal((await c.req('PATCH', '/v2/topics/news', { raw: JSON.stringify([{ op: 'replace', path: '/metadata/nope', value: 1 }]), headers: PATCH })).status, 409)
    const missing = await c.req('PATCH', '/v2/topics/nope', { raw: JSON.stringify([{ op: 'add', path: '/metadata/a', value: 1 }]), headers: PATCH })
    t.equal(missing.status, 404)
    t.same(missing.json, { title: 'Not found', description: `Topic nope does not exist for project ${c.project}` })
    // List: name order, hrefs under /v2/topics, paging with next links, detailed.
    const page = await c.req('GET', '/v2/topics?limit=1')
    t.equal(page.status, 200)
    t.same(page.json.topics, [{ name: 'news', href: '/v2/topics/news' }])
    const next = page.json.links[0].href as string
    t.match(next, /^\/v2\/topics\?/)
    t.same((await c.req('GET', next)).json.topics.map((x: { name: string }) => x.name), ['other'])
    const detailed = await c.req('GET', '/v2/topics?detailed=true')
    t.same(detailed.json.topics[0].metadata, { color: 'blue', size: 3, _max_messages_post_size: 262144, _default_message_ttl: 3600, _default_message_delay: 0 })
    // Messages: post, list, get, bulk get, delete; hrefs under the topic.
    const posted = await c.req('POST', '/v2/topics/news/messages', { body: { messages: [{ body: { n: 1 } }, { body: 'two', ttl: 120 }] } })
    t.equal(posted.status, 201)
    const hrefs = posted.json.resources as string[]
    t.match(hrefs[0], /^\/v2\/topics\/news\/messages\/[0-9a-f-]+$/)
    const ids = hrefs.map((h) => h.split('/').pop()!)
    const listed = await c.req('GET', '/v2/topics/news/messages?echo=true')
    t.same(listed.json.messages.map((m: { body: unknown }) => m.body), [{ n: 1 }, 'two'])
    t.equal(listed.json.messages[0].href, hrefs[0])
    t.same((await c.req('GET', hrefs[1]!)).json.body, 'two')
    t.equal((await c.req('GET', `/v2/topics/news/messages?ids=${ids.join(',')}`)).json.messages.length, 2)
    // Stats: counts, hrefs under the topic.
    const stats = await c.req('GET', '/v2/topics/news/stats')
    t.equal(stats.json.messages.total, 2)
    t.match(stats.json.messages.oldest.href, /^\/v2\/topics\/news\/messages\//)
    t.equal((await c.req('DELETE', hrefs[0]!)).status, 204)
    t.equal((await c.req('GET', '/v2/topics/news/stats')).json.messages.total, 1)
    // Subscriptions on a topic: create, get (source is the topic), list, patch, confirm, delete.
    const S = '/v2/topics/news/subscriptions'
    const sub = await c.req('POST', S, { body: { subscriber: 'http://hooks.example.com/t', ttl: 600 } })
    t.equal(sub.status, 201)
    const sid = sub.json.subscription_id as string
    t.match((await c.req('GET', `${S}/${sid}`)).json, { id: sid, source: 'news', subscriber: 'http://hooks.example.com/t', ttl: 600, confirmed: false })
    t.same((await c.req('GET', S)).json.subscriptions.map((s: { id: string }) => s.id), [sid])
    t.equal((await c.req('PATCH', `${S}/${sid}`, { body: { ttl: 900 } })).status, 204)
    t.equal((await c.req('PUT', `${S}/${sid}/confirm`, { body: { confirmed: true } })).status, 204)
    t.equal((await c.req('POST', S, { body: { subscriber: 'http://hooks.example.com/t' } })).status, 409, 'a confirmed duplicate conflicts')
    t.equal((await c.req('DELETE', `${S}/${sid}`)).status, 204)
    t.equal((await c.req('GET', `${S}/${sid}`)).status, 404)
    // Purge: messages and subscriptions.
    t.equal((await c.req('POST', S, { body: { subscriber: 'http://hooks.example.com/p' } })).status, 201)
    t.equal((await c.req('POST', '/v2/topics/news/purge')).status, 204)
    t.equal((await c.req('GET', '/v2/topics/news/stats')).json.messages.total, 0)
    t.same((await c.req('GET', S)).json.subscriptions, [])
    // Delete.
    t.equal((await c.req('DELETE', '/v2/topics/news')).status, 204)
    t.same((await c.req('GET', '/v2/topics')).json.topics.map((x: { name: string }) => x.name), ['other'])
  })

  t.test(`${store}: every topic message reaches every subscriber, signed`, async (t) => {
    const n = await startNotifying(t, await uri(t))
    const rx = await startReceiver(t)
    const subs: { path: string; secret: string }[] = []
    for (const path of ['/a', '/b', '/c']) {
      const r = await n.client.req('POST', '/v2/topics/alerts/subscriptions', { body: { subscriber: `${rx.url}${path}` } })
      t.equal(r.status, 201)
      subs.push({ path, secret: r.json.signing_secret })
    }
    const ids: string[] = []
    for (const messages of [[{ body: { n: 1 }, ttl: 300 }], [{ body: 'two' }, { body: [3] }], [{ body: null }]]) {
      const r = await n.client.req('POST', '/v2/topics/alerts/messages', { body: { messages } })
      t.equal(r.status, 201)
      ids.push(...r.json.resources.map((h: string) => h.split('/').pop()))
    }
    await waitFor(() => rx.received.length === 12, { what: '4 messages × 3 subscribers', timeoutMs: 30_000 })
    for (const { path, secret } of subs) {
      const got = rx.received.filter((r) => r.path === path)
      t.same(got.map((r) => JSON.parse(r.body).id), ids, `${path}: every message, in order`)
      t.same(JSON.parse(got[0]!.body), { body: { n: 1 }, ttl: 300, id: ids[0], Message_Type: 'Notification', queue_name: 'alerts', topic_name: 'alerts' })
      for (const r of got) t.equal(r.headers['x-missive-signature'], sign(secret, r.body), `${path}: signed with its secret`)
    }
    // The receiver records a request before its answer reaches the notifier, which counts it then.
    await waitFor(() => n.notifier.totals.delivered === 12, { what: '12 deliveries counted' })
    t.equal(n.notifier.totals.delivered, 12)
  })

  t.test(`${store}: a topic and a queue of the same name never mix`, async (t) => {
    const n = await startNotifying(t, await uri(t))
    const rx = await startReceiver(t)
    const c = n.client
    t.equal((await c.req('PUT', '/v2/queues/same', { body: { kind: 'queue' } })).status, 201)
    t.equal((await c.req('PUT', '/v2/topics/same', { body: { kind: 'topic' } })).status, 201, 'the topic is new although the queue exists')
    t.equal((await c.req('GET', '/v2/queues/same')).json.kind, 'queue')
    t.equal((await c.req('GET', '/v2/topics/same')).json.kind, 'topic')
    t.same((await c.req('GET', '/v2/queues')).json.queues.map((q: { name: string }) => q.name), ['same'])
    t.same((await c.req('GET', '/v2/topics')).json.topics.map((q: { name: string }) => q.name), ['same'])
    t.equal((await c.req('POST', '/v2/queues/same/subscriptions', { body: { subscriber: `${rx.url}/queue` } })).status, 201)
    // The same subscriber on the topic is not a duplicate: another source.
    const ts = await c.req('POST', '/v2/topics/same/subscriptions', { body: { subscriber: `${rx.url}/queue` } })
    t.equal(ts.status, 201)
    t.equal((await c.req('POST', '/v2/topics/same/subscriptions', { body: { subscriber: `${rx.url}/topic` } })).status, 201)
    t.equal((await c.req('GET', '/v2/queues/same/subscriptions')).json.subscriptions.length, 1)
    t.equal((await c.req('GET', '/v2/topics/same/subscriptions')).json.subscriptions.length, 2)
    t.equal((await c.req('GET', `/v2/queues/same/subscriptions/${ts.json.subscription_id}`)).status, 404, "a topic's subscription is not the queue's")
    const q = await c.req('POST', '/v2/queues/same/messages', { body: { messages: [{ body: 'to-queue' }] } })
    const tp = await c.req('POST', '/v2/topics/same/messages', { body: { messages: [{ body: 'to-topic' }] } })
    t.equal((await c.req('GET', '/v2/queues/same/messages?echo=true')).json.messages.map((m: { body: string }) => m.body).join(), 'to-queue')
    t.equal((await c.req('GET', '/v2/topics/same/messages?echo=true')).json.messages.map((m: { body: string }) => m.body).join(), 'to-topic')
    // A message id of one is not found in the other.
    t.equal((await c.req('GET', `/v2/topics/same/messages/${q.json.resources[0].split('/').pop()}`)).status, 404)
    t.equal((await c.req('GET', `/v2/queues/same/messages/${tp.json.resources[0].split('/').pop()}`)).status, 404)
    await waitFor(() => rx.received.length === 3, { what: '3 deliveries', timeoutMs: 30_000 })
    const bodies = (path: string) => rx.received.filter((r) => r.path === path).map((r) => JSON.parse(r.body).body).sort()
    t.same(bodies('/queue'), ['to-queue', 'to-topic'], 'the subscriber of both gets each once')
    t.same(bodies('/topic'), ['to-topic'])
    t.notOk(rx.received.some((r) => JSON.parse(r.body).body === 'to-queue' && JSON.parse(r.body).topic_name !== undefined))
    // Deleting the queue leaves the topic.
    t.equal((await c.req('DELETE', '/v2/queues/same')).status, 204)
    t.equal((await c.req('GET', '/v2/topics/same/stats')).json.messages.total, 1)
    // The claims API is not a topic's (Zaqar routes none).
    t.equal((await c.req('POST', '/v2/topics/same/claims', { body: { ttl: 60, grace: 60 } })).status, 404)
  })

  t.test(`${store}: tenants never see each other's topics`, async (t) => {
    const n = await startNotifying(t, await uri(t))
    const a = n.client
    const b = zaqarClient(a.base, { project: `p-${randomUUID()}` })
    t.equal((await a.req('PUT', '/v2/topics/secret')).status, 201)
    const posted = await a.req('POST', '/v2/topics/secret/messages', { body: { messages: [{ body: 'mine' }] } })
    const sub = await a.req('POST', '/v2/topics/secret/subscriptions', { body: { subscriber: 'http://hooks.example.com/a' } })
    t.same((await b.req('GET', '/v2/topics')).json.topics, [])
    t.same((await b.req('GET', '/v2/topics/secret/messages?echo=true')).json.messages, [])
    t.equal((await b.req('GET', posted.json.resources[0])).status, 404)
    t.equal((await b.req('GET', `/v2/topics/secret/subscriptions/${sub.json.subscription_id}`)).status, 404)
    t.equal((await b.req('GET', '/v2/topics/secret/stats')).json.messages.total, 0)
    // And a tenant's topics are not its queues, nor another tenant's.
    t.same((await a.req('GET', '/v2/queues')).json.queues, [])
    t.equal((await a.req('GET', '/v2/topics/secret/stats')).json.messages.total, 1)
  })

  t.test(`${store}: the tenant's quota of queues applies to its topics, counted apart`, async (t) => {
    const n = await startNotifying(t, await uri(t))
    const c = n.client
    n.storage.queueQuota = (project) => (project === c.project ? 1 : 0)
    t.equal((await c.req('PUT', '/v2/queues/q1')).status, 201)
    t.equal((await c.req('PUT', '/v2/queues/q2')).status, 403, 'the queue quota holds')
    t.equal((await c.req('PUT', '/v2/topics/t1')).status, 201, 'topics are counted apart from queues')
    const over = await c.req('PUT', '/v2/topics/t2')
    t.equal(over.status, 403, "the tenant's quota holds for topics")
    t.same(over.json, { title: 'Quota exceeded', description: `Project ${c.project} may have at most 1 topics (its quota); delete some, or ask for a larger quota.` })
    t.equal((await c.req('POST', '/v2/topics/t3/messages', { body: { messages: [{ body: 1 }] } })).status, 403, 'a post creating a topic too')
    t.equal((await c.req('DELETE', '/v2/topics/t1')).status, 204)
    t.equal((await c.req('PUT', '/v2/topics/t2')).status, 201, 'deleting one makes room')
  })

  t.test(`${store}: bad input is a 4xx`, async (t) => {
    const n = await startNotifying(t, await uri(t))
    const c = n.client
    const badName = await c.req('PUT', '/v2/topics/bad$name')
    t.equal(badName.status, 400)
    t.same(badName.json, { title: 'Invalid topic identification', description: 'The format of the submitted topic name or project id is not valid.' })
    t.equal((await c.req('PUT', `/v2/topics/${'x'.repeat(65)}`)).status, 400)
    t.equal((await c.req('PUT', '/v2/topics/m', { raw: '[1]', headers: { 'Content-Type': 'application/json' } })).status, 400)
    t.equal((await c.req('PUT', '/v2/topics/m', { body: { _default_message_ttl: 1 } })).status, 400)
    t.equal((await c.req('POST', '/v2/topics/m/messages', { body: { messages: [] } })).status, 400)
    t.equal((await c.req('POST', '/v2/topics/m/messages', { raw: '{', headers: { 'Content-Type': 'application/json' } })).status, 400)
    t.equal((await c.req('GET', '/v2/topics?limit=0')).status, 400)
    t.equal((await c.req('PATCH', '/v2/topics/m', { body: [] })).status, 415)
    t.equal((await c.req('POST', '/v2/topics/m/subscriptions', { body: { subscriber: 'ftp://x' } })).status, 400)
    t.equal((await c.req('POST', '/v2/topics/m/subscriptions', { body: {} })).status, 400)
    t.equal((await c.req('POST', '/v2/topics/m/purge', { body: { resource_types: ['claims'] } })).status, 400)
    t.equal((await c.req('GET', '/v1.1/topics')).status, 404, 'v2 only')
    t.equal((await c.req('GET', '/v2/topics/m/messages/x/y')).status, 404)
    // A project may not carry control characters: topics are stored under projects that do. uWS
    // never serves an HTTP request whose header holds one; a WebSocket frame's JSON headers could
    // carry one, and are refused.
    t.equal((await c.req('PUT', '/v2/topics/hidden')).status, 201)
    t.equal((await c.req('POST', '/v2/topics/hidden/messages', { body: { messages: [{ body: 'secret' }] } })).status, 201)
    const ws = await WsClient.open(`${c.base.replace(/^http/, 'ws')}/v2/ws`, `\u0001topics\u0001${c.project}`)
    t.teardown(() => ws.close())
    const smuggled = await ws.send('message_list', { queue_name: 'hidden', echo: true })
    t.equal(smuggled.headers.status, 400, 'WebSocket: refused')
    t.notMatch(JSON.stringify(smuggled.body), /secret/)
  })
}
