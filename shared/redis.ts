/**
 * Opening an ioredis connection the way every Missive Redis client wants it: connect now, fail
 * fast while disconnected (no offline queue, no retries of a request), and turn "cannot reach"
 * into a 503 naming what was being reached. Callers add their own options (timeouts, pipelining).
 * A Sentinel connection also follows the Sentinels' failover announcements (shared/sentinel-switch.ts);
 * `openRedis` gives that to a client with other settings (the long-poll subscriber). Close what
 * either opened with `closeRedis`.
 */
import { Redis, type RedisOptions } from 'ioredis'
import { unavailable } from './errors.js'
import { SwitchFollower } from './sentinel-switch.js'
import { redisWhere } from './storage/redis-uri.js'

/** The failover follower of each Sentinel connection (closed with it). */
const followers = new WeakMap<Redis, SwitchFollower>()

/**
 * How soon a lost connection to a Sentinel pool's master tries again: every attempt asks a
 * Sentinel for the master first, so a short wait is what notices a failover early (the Sentinels
 * answer the new master from the switch on; a 2 s backoff could leave the pool down up to 2 s
 * longer). Each attempt is one question to a Sentinel and one refused connect: cheap.
 */
const sentinelRetryStrategy = (times: number): number => Math.min(50 * 2 ** Math.min(times, 2), 250)

/**
 * A new ioredis client. A Sentinel one (`options.sentinels`) reconnects with
 * `sentinelRetryStrategy`, whatever `options.retryStrategy` says, and follows the Sentinels'
 * failover announcements (shared/sentinel-switch.ts) until `closeRedis`.
 */
export function openRedis(options: RedisOptions): Redis {
  if (options.sentinels === undefined) return new Redis(options)
  const redis = new Redis({ ...options, retryStrategy: sentinelRetryStrategy })
  if (options.name !== undefined) {
    followers.set(
      redis,
      new SwitchFollower(redis, {
        sentinels: options.sentinels,
        name: options.name,
        sentinelUsername: options.sentinelUsername,
        sentinelPassword: options.sentinelPassword,
        connectTimeout: options.connectTimeout,
      }),
    )
  }
  return redis
}

/** `openRedis`, connected now, failing fast while disconnected (see the top of this file). */
export async function connectRedis(options: RedisOptions, what: string): Promise<Redis> {
  const redis = openRedis({ ...options, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  let lastError: unknown
  redis.on('error', (err) => {
    lastError = err
  })
  try {
    await redis.connect()
  } catch (err) {
    await closeRedis(redis, true)
    // Through Sentinels: name them (ioredis asks them for the master).
    const where = options.sentinels ? `Sentinel ${options.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}` : redisWhere(options)
    throw unavailable(`Cannot reach ${what} at ${where}: ${(err as Error).message ?? String(lastError)}`, 1, err)
  }
  return redis
}

/** Closes a client from `openRedis` or `connectRedis`: QUIT (unless `now`), and its failover follower. */
export async function closeRedis(redis: Redis, now = false): Promise<void> {
  followers.get(redis)?.close()
  if (!now) {
    try {
      await redis.quit()
    } catch {
      // Not connected, or the server went away: disconnected below.
    }
  }
  redis.disconnect()
}
