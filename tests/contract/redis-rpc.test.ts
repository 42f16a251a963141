/**
 * The storage contract through the RPC path on a Redis pool: the proxy's `RpcDriver` → frames
 * over a real Unix socket → `serveRpc` → the Redis driver → a real redis-server.
 */
import t from 'tap'
import { manualClock } from '../../shared/clock.js'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { startRedis } from '../helpers/index.js'
import { overRpc } from './over-rpc.js'
import { runContract } from './suite.js'

const server = await startRedis(t, { appendfsync: 'always' })

await runContract(t, 'redis over rpc', async () => {
  const clock = manualClock()
  return overRpc(await RedisDriver.open({ ...parseRedisUri(server.url, 'durable'), clock }), clock)
})
