/**
 * The storage contract through the RPC path on a Redis pool: the proxy's `RpcDriver` → frames
 * over a real Unix socket → `serveRpc` → the Redis driver → a real redis-server. The server runs
 * in this process so the suite's manual clock still drives the driver.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { RpcDriver } from '../../proxy/rpc-client.js'
import { manualClock } from '../../shared/clock.js'
import { createLogger } from '../../shared/log.js'
import { serveRpc } from '../../worker/rpc-server.js'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { parseRedisUri } from '../../worker/storage/redis/uri.js'
import { startRedis } from '../helpers/index.js'
import { runContract } from './suite.js'

const server = await startRedis(t, { appendfsync: 'always' })

await runContract(t, 'redis over rpc', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'missive-contract-redis-rpc-'))
  const clock = manualClock()
  const redis = await RedisDriver.open({ ...parseRedisUri(server.url, 'durable'), clock })
  const log = createLogger('test', 'silent')
  const socket = join(dir, 'worker.sock')
  const rpc = await serveRpc(redis, socket, log)
  const driver = new RpcDriver(socket, { timeoutMs: 10_000, log })
  await driver.ready(5000)
  return {
    driver,
    clock,
    close: async () => {
      await driver.close()
      await rpc.close()
      await redis.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})
