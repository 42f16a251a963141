/**
 * The storage contract through the pooled driver (proxy/pooled-driver.ts): the driver every HTTP
 * handler uses, over two real pools with equal weights, so a subtest's queues land on both and
 * every call is routed through the catalog (a real SQLite catalog) and the placement cache.
 * - two SQLite stores, one worker each;
 * - SQLite + Redis (a real redis-server), the Redis pool with two workers (two drivers on one
 *   server, as two worker processes would be), so worker choice is routed too.
 * One manual clock drives every store. A last check proves the runs did spread over both pools.
 */
import { join } from 'node:path'
import t from 'tap'
import { seededRandom } from '../../catalog/placement.js'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import { PooledDriver } from '../../proxy/pooled-driver.js'
import { PoolSet } from '../../proxy/pool-set.js'
import { manualClock } from '../../shared/clock.js'
import { createLogger } from '../../shared/log.js'
import type { CatalogStore } from '../../catalog/contract.js'
import type { DataDriver, QueueRef } from '../../shared/storage/contract.js'
import { RedisDriver } from '../../worker/storage/redis/driver.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { startRedis, tempDir } from '../helpers/index.js'
import { runContract, type ManualClock } from './suite.js'

const server = await startRedis(t, { appendfsync: 'always' })

/** Queues placed per pool, counted over the whole run (the suite deletes them as it goes). */
const placedOn = new Map<string, number>()

/** A pooled driver over `pools` (name → its workers' drivers) and a fresh catalog naming them. */
async function pooled(dir: string, pools: Record<string, DataDriver[]>): Promise<{ driver: PooledDriver; close: () => Promise<void> }> {
  const inner = new SqliteCatalog(join(dir, 'catalog.sqlite'))
  // Counts where queues are placed (the suite deletes them, and their placements, as it goes).
  const catalog: CatalogStore = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'place') {
        return async (ref: QueueRef, pool: string) => {
          const placed = await target.place(ref, pool)
          placedOn.set(placed, (placedOn.get(placed) ?? 0) + 1)
          return placed
        }
      }
      const v = Reflect.get(target, prop) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
  for (const name of Object.keys(pools)) await inner.putPool({ name, uri: `sqlite:${name}.sqlite`, weight: 1, flavor: null, options: {} })
  const set = new PoolSet({
    catalog,
    connector: { key: () => '', open: (p) => pools[p.name]!, close: () => {} },
    defaultPool: Object.keys(pools)[0]!,
    pollMs: 0,
    random: seededRandom(12),
  })
  await set.refresh()
  const driver = new PooledDriver({ pools: set, log: createLogger('test', 'silent') })
  return {
    driver,
    close: async () => {
      await driver.close()
      for (const ds of Object.values(pools)) for (const d of ds) await d.close()
      await inner.close()
    },
  }
}

await runContract(t, 'pooled: sqlite + sqlite', async () => {
  const dir = await tempDir(t, 'missive-pooled-')
  const clock: ManualClock = manualClock()
  const open = (name: string): SqliteDriver => new SqliteDriver({ path: join(dir, `${name}.sqlite`), durability: 'fast', clock })
  const { driver, close } = await pooled(dir, { s1: [open('s1')], s2: [open('s2')] })
  return { driver, clock, close, routes: true }
})

await runContract(t, 'pooled: sqlite + redis (two workers)', async () => {
  const dir = await tempDir(t, 'missive-pooled-')
  const clock: ManualClock = manualClock()
  const redis = async (): Promise<RedisDriver> => RedisDriver.open({ ...parseRedisUri(`${server.url}?durability=durable`, 'durable'), clock })
  const sqlite = new SqliteDriver({ path: join(dir, 'sq.sqlite'), durability: 'fast', clock })
  const { driver, close } = await pooled(dir, { sq: [sqlite], rd: [await redis(), await redis()] })
  return { driver, clock, close, routes: true }
})

t.test('the runs placed queues on both pools of each pair', async (t) => {
  for (const pool of ['s1', 's2', 'sq', 'rd']) t.ok((placedOn.get(pool) ?? 0) > 10, `pool ${pool} received queues (${placedOn.get(pool) ?? 0})`)
})
