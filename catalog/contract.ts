/**
 * The catalog contract: the control plane's store of pools and queue placements. Implementations
 * live in catalog/stores/ (SQLite embedded default; Redis and MongoDB for several proxy hosts).
 * `tests/catalog/` checks every implementation against this TSDoc.
 */
import type { QueueRef } from '../worker/storage/contract.js'

/** A storage pool: where queues live. */
export interface Pool {
  name: string
  /** Storage URI: `sqlite:<path>`, `redis://…`, `mongodb://…`. */
  uri: string
  /** Relative chance of receiving a new queue; 0 = takes none. */
  weight: number
  /** The flavor (pool group) this pool belongs to, or null. */
  flavor: string | null
  options: Record<string, unknown>
}

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

  /** Creates or replaces a pool. */
  putPool(pool: Pool): Promise<void>

  /** The pool, or `null`. */
  getPool(name: string): Promise<Pool | null>

  /** All pools sorted by name. */
  listPools(): Promise<Pool[]>

  /** Deletes the pool. Throws `conflict` when queues are still placed on it. Missing: no-op. */
  deletePool(name: string): Promise<void>

  /**
   * A number that changes whenever a pool changes or a placement is removed or moved (in any
   * process). Proxies poll it to invalidate their placement caches. A *new* placement does not
   * change it: no cache can hold an entry for a queue that had no placement.
   */
  version(): Promise<number>

  close(): Promise<void>
}
