/**
 * This proxy's memory of the catalog's placements: (project, queue) → pool, least recently used
 * first out, plus a bounded set of queues known to have *no* placement (negative entries).
 *
 * What keeps it right (docs/pools.md, "Routing"):
 * - a placement is written once and only removed with its queue, so a positive entry stays true
 *   until that queue is deleted; the queue is then forgotten (`forget`) by the proxy that deleted
 *   it at once, and by every other one at its next poll of the catalog, which lists the removals
 *   behind each version (`CatalogStore.removalsSince`). Any other catalog change (a pool or a
 *   flavor) drops everything (`reset`);
 * - a new placement does not bump the version, so a negative entry can only be trusted while
 *   any queue placed anywhere would be placed on the default pool anyway: `negative` is switched
 *   on by the pool set only while the catalog knows one pool, the default one. It is dropped when
 *   this proxy places the queue and on every reset (a pool added anywhere is one).
 * - which dead-letter queues are known to live on their source's pool (`localDeadLetter`): a
 *   stale "local" would send messages into a queue of the wrong pool, so they all go on any
 *   removal and on every reset.
 */

/** A routing key: queue names hold no '/', so it is unambiguous. */
export const routingKey = (project: string, queue: string): string => `${queue}/${project}`

export class PlacementCache {
  readonly #size: number
  readonly #placed = new Map<string, string>()
  readonly #unplaced = new Set<string>()
  readonly #localDlq = new Map<string, string>()
  /** Whether negative entries may be recorded and trusted (see the module comment). */
  #negative = false

  /** `size`: the most entries of each kind kept (placements, negatives, local DLQs). */
  constructor(size = 100_000) {
    this.#size = size
  }

  /** The pool `key` is placed on, if cached; refreshes its recency. */
  get(key: string): string | undefined {
    const pool = this.#placed.get(key)
    if (pool !== undefined) {
      // Map keeps insertion order, so the first key is the least recently used.
      this.#placed.delete(key)
      this.#placed.set(key, pool)
    }
    return pool
  }

  /** Whether `key` is known to have no placement. */
  unplaced(key: string): boolean {
    return this.#unplaced.size !== 0 && this.#unplaced.has(key)
  }

  /** Records `key` → `pool` (drops a negative entry for it). */
  set(key: string, pool: string): void {
    if (this.#unplaced.size !== 0) this.#unplaced.delete(key)
    this.#placed.set(key, pool)
    if (this.#placed.size > this.#size) this.#placed.delete(this.#placed.keys().next().value!)
  }

  /** Records that `key` has no placement, when negative entries are on and it has no positive one. */
  setUnplaced(key: string): void {
    if (!this.#negative || this.#placed.has(key)) return
    this.#unplaced.add(key)
    if (this.#unplaced.size > this.#size) this.#unplaced.delete(this.#unplaced.values().next().value!)
  }

  /**
   * Forgets everything about `key` (its queue was deleted, here or through another proxy). Local
   * DLQs all go: the deleted queue may be some other queue's DLQ, which may come back on another
   * pool (a claim that finds due messages locates the DLQ again).
   */
  forget(key: string): void {
    this.#placed.delete(key)
    this.#unplaced.delete(key)
    this.#localDlq.clear()
  }

  /**
   * Forgets every entry (the catalog version changed) and sets whether negative entries may be
   * kept from now on.
   */
  reset(negative: boolean): void {
    this.#placed.clear()
    this.#unplaced.clear()
    this.#localDlq.clear()
    this.#negative = negative
  }

  /** The dead-letter queue known to live on the same pool as `key`'s queue ('' when none is known). */
  localDeadLetter(key: string): string {
    return this.#localDlq.size === 0 ? '' : (this.#localDlq.get(key) ?? '')
  }

  /** Records (`dlq` non-empty) or forgets (`''`) that `key`'s dead-letter queue is on its pool. */
  setLocalDeadLetter(key: string, dlq: string): void {
    if (dlq === '') {
      this.#localDlq.delete(key)
      return
    }
    this.#localDlq.set(key, dlq)
    if (this.#localDlq.size > this.#size) this.#localDlq.delete(this.#localDlq.keys().next().value!)
  }

  /** Entries held: placements, negatives. */
  get counts(): { placed: number; unplaced: number } {
    return { placed: this.#placed.size, unplaced: this.#unplaced.size }
  }
}
