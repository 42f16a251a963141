/**
 * Topic delivery keeps the guarantees of queue subscriptions (docs/notifications.md, "Topics"):
 * at least once across a `kill -9` of the delivering process, the retry policy, and
 * `require_confirmation` through a pre-signed URL for the topic's confirm path. A real loopback
 * receiver; SQLite and Redis pools.
 */
import t from 'tap'
import { exited, startRedis, waitFor } from '../helpers/index.js'
import { startDeliverer, startNotifying, startReceiver } from './harness.js'

for (const store of ['sqlite', 'redis'] as const) {
  const uri = async (t: { teardown(fn: () => unknown): void }): Promise<string> => (store === 'sqlite' ? 'sqlite:' : (await startRedis(t, { appendfsync: 'everysec' })).url)

  t.test(`${store}: kill -9 of the process delivering a topic, then a restart: every message to every subscriber`, async (t) => {
    const u = await uri(t)
    // This proxy accepts the API calls and delivers nothing itself.
    const n = await startNotifying(t, u, {}, { serve: false })
    const rx = await startReceiver(t)
    rx.on('/k1', () => 'hang')
    for (const path of ['/k1', '/k2']) t.equal((await n.client.req('POST', '/v2/topics/k/subscriptions', { body: { subscriber: `${rx.url}${path}` } })).status, 201)
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const r = await n.client.req('POST', '/v2/topics/k/messages', { body: { messages: [{ body: i }] } })
      t.equal(r.status, 201)
      ids.push(r.json.resources[0].split('/').pop())
    }
    const first = startDeliverer(t, n.dir, u)
    await waitFor(() => rx.hanging === 1, { what: 'the first deliverer holding a delivery', timeoutMs: 30_000 })
    const gone = exited(first)
    first.kill('SIGKILL')
    await gone
    t.equal(first.signalCode, 'SIGKILL')
    t.notOk(rx.received.some((r) => r.path === '/k1'), '/k1 got nothing before the kill')

    rx.on('/k1', () => 200)
    startDeliverer(t, n.dir, u)
    const every = (path: string) => ids.every((id) => rx.received.some((r) => r.path === path && JSON.parse(r.body).id === id))
    await waitFor(() => every('/k1') && every('/k2'), { what: 'every message to both subscribers after the restart', timeoutMs: 30_000 })
    t.same(rx.received.filter((r) => r.path === '/k1').map((r) => JSON.parse(r.body).body), [0, 1, 2], '/k1: in order, each once here')
    t.ok(rx.received.every((r) => JSON.parse(r.body).topic_name === 'k'))
  })

  t.test(`${store}: retries on a topic follow the topic's retry policy`, async (t) => {
    const n = await startNotifying(t, await uri(t))
    const rx = await startReceiver(t)
    rx.on('/flaky', (_r, k) => (k <= 2 ? 500 : 200))
    const policy = { retries_with_no_delay: 1, minimum_delay_retries: 1, minimum_delay: 2, maximum_delay: 12, maximum_delay_retries: 1, retry_backoff_function: 'linear' }
    t.equal((await n.client.req('PUT', '/v2/topics/r', { body: { _retry_policy: policy } })).status, 201)
    t.equal((await n.client.req('POST', '/v2/topics/r/subscriptions', { body: { subscriber: `${rx.url}/flaky` } })).status, 201)
    t.equal((await n.client.req('POST', '/v2/topics/r/messages', { body: { messages: [{ body: 1 }] } })).status, 201)
    await waitFor(() => rx.received.length === 1, { what: 'the 3rd attempt', timeoutMs: 30_000 })
    t.same(n.sleeps, [0, 2000], "2 failures: the topic metadata's schedule")
    t.equal(n.notifier.totals.failedAttempts, 2)
  })

  t.test(`${store}: confirming a topic subscription through its pre-signed URL`, async (t) => {
    const n = await startNotifying(t, await uri(t), { require_confirmation: true }, { config: { signed_url: { secret_key: 'confirm-secret' } } })
    const rx = await startReceiver(t)
    const S = '/v2/topics/c/subscriptions'
    const made = await n.client.req('POST', S, { body: { subscriber: `${rx.url}/c`, ttl: 3600 } })
    t.equal(made.status, 201)
    const id = made.json.subscription_id as string
    await waitFor(() => rx.received.length === 1, { what: 'the confirmation request', timeoutMs: 30_000 })
    const ask = JSON.parse(rx.received[0]!.body)
    t.equal(ask.Message, 'You have chosen to subscribe to the topic: c')
    t.equal(ask['URL-Paths'], `/v2/topics/c/subscriptions/${id}/confirm`)
    t.equal(ask['X-Project-ID'], n.client.project, "the tenant's project, not the topic namespace")
    t.equal((await n.client.req('POST', '/v2/topics/c/messages', { body: { messages: [{ body: 'early' }] } })).status, 201)
    const signed = { 'URL-Signature': ask['URL-Signature'], 'URL-Expires': ask['URL-Expires'], 'URL-Methods': ask['URL-Methods'], 'URL-Paths': ask['URL-Paths'] }
    t.equal((await n.client.req('PUT', `${S}/${id}/confirm`, { body: { confirmed: true }, headers: signed })).status, 204)
    t.equal((await n.client.req('PUT', `/v2/queues/c/subscriptions/${id}/confirm`, { body: { confirmed: true }, headers: signed })).status, 403, "the topic's URL does not sign the queue's path")
    t.equal((await n.client.req('POST', '/v2/topics/c/messages', { body: { messages: [{ body: 'late' }] } })).status, 201)
    await waitFor(() => rx.received.length === 3, { what: 'both messages once confirmed', timeoutMs: 30_000 })
    t.same(rx.received.slice(1).map((r) => JSON.parse(r.body).body), ['early', 'late'])
  })
}
