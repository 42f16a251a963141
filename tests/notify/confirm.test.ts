/**
 * `notification.require_confirmation` (docs/notifications.md): Zaqar's confirmation request, with
 * a pre-signed URL the subscriber uses to confirm; only then is it notified; unconfirming sends
 * Zaqar's unsubscribe confirmation. SQLite and Redis pools.
 */
import t from 'tap'
import { startRedis, waitFor } from '../helpers/index.js'
import { startNotifying, startReceiver } from './harness.js'

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`${store}: confirmation through the pre-signed URL Zaqar's way`, async (t) => {
    const uri = store === 'sqlite' ? 'sqlite:' : (await startRedis(t, { appendfsync: 'everysec' })).url
    const n = await startNotifying(t, uri, { require_confirmation: true }, { config: { signed_url: { secret_key: 'confirm-secret' } } })
    const rx = await startReceiver(t)
    const S = '/v2/queues/c/subscriptions'
    const made = await n.client.req('POST', S, { body: { subscriber: `${rx.url}/c`, ttl: 3600 } })
    t.equal(made.status, 201)
    const id = made.json.subscription_id as string
    await waitFor(() => rx.received.length === 1, { what: 'the confirmation request', timeoutMs: 30_000 })
    const ask = JSON.parse(rx.received[0]!.body)
    t.equal(ask.Message_Type, 'SubscriptionConfirmation')
    t.equal(ask.Message, 'You have chosen to subscribe to the queue: c')
    t.equal(ask['URL-Paths'], `/v2/queues/c/subscriptions/${id}/confirm`)
    t.equal(ask['URL-Methods'], 'PUT')
    t.equal(ask['X-Project-ID'], n.client.project)
    t.same([ask.SubscribeBody, ask.UnsubscribeBody], [{ confirmed: true }, { confirmed: false }])

    // Unconfirmed: posts notify nobody yet.
    t.equal((await n.client.req('POST', '/v2/queues/c/messages', { body: { messages: [{ body: 'early' }] } })).status, 201)
    // The subscriber confirms with the signed URL alone.
    const signed = { 'URL-Signature': ask['URL-Signature'], 'URL-Expires': ask['URL-Expires'], 'URL-Methods': ask['URL-Methods'], 'URL-Paths': ask['URL-Paths'] }
    t.equal((await n.client.req('PUT', `${S}/${id}/confirm`, { body: { confirmed: true }, headers: { ...signed } })).status, 204)
    t.equal((await n.client.req('PUT', `${S}/${id}`, { body: { confirmed: true }, headers: { ...signed } })).status, 403, 'the signed URL confirms, nothing else')
    t.equal((await n.client.req('GET', `${S}/${id}`)).json.confirmed, true)
    t.equal((await n.client.req('POST', '/v2/queues/c/messages', { body: { messages: [{ body: 'late' }] } })).status, 201)
    await waitFor(() => rx.received.length === 3, { what: 'both messages once confirmed', timeoutMs: 30_000 })
    t.same(rx.received.slice(1).map((r) => JSON.parse(r.body).body), ['early', 'late'], 'since the subscription was made, once confirmed')

    // Unconfirming: Zaqar's unsubscribe confirmation, and no more notifications.
    t.equal((await n.client.req('PUT', `${S}/${id}/confirm`, { body: { confirmed: false } })).status, 204)
    await waitFor(() => rx.received.length === 4, { what: 'the unsubscribe confirmation', timeoutMs: 30_000 })
    t.equal(JSON.parse(rx.received[3]!.body).Message_Type, 'UnsubscribeConfirmation')
  })
}
