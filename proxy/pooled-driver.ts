/**
 * The pooled driver: one `DataDriver` over every pool, as Zaqar's pooling driver
 * (zaqar/storage/pooling.py) is one over its pools, so the transport cannot tell it from a single
 * store. Each call routes (project, queue) → pool (the catalog's placement, cached:
 * proxy/placement-cache.ts) → the worker of that pool that owns the queue
 * (proxy/worker-choice.ts) → that worker's driver. On top of routing it does what only the
 * whole set of pools can:
 * - `createQueue` and `postMessages` place a queue that has no placement yet (insert-if-absent,
 *   weighted random among the pools of the queue's `_flavor`, or of the default group);
 * - `deleteQueue` removes the queue's placement and forgets that one queue here;
 * - `listQueues` lists the project's queues of every pool, merged by name;
 * - `createClaim` moves messages due for a dead-letter queue on another pool
 *   (proxy/dead-letter.ts);
 * - `checkFlavorChange`: the one rule of queue metadata that depends on placement;
 * - a call refused with `QueueMoved` (the queue is fenced by a live migration,
 *   shared/storage/migration.ts) is routed again: see `#rerouted` (docs/migration.md, "Clients
 *   during a migration").
 *
 * Hot path: a call whose placement is cached costs one Map lookup and one string (the routing
 * key) on top of the worker's call, and one rejection handler (a closure and a promise: what a
 * refusal needs to retry the call; measured +55 ns per call over a driver that does nothing,
 * against tens of µs for a worker's round trip); no await (docs/pools.md, "Routing").
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { badRequest, MissiveError } from '../shared/errors.js'
import type { Logger } from '../shared/log.js'
import type {
  Claim,
  ClaimOptions,
  DataDriver,
  ListMessagesOptions,
  ListQueuesOptions,
  Message,
  MessageListing,
  Metadata,
  NewMessage,
  PoppedMessage,
  PostOptions,
  QueueListing,
  QueueRef,
  QueueStats,
} from '../shared/storage/contract.js'
import { FenceConflict, QueueMoved } from '../shared/storage/errors.js'
import type { ImportChange, JournalPage, MigrationBatch, QueueFence } from '../shared/storage/migration.js'
import { DeadLetterMover, type DeadLetterRouting } from './dead-letter.js'
import { catalogMigrationLookup } from './migration-control.js'
import { PlacementCache, routingKey } from './placement-cache.js'
import type { PoolSet, Snapshot } from './pool-set.js'
import { workerFor } from './worker-choice.js'
import { isTopicRef, tenantOf } from './topic-space.js'

/** What the queue, message and claim handlers see: the contract, plus one placement rule. */
export interface PooledStorage extends DataDriver {
  /**
   * Checks a queue metadata change (PATCH) against placement: setting `_flavor` to another flavor
   * must name an existing flavor (`bad_request`). When the queue's pool is not in it, the queue
   * is moved, live, to a pool of that flavor chosen by weight (a migration, docs/migration.md;
   * its refusals, such as a migration already under way, are `conflict`). Zaqar re-places the
   * queue and strands its messages. A proxy that runs no migrations refuses with `conflict`.
   */
  checkFlavorChange(ref: QueueRef, before: Metadata, after: Metadata): Promise<void>
}

/** A queue's migration as routing sees it (the catalog's migration record, docs/migration.md). */
export interface MigrationSummary {
  id: string
  /** The pool the queue is moving from. */
  from: string
  /** The pool it is moving to. */
  to: string
}

/** What routing needs to know of live migrations (the catalog's migration records). */
export interface MigrationLookup {
  /** The queue's migration that has not ended yet (it may still fence the queue), or null. */
  activeMigration(ref: QueueRef): Promise<MigrationSummary | null>
  /**
   * Whether migration `id` switched its queue to the target pool (its source's data is then a
   * leftover, never the truth). False when unknown or not switched.
   */
  switched(id: string): Promise<boolean>
}

export interface PooledDriverOptions {
  pools: PoolSet
  /** Logs dead-letter moves that fail, and stale migration fences cleared. */
  log: Logger
  /** Placements (and as many negative entries) kept in memory. */
  cacheSize?: number
  /** Live migrations (default: the pool set's catalog, proxy/migration-control.ts `catalogMigrationLookup`). */
  migrations?: MigrationLookup
  /**
   * How long a call refused by a migration's switch waits for the switch to finish before it
   * fails with 503 + Retry-After, ms (config `migrationSwitchWaitMs`, default 3000).
   */
  switchWaitMs?: number
  /** How often the catalog is read while a call waits for a switch, ms (default 5). */
  switchPollMs?: number
}

/** Routing attempts of one refused call that do not wait (each follows a placement change or clears a stale fence). */
const MAX_REROUTES = 8

/**
 * How a call may use the cache when the queue has no cached placement. `Read` (reads and claims):
 * a cached "no placement" is trusted, the queue is read from the default pool. `Write` (writes to
 * an existing queue): an uncached placement is read from the catalog, never written. `Create`
 * (writes that create the queue): a queue without a placement is placed.
 */
const Mode = { Read: 0, Write: 1, Create: 2 } as const
type Mode = (typeof Mode)[keyof typeof Mode]

/** The `_flavor` a queue asks for (zaqar/transport/wsgi/v2_0/queues.py): a non-empty string, or null for the default group. */
export function flavorOf(meta: Metadata): string | null {
  const f = meta._flavor
  if (f === undefined || f === null || f === '') return null
  if (typeof f !== 'string') throw badRequest('_flavor must be a string.')
  return f
}

/** A claim as the pooled driver's callers see it: without the dead-letter report meant for it. */
function withoutReport(claim: Claim): Claim | null {
  if (claim.messages.length === 0) return null
  return { id: claim.id, age: claim.age, ttl: claim.ttl, messages: claim.messages }
}

export class PooledDriver implements PooledStorage {
  readonly kind = 'pooled'
  readonly #pools: PoolSet
  readonly #cache: PlacementCache
  /** Placement lookups answered from memory (metrics: missive_catalog_cache_hits_total). */
  hits = 0
  /** Placement lookups that read the catalog. */
  misses = 0
  /** Moves messages due for a dead-letter queue on another pool (docs/pools.md). */
  readonly deadLetters: DeadLetterMover
  readonly #log: Logger
  readonly #migrations: MigrationLookup
  readonly #switchWaitMs: number
  readonly #switchPollMs: number
  /** Routing key → the one catalog poll that calls refused by that queue's switch share. */
  readonly #switchWaits = new Map<string, Promise<void>>()
  /** Calls refused with `QueueMoved` and routed again (metrics, tests). */
  rerouted = 0
  /** Stale migration fences (tombstones, abandoned copies) this proxy cleared. */
  staleFencesCleared = 0
  /**
   * The quota of queues per project (docs/limits.md, "Quotas"), set by the proxy when quotas are
   * on: asked only when a queue without a placement is about to be placed (created), never on a
   * call to a known queue. 0: no quota. Placement is then `placeWithin`, and a project at its
   * quota gets 403 `quota_exceeded` with nothing created.
   */
  queueQuota: ((project: string) => number | Promise<number>) | undefined
  /** Calls waiting for a switch now (tests, debugging). */
  switchWaiting = 0
  /** Catalog polls started for calls waiting on a switch (one per queue and switch, shared). */
  switchPolls = 0

  constructor(opts: PooledDriverOptions) {
    this.#pools = opts.pools
    this.#cache = new PlacementCache(opts.cacheSize)
    this.#log = opts.log
    this.#migrations = opts.migrations ?? catalogMigrationLookup(opts.pools.catalog)
    this.#switchWaitMs = opts.switchWaitMs ?? 3000
    this.#switchPollMs = opts.switchPollMs ?? 5
    const routing: DeadLetterRouting = {
      defaultPool: opts.pools.defaultPool,
      placementOf: (ref) => this.#placementOf(ref),
      placeUnlessPlaced: (ref, pool) => this.#placeUnlessPlaced(ref, pool),
      noteLocalDeadLetter: (ref, dlq) => this.#cache.setLocalDeadLetter(routingKey(ref.project, ref.queue), dlq),
      driverOf: async (ref) => this.#hit(routingKey(ref.project, ref.queue), Mode.Write) ?? this.#miss(ref, Mode.Write),
    }
    this.deadLetters = new DeadLetterMover(routing, opts.log, opts.cacheSize)
    const onVersion = (snap: Snapshot): void => {
      // Negative entries are safe only while every queue, placed or not, lives on the default pool.
      this.#cache.reset(snap.pools.length === 1 && snap.pools[0]!.name === opts.pools.defaultPool)
    }
    opts.pools.onVersion(onVersion)
    // A queue deleted anywhere: forget that queue only (its DLQ locality and learned DLQ too).
    opts.pools.onRemoval((ref) => {
      const key = routingKey(ref.project, ref.queue)
      this.#cache.forget(key)
      this.deadLetters.forget(key)
    })
    if (opts.pools.snapshot !== undefined) onVersion(opts.pools.snapshot)
  }

  /** Entries the placement cache holds (tests, debugging). */
  get cached(): { placed: number; unplaced: number } {
    return this.#cache.counts
  }

  // --- routing ------------------------------------------------------------------------------

  /** The driver for `key` when the cache answers and the pool has workers here; else undefined. */
  #hit(key: string, mode: Mode): DataDriver | undefined {
    let pool = this.#cache.get(key)
    if (pool === undefined) {
      if (mode !== Mode.Read || !this.#cache.unplaced(key)) return undefined
      pool = this.#pools.defaultPool
    }
    const driver = workerFor(this.#pools.pools.get(pool), key)
    if (driver !== undefined) this.hits++
    return driver
  }

  /** The driver for `ref` when `#hit` had none: reads (and in `Create` mode writes) the catalog. */
  async #miss(ref: QueueRef, mode: Mode, flavor: string | null = null): Promise<DataDriver> {
    const key = routingKey(ref.project, ref.queue)
    // Cached, but its pool has no worker here: that is the answer (503), not a catalog read.
    const cached = this.#cache.get(key) ?? (mode === Mode.Read && this.#cache.unplaced(key) ? this.#pools.defaultPool : undefined)
    if (cached !== undefined) return this.#worker(cached, key)
    this.misses++
    if (this.#pools.snapshot === undefined) await this.#pools.current()
    const version = this.#pools.version
    let pool = await this.#pools.catalog.getPlacement(ref)
    if (pool === null && mode === Mode.Create) pool = await this.#place(ref, await this.#pools.choose(flavor))
    if (pool !== null) this.#cache.set(key, pool)
    // A reload since the read may have switched negative entries off: do not record a stale one.
    else if (this.#pools.version === version) this.#cache.setUnplaced(key)
    return this.#worker(pool ?? this.#pools.defaultPool, key)
  }

  /** Places a new queue on `pool`, within its project's quota of queues when there is one. */
  async #place(ref: QueueRef, pool: string): Promise<string> {
    // A topic is a queue under a project of its own (proxy/topic-space.ts): the tenant's quota
    // applies, counted over its topics apart from its queues.
    const tenant = tenantOf(ref)
    const max = this.queueQuota === undefined ? 0 : await this.queueQuota(tenant)
    if (max <= 0) return this.#pools.catalog.place(ref, pool)
    const placed = await this.#pools.catalog.placeWithin(ref, pool, max)
    if (placed === null) {
      const what = isTopicRef(ref) ? 'topics' : 'queues'
      throw new MissiveError('quota_exceeded', `Project ${tenant} may have at most ${max} ${what} (its quota); delete some, or ask for a larger quota.`)
    }
    return placed
  }

  #worker(pool: string, key: string): DataDriver {
    return workerFor(this.#pools.workersOf(pool), key)!
  }

  /** The pool a queue is placed on, or null (no catalog read when cached). */
  async #placementOf(ref: QueueRef): Promise<string | null> {
    return this.#cache.get(routingKey(ref.project, ref.queue)) ?? (await this.#pools.catalog.getPlacement(ref))
  }

  /** The pool `ref` is placed on; when it has none, places it on `pool` (insert-if-absent). */
  async #placeUnlessPlaced(ref: QueueRef, pool: string): Promise<string> {
    const key = routingKey(ref.project, ref.queue)
    const catalog = this.#pools.catalog
    const placed = this.#cache.get(key) ?? (await catalog.getPlacement(ref)) ?? (await catalog.place(ref, pool))
    this.#cache.set(key, placed)
    return placed
  }

  // --- migrations: calls refused by a fence -------------------------------------------------

  /**
   * What a call does when its store refused it with `QueueMoved`: the queue is fenced there by a
   * live migration (shared/storage/migration.ts), and nothing was done, so a retry is always
   * safe. Any other error is thrown as it is. Runs on the error path only.
   *
   * The queue's cache entry is forgotten and its placement read afresh (its active migration
   * first, then the placement: read the other way round, a switch finishing between the two
   * reads would make the old pool look like a stale fence's). Then:
   * - the placement names another pool than the one that refused (the switch happened, or this
   *   proxy's cache was stale): the call is made there;
   * - it names the pool that refused and a migration of the queue is active: the switch is in
   *   flight. The call waits for the catalog to change (one shared poll per queue, every
   *   `switchPollMs`), at most `switchWaitMs` in all, then the refusal is the answer (503 +
   *   Retry-After, proxy/storage-errors.ts);
   * - it names the pool that refused and no migration is active: the fence is stale (a tombstone
   *   of a queue moved away and back, or deleted and placed there again; or the copy of a
   *   migration that never switched). It is cleared (`#clearStale`) and the call made again.
   * The first refusal's pool is not known here (the cache may have changed under the call), so
   * it is learnt by making the call once on the placement just read.
   */
  async #rerouted<T>(err: unknown, ref: QueueRef, call: (driver: DataDriver) => Promise<T>): Promise<T> {
    if (!(err instanceof QueueMoved)) throw err
    this.rerouted++
    const key = routingKey(ref.project, ref.queue)
    const deadline = performance.now() + this.#switchWaitMs
    let refused = err
    /** The pool that refused last, when known. */
    let tried: string | undefined
    for (let reroutes = 0; ; ) {
      this.#cache.forget(key)
      const active = await this.#migrations.activeMigration(ref)
      const placed = await this.#pools.catalog.getPlacement(ref)
      const pool = placed ?? this.#pools.defaultPool
      if (pool === tried) {
        if (active !== null) {
          if (performance.now() >= deadline) throw refused
          this.switchWaiting++
          try {
            await this.#switchWait(ref, key, pool)
          } finally {
            this.switchWaiting--
          }
          // Whatever ended the wait (placement moved, migration over, time), look again.
          tried = undefined
          continue
        }
        if (++reroutes > MAX_REROUTES) throw refused
        await this.#clearStale(ref, key, pool, refused.fence)
      } else if (tried !== undefined && ++reroutes > MAX_REROUTES) throw refused
      // Not an unplaced queue's default pool: that would be a negative entry the cache may not keep.
      if (placed !== null) this.#cache.set(key, placed)
      try {
        return await call(this.#worker(pool, key))
      } catch (e) {
        if (!(e instanceof QueueMoved)) throw e
        refused = e
        tried = pool
      }
    }
  }

  /**
   * Resolves once the catalog shows no migration of `ref` off `pool` in flight (the placement
   * moved, or the migration ended), or after `switchWaitMs`. Every call on the queue that waits
   * shares one poll, so a switch costs the catalog one read per `switchPollMs`, not one per call.
   */
  #switchWait(ref: QueueRef, key: string, pool: string): Promise<void> {
    let wait = this.#switchWaits.get(key)
    if (wait === undefined) {
      this.switchPolls++
      wait = this.#pollSwitch(ref, pool).finally(() => this.#switchWaits.delete(key))
      this.#switchWaits.set(key, wait)
    }
    return wait
  }

  async #pollSwitch(ref: QueueRef, pool: string): Promise<void> {
    const end = performance.now() + this.#switchWaitMs
    while (performance.now() < end) {
      await sleep(this.#switchPollMs)
      if ((await this.#migrations.activeMigration(ref)) === null) return
      if (((await this.#pools.catalog.getPlacement(ref)) ?? this.#pools.defaultPool) !== pool) return
    }
  }

  /**
   * Clears a fence on the pool the catalog names for `ref` that no active migration owns. Data
   * under it is a leftover when the fence is an `importing` one (a copy never switched to: the
   * queue's truth is elsewhere or deleted) or a `moved` one whose migration switched (the target
   * took everything): it is dropped first, so it cannot reappear. A `moved` fence of a migration
   * that never switched (rolled back without lifting it) keeps its data: that data is the queue.
   * Both writes compare the fence's token, so a newer migration's fence is never touched: a
   * `FenceConflict` means someone else changed it, and the caller reads the catalog again.
   */
  async #clearStale(ref: QueueRef, key: string, pool: string, fence: QueueFence): Promise<void> {
    const driver = this.#worker(pool, key)
    try {
      const leftover = fence.state === 'importing' || (await this.#migrations.switched(fence.token))
      if (leftover) await driver.dropQueueData(ref, fence.token)
      // Dropping an `importing` copy took its fence with it.
      if (fence.state !== 'importing') await driver.fenceQueue(ref, null, fence.token)
      this.staleFencesCleared++
      this.#log.info({ project: ref.project, queue: ref.queue, pool, migration: fence.token, fence: fence.state, dropped: leftover }, 'stale migration fence cleared')
    } catch (err) {
      if (!(err instanceof FenceConflict)) throw err
    }
  }

  // --- the contract -------------------------------------------------------------------------

  /** Every worker of every pool answers (Zaqar's `is_alive` over its pools). */
  async ping(): Promise<void> {
    const pings: Promise<void>[] = []
    for (const workers of this.#pools.pools.values()) for (const w of workers) pings.push(w.ping())
    await Promise.all(pings)
  }

  /** Stops following the catalog. The pools' drivers belong to the pool set's connector. */
  async close(): Promise<void> {
    this.#pools.close()
  }

  async createQueue(ref: QueueRef, metadata: Metadata): Promise<boolean> {
    const flavor = flavorOf(metadata)
    const key = routingKey(ref.project, ref.queue)
    // A new queue is placed among its flavor's pools (unknown flavor: 400); an existing one stays put.
    const driver = this.#hit(key, Mode.Create) ?? (await this.#miss(ref, Mode.Create, flavor))
    let created: boolean
    try {
      created = await driver.createQueue(ref, metadata)
    } catch (err) {
      created = await this.#rerouted(err, ref, (d) => d.createQueue(ref, metadata))
    }
    if (created) this.deadLetters.learn(ref, key, metadata)
    return created
  }

  getQueue(ref: QueueRef): Promise<Metadata | null> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Read)
    const p = d !== undefined ? d.getQueue(ref) : this.#miss(ref, Mode.Read).then((d) => d.getQueue(ref))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.getQueue(ref)))
  }

  async setQueueMetadata(ref: QueueRef, metadata: Metadata): Promise<void> {
    const key = routingKey(ref.project, ref.queue)
    const driver = this.#hit(key, Mode.Write) ?? (await this.#miss(ref, Mode.Write))
    try {
      await driver.setQueueMetadata(ref, metadata)
    } catch (err) {
      await this.#rerouted(err, ref, (d) => d.setQueueMetadata(ref, metadata))
    }
    // The DLQ may have changed: locate it again before the next claim.
    this.#cache.setLocalDeadLetter(key, '')
    this.deadLetters.learn(ref, key, metadata)
  }

  /**
   * Deletes the queue, then its placement, and forgets this one queue here. Other proxies learn
   * of it at their next poll (`CatalogStore.removalsSince`) and forget that one queue too.
   */
  async deleteQueue(ref: QueueRef): Promise<void> {
    const key = routingKey(ref.project, ref.queue)
    const driver = this.#hit(key, Mode.Write) ?? (await this.#miss(ref, Mode.Write))
    try {
      await driver.deleteQueue(ref)
    } catch (err) {
      await this.#rerouted(err, ref, (d) => d.deleteQueue(ref))
    }
    this.#cache.forget(key)
    this.deadLetters.forget(key)
    await this.#pools.catalog.removePlacement(ref)
  }

  /**
   * The project's queues across every pool: each pool lists one page after the marker, and the
   * pages are merged by name (byte order) and cut to `limit`. Names are the markers, so the next
   * page continues correctly whichever pools its queues live on.
   */
  async listQueues(project: string, opts: ListQueuesOptions): Promise<QueueListing> {
    const pools = [...this.#pools.pools].filter(([, ds]) => ds.length > 0)
    if (pools.length === 1) return this.#listPool(project, pools[0]![0], pools[0]![1], opts)
    const listings = await Promise.all(pools.map(([name, ds]) => this.#listPool(project, name, ds, opts)))
    const seen = new Set<string>()
    const items = listings
      .flatMap((l) => l.items)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .filter((e) => !seen.has(e.name) && seen.add(e.name))
      .slice(0, opts.limit)
    const out: QueueListing = { items }
    if (items.length > 0) out.next = items[items.length - 1]!.name
    if (opts.withCount) out.count = listings.reduce((n, l) => n + (l.count ?? 0), 0)
    return out
  }

  /**
   * One pool's queues, from the first of its workers that answers. A pool that answers on no
   * worker fails the listing (503) unless the catalog says it holds no queue.
   */
  async #listPool(project: string, pool: string, drivers: readonly DataDriver[], opts: ListQueuesOptions): Promise<QueueListing> {
    let last: unknown
    for (const d of drivers) {
      try {
        return await d.listQueues(project, opts)
      } catch (err) {
        if (!(err instanceof MissiveError) || err.code !== 'unavailable') throw err
        last = err
      }
    }
    if ((await this.#pools.catalog.countPlacements(pool)) === 0) return { items: [], ...(opts.withCount && { count: 0 }) }
    throw last ?? new MissiveError('unavailable', `Pool ${pool} has no running worker.`, { retryAfter: 1 })
  }

  stats(ref: QueueRef): Promise<QueueStats> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Read)
    const p = d !== undefined ? d.stats(ref) : this.#miss(ref, Mode.Read).then((d) => d.stats(ref))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.stats(ref)))
  }

  storedBytes(ref: QueueRef): Promise<number> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Read)
    const p = d !== undefined ? d.storedBytes(ref) : this.#miss(ref, Mode.Read).then((d) => d.storedBytes(ref))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.storedBytes(ref)))
  }

  purge(ref: QueueRef): Promise<void> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Write)
    const p = d !== undefined ? d.purge(ref) : this.#miss(ref, Mode.Write).then((d) => d.purge(ref))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.purge(ref)))
  }

  postMessages(ref: QueueRef, messages: NewMessage[], opts: PostOptions): Promise<string[]> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Create)
    const p = d !== undefined ? d.postMessages(ref, messages, opts) : this.#miss(ref, Mode.Create).then((d) => d.postMessages(ref, messages, opts))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.postMessages(ref, messages, opts)))
  }

  listMessages(ref: QueueRef, opts: ListMessagesOptions): Promise<MessageListing> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Read)
    const p = d !== undefined ? d.listMessages(ref, opts) : this.#miss(ref, Mode.Read).then((d) => d.listMessages(ref, opts))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.listMessages(ref, opts)))
  }

  getMessage(ref: QueueRef, id: string): Promise<Message | null> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Read)
    const p = d !== undefined ? d.getMessage(ref, id) : this.#miss(ref, Mode.Read).then((d) => d.getMessage(ref, id))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.getMessage(ref, id)))
  }

  getMessages(ref: QueueRef, ids: string[]): Promise<Message[]> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Read)
    const p = d !== undefined ? d.getMessages(ref, ids) : this.#miss(ref, Mode.Read).then((d) => d.getMessages(ref, ids))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.getMessages(ref, ids)))
  }

  deleteMessage(ref: QueueRef, id: string, claimId?: string): Promise<void> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Write)
    const p = d !== undefined ? d.deleteMessage(ref, id, claimId) : this.#miss(ref, Mode.Write).then((d) => d.deleteMessage(ref, id, claimId))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.deleteMessage(ref, id, claimId)))
  }

  deleteMessages(ref: QueueRef, ids: string[], claimIds?: string[]): Promise<void> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Write)
    const p = d !== undefined ? d.deleteMessages(ref, ids, claimIds) : this.#miss(ref, Mode.Write).then((d) => d.deleteMessages(ref, ids, claimIds))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.deleteMessages(ref, ids, claimIds)))
  }

  popMessages(ref: QueueRef, limit: number): Promise<PoppedMessage[]> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Write)
    const p = d !== undefined ? d.popMessages(ref, limit) : this.#miss(ref, Mode.Write).then((d) => d.popMessages(ref, limit))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.popMessages(ref, limit)))
  }

  /**
   * Claims as the contract says, dead-lettering included, whichever pool the DLQ lives on.
   * `opts.deadLetter` is the pooled driver's own business (it tells the worker which DLQ it
   * checked to be local) and is ignored here; the returned claim never carries a report.
   */
  createClaim(ref: QueueRef, opts: ClaimOptions): Promise<Claim | null> {
    const key = routingKey(ref.project, ref.queue)
    const d = this.#hit(key, Mode.Read)
    const p = d !== undefined && !this.deadLetters.pending(key) ? this.#claim(ref, key, d, opts) : this.#claimSlow(ref, key, d, opts)
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => this.#claim(ref, key, d, opts)))
  }

  async #claimSlow(ref: QueueRef, key: string, hit: DataDriver | undefined, opts: ClaimOptions): Promise<Claim | null> {
    const driver = hit ?? (await this.#miss(ref, Mode.Read))
    // Metadata written through this proxy named a DLQ: locate it first, so a local one is filled
    // atomically by this very claim.
    if (this.deadLetters.pending(key)) await this.deadLetters.prepare(ref, key)
    return this.#claim(ref, key, driver, opts)
  }

  async #claim(ref: QueueRef, key: string, driver: DataDriver, opts: ClaimOptions): Promise<Claim | null> {
    const { ttl, grace, limit } = opts
    let claim = await driver.createClaim(ref, { ttl, grace, limit, deadLetter: this.#cache.localDeadLetter(key) })
    if (claim === null || claim.deadLetter === undefined) return claim
    // Messages due for a DLQ not known to be on this pool (docs/pools.md): place or move them.
    const local = await this.deadLetters.settle(ref, driver, claim.deadLetter)
    // Only when nothing was claimed, so the answer is still one claim.
    if (local && claim.messages.length === 0) {
      claim = await driver.createClaim(ref, { ttl, grace, limit, deadLetter: this.#cache.localDeadLetter(key) })
      if (claim === null || claim.deadLetter === undefined) return claim
    }
    return withoutReport(claim)
  }

  getClaim(ref: QueueRef, claimId: string): Promise<Claim | null> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Read)
    const p = d !== undefined ? d.getClaim(ref, claimId) : this.#miss(ref, Mode.Read).then((d) => d.getClaim(ref, claimId))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.getClaim(ref, claimId)))
  }

  renewClaim(ref: QueueRef, claimId: string, opts: { ttl: number; grace: number }): Promise<void> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Write)
    const p = d !== undefined ? d.renewClaim(ref, claimId, opts) : this.#miss(ref, Mode.Write).then((d) => d.renewClaim(ref, claimId, opts))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.renewClaim(ref, claimId, opts)))
  }

  releaseClaim(ref: QueueRef, claimId: string): Promise<void> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Write)
    const p = d !== undefined ? d.releaseClaim(ref, claimId) : this.#miss(ref, Mode.Write).then((d) => d.releaseClaim(ref, claimId))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.releaseClaim(ref, claimId)))
  }

  /** On the queue's pool; a queue not placed yet is looked for on the default pool, as reads are (a mark there is harmless). */
  listen(ref: QueueRef, ms: number): Promise<void> {
    const d = this.#hit(routingKey(ref.project, ref.queue), Mode.Read)
    const p = d !== undefined ? d.listen(ref, ms) : this.#miss(ref, Mode.Read).then((d) => d.listen(ref, ms))
    return p.catch((e: unknown) => this.#rerouted(e, ref, (d) => d.listen(ref, ms)))
  }

  // --- migration (shared/storage/migration.ts): each on the queue's placed pool, like the ops above

  #placed(ref: QueueRef, mode: Mode): Promise<DataDriver> {
    const d = this.#hit(routingKey(ref.project, ref.queue), mode)
    return d !== undefined ? Promise.resolve(d) : this.#miss(ref, mode)
  }

  fenceQueue(ref: QueueRef, fence: QueueFence | null, expect: string | null): Promise<void> {
    return this.#placed(ref, Mode.Write).then((d) => d.fenceQueue(ref, fence, expect))
  }

  getFence(ref: QueueRef): Promise<QueueFence | null> {
    return this.#placed(ref, Mode.Read).then((d) => d.getFence(ref))
  }

  readForMigration(ref: QueueRef, after: number, limit: number): Promise<MigrationBatch> {
    return this.#placed(ref, Mode.Read).then((d) => d.readForMigration(ref, after, limit))
  }

  readJournal(ref: QueueRef, limit: number): Promise<JournalPage> {
    return this.#placed(ref, Mode.Read).then((d) => d.readJournal(ref, limit))
  }

  ackJournal(ref: QueueRef, entries: { id: string; version: number }[], reset?: boolean): Promise<void> {
    return this.#placed(ref, Mode.Write).then((d) => d.ackJournal(ref, entries, reset))
  }

  importMessages(ref: QueueRef, token: string, change: ImportChange): Promise<void> {
    return this.#placed(ref, Mode.Write).then((d) => d.importMessages(ref, token, change))
  }

  countForMigration(ref: QueueRef): Promise<number> {
    return this.#placed(ref, Mode.Read).then((d) => d.countForMigration(ref))
  }

  dropQueueData(ref: QueueRef, token: string): Promise<void> {
    return this.#placed(ref, Mode.Write).then((d) => d.dropQueueData(ref, token))
  }

  // --- beyond the contract ------------------------------------------------------------------

  async checkFlavorChange(ref: QueueRef, before: Metadata, after: Metadata): Promise<void> {
    const flavor = flavorOf(after)
    if (flavor === null || flavor === flavorOf(before)) return
    const f = await this.#pools.flavor(flavor)
    if (f === undefined) throw badRequest(`Flavor ${flavor} does not exist`)
    const pool = (await this.#placementOf(ref)) ?? this.#pools.defaultPool
    if (f.pools.includes(pool)) return
    const migrations = this.#pools.migrations
    if (migrations === undefined) {
      throw new MissiveError('conflict', `Queue ${ref.queue} lives on pool ${pool}, which is not in flavor ${flavor}, and this proxy runs no live migrations to move it.`)
    }
    const m = await migrations.moveToFlavor(ref, flavor)
    this.#log.info({ project: ref.project, queue: ref.queue, flavor, migration: m.id, from: m.from, to: m.to }, 'flavor change: queue migration started')
  }
}
