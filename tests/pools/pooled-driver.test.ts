/**
 * The pooled driver's placement cache (proxy/pooled-driver.ts, proxy/placement-cache.ts), judged
 * by the catalog reads it makes (a counting wrapper around a real SQLite catalog) over real
 * SQLite pools: negative entries ("no placement") while the default pool is the only pool,
 * dropped when this proxy places the queue and on a catalog version change, bounded, never
 * trusted by writes and never kept with several pools; and per-queue forgetting on delete.
 */
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import type { CatalogStore } from '../../catalog/contract.js'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import { PooledDriver } from '../../proxy/pooled-driver.js'
import { PoolSet } from '../../proxy/pool-set.js'
import { createLogger } from '../../shared/log.js'
import type { DataDriver, QueueRef } from '../../shared/storage/contract.js'
import { SqliteDriver } from '../../worker/storage/sqlite/driver.js'
import { tempDir } from '../helpers/index.js'

interface Setup {
  driver: PooledDriver
  pools: PoolSet
  catalog: SqliteCatalog
  /** getPlacement calls so far. */
  reads: () => number
  addPool: (name: string) => Promise<void>
}

async function setup(t: Test, poolNames: string[], cacheSize?: number): Promise<Setup> {
  const dir = await tempDir(t, 'missive-pooled-')
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'))
  let reads = 0
  const counted: CatalogStore = new Proxy(catalog, {
    get(target, prop) {
      if (prop === 'getPlacement') reads++
      const v = Reflect.get(target, prop) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
  const drivers = new Map<string, DataDriver>()
  const open = (name: string): DataDriver => {
    let d = drivers.get(name)
    if (d === undefined) {
      d = new SqliteDriver({ path: join(dir, `${name}.sqlite`), durability: 'fast' })
      drivers.set(name, d)
    }
    return d
  }
  const addPool = (name: string): Promise<void> => catalog.putPool({ name, uri: `sqlite:${name}.sqlite`, weight: 1, flavor: null, options: {} })
  for (const name of poolNames) await addPool(name)
  const pools = new PoolSet({ catalog: counted, connector: { key: () => '', open: (p) => [open(p.name)], close: () => {} }, defaultPool: poolNames[0]!, pollMs: 0 })
  await pools.refresh()
  const driver = new PooledDriver({ pools, log: createLogger('test', 'silent'), ...(cacheSize !== undefined && { cacheSize }) })
  t.teardown(async () => {
    await driver.close()
    for (const d of drivers.values()) await d.close()
    await catalog.close()
  })
  return { driver, pools, catalog, reads: () => reads, addPool }
}

const ref = (queue: string): QueueRef => ({ project: 'p', queue })

t.test('one pool: "no placement" is cached, bounded, and dropped when this proxy places the queue', async (t) => {
  const s = await setup(t, ['default'], 2)
  const { driver } = s
  t.same(await driver.stats(ref('x')), { total: 0, claimed: 0, free: 0, delayed: 0 }, 'an unplaced queue reads as empty')
  t.equal(s.reads(), 1, 'the first read asks the catalog')
  for (let i = 0; i < 5; i++) await driver.getQueue(ref('x'))
  await driver.listMessages(ref('x'), { limit: 10, clientId: 'c', echo: true, includeClaimed: true })
  t.equal(await driver.createClaim(ref('x'), { ttl: 60, grace: 60, limit: 10 }), null)
  t.equal(s.reads(), 1, 'reads and claims of the unplaced queue are answered from the cache')
  t.same(driver.cached, { placed: 0, unplaced: 1 })

  await driver.purge(ref('x'))
  t.equal(s.reads(), 2, 'a write does not trust a cached "no placement": it asks the catalog')

  await driver.postMessages(ref('x'), [{ body: '1' }], { clientId: 'c', defaultTtl: 60, postBytes: 1, queuePolicy: true })
  t.equal(s.reads(), 3, 'a post asks the catalog before placing')
  t.equal(await s.catalog.getPlacement(ref('x')), 'default', 'and places the queue')
  t.same(driver.cached, { placed: 1, unplaced: 0 }, 'the negative entry made way for the placement')
  t.equal((await driver.stats(ref('x'))).total, 1)
  t.equal(s.reads(), 3, 'then reads hit the cached placement')

  // Bounded: two negative entries at most here; the oldest goes first.
  for (const q of ['a', 'b', 'c']) await driver.stats(ref(q))
  t.equal(s.reads(), 6)
  t.same(driver.cached, { placed: 1, unplaced: 2 })
  await driver.stats(ref('c'))
  t.equal(s.reads(), 6, 'a recent negative entry is kept')
  await driver.stats(ref('a'))
  t.equal(s.reads(), 7, 'the oldest was dropped')
})

t.test('one pool: a catalog version change drops negative entries', async (t) => {
  const s = await setup(t, ['default'])
  await s.driver.stats(ref('y'))
  await s.driver.stats(ref('y'))
  t.equal(s.reads(), 1)
  // Any pool or flavor change bumps the version (here the default pool is written again).
  await s.addPool('default')
  await s.pools.refresh()
  await s.driver.stats(ref('y'))
  t.equal(s.reads(), 2, 'read again after the version changed')
  await s.driver.stats(ref('y'))
  t.equal(s.reads(), 2, 'and cached again: the catalog still has one pool')
})

t.test('several pools: "no placement" is never cached (another proxy may place the queue anywhere)', async (t) => {
  const s = await setup(t, ['default'])
  await s.driver.stats(ref('z'))
  await s.addPool('other')
  await s.pools.refresh()
  for (let i = 0; i < 3; i++) await s.driver.stats(ref('z'))
  t.equal(s.reads(), 4, 'every read of the unplaced queue asks the catalog')
  t.same(s.driver.cached, { placed: 0, unplaced: 0 })
  // What a negative entry would have hidden: the queue placed through another proxy.
  await s.catalog.place(ref('z'), 'other')
  const other = await s.pools.current()
  t.equal(other.pools.length, 2)
  await s.driver.postMessages(ref('z'), [{ body: '1' }], { clientId: 'c', defaultTtl: 60, postBytes: 1, queuePolicy: true })
  t.equal((await s.driver.stats(ref('z'))).total, 1, 'routed to the pool the catalog names')
  t.equal(await s.catalog.getPlacement(ref('z')), 'other')
})

t.test('a queue deleted here or through another proxy is forgotten alone; other changes drop everything', async (t) => {
  const s = await setup(t, ['default', 'second'])
  // Another proxy: its own pool set and pooled driver on the same catalog and stores.
  const other = new PoolSet({ catalog: s.catalog, connector: { key: () => '', open: (p) => s.pools.pools.get(p.name)!, close: () => {} }, defaultPool: 'default', pollMs: 0 })
  await other.refresh()
  const otherDriver = new PooledDriver({ pools: other, log: createLogger('test', 'silent') })
  t.teardown(() => otherDriver.close())

  for (const q of ['a', 'b', 'c', 'd']) await s.driver.createQueue(ref(q), {})
  const before = s.reads()
  const readAll = async (qs: string[]): Promise<void> => {
    for (const q of qs) await s.driver.stats(ref(q))
  }
  await readAll(['a', 'b', 'c', 'd'])
  t.equal(s.reads(), before, 'placements are cached once created')

  await s.driver.deleteQueue(ref('b'))
  t.equal(await s.catalog.getPlacement(ref('b')), null, 'the placement is removed')
  await s.pools.poll()
  await readAll(['a', 'c', 'd'])
  t.equal(s.reads(), before, 'after the next poll the other queues are still cached')
  await s.driver.stats(ref('b'))
  t.equal(s.reads(), before + 1, 'the deleted queue is looked up again')

  await otherDriver.deleteQueue(ref('c'))
  await s.pools.poll()
  await readAll(['a', 'd'])
  t.equal(s.reads(), before + 1, 'a delete through another proxy leaves the rest cached here')
  await s.driver.createQueue(ref('c'), { _flavor: null })
  t.equal(s.reads(), before + 2, 'and forgets that queue: re-creating it reads (and writes) its placement')
  t.equal(await s.catalog.getPlacement(ref('c')) !== null, true)

  await s.catalog.putPool({ name: 'third', uri: 'sqlite:third.sqlite', weight: 0, flavor: null, options: {} })
  await s.pools.poll()
  await readAll(['a', 'c', 'd'])
  t.equal(s.reads(), before + 5, 'a pool change drops every cached placement')
})
