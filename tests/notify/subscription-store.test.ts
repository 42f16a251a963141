/**
 * The catalog's subscription methods (catalog/contract.ts, catalog/subscription-record.ts) on both
 * stores: the embedded SQLite catalog and a Redis catalog on a real redis-server. Time is an
 * argument, so expiry is tested without waiting.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import type { CatalogStore } from '../../catalog/contract.js'
import { RedisCatalog } from '../../catalog/stores/redis.js'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import { startRedis, tempDir } from '../helpers/index.js'

type Open = (t: Test) => Promise<CatalogStore>

const stores: [string, Open][] = [
  ['sqlite', async (t) => new SqliteCatalog(join(await tempDir(t, 'missive-subs-'), 'catalog.sqlite'))],
  [
    'redis',
    async (t) => {
      const server = await startRedis(t)
      return RedisCatalog.open({ host: '127.0.0.1', port: server.port, prefix: `t-${randomUUID()}:` })
    },
  ],
]

const T0 = 1_800_000_000_000
const q = { project: 'p1', queue: 'q1' }

for (const [name, open] of stores) {
  t.test(`${name}: subscriptions in the catalog`, async (t) => {
    const c = await open(t)
    t.teardown(() => c.close())

    const v0 = await c.subscriptionsVersion()
    const a = await c.createSubscription({ ...q, subscriber: 'http://a.example/hook', ttl: 60, options: { k: 1 } }, T0)
    t.ok(a.created)
    t.equal(await c.subscriptionsVersion(), v0 + 1, 'a create moves the subscription counter')
    t.equal(a.confirmed, false)
    const got = await c.getSubscription(q, a.id, T0 + 1000)
    t.same(got, {
      id: a.id,
      project: 'p1',
      queue: 'q1',
      subscriber: 'http://a.example/hook',
      ttl: 60,
      expires: T0 + 60_000,
      options: { k: 1 },
      confirmed: false,
      cursor: null,
      created: T0,
    })

    // Same subscriber: the existing one, not a second.
    const dup = await c.createSubscription({ ...q, subscriber: 'http://a.example/hook', ttl: 600, options: {} }, T0 + 2000)
    t.same(dup, { id: a.id, created: false, confirmed: false })
    t.ok(await c.confirmSubscription(q, a.id, true, T0 + 3000))
    t.same(await c.createSubscription({ ...q, subscriber: 'http://a.example/hook', ttl: 600, options: {} }, T0 + 3000), { id: a.id, created: false, confirmed: true })
    t.equal(await c.subscriptionsVersion(), v0 + 1, 'finding the live one does not')

    // Another queue or project sees nothing of it.
    t.equal(await c.getSubscription({ project: 'p2', queue: 'q1' }, a.id, T0), null)
    t.equal(await c.getSubscription({ project: 'p1', queue: 'q2' }, a.id, T0), null)
    t.same(await c.listSubscriptions({ project: 'p2', queue: 'q1' }, { limit: 10, now: T0 }), [])
    t.equal(await c.confirmSubscription({ project: 'p2', queue: 'q1' }, a.id, false, T0), false)
    await c.deleteSubscription({ project: 'p2', queue: 'q1' }, a.id)
    t.not(await c.getSubscription(q, a.id, T0), null, 'a delete through another project deletes nothing')
    // The same subscriber on another queue is another subscription.
    const other = await c.createSubscription({ project: 'p1', queue: 'q2', subscriber: 'http://a.example/hook', ttl: 60, options: {} }, T0)
    t.ok(other.created)

    // Paging in creation order.
    const ids = [a.id]
    for (let i = 0; i < 4; i++) ids.push((await c.createSubscription({ ...q, subscriber: `mailto:u${i}@example.com`, ttl: 3600, options: {} }, T0 + 10 + i)).id)
    const page1 = await c.listSubscriptions(q, { limit: 2, now: T0 + 100 })
    t.same(page1.map((s) => s.id), ids.slice(0, 2))
    const page2 = await c.listSubscriptions(q, { limit: 2, after: page1[1]!.id, now: T0 + 100 })
    t.same(page2.map((s) => s.id), ids.slice(2, 4))
    const page3 = await c.listSubscriptions(q, { limit: 2, after: page2[1]!.id, now: T0 + 100 })
    t.same(page3.map((s) => s.id), ids.slice(4))

    // Update: rename onto a live subscriber is a duplicate; a new ttl restarts the clock.
    t.equal(await c.updateSubscription(q, ids[1]!, { subscriber: 'http://a.example/hook' }, T0 + 200), 'duplicate')
    t.equal((await c.getSubscription(q, ids[1]!, T0 + 200))!.subscriber, 'mailto:u0@example.com', 'unchanged')
    t.equal(await c.updateSubscription(q, ids[1]!, { subscriber: 'https://b.example/x', ttl: 120, options: { z: true } }, T0 + 5000), 'updated')
    t.same(await c.getSubscription(q, ids[1]!, T0 + 5000), {
      id: ids[1],
      project: 'p1',
      queue: 'q1',
      subscriber: 'https://b.example/x',
      ttl: 120,
      expires: T0 + 5000 + 120_000,
      options: { z: true },
      confirmed: false,
      cursor: null,
      created: T0 + 10,
    })
    t.equal(await c.updateSubscription(q, 'nope', { ttl: 120 }, T0), 'not_found')
    // The old subscriber name is free again.
    t.ok((await c.createSubscription({ ...q, subscriber: 'mailto:u0@example.com', ttl: 3600, options: {} }, T0 + 6000)).created)

    // Expiry: after 60 s `a` is gone for every method, and its subscriber can subscribe anew.
    const later = T0 + 60_001
    t.equal(await c.getSubscription(q, a.id, later), null)
    t.equal(await c.confirmSubscription(q, a.id, true, later), false)
    t.equal(await c.updateSubscription(q, a.id, { ttl: 600 }, later), 'not_found')
    t.notOk((await c.listSubscriptions(q, { limit: 20, now: later })).some((s) => s.id === a.id))
    const again = await c.createSubscription({ ...q, subscriber: 'http://a.example/hook', ttl: 60, options: {} }, later)
    t.ok(again.created)
    t.not(again.id, a.id)

    // The notifier's cursor, and the queues with subscriptions (its start-up scan).
    await c.setSubscriptionCursor(q, again.id, '{"s":1}')
    t.equal((await c.getSubscription(q, again.id, later))!.cursor, '{"s":1}')
    await c.setSubscriptionCursor({ project: 'p2', queue: 'q1' }, again.id, 'x')
    t.equal((await c.getSubscription(q, again.id, later))!.cursor, '{"s":1}', 'not through another project')
    t.same(await c.listSubscribedQueues({ limit: 10 }), [q, { project: 'p1', queue: 'q2' }])
    t.same(await c.listSubscribedQueues({ limit: 1 }), [q])
    t.same(await c.listSubscribedQueues({ limit: 10, after: q }), [{ project: 'p1', queue: 'q2' }])
    await c.deleteSubscription({ project: 'p1', queue: 'q2' }, other.id)
    t.same(await c.listSubscribedQueues({ limit: 10 }), [q], 'a queue whose last subscription was deleted')

    await c.deleteSubscription(q, again.id)
    t.equal(await c.getSubscription(q, again.id, later), null)
    t.ok((await c.createSubscription({ ...q, subscriber: 'http://a.example/hook', ttl: 60, options: {} }, later)).created, 'deleting frees the subscriber')
  })
}
