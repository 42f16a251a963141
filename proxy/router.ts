/**
 * Routing: (project, queue) → pool (catalog, cached) → worker of that pool (rendezvous hash, so
 * every operation on one queue meets in one process and can be coalesced there).
 */
import type { CatalogStore } from '../catalog/contract.js'
import { unavailable } from '../shared/errors.js'
import type { DataDriver, QueueRef } from '../worker/storage/contract.js'

export interface RouterOptions {
  catalog: CatalogStore
  /** The drivers (one per worker) of each pool, by pool name. */
  pools: Map<string, DataDriver[]>
  /** Pool for queues that have no placement yet. */
  defaultPool: string
  /** Placements kept in memory. */
  cacheSize?: number
  /** How often the catalog version is checked, ms. */
  pollMs?: number
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

export class Router {
  readonly #catalog: CatalogStore
  readonly #pools: Map<string, DataDriver[]>
  readonly #defaultPool: string
  readonly #cacheSize: number
  readonly #cache = new Map<string, string>()
  #version = -1
  #timer: NodeJS.Timeout | undefined
  /** Counters for metrics. */
  hits = 0
  misses = 0

  constructor(opts: RouterOptions) {
    this.#catalog = opts.catalog
    this.#pools = opts.pools
    this.#defaultPool = opts.defaultPool
    this.#cacheSize = opts.cacheSize ?? 100_000
    if (!this.#pools.has(this.#defaultPool)) throw new Error(`default pool ${this.#defaultPool} has no workers`)
    const pollMs = opts.pollMs ?? 1000
    if (pollMs > 0) {
      this.#timer = setInterval(() => void this.#poll(), pollMs)
      this.#timer.unref()
    }
  }

  /** Drops cached placements when the catalog changed (another proxy placed or moved queues). */
  async #poll(): Promise<void> {
    try {
      const v = await this.#catalog.version()
      if (v !== this.#version) {
        this.#version = v
        this.#cache.clear()
      }
    } catch {
      // The catalog being briefly unreachable must not take routing down; cached entries stay.
    }
  }

  /**
   * The driver serving the queue. With `create`, a queue without a placement is placed
   * (insert-if-absent) on the default pool; without it, an unplaced queue is read from the default
   * pool, where it is simply empty.
   */
  async driverFor(ref: QueueRef, create: boolean): Promise<DataDriver> {
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
      if (pool === undefined && create) pool = await this.#catalog.place(ref, this.#defaultPool)
      if (pool !== undefined) this.#remember(key, pool)
    }
    return this.#worker(pool ?? this.#defaultPool, key)
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
    return this.#pools.get(this.#defaultPool)![0]!
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
    if (workers === undefined || workers.length === 0) throw unavailable(`Pool ${pool} has no running worker.`)
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
    clearInterval(this.#timer)
  }
}
