/**
 * The storage contract against the Redis driver on a Redis Cluster pool (docs/ha.md, "Redis
 * Cluster pools"): six real nodes on loopback (three masters, three replicas, AOF `appendfsync
 * always`), `redis+cluster://…?durability=durable&wait=1`, so every write is followed by WAIT on
 * the master that owns its slot. The suite's queues land on every master (their hash tags spread
 * over the slots), and dead-lettering crosses slots through the outbox (worker/storage/redis/claims.ts).
 */
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { startRedisCluster } from '../helpers/redis-cluster.js'
import { runContract } from './suite.js'

t.setTimeout(180_000)
const cluster = await startRedisCluster(t, { appendfsync: 'always' })

await runContract(t, 'redis cluster', async () => {
  const clock = manualClock()
  const driver = await RedisDriver.open({ ...parseRedisUri(cluster.uri('durability=durable&wait=1'), 'durable'), clock })
  return { driver, clock, close: () => driver.close() }
})
