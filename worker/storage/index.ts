/**
 * Opens the message store a pool URI names:
 * - `sqlite:` (the embedded store, file `<dataDir>/pool-default.sqlite`), `sqlite:<path>`
 *   (relative to dataDir unless absolute) and `sqlite::memory:` (tests);
 * - `redis://[[user]:password@]host[:port][/db][?options]` (the high-throughput store; options
 *   in worker/storage/redis/uri.ts and docs/redis.md). `redis+sentinel://` and
 *   `redis+cluster://` are recognised and refused as not yet supported.
 */
import { isAbsolute, join, resolve } from 'node:path'
import type { Clock } from '../../shared/clock.js'
import { MissiveError } from '../../shared/errors.js'
import { ownerOnlyDatabase } from '../../shared/owner-only.js'
import type { DataDriver } from '../../shared/storage/contract.js'
import { RedisDriver } from './redis/driver.js'
import { isRedisUri, parseRedisUri } from './redis/uri.js'
import { SqliteDriver } from './sqlite/driver.js'

export interface OpenDriverOptions {
  dataDir: string
  durability: 'durable' | 'fast'
  clock?: Clock
}

/** The file a `sqlite:` URI names. */
export function sqlitePath(uri: string, dataDir: string): string {
  const rest = uri.slice('sqlite:'.length)
  if (rest === '') return join(resolve(dataDir), 'pool-default.sqlite')
  if (rest === ':memory:') return rest
  return isAbsolute(rest) ? rest : resolve(dataDir, rest)
}

/**
 * Opens the driver for `uri`. Throws `bad_request` naming the scheme when it is not supported,
 * or when a Redis server's configuration cannot keep the pool's durability promise; throws
 * `unavailable` when a Redis server cannot be reached.
 */
export async function openDriver(uri: string, opts: OpenDriverOptions): Promise<DataDriver> {
  if (uri.startsWith('sqlite:')) {
    const path = sqlitePath(uri, opts.dataDir)
    try {
      // Message bodies are the tenants' data: owner-only, like the catalog.
      ownerOnlyDatabase(path)
      return new SqliteDriver({ path, durability: opts.durability, clock: opts.clock })
    } catch (err) {
      throw new Error(`cannot open the SQLite store ${path}: ${(err as Error).message}`, { cause: err })
    }
  }
  if (isRedisUri(uri)) {
    const pool = parseRedisUri(uri, opts.durability)
    return RedisDriver.open({ ...pool, clock: opts.clock })
  }
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:/.exec(uri)?.[0] ?? uri
  throw new MissiveError('bad_request', `Unsupported storage URI "${scheme}": this build supports sqlite: and redis:// only.`)
}
