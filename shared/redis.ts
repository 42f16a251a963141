/**
 * Opening an ioredis connection the way every Missive Redis client wants it: connect now, fail
 * fast while disconnected (no offline queue, no retries of a request), and turn "cannot reach"
 * into a 503 naming what was being reached. Callers add their own options (timeouts, pipelining).
 */
import { Redis, type RedisOptions } from 'ioredis'
import { unavailable } from './errors.js'
import { redisWhere } from './storage/redis-uri.js'

export async function connectRedis(options: RedisOptions, what: string): Promise<Redis> {
  const redis = new Redis({ ...options, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  let lastError: unknown
  redis.on('error', (err) => {
    lastError = err
  })
  try {
    await redis.connect()
  } catch (err) {
    redis.disconnect()
    // Through Sentinels: name them (ioredis asks them for the master).
    const where = options.sentinels ? `Sentinel ${options.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}` : redisWhere(options)
    throw unavailable(`Cannot reach ${what} at ${where}: ${(err as Error).message ?? String(lastError)}`, 1, err)
  }
  return redis
}
