/**
 * The storage contract against the Redis driver in-process: a real redis-server (AOF,
 * appendfsync always, so the pool's durable promise is verified at connect) on a free loopback
 * port, the suite's manual clock driving the driver.
 */
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { startRedis } from '../helpers/index.js'
import { runContract } from './suite.js'

const server = await startRedis(t, { appendfsync: 'always' })

await runContract(t, 'redis', async () => {
  const clock = manualClock()
  const driver = await RedisDriver.open({ ...parseRedisUri(`${server.url}?durability=durable`, 'durable'), clock })
  return { driver, clock, close: () => driver.close() }
})
