/**
 * Subscribers may not reach the operator's network (docs/notifications.md, "Addresses a
 * subscriber may not use"): loopback, private and link-local addresses are refused at creation
 * when literal, and at connect time when a name resolves to one — unless `notification.allow_hosts`
 * lists them. A real receiver on loopback proves the refused requests never arrive.
 */
import t from 'tap'
import { waitFor } from '../helpers/index.js'
import { startNotifying, startReceiver } from './harness.js'

const REFUSED = "The subscriber's address is not allowed: loopback, private and link-local addresses are refused (notification.allow_hosts)."

t.test('refused at creation without the allow-list', async (t) => {
  const n = await startNotifying(t, 'sqlite:', { allow_hosts: [] })
  const S = '/v2/queues/s/subscriptions'
  for (const subscriber of [
    'http://127.0.0.1:8888/v2/pools',
    'http://localhost/x',
    'http://LOCALHOST./x',
    'http://[::1]/x',
    'http://[::ffff:127.0.0.1]/x',
    'http://10.1.2.3/x',
    'http://172.16.0.1/x',
    'http://192.168.1.1/x',
    'http://169.254.169.254/latest/meta-data',
    'http://100.64.0.1/x',
    'http://0.0.0.0/x',
    'https://[fe80::1]/x',
    'http://[fd00::1]/x',
  ]) {
    const r = await n.client.req('POST', S, { body: { subscriber } })
    t.equal(r.status, 400, subscriber)
    t.same(r.json, { title: 'Invalid API request', description: REFUSED }, subscriber)
  }
  const ok = await n.client.req('POST', S, { body: { subscriber: 'https://93.184.216.34/hook' } })
  t.equal(ok.status, 201, 'a public address')
  const patch = await n.client.req('PATCH', `${S}/${ok.json.subscription_id}`, { body: { subscriber: 'http://127.0.0.1/x' } })
  t.same(patch.json, { title: 'Invalid API request', description: REFUSED }, 'PATCH is checked too')
  t.same((await n.client.req('GET', S)).json.subscriptions.map((s: { subscriber: string }) => s.subscriber), ['https://93.184.216.34/hook'])
})

t.test('a name resolving to a forbidden address is refused at connect time, without retries', async (t) => {
  const n = await startNotifying(t, 'sqlite:', { allow_hosts: [] })
  const rx = await startReceiver(t)
  const port = new URL(rx.url).port
  // Stored directly: the API refuses `localhost` itself, but any name may resolve to loopback.
  await n.catalog.createSubscription({ project: n.client.project, queue: 'r', subscriber: `http://localhost:${port}/inside`, ttl: 3600, options: {} }, Date.now())
  t.equal((await n.client.req('POST', '/v2/queues/r/messages', { body: { messages: [{ body: 'secret' }] } })).status, 201)
  await waitFor(() => n.notifier.totals.deadLettered === 1, { what: 'the dead letter', timeoutMs: 30_000 })
  t.same(n.sleeps, [], 'no retry: the address will not change its nature')
  t.equal(rx.received.length, 0, 'nothing reached the receiver')
})

t.test('the allow-list lets an operator reach what it lists', async (t) => {
  const n = await startNotifying(t, 'sqlite:', { allow_hosts: ['localhost', '10.0.0.0/8'] })
  const rx = await startReceiver(t)
  const port = new URL(rx.url).port
  t.equal((await n.client.req('POST', '/v2/queues/a/subscriptions', { body: { subscriber: 'http://10.9.8.7/x' } })).status, 201, 'a listed CIDR')
  t.equal((await n.client.req('POST', '/v2/queues/a/subscriptions', { body: { subscriber: 'http://192.168.0.1/x' } })).status, 400, 'an unlisted one')
  t.equal((await n.client.req('POST', '/v2/queues/l/subscriptions', { body: { subscriber: `http://localhost:${port}/listed` } })).status, 201, 'a listed name')
  t.equal((await n.client.req('POST', '/v2/queues/l/messages', { body: { messages: [{ body: 1 }] } })).status, 201)
  await waitFor(() => rx.received.length === 1, { what: 'the delivery', timeoutMs: 30_000 })
  t.equal(rx.received[0]!.path, '/listed')
})
