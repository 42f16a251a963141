/**
 * The catalog contract: the control plane's store of pools, flavors and queue placements.
 * Implementations live in catalog/stores/ (SQLite embedded default; Redis for several proxy
 * hosts). `tests/catalog/` checks every implementation against this TSDoc.
 *
 * Model (Zaqar's, Queens and later): a pool is a storage URI with a weight; a flavor is a name
 * plus the pools whose `flavor` field equals that name. A placement maps one (project, queue) to
 * the pool that holds it; it is written once, when the queue is first created.
 */
import type { QueueRef } from '../shared/storage/contract.js'

/** A storage pool: where queues live. */
export interface Pool {
  name: string
  /** Storage URI: `sqlite:<path>`, `redis://…`. */
  uri: string
  /** Relative chance of receiving a new queue; 0 = takes none. */
  weight: number
  /** The flavor this pool belongs to, or null (the default group). */
  flavor: string | null
  /** Free-form; Missive reads `workers` (worker processes per host, default 1). */
  options: Record<string, unknown>
}

/**
 * A flavor: a name and the pools that carry it. Flavors are global, not per project (see
 * docs/pools.md): a pool's `flavor` field is a global name, so per-project flavors would alias
 * each other's pools anyway.
 */
export interface Flavor {
  name: string
  /** Names of the pools whose `flavor` is this flavor, sorted by name (byte order). */
  pools: string[]
}

/** One removed placement and the catalog version its removal produced. */
export interface PlacementRemoval {
  version: number
  ref: QueueRef
}

/** How many of the latest placement removals a store remembers (`removalsSince`), at least. */
export const REMOVALS_KEPT = 1024

export interface CatalogStore {
  /** The pool name holding the queue, or `null` if the queue has no placement. */
  getPlacement(ref: QueueRef): Promise<string | null>

  /**
   * Places the queue on `pool` unless it already has a placement (insert-if-absent, atomic
   * across every process sharing the store). Returns the pool the queue actually lives on —
   * `pool`, or the one a racing writer placed it on first.
   */
  place(ref: QueueRef, pool: string): Promise<string>

  /** Forgets the placement. Missing: no-op. */
  removePlacement(ref: QueueRef): Promise<void>

  /** How many queues are placed on `pool` (0 for an unknown pool). */
  countPlacements(pool: string): Promise<number>

  /**
   * Up to `limit` of the queues placed on `pool`, sorted by (project, queue) in byte order,
   * starting strictly after `after` when given.
   */
  listPlacements(pool: string, opts: { limit: number; after?: QueueRef }): Promise<QueueRef[]>

  /** Creates or replaces a pool. */
  putPool(pool: Pool): Promise<void>

  /** The pool, or `null`. */
  getPool(name: string): Promise<Pool | null>

  /** All pools sorted by name (byte order). */
  listPools(): Promise<Pool[]>

  /** Deletes the pool. Throws `conflict` when queues are still placed on it. Missing: no-op. */
  deletePool(name: string): Promise<void>

  /**
   * Creates the flavor, or replaces its pool list: afterwards exactly the pools in `pools` have
   * `flavor === name` (pools that had it and are not listed get `null`). Atomic: when a listed
   * pool does not exist, throws `not_found` with the description `Pool <p> does not exist` and
   * changes nothing.
   */
  putFlavor(name: string, pools: string[]): Promise<void>

  /** The flavor with its pools, or `null` when no flavor of that name was created. */
  getFlavor(name: string): Promise<Flavor | null>

  /** All flavors sorted by name (byte order), each with its pools. */
  listFlavors(): Promise<Flavor[]>

  /** Deletes the flavor and clears `flavor` on its pools (atomic). Missing: no-op. */
  deleteFlavor(name: string): Promise<void>

  /**
   * A number that grows by one whenever a pool or flavor changes or a placement is removed or
   * moved (in any process). Proxies and supervisors poll it to invalidate their caches. A *new*
   * placement does not change it: no cache can hold an entry for a queue that had no placement.
   */
  version(): Promise<number>

  /**
   * The placement removals that produced versions after `after`, oldest first, each with the
   * version it produced — as far as the store remembers them (at least the last
   * `REMOVALS_KEPT`). A proxy whose cache is at version `after` and that finds here every version
   * up to the current one knows that only these queues changed, and forgets just them; any
   * version missing here (a pool or flavor change, or a removal no longer remembered) means it
   * must drop everything.
   */
  removalsSince(after: number): Promise<PlacementRemoval[]>

  close(): Promise<void>
}
