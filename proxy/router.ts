/**
 * Routing: (project, queue) → pool (catalog, cached) → worker of that pool (rendezvous hash, so
 * every operation on one queue meets in one process and can be coalesced there).
 *
 * The router keeps a snapshot of the catalog's pools and flavors, refreshed whenever the
 * catalog's version changes (polled), and — given a `PoolConnector` — keeps one set of drivers
 * per pool in step with it: a pool added through any proxy is served here within one poll, a
 * removed pool's drivers are closed.
 */
import type { CatalogStore, Flavor, Pool } from '../catalog/contract.js'
import { choosePool, type Random } from '../catalog/placement.js'
import { badRequest, unavailable } from '../shared/errors.js'
import type { DataDriver, QueueRef } from '../shared/storage/contract.js'
import { DeadLetterMover } from './dead-letter.js'

/** Opens and closes the drivers that reach a pool's workers. */
export interface PoolConnector {
  /**
   * A key that changes when the pool's drivers must be rebuilt (its worker count, say). A pool
   * whose key is unchanged keeps its drivers across catalog changes.
   */
  key(pool: Pool): string
  /** Drivers for the pool's workers, index i = worker i. */
  open(pool: Pool): DataDriver[]
  /** Releases drivers no longer routed to. */
  close(pool: string, drivers: DataDriver[]): void
}

export interface RouterOptions {
  catalog: CatalogStore
  /**
   * Fixed drivers by pool name (one per worker). Without a `connector` these are all the router
   * routes to; with one, they are overridden by what the connector opens.
   */
  pools?: Map<string, DataDriver[]>
  /** Builds drivers from the catalog's pools as they come and go. */
  connector?: PoolConnector
  /** Pool that unplaced queues are read from. */
  defaultPool: string
  /** Placements kept in memory. */
  cacheSize?: number
  /** How often the catalog version is checked, ms (0: never; call `refresh`). */
  pollMs?: number
  /** Random source for placement (seeded in tests). */
  random?: Random
}

const refKey = (ref: QueueRef): string => `${ref.queue}/${ref.project}` // queue names hold no '/'

/** 32-bit FNV-1a. */
function fnv1a(s: string, seed = 0x811c9dc5): number {
  let h = seed
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

interface Snapshot {
  version: number
  pools: Pool[]
  flavors: Map<string, Flavor>
}

export class Router {
  readonly #catalog: CatalogStore
  readonly #pools: Map<string, DataDriver[]>
  readonly #connector: PoolConnector | undefined
  readonly #keys = new Map<string, string>()
  readonly #defaultPool: string
  readonly #cacheSize: number
  readonly #cache = new Map<string, string>()
  /** Source queue → the dead-letter queue name checked to be placed on the source's pool. */
  readonly #localDlq = new Map<string, string>()
  readonly #random: Random
  #snapshot: Snapshot | undefined
  #refreshing: Promise<Snapshot> | undefined
  #timer: NodeJS.Timeout | undefined
  #lastMissRefresh = 0
  #closed = false
  /** Counters for metrics. */
  hits = 0
  misses = 0
  /** Moves messages due for a dead-letter queue on another pool (docs/pools.md). */
  readonly deadLetters: DeadLetterMover = new DeadLetterMover(this)

  constructor(opts: RouterOptions) {
    this.#catalog = opts.catalog
    this.#pools = new Map(opts.pools ?? [])
    this.#connector = opts.connector
    this.#defaultPool = opts.defaultPool
    this.#cacheSize = opts.cacheSize ?? 100_000
    this.#random = opts.random ?? Math.random
    if (this.#connector === undefined && !this.#pools.has(this.#defaultPool)) {
      throw new Error(`default pool ${this.#defaultPool} has no workers`)
    }
    const pollMs = opts.pollMs ?? 1000
    if (pollMs > 0) {
      this.#timer = setInterval(() => void this.#poll(), pollMs)
      this.#timer.unref()
    }
  }

  /** The catalog this router reads (the admin API writes through it). */
  get catalog(): CatalogStore {
    return this.#catalog
  }

  /** The pool unplaced queues are read from. */
  get defaultPool(): string {
    return this.#defaultPool
  }

  /** Checks the catalog version; on a change, drops cached placements and reloads pools. */
  async #poll(): Promise<void> {
    try {
      const v = await this.#catalog.version()
      if (v !== this.#snapshot?.version) await this.refresh()
    } catch {
      // The catalog being briefly unreachable must not take routing down; cached entries stay.
    }
  }

  /**
   * Reloads pools and flavors from the catalog now (admin writes call it so their own proxy sees
   * the change at once), rebuilding pool drivers as needed. Concurrent calls share one reload.
   */
  refresh(): Promise<Snapshot> {
    this.#refreshing ??= this.#load().finally(() => {
      this.#refreshing = undefined
    })
    return this.#refreshing
  }

  async #load(): Promise<Snapshot> {
    // Version first: a change racing with the reads below bumps it again, and the next poll reloads.
    const version = await this.#catalog.version()
    const [pools, flavors] = await Promise.all([this.#catalog.listPools(), this.#catalog.listFlavors()])
    if (version !== this.#snapshot?.version) {
      this.#cache.clear()
      this.#localDlq.clear()
    }
    const snap: Snapshot = { version, pools, flavors: new Map(flavors.map((f) => [f.name, f])) }
    this.#snapshot = snap
    if (this.#connector !== undefined && !this.#closed) this.#reconcile(this.#connector, pools)
    return snap
  }

  #reconcile(connector: PoolConnector, pools: Pool[]): void {
    const seen = new Set<string>()
    for (const pool of pools) {
      seen.add(pool.name)
      const key = connector.key(pool)
      if (this.#keys.get(pool.name) === key) continue
      const old = this.#pools.get(pool.name)
      this.#pools.set(pool.name, connector.open(pool))
      this.#keys.set(pool.name, key)
      if (old !== undefined) connector.close(pool.name, old)
    }
    for (const [name, drivers] of [...this.#pools]) {
      if (seen.has(name)) continue
      this.#pools.delete(name)
      this.#keys.delete(name)
      connector.close(name, drivers)
    }
  }

  async #current(): Promise<Snapshot> {
    return this.#snapshot ?? (await this.refresh())
  }

  /**
   * The driver serving the queue. With `create`, a queue without a placement is placed
   * (insert-if-absent) by weighted random choice among the pools of `flavor`, or of the default
   * group when `flavor` is null; without it, an unplaced queue is read from the default pool,
   * where it is simply empty. Throws `bad_request` for an unknown flavor, `unavailable` when no
   * pool can take the queue or its pool has no worker here.
   */
  async driverFor(ref: QueueRef, create: boolean, flavor: string | null = null): Promise<DataDriver> {
    const key = refKey(ref)
    let pool = this.#cache.get(key)
    if (pool !== undefined) {
      this.hits++
      // Refresh recency: Map keeps insertion order, so the first key is the least recent.
      this.#cache.delete(key)
      this.#cache.set(key, pool)
    } else {
      this.misses++
      pool = (await this.#catalog.getPlacement(ref)) ?? undefined
      if (pool === undefined && create) pool = await this.#catalog.place(ref, await this.choose(flavor))
      if (pool !== undefined) this.#remember(key, pool)
    }
    return this.#worker(pool ?? this.#defaultPool, key)
  }

  /**
   * The pool `ref` is placed on; when it has no placement, places it on `pool` (insert-if-absent,
   * so racing proxies agree on the first one written).
   */
  async placeUnlessPlaced(ref: QueueRef, pool: string): Promise<string> {
    const key = refKey(ref)
    const placed = this.#cache.get(key) ?? (await this.#catalog.getPlacement(ref)) ?? (await this.#catalog.place(ref, pool))
    this.#remember(key, placed)
    return placed
  }

  /** The dead-letter queue name known to live on the same pool as `ref` ('' when none is known). */
  localDeadLetter(ref: QueueRef): string {
    return this.#localDlq.size === 0 ? '' : (this.#localDlq.get(refKey(ref)) ?? '')
  }

  /** Records that `ref`'s dead-letter queue `dlq` lives on the same pool as `ref`. */
  noteLocalDeadLetter(ref: QueueRef, dlq: string): void {
    this.#localDlq.set(refKey(ref), dlq)
    if (this.#localDlq.size > this.#cacheSize) this.#localDlq.delete(this.#localDlq.keys().next().value!)
  }

  /** The pool a queue is placed on, or null (no network call when cached). */
  async placementOf(ref: QueueRef): Promise<string | null> {
    return this.#cache.get(refKey(ref)) ?? (await this.#catalog.getPlacement(ref))
  }

  /**
   * Picks a pool for a new queue of `flavor` (see `driverFor`). An unknown flavor is looked up
   * once more in the catalog before it is refused: another proxy may have just created it.
   */
  async choose(flavor: string | null): Promise<string> {
    let snap = await this.#current()
    if (flavor !== null) {
      if (!snap.flavors.has(flavor)) snap = await this.refresh()
      if (!snap.flavors.has(flavor)) throw badRequest(`Flavor ${flavor} does not exist`)
      const name = choosePool(snap.pools, flavor, this.#random)
      if (name === null) throw unavailable(`No pool of flavor ${flavor} can take new queues (none has a weight above 0).`)
      return name
    }
    let name = choosePool(snap.pools, null, this.#random)
    if (name === null && this.#connector !== undefined) {
      // Maybe a pool was just added through another proxy: look once more before refusing.
      snap = await this.refresh()
      name = choosePool(snap.pools, null, this.#random)
    }
    if (name !== null) return name
    // Fixed drivers and a catalog that does not know the default pool (an embedded harness): the
    // default pool takes every queue, as Zaqar's "virtual pool" does.
    if (!snap.pools.some((p) => p.name === this.#defaultPool) && this.#pools.has(this.#defaultPool)) return this.#defaultPool
    throw unavailable('No pool can take new queues: every pool without a flavor has weight 0.')
  }

  /** The flavor `name` as of the last refresh, or undefined. */
  async flavor(name: string): Promise<Flavor | undefined> {
    return (await this.#current()).flavors.get(name)
  }

  /** The pool `name` as of the last refresh, or undefined. */
  async pool(name: string): Promise<Pool | undefined> {
    return (await this.#current()).pools.find((p) => p.name === name)
  }

  /** Forgets a deleted queue's placement. */
  async forget(ref: QueueRef): Promise<void> {
    this.#cache.delete(refKey(ref))
    await this.#catalog.removePlacement(ref)
  }

  /** True when the catalog answers. */
  async catalogReachable(): Promise<boolean> {
    try {
      await this.#catalog.version()
      return true
    } catch {
      return false
    }
  }

  /** The first worker of the default pool (ping, health). */
  defaultDriver(): DataDriver {
    const ws = this.#pools.get(this.#defaultPool)
    if (ws === undefined || ws.length === 0) throw unavailable(`Pool ${this.#defaultPool} has no running worker.`)
    return ws[0]!
  }

  /** Every pool's drivers. */
  get pools(): ReadonlyMap<string, DataDriver[]> {
    return this.#pools
  }

  #remember(key: string, pool: string): void {
    this.#cache.set(key, pool)
    if (this.#cache.size > this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!)
  }

  #worker(pool: string, key: string): DataDriver {
    const workers = this.#pools.get(pool)
    if (workers === undefined || workers.length === 0) {
      // Placed by another proxy on a pool this one has not loaded yet: look again soon.
      if (this.#connector !== undefined && performance.now() - this.#lastMissRefresh > 100) {
        this.#lastMissRefresh = performance.now()
        void this.refresh().catch(() => {})
      }
      throw unavailable(`Pool ${pool} has no running worker.`)
    }
    if (workers.length === 1) return workers[0]!
    // Rendezvous hashing: adding or removing a worker moves only the queues it wins or held.
    let best = 0
    let bestScore = -1
    for (let i = 0; i < workers.length; i++) {
      const score = fnv1a(key, fnv1a(String(i)))
      if (score > bestScore) {
        bestScore = score
        best = i
      }
    }
    return workers[best]!
  }

  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
  }
}
