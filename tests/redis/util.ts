/** Helpers for the Redis driver's own tests: open a driver on a test server, a raw client. */
import { Redis } from 'ioredis'
import type { Clock } from '../../shared/clock.js'
import { RedisDriver, type RedisDriverOptions } from '../../worker/storage/redis/driver.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import type { RedisProcess, Teardown } from '../helpers/index.js'

/** A driver on `server` (URI options appended as a query), closed in teardown. */
export async function openRedisDriver(
  t: Teardown,
  server: RedisProcess,
  opts: { query?: string; clock?: Clock } & Partial<RedisDriverOptions> = {},
): Promise<RedisDriver> {
  const { query, ...rest } = opts
  const pool = parseRedisUri(`${server.url}${query === undefined ? '' : `?${query}`}`, 'durable')
  const driver = await RedisDriver.open({ ...pool, gcIntervalMs: 0, ...rest })
  t.teardown(() => driver.close())
  return driver
}

/** A plain ioredis client on `server`, closed in teardown. */
export function rawClient(t: Teardown, server: RedisProcess): Redis {
  const redis = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: false, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  return redis
}

/** Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag (or whole key) mod 16384. */
export function keySlot(key: string): number {
  let s = key
  const open = key.indexOf('{')
  if (open !== -1) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) s = key.slice(open + 1, close)
  }
  let crc = 0
  for (const byte of Buffer.from(s, 'utf8')) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % 16384
}
