/**
 * The WebSocket API and the HTTP API agree on stored subscriptions (docs/notifications.md,
 * "WebSocket and HTTP subscriptions"): `subscription_create` naming a subscriber creates the
 * subscription HTTP lists; get and delete reach it by id; socket subscriptions stay the socket's.
 */
import t from 'tap'
import { startRedis, type Teardown } from '../helpers/index.js'
import { startHarness } from '../http/harness.js'
import { WsClient } from '../ws/client.js'

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`${store}: stored subscriptions over the WebSocket API`, async (t) => {
    const uri = store === 'sqlite' ? 'sqlite:' : (await startRedis(t as Teardown, { appendfsync: 'everysec' })).url
    const h = await startHarness(t, {}, uri)
    const ws = await WsClient.open(`${h.base.replace(/^http/, 'ws')}/v2/ws`, h.project)
    t.teardown(() => ws.close())

    const made = await ws.send('subscription_create', { queue_name: 'w', subscriber: 'https://hooks.example.com/w', ttl: 600, options: { a: 1 } })
    t.equal(made.headers.status, 201)
    const id = made.body.subscription_id as string
    t.same(made.body, { subscription_id: id, message: 'Subscription w created.' })
    const viaHttp = await h.req('GET', `/v2/queues/w/subscriptions/${id}`)
    t.equal(viaHttp.status, 200)
    t.match(viaHttp.json, { id, source: 'w', subscriber: 'https://hooks.example.com/w', ttl: 600, options: { a: 1 }, confirmed: false })
    t.same((await ws.send('subscription_get', { queue_name: 'w', subscription_id: id })).body, viaHttp.json)

    // Same validation as HTTP, same store.
    const bad = await ws.send('subscription_create', { queue_name: 'w', subscriber: 'ftp://x.example.com' })
    t.equal(bad.headers.status, 400)
    t.equal(bad.body.error, "The subscriber type of subscription must be supported in the list ['http', 'https', 'mailto'].")
    t.equal((await h.req('PUT', `/v2/queues/w/subscriptions/${id}/confirm`, { body: { confirmed: true } })).status, 204)
    t.equal((await ws.send('subscription_create', { queue_name: 'w', subscriber: 'https://hooks.example.com/w' })).headers.status, 409)

    // The socket's own subscription is still the socket's.
    const own = await ws.send('subscription_create', { queue_name: 'w' })
    t.equal(own.headers.status, 201)
    t.match((await ws.send('subscription_get', { queue_name: 'w', subscription_id: own.body.subscription_id })).body, { subscriber: /^ws:/ })
    t.equal((await h.req('GET', `/v2/queues/w/subscriptions/${own.body.subscription_id}`)).status, 404, 'not stored')

    t.equal((await ws.send('subscription_delete', { queue_name: 'w', subscription_id: id })).headers.status, 204)
    t.equal((await h.req('GET', `/v2/queues/w/subscriptions/${id}`)).status, 404)
    t.equal((await ws.send('subscription_get', { queue_name: 'w', subscription_id: id })).headers.status, 404)
  })
}
