/**
 * At least once across a crash (docs/notifications.md, "Delivery"): the process delivering is
 * SIGKILLed while a receiver holds its request; another process started on the same catalog and
 * store delivers every message. SQLite and Redis pools.
 */
import t from 'tap'
import { exited, startRedis, waitFor } from '../helpers/index.js'
import { startDeliverer, startNotifying, startReceiver } from './harness.js'

for (const store of ['sqlite', 'redis'] as const) {
  t.test(`${store}: kill -9 of the delivering process, then a restart: every message delivered`, async (t) => {
    const uri = store === 'sqlite' ? 'sqlite:' : (await startRedis(t, { appendfsync: 'everysec' })).url
    // This proxy accepts the API calls and delivers nothing itself.
    const n = await startNotifying(t, uri, {}, { serve: false })
    const rx = await startReceiver(t)
    rx.on('/k', () => 'hang')
    t.equal((await n.client.req('POST', '/v2/queues/k/subscriptions', { body: { subscriber: `${rx.url}/k` } })).status, 201)
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const r = await n.client.req('POST', '/v2/queues/k/messages', { body: { messages: [{ body: i }] } })
      t.equal(r.status, 201)
      ids.push(r.json.resources[0].split('/').pop())
    }

    const first = startDeliverer(t, n.dir, uri)
    await waitFor(() => rx.hanging === 1, { what: 'the first deliverer holding a delivery', timeoutMs: 30_000 })
    const gone = exited(first)
    first.kill('SIGKILL')
    await gone
    t.equal(first.signalCode, 'SIGKILL')
    t.equal(rx.received.length, 0, 'nothing was delivered before the kill')

    rx.on('/k', () => 200)
    startDeliverer(t, n.dir, uri)
    await waitFor(() => ids.every((id) => rx.received.some((r) => JSON.parse(r.body).id === id)), { what: 'every message after the restart', timeoutMs: 30_000 })
    t.same(rx.received.map((r) => JSON.parse(r.body).body), [0, 1, 2], 'in order, each once here')
  })
}
