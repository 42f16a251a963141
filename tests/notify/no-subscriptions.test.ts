/**
 * The notifier's memory of queues without subscriptions (proxy/notify/notifier.ts, NONE_TRUST_MS;
 * docs/notifications.md, "Delivery"): one read of the catalog's subscription counter keeps every
 * remembered queue trusted for another second, so posts to many queues do not each read the
 * catalog; a subscription made through another proxy (straight into the shared catalog) moves the
 * counter, the memory is dropped at the next read, and the messages posted since are delivered.
 * The notifier's clock is moved, not waited on.
 */
import t from 'tap'
import type { CatalogStore } from '../../catalog/contract.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import { waitFor } from '../helpers/index.js'
import { startNotifying, startReceiver } from './harness.js'

/** Counts the catalog's subscription listings per queue and its counter reads. */
function count(catalog: CatalogStore): { lists: Map<string, number>; versions: number } {
  const seen = { lists: new Map<string, number>(), versions: 0 }
  const list = catalog.listSubscriptions.bind(catalog)
  const version = catalog.subscriptionsVersion.bind(catalog)
  catalog.listSubscriptions = (ref: QueueRef, opts) => {
    seen.lists.set(ref.queue, (seen.lists.get(ref.queue) ?? 0) + 1)
    return list(ref, opts)
  }
  catalog.subscriptionsVersion = () => {
    seen.versions++
    return version()
  }
  return seen
}

t.test('one counter read keeps every queue without subscriptions remembered; a subscription from elsewhere is seen', async (t) => {
  let now = 1_800_000_000_000
  const n = await startNotifying(t, 'sqlite:', {}, { clock: () => now })
  const rx = await startReceiver(t)
  const seen = count(n.catalog)
  const lists = (q: string): number => seen.lists.get(q) ?? 0
  const post = async (q: string, body: unknown): Promise<void> => {
    const r = await n.client.req('POST', `/v2/queues/${q}/messages`, { body: { messages: [{ body }] } })
    t.equal(r.status, 201)
  }

  // The first posts list the queues and read the counter once.
  await post('a', 1)
  await waitFor(() => seen.versions === 1, { what: 'the first counter read' })
  await post('b', 1)
  // A listing that raced the first read records nothing: post again until the memory holds (twice at most).
  for (const q of ['a', 'b']) {
    const before = lists(q)
    await post(q, 2)
    if (lists(q) > before) await post(q, 3)
  }
  const a0 = lists('a')
  const b0 = lists('b')
  for (let i = 0; i < 10; i++) await post(i % 2 ? 'a' : 'b', i)
  t.equal(lists('a'), a0, 'a remembered: no listing')
  t.equal(lists('b'), b0, 'b remembered: no listing')

  // 1.5 s on, the memory is not trusted: a's post lists and reads the counter once, which keeps b too.
  now += 1500
  const v0 = seen.versions
  await post('a', 'late')
  t.equal(lists('a'), a0 + 1, 'a listed once the memory went unverified')
  await waitFor(() => seen.versions === v0 + 1, { what: 'a second counter read' })
  for (let i = 0; i < 5; i++) await post('b', i)
  t.equal(lists('b'), b0, 'b kept by the same read: no listing of its own')
  t.equal(seen.versions, v0 + 1, 'one read for both')

  // Another proxy subscribes to a (the shared catalog, no `subscribed` here). Within the second the
  // memory may be stale; past it, the next post lists, finds it, and delivers what came after.
  await n.catalog.createSubscription({ project: n.client.project, queue: 'a', subscriber: `${rx.url}/a`, ttl: 3600, options: {} }, Date.now())
  await post('a', 'stale window')
  t.equal(lists('a'), a0 + 1, 'within the second, the memory answers')
  now += 1500
  await post('a', 'seen')
  t.equal(lists('a'), a0 + 2, 'past it, a is listed again')
  await waitFor(() => rx.received.length === 2, { what: 'the two messages posted after the subscription', timeoutMs: 30_000 })
  t.same(rx.received.map((r) => JSON.parse(r.body).body), ['stale window', 'seen'])
  // The counter moved: everything remembered was dropped, b included.
  await post('b', 'after')
  t.equal(lists('b'), b0 + 1, 'b listed again: the read found a subscription created')
})
