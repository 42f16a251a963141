/**
 * Opens the message store a pool URI names (the stores and their URIs: shared/storage/registry.ts):
 * - `sqlite:` (the embedded store, file `<dataDir>/pool-default.sqlite`), `sqlite:<path>`
 *   (relative to dataDir unless absolute) and `sqlite::memory:` (tests);
 * - `redis://[[user]:password@]host[:port][/db][?options]` (the high-throughput store; options
 *   in shared/storage/redis-uri.ts and docs/redis.md).
 *
 * Each driver is imported when a pool of its kind is first opened, so a process loads only the
 * native addons and scripts of the stores it serves.
 */
import type { Clock } from '../../shared/clock.js'
import { MissiveError } from '../../shared/errors.js'
import { ownerOnlyDatabase } from '../../shared/owner-only.js'
import type { DataDriver } from '../../shared/storage/contract.js'
import { parseRedisUri } from '../../shared/storage/redis-uri.js'
import { availableStoreOf, sqlitePath, StoreUriError, type StoreName } from '../../shared/storage/registry.js'

export interface OpenDriverOptions {
  dataDir: string
  durability: 'durable' | 'fast'
  clock?: Clock
}

type Opener = (uri: string, opts: OpenDriverOptions) => Promise<DataDriver>

/** One opener per store of the registry; a store without a driver in this build refuses. */
const OPENERS: Record<StoreName, Opener> = {
  async sqlite(uri, opts) {
    const path = sqlitePath(uri, opts.dataDir)
    const { SqliteDriver } = await import('./sqlite/driver.js')
    try {
      // Message bodies are the tenants' data: owner-only, like the catalog.
      ownerOnlyDatabase(path)
      return new SqliteDriver({ path, durability: opts.durability, clock: opts.clock })
    } catch (err) {
      throw new Error(`cannot open the SQLite store ${path}: ${(err as Error).message}`, { cause: err })
    }
  },
  async redis(uri, opts) {
    const pool = parseRedisUri(uri, opts.durability)
    const { RedisDriver } = await import('./redis/driver.js')
    return RedisDriver.open({ ...pool, clock: opts.clock })
  },
  mongodb() {
    // availableStoreOf refuses it first; kept so the table covers every store of the registry.
    return Promise.reject(new MissiveError('bad_request', 'There is no MongoDB store in this build.'))
  },
}

/**
 * Opens the driver for `uri`. Throws `bad_request` naming the scheme when it is not supported,
 * or when a Redis server's configuration cannot keep the pool's durability promise; throws
 * `unavailable` when a Redis server cannot be reached.
 */
export async function openDriver(uri: string, opts: OpenDriverOptions): Promise<DataDriver> {
  let name: StoreName
  try {
    name = availableStoreOf(uri).name
  } catch (err) {
    if (err instanceof StoreUriError) throw new MissiveError('bad_request', err.reason)
    throw err
  }
  return OPENERS[name](uri, opts)
}
