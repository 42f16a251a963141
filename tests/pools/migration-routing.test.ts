/**
 * The pooled driver around live-migration fences (proxy/pooled-driver.ts, `#rerouted`): a call
 * that a store refuses with `QueueMoved` is routed again from the catalog — to the new pool after
 * a switch, after a wait while a switch is in flight (503 + Retry-After when the wait runs out),
 * or, when no migration owns the fence, after clearing it by compare-and-set.
 *
 * The pools are real stores — every case runs on SQLite, then on Redis — behind a fence layer
 * written here to the semantics of shared/storage/migration.ts (client operations refused under
 * `moved` and `importing`, having done nothing; `fenceQueue` a compare-and-set; `dropQueueData`
 * keeping a `moved` tombstone and taking an `importing` fence with the data), so each case sets
 * the exact fence it needs. The catalog is a real SQLite catalog; the migration records the
 * driver reads are a fake the test moves through its states. The stores' own fences are checked
 * end to end in tests/migration/.
 */
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import { PooledDriver, type MigrationLookup, type MigrationSummary } from '../../proxy/pooled-driver.js'
import { PoolSet } from '../../proxy/pool-set.js'
import { storageErrorHttp } from '../../proxy/storage-errors.js'
import { MissiveError } from '../../shared/errors.js'
import { createLogger } from '../../shared/log.js'
import type { DataDriver, NewMessage, QueueRef } from '../../shared/storage/contract.js'
import { FenceConflict, QueueMoved } from '../../shared/storage/errors.js'
import type { QueueFence } from '../../shared/storage/migration.js'
import { queueOf, wrapDriver } from '../../shared/storage/operations.js'
import { openDriver } from '../../worker/storage/index.js'
import { startRedis, tempDir, waitFor } from '../helpers/index.js'

/** Operations that a fence never refuses (shared/storage/migration.ts, `MigrationOperations`). */
const MIGRATION_OPS = new Set(['fenceQueue', 'getFence', 'readForMigration', 'readJournal', 'ackJournal', 'importMessages', 'countForMigration', 'dropQueueData'])

interface FencedPool {
  driver: DataDriver
  /** The store itself, fences ignored (what the test inspects). */
  inner: DataDriver
  fences: Map<string, QueueFence>
  /** Client operations the store served (not refused), by name. */
  served: string[]
  /** Fence writes: [token expected, fence set or null]. */
  fenceWrites: [string | null, QueueFence | null][]
  drops: string[]
}

const fkey = (ref: QueueRef): string => `${ref.project}/${ref.queue}`

function fencedPool(inner: DataDriver): FencedPool {
  const fences = new Map<string, QueueFence>()
  const served: string[] = []
  const fenceWrites: FencedPool['fenceWrites'] = []
  const drops: string[] = []
  const driver = wrapDriver(inner, (op, call) => {
    if (MIGRATION_OPS.has(op)) return call
    return (...args) => {
      const ref = queueOf(op, args)
      const fence = ref === undefined ? undefined : fences.get(fkey(ref))
      if (ref !== undefined && fence !== undefined && fence.state !== 'journal') return Promise.reject(new QueueMoved(ref, fence))
      served.push(op)
      return call(...args)
    }
  })
  const ops = {
    async fenceQueue(ref: QueueRef, fence: QueueFence | null, expect: string | null): Promise<void> {
      const cur = fences.get(fkey(ref)) ?? null
      if ((cur?.token ?? null) !== expect) throw new FenceConflict(ref, cur)
      fenceWrites.push([expect, fence])
      if (fence === null) fences.delete(fkey(ref))
      else fences.set(fkey(ref), fence)
    },
    async getFence(ref: QueueRef): Promise<QueueFence | null> {
      return fences.get(fkey(ref)) ?? null
    },
    async dropQueueData(ref: QueueRef, token: string): Promise<void> {
      const cur = fences.get(fkey(ref)) ?? null
      if (cur?.token !== token) throw new FenceConflict(ref, cur)
      drops.push(token)
      await inner.deleteQueue(ref)
      if (cur.state === 'importing') fences.delete(fkey(ref))
    },
  }
  for (const [name, fn] of Object.entries(ops)) Object.defineProperty(driver, name, { value: fn, writable: true, configurable: true })
  return { driver, inner, fences, served, fenceWrites, drops }
}

/** Migration records as the catalog would hold them; the test moves them along. */
class Migrations implements MigrationLookup {
  readonly active = new Map<string, MigrationSummary>()
  readonly switchedIds = new Set<string>()
  lookups = 0
  /** Called on every `switched` lookup (lets a test act between the driver's reads and its writes). */
  onSwitchedLookup: (() => void) | undefined
  async activeMigration(ref: QueueRef): Promise<MigrationSummary | null> {
    this.lookups++
    return this.active.get(fkey(ref)) ?? null
  }
  async switched(id: string): Promise<boolean> {
    this.onSwitchedLookup?.()
    return this.switchedIds.has(id)
  }
}

interface Setup {
  driver: PooledDriver
  pools: PoolSet
  catalog: SqliteCatalog
  a: FencedPool
  b: FencedPool
  migrations: Migrations
  /** What the runner's switch does to the catalog: the placement now names `to`. */
  switchPlacement(ref: QueueRef, to: string): Promise<void>
}

/** The URI of pool `name`'s store in the stores under test (set per store below). */
let storeUri: (name: 'a' | 'b', n: number) => string = () => ''
let setups = 0

async function setup(t: Test, opts: { switchWaitMs?: number } = {}): Promise<Setup> {
  const dir = await tempDir(t, 'missive-mroute-')
  const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'))
  const n = setups++
  for (const name of ['a', 'b'] as const) await catalog.putPool({ name, uri: storeUri(name, n), weight: 1, flavor: null, options: {} })
  const a = fencedPool(await openDriver(storeUri('a', n), { dataDir: dir, durability: 'fast' }))
  const b = fencedPool(await openDriver(storeUri('b', n), { dataDir: dir, durability: 'fast' }))
  const byName = new Map([
    ['a', a],
    ['b', b],
  ])
  const pools = new PoolSet({ catalog, connector: { key: () => '', open: (p) => [byName.get(p.name)!.driver], close: () => {} }, defaultPool: 'a', pollMs: 0 })
  await pools.refresh()
  const migrations = new Migrations()
  const driver = new PooledDriver({ pools, log: createLogger('test', 'silent'), migrations, switchWaitMs: opts.switchWaitMs ?? 10_000, switchPollMs: 2 })
  t.teardown(async () => {
    await driver.close()
    await a.inner.close()
    await b.inner.close()
    await catalog.close()
  })
  const switchPlacement = async (ref: QueueRef, to: string): Promise<void> => {
    await catalog.removePlacement(ref)
    await catalog.place(ref, to)
  }
  return { driver, pools, catalog, a, b, migrations, switchPlacement }
}

const ref: QueueRef = { project: 'p', queue: 'q' }
const POST = { clientId: 'c', defaultTtl: 300, postBytes: 1, queuePolicy: true }
const body = (i: number): NewMessage => ({ body: JSON.stringify({ i }), ttl: 300 })

/** Creates the queue on pool `a` through the driver (so its placement is cached as `a`) with `n` messages. */
async function queueOnA(s: Setup, n: number): Promise<string[]> {
  await s.catalog.place(ref, 'a')
  await s.driver.createQueue(ref, { color: 'red' })
  return n === 0 ? [] : s.driver.postMessages(ref, Array.from({ length: n }, (_, i) => body(i)), POST)
}

/** What the runner's copy does, in short: the queue's messages and metadata now also on `b`. */
async function copyToB(s: Setup): Promise<void> {
  const listing = await s.a.inner.listMessages(ref, { limit: 20, clientId: 'x', echo: true, includeClaimed: true })
  await s.b.inner.createQueue(ref, (await s.a.inner.getQueue(ref)) ?? {})
  if (listing.items.length > 0) await s.b.inner.postMessages(ref, listing.items.map((m) => ({ body: m.body, ttl: m.ttl })), POST)
}

/** Every case, on the stores `storeUri` names. */
async function cases(t: Test): Promise<void> {
  await t.test('after the switch, a proxy whose cache names the old pool is refused there and routed to the new one', async (t) => {
    const s = await setup(t)
    await queueOnA(s, 2)
    await copyToB(s)
    // The switch: the source fenced `moved`, the catalog now names b. This proxy still caches a.
    s.a.fences.set(fkey(ref), { token: 'm1', to: 'b', state: 'moved' })
    await s.switchPlacement(ref, 'b')
    const servedOnA = s.a.served.length

    const ids = await s.driver.postMessages(ref, [body(9)], POST)
    t.equal(ids.length, 1, 'the post succeeds')
    t.equal((await s.b.inner.stats(ref)).total, 3, 'on the new pool')
    t.equal((await s.a.inner.stats(ref)).total, 2, 'nothing was written to the old pool')
    t.equal(s.a.served.length, servedOnA, 'the old pool served nothing more')
    t.equal(s.driver.rerouted, 1)
    t.same(s.a.fenceWrites, [], 'the tombstone is left alone: the queue lives elsewhere')

    // Every kind of call follows, from the same stale start.
    for (const call of [
      () => s.driver.stats(ref),
      () => s.driver.getQueue(ref),
      () => s.driver.createClaim(ref, { ttl: 60, grace: 60, limit: 1 }),
      () => s.driver.listMessages(ref, { limit: 10, clientId: 'c', echo: true, includeClaimed: true }),
      () => s.driver.setQueueMetadata(ref, { color: 'blue' }),
      () => s.driver.purge(ref),
    ]) {
      // A cache naming the old pool again, as in a proxy that has not polled since the switch.
      s.a.fences.delete(fkey(ref))
      await s.catalog.removePlacement(ref)
      await s.catalog.place(ref, 'a')
      await s.pools.poll()
      await s.driver.getQueue(ref)
      s.a.fences.set(fkey(ref), { token: 'm1', to: 'b', state: 'moved' })
      await s.switchPlacement(ref, 'b')
      await call()
    }
    t.same(await s.b.inner.getQueue(ref), { color: 'blue' }, 'the metadata write landed on the new pool')
    t.equal((await s.b.inner.stats(ref)).total, 0, 'and the purge')
    t.same(
      s.a.served.slice(servedOnA).filter((op) => op !== 'getQueue'),
      [],
      'the old pool served nothing but the reads that filled the cache',
    )
    t.same(await s.a.inner.getQueue(ref), { color: 'red' })
    t.equal((await s.a.inner.stats(ref)).total, 2)
    t.equal(s.driver.rerouted, 7)

    await s.driver.deleteQueue(ref)
    t.equal(await s.catalog.getPlacement(ref), null, 'a delete refused on the old pool removes the placement only once done on the new one')
    t.equal(await s.b.inner.getQueue(ref), null)
  })

  await t.test('a call that meets a switch in flight waits for it, then goes to the new pool', async (t) => {
    const s = await setup(t)
    await queueOnA(s, 1)
    await copyToB(s)
    // Switching: source fenced `moved`, the catalog still names a, the migration is active.
    s.migrations.active.set(fkey(ref), { id: 'm1', from: 'a', to: 'b' })
    s.a.fences.set(fkey(ref), { token: 'm1', to: 'b', state: 'moved' })
    let settled = false
    const posts = Array.from({ length: 5 }, (_, i) => s.driver.postMessages(ref, [body(10 + i)], POST))
    const all = Promise.all(posts).finally(() => {
      settled = true
    })
    // The calls are polling: the catalog has been asked several times since they were refused.
    const before = s.migrations.lookups
    await waitFor(() => s.migrations.lookups > before + 20, { what: 'the switch wait polls the catalog' })
    t.equal(settled, false, 'no call was answered during the switch')
    t.equal((await s.a.inner.stats(ref)).total, 1, 'and none wrote to the source')

    await s.switchPlacement(ref, 'b')
    s.migrations.active.delete(fkey(ref))
    t.equal((await all).length, 5, 'every waiting post succeeds once the switch is done')
    t.equal((await s.b.inner.stats(ref)).total, 6, 'on the new pool')
    t.equal((await s.a.inner.stats(ref)).total, 1)
    t.same(s.a.fenceWrites, [], 'the source fence is the runner’s, never touched by the proxy')
  })

  await t.test('calls waiting on one switch share one catalog poll', async (t) => {
    const s = await setup(t)
    await queueOnA(s, 0)
    await copyToB(s)
    s.migrations.active.set(fkey(ref), { id: 'm1', from: 'a', to: 'b' })
    s.a.fences.set(fkey(ref), { token: 'm1', to: 'b', state: 'moved' })
    const posts = Array.from({ length: 20 }, (_, i) => s.driver.postMessages(ref, [body(i)], POST))
    await waitFor(() => s.driver.switchWaiting === 20, { what: 'every call waiting on the switch' })
    t.equal(s.driver.switchPolls, 1, 'twenty waiting calls, one poll of the catalog')
    await s.switchPlacement(ref, 'b')
    s.migrations.active.delete(fkey(ref))
    t.equal((await Promise.all(posts)).length, 20)
    t.equal(s.driver.switchWaiting, 0)
    t.equal((await s.b.inner.stats(ref)).total, 20, 'all on the new pool')
  })

  await t.test('a switch that outlasts the wait surfaces as 503 with Retry-After, and nothing was done', async (t) => {
    const s = await setup(t, { switchWaitMs: 30 })
    await queueOnA(s, 1)
    s.migrations.active.set(fkey(ref), { id: 'm1', from: 'a', to: 'b' })
    s.a.fences.set(fkey(ref), { token: 'm1', to: 'b', state: 'moved' })
    const err = await s.driver.postMessages(ref, [body(1)], POST).then(
      () => null,
      (e: unknown) => e,
    )
    t.ok(err instanceof QueueMoved, 'the refusal is the answer')
    t.ok(s.migrations.lookups >= 3, 'given only after the catalog was read again, and polled while waiting')
    const http = storageErrorHttp(err as QueueMoved)
    t.equal(http.status, 503)
    t.equal((err as MissiveError).retryAfter, 1, 'with Retry-After')
    t.match(http.description, /being moved/)
    t.equal((await s.a.inner.stats(ref)).total, 1, 'nothing was stored')
    t.equal((await s.b.inner.stats(ref)).total, 0)
    t.same(s.a.fenceWrites, [])
  })

  await t.test('a `moved` tombstone on the pool the catalog names, with no active migration, is cleared by compare-and-set', async (t) => {
    await t.test('migration rolled back without lifting the fence: the source data is the queue, kept', async (t) => {
      const s = await setup(t)
      const ids = await queueOnA(s, 3)
      s.a.fences.set(fkey(ref), { token: 'old', to: 'b', state: 'moved' })
      const claim = await s.driver.createClaim(ref, { ttl: 60, grace: 60, limit: 10 })
      t.same(
        claim?.messages.map((m) => m.id),
        ids,
        'the claim is served from the source, every message kept',
      )
      t.same(s.a.fenceWrites, [['old', null]], 'the fence was cleared with its token')
      t.same(s.a.drops, [], 'and no data dropped')
      t.equal(s.driver.staleFencesCleared, 1)
    })

    await t.test('queue moved away (switched) then placed here again: the leftover data is dropped, never seen again', async (t) => {
      const s = await setup(t)
      await queueOnA(s, 3)
      s.a.fences.set(fkey(ref), { token: 'gone', to: 'b', state: 'moved' })
      s.migrations.switchedIds.add('gone')
      const listing = await s.driver.listMessages(ref, { limit: 10, clientId: 'c', echo: true, includeClaimed: true })
      t.same(listing.items, [], 'the old messages do not reappear')
      t.same(s.a.drops, ['gone'], 'they were dropped under the tombstone first')
      t.same(s.a.fenceWrites, [['gone', null]], 'then the tombstone was cleared with its token')
      const [id] = await s.driver.postMessages(ref, [body(7)], POST)
      t.same((await s.a.inner.listMessages(ref, { limit: 10, clientId: 'c', echo: true, includeClaimed: true })).items.map((m) => m.id), [id])
    })

    await t.test('an abandoned `importing` copy is dropped with its fence, never exposed', async (t) => {
      const s = await setup(t)
      await s.catalog.place(ref, 'b')
      await s.b.inner.createQueue(ref, {})
      await s.b.inner.postMessages(ref, [body(1), body(2)], POST)
      s.b.fences.set(fkey(ref), { token: 'abandoned', to: 'b', state: 'importing' })
      t.same(await s.driver.stats(ref), { total: 0, claimed: 0, free: 0, delayed: 0 }, 'the partial copy is not shown')
      t.same(s.b.drops, ['abandoned'])
      t.same(s.b.fenceWrites, [], 'dropping the copy took its fence')
      t.equal(s.b.fences.size, 0)
    })
  })

  await t.test('a stale fence replaced by a newer migration before the clear is never cleared: the call waits for that one', async (t) => {
    const s = await setup(t)
    await queueOnA(s, 1)
    await copyToB(s)
    s.a.fences.set(fkey(ref), { token: 'old', to: 'b', state: 'moved' })
    // Between the driver's catalog read (no migration) and its clear, a new migration switches.
    s.migrations.onSwitchedLookup = () => {
      s.migrations.onSwitchedLookup = undefined
      s.a.fences.set(fkey(ref), { token: 'new', to: 'b', state: 'moved' })
      s.migrations.active.set(fkey(ref), { id: 'new', from: 'a', to: 'b' })
    }
    const post = s.driver.postMessages(ref, [body(5)], POST)
    await waitFor(() => s.a.fences.get(fkey(ref))?.token === 'new' && s.migrations.lookups > 10, { what: 'the call waits on the new migration' })
    t.same(s.a.fenceWrites, [], 'the new fence was not cleared (its token did not match)')
    await s.switchPlacement(ref, 'b')
    s.migrations.active.delete(fkey(ref))
    t.equal((await post).length, 1)
    t.equal((await s.b.inner.stats(ref)).total, 2, 'the post landed on the new pool')
    t.equal((await s.a.inner.stats(ref)).total, 1, 'not on the fenced one')
  })

  await t.test('other errors pass through untouched, with no catalog read', async (t) => {
    const s = await setup(t)
    await queueOnA(s, 1)
    const before = s.migrations.lookups
    const err = await s.driver.deleteMessage(ref, 'nonexistent-id', 'bad-claim').then(
      () => null,
      (e: unknown) => e,
    )
    t.ok(err === null || (err instanceof MissiveError && !(err instanceof QueueMoved)), 'not turned into anything else')
    const renew = await s.driver.renewClaim(ref, '0123456789abcdef01234567', { ttl: 60, grace: 60 }).then(
      () => null,
      (e: unknown) => e,
    )
    t.ok(renew instanceof MissiveError && renew.code === 'not_found', 'a missing claim is still 404')
    t.equal(s.migrations.lookups, before, 'no migration lookup')
    t.equal(s.driver.rerouted, 0)
  })
}

t.test('SQLite stores', async (t) => {
  storeUri = (name) => `sqlite:${name}.sqlite`
  await cases(t)
})

t.test('Redis stores', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'everysec', args: ['--databases', '64'] })
  // Two databases per setup: each case starts on empty stores.
  setups = 0
  storeUri = (name, n) => `${redis.url}/${2 * n + (name === 'a' ? 1 : 2)}?durability=fast`
  await cases(t)
})
