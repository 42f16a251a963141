/**
 * The pools this proxy routes to: a snapshot of the catalog's pools and flavors, refreshed
 * whenever the catalog's version changes (polled) other than by placement removals alone (those
 * are passed on queue by queue: `onRemoval`), and — through a `PoolConnector` — one set of
 * drivers per pool kept in step with it: a pool added through any proxy is served here within one
 * poll, a removed pool's drivers are closed. It is also the control plane the admin API sees
 * (`ControlPlane`): the catalog, a way to apply an admin write at once, every pool's workers.
 */
import type { CatalogStore, Flavor, Pool } from '../catalog/contract.js'
import { choosePool, type Random } from '../catalog/placement.js'
import { badRequest, unavailable } from '../shared/errors.js'
import type { DataDriver, QueueRef } from '../shared/storage/contract.js'
import type { MigrationControl } from './migration-control.js'

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

/** What the admin API (pools, flavors, health, stats) reaches: the control plane, not routing. */
export interface ControlPlane {
  /** The catalog the admin API reads and writes. */
  readonly catalog: CatalogStore
  /** Applies a catalog change now (an admin write), so this proxy does not wait for the poll. */
  refresh(): Promise<unknown>
  /** Every pool's drivers (index i = worker i), as this proxy serves them. */
  readonly pools: ReadonlyMap<string, DataDriver[]>
  /** True when the catalog answers. */
  catalogReachable(): Promise<boolean>
  /**
   * Live migrations (proxy/migration-control.ts): the admin API starts them, the pooled driver
   * calls `moveToFlavor` for a PATCH of `_flavor`. Undefined where this proxy runs none.
   */
  readonly migrations?: MigrationControl | undefined
}

export interface PoolSetOptions {
  catalog: CatalogStore
  connector: PoolConnector
  /** Pool that unplaced queues are read from. */
  defaultPool: string
  /** How often the catalog version is checked, ms (0: never; call `refresh`). */
  pollMs?: number
  /** Random source for placement (seeded in tests). */
  random?: Random
}

/** The catalog as of one version. */
export interface Snapshot {
  version: number
  pools: Pool[]
  flavors: Map<string, Flavor>
}

/** Called after a reload that saw a new catalog version. */
export type VersionListener = (snapshot: Snapshot) => void

export class PoolSet implements ControlPlane {
  readonly #catalog: CatalogStore
  readonly #connector: PoolConnector
  readonly #drivers = new Map<string, DataDriver[]>()
  readonly #keys = new Map<string, string>()
  readonly #defaultPool: string
  readonly #random: Random
  readonly #listeners: VersionListener[] = []
  readonly #removalListeners: ((ref: QueueRef) => void)[] = []
  #snapshot: Snapshot | undefined
  #refreshing: Promise<Snapshot> | undefined
  #timer: NodeJS.Timeout | undefined
  #lastMissRefresh = 0
  #closed = false
  /** Set by the proxy once its migration service exists (proxy/main.ts). */
  migrations: MigrationControl | undefined

  constructor(opts: PoolSetOptions) {
    this.#catalog = opts.catalog
    this.#connector = opts.connector
    this.#defaultPool = opts.defaultPool
    this.#random = opts.random ?? Math.random
    const pollMs = opts.pollMs ?? 1000
    if (pollMs > 0) {
      this.#timer = setInterval(() => void this.poll(), pollMs)
      this.#timer.unref()
    }
  }

  get catalog(): CatalogStore {
    return this.#catalog
  }

  /** The pool unplaced queues are read from. */
  get defaultPool(): string {
    return this.#defaultPool
  }

  get pools(): ReadonlyMap<string, DataDriver[]> {
    return this.#drivers
  }

  /** The catalog as last loaded (undefined before the first load). */
  get snapshot(): Snapshot | undefined {
    return this.#snapshot
  }

  /** The catalog version of the current snapshot (-1 before the first load). */
  get version(): number {
    return this.#snapshot?.version ?? -1
  }

  /**
   * Calls `fn` after every reload that saw a new catalog version (the first load included):
   * anything cached from the catalog may be stale.
   */
  onVersion(fn: VersionListener): void {
    this.#listeners.push(fn)
  }

  /**
   * Calls `fn` for each placement removed (in any process) when that is all that changed since
   * the last version seen: only that queue's cached entries are stale.
   */
  onRemoval(fn: (ref: QueueRef) => void): void {
    this.#removalListeners.push(fn)
  }

  /**
   * Checks the catalog version now (the timer calls it every `pollMs`). When every version since
   * the snapshot's is a placement removal (`CatalogStore.removalsSince`), only those queues are
   * forgotten (`onRemoval`) and pools are not reloaded; any other change reloads everything.
   */
  async poll(): Promise<void> {
    try {
      const snap = this.#snapshot
      if (this.#refreshing !== undefined || snap === undefined) {
        await this.refresh()
        return
      }
      const v = await this.#catalog.version()
      if (v === snap.version) return
      if (v > snap.version) {
        const removals = (await this.#catalog.removalsSince(snap.version)).filter((r) => r.version <= v)
        // Versions grow by one per change: every step accounted for means nothing else changed.
        if (removals.length === v - snap.version && this.#snapshot === snap && this.#refreshing === undefined) {
          this.#snapshot = { ...snap, version: v }
          for (const r of removals) for (const fn of this.#removalListeners) fn(r.ref)
          return
        }
      }
      await this.refresh()
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

  /** The snapshot, loading it first if this set has none yet. */
  async current(): Promise<Snapshot> {
    return this.#snapshot ?? (await this.refresh())
  }

  async #load(): Promise<Snapshot> {
    // Version first: a change racing with the reads below bumps it again, and the next poll reloads.
    const version = await this.#catalog.version()
    const [pools, flavors] = await Promise.all([this.#catalog.listPools(), this.#catalog.listFlavors()])
    const changed = version !== this.#snapshot?.version
    const snap: Snapshot = { version, pools, flavors: new Map(flavors.map((f) => [f.name, f])) }
    this.#snapshot = snap
    if (!this.#closed) this.#reconcile(pools)
    if (changed) for (const fn of this.#listeners) fn(snap)
    return snap
  }

  #reconcile(pools: Pool[]): void {
    const connector = this.#connector
    const seen = new Set<string>()
    for (const pool of pools) {
      seen.add(pool.name)
      const key = connector.key(pool)
      if (this.#keys.get(pool.name) === key) continue
      const old = this.#drivers.get(pool.name)
      this.#drivers.set(pool.name, connector.open(pool))
      this.#keys.set(pool.name, key)
      if (old !== undefined) connector.close(pool.name, old)
    }
    for (const [name, drivers] of [...this.#drivers]) {
      if (seen.has(name)) continue
      this.#drivers.delete(name)
      this.#keys.delete(name)
      connector.close(name, drivers)
    }
  }

  /**
   * The workers of `pool`, or throws `unavailable` when this proxy serves none (yet): a pool
   * placed by another proxy and not loaded here yet triggers a reload soon.
   */
  workersOf(pool: string): DataDriver[] {
    const workers = this.#drivers.get(pool)
    if (workers !== undefined && workers.length > 0) return workers
    if (performance.now() - this.#lastMissRefresh > 100) {
      this.#lastMissRefresh = performance.now()
      void this.refresh().catch(() => {})
    }
    throw unavailable(`Pool ${pool} has no running worker.`)
  }

  /**
   * Picks a pool for a new queue of `flavor` (null: the default group) by weighted random choice.
   * An unknown flavor, or no pool able to take the queue, is looked up once more in the catalog
   * before it is refused: another proxy may have just created it. Throws `bad_request` for an
   * unknown flavor, `unavailable` when no pool can take the queue.
   */
  async choose(flavor: string | null): Promise<string> {
    let snap = await this.current()
    if (flavor !== null) {
      if (!snap.flavors.has(flavor)) snap = await this.refresh()
      if (!snap.flavors.has(flavor)) throw badRequest(`Flavor ${flavor} does not exist`)
      const name = choosePool(snap.pools, flavor, this.#random)
      if (name === null) throw unavailable(`No pool of flavor ${flavor} can take new queues (none has a weight above 0).`)
      return name
    }
    let name = choosePool(snap.pools, null, this.#random)
    if (name === null) {
      snap = await this.refresh()
      name = choosePool(snap.pools, null, this.#random)
    }
    if (name !== null) return name
    throw unavailable('No pool can take new queues: every pool without a flavor has weight 0.')
  }

  /** The flavor `name`, looked up once more in the catalog when the snapshot does not have it. */
  async flavor(name: string): Promise<Flavor | undefined> {
    return (await this.current()).flavors.get(name) ?? (await this.refresh()).flavors.get(name)
  }

  async catalogReachable(): Promise<boolean> {
    try {
      await this.#catalog.version()
      return true
    } catch {
      return false
    }
  }

  /**
   * Stops polling and reconciling. The drivers stay open: whoever made the connector closes what
   * it opened, in its own order (a draining proxy closes its workers' connections last).
   */
  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
  }
}
