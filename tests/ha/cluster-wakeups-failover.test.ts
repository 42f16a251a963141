/**
 * A proxy's long-poll wake-ups on a Redis Cluster pool (proxy/long-poll-redis.ts) outlive the
 * node they listen on: the subscriber is on one node of the cluster (ioredis's Cluster client);
 * that node is killed with SIGKILL, and the subscriber must come back on another node, so that a
 * post made through another proxy after the failover still wakes a request parked here (docs/ha.md,
 * "Redis Cluster pools"). Six nodes on loopback (three masters, one replica each), the Redis
 * driver in-process as the other proxy's worker, a real LongPoll and RedisWakeups.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { LongPoll } from '../../proxy/long-poll.js'
import { RedisWakeups } from '../../proxy/long-poll-redis.js'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { createLogger } from '../../shared/log.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import { waitFor } from '../helpers/index.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'

t.setTimeout(120_000)

const OPTS = { clientId: randomUUID(), defaultTtl: 3600, postBytes: 100, queuePolicy: true }

/** The ports of the live nodes with a subscribed client (CLIENT LIST's `sub=`). */
async function subscribedOn(t: { teardown(fn: () => unknown): void }, ports: number[]): Promise<number[]> {
  const out: number[] = []
  for (const port of ports) {
    const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, lazyConnect: true })
    r.on('error', () => {})
    t.teardown(() => r.disconnect())
    try {
      await r.connect()
      const list = String(await r.client('LIST'))
      if (/ sub=[1-9]/.test(list)) out.push(port)
    } catch {
      // A dead node has no subscriber.
    } finally {
      r.disconnect()
    }
  }
  return out
}

t.test("kill -9 the node the wake-ups listen on: they come back on another, and a later post wakes a parked request", async (t) => {
  const cluster = await startRedisCluster(t, { masters: 3, replicasPerMaster: 1, appendfsync: 'everysec', nodeTimeoutMs: 1000 })
  const pool = parseRedisUri(cluster.uri('durability=fast'), 'fast')
  const driver = await RedisDriver.open({ ...pool, gcIntervalMs: 0 })
  t.teardown(() => driver.close())
  const lp = new LongPoll({ perProject: 10, total: 10 })
  const wakeups = new RedisWakeups(pool, lp, createLogger('test', 'silent'))
  t.teardown(() => wakeups.close())
  await wakeups.ready()
  const ports = cluster.nodes.map((n) => n.port)
  const before: number[] = await waitFor(async () => {
    const on = await subscribedOn(t, ports)
    return on.length === 1 ? on : false
  }, { what: 'the subscriber on one node' }) as number[]
  const victim = cluster.nodes.find((n) => n.port === before[0])!

  // A request parked here, woken by a post made elsewhere (the driver, as another proxy's worker).
  const ref: QueueRef = { project: `p-${randomUUID()}`, queue: 'q' }
  let found = false
  let attempts = 0
  const park = (): Promise<boolean> =>
    lp.run(ref, { seconds: 60, consumes: false, hook: undefined, listen: (ms) => driver.listen(ref, ms) }, async () => (attempts++, found), (f) => f)

  // Before the kill, the path works.
  const first = park()
  await waitFor(() => lp.size === 1 && attempts === 2, { what: 'the first request parked' })
  await driver.postMessages(ref, [{ body: '"before"' }], OPTS)
  found = true
  t.equal(await first, true, 'woken by the announcement')
  found = false

  await victim.kill9()
  // Whatever the victim was (a master is replaced by its replica), the cluster serves again.
  await waitFor(async () => (await cluster.masters()).every((m) => m !== victim) && (await cluster.masters()).length === 3, {
    what: 'the cluster serving without the killed node',
    timeoutMs: 30_000,
    intervalMs: 50,
  })
  const after: number[] = await waitFor(async () => {
    const on = await subscribedOn(t, ports.filter((p) => p !== victim.port))
    return on.length === 1 ? on : false
  }, { what: 'the subscriber back on another node', timeoutMs: 30_000, intervalMs: 100 }) as number[]
  t.not(after[0], victim.port, `subscribed again, on :${after[0]} (was :${victim.port})`)

  attempts = 0
  const second = park()
  // The first request's mark still covers the queue: one try, then parked.
  await waitFor(() => lp.size === 1 && attempts === 1, { what: 'the second request parked' })
  // Posts are retried until the queue's master serves (its slot may have been the victim's).
  await waitFor(async () => driver.postMessages(ref, [{ body: '"after"' }], OPTS).then(() => true, () => false), { what: 'a post after the failover', timeoutMs: 30_000 })
  found = true
  // Woken by the announcement, long before the request's 60 s: a lost one would leave it parked.
  await waitFor(() => attempts === 2, { what: 'the parked request woken by the announcement', timeoutMs: 10_000 })
  t.equal(await second, true)
})
