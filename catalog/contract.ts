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
import type { Migration, MigrationPatch, MigrationState, NewMigration } from './migration-record.js'
import type { CreatedSubscription, NewSubscription, Subscription, SubscriptionPatch, SubscriptionUpdate } from './subscription-record.js'

export type { Migration, MigrationPatch, MigrationState, NewMigration } from './migration-record.js'
export type { CreatedSubscription, NewSubscription, Subscription, SubscriptionPatch, SubscriptionUpdate } from './subscription-record.js'

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

  /**
   * `place` under a quota of queues per project (docs/limits.md, "Quotas"): when the queue has
   * no placement and its project already has `maxQueues` placed queues (on any pool), nothing
   * is written and the answer is null. The count and the insert are one atomic step across every
   * process sharing the store, so racing creators never overshoot the quota. Costs at most
   * `maxQueues` index entries (SQLite) or one count per pool (Redis).
   */
  placeWithin(ref: QueueRef, pool: string, maxQueues: number): Promise<string | null>

  /**
   * Forgets the placement. Missing: no-op. A `copying` migration of the queue (it was deleted)
   * goes to `cancelling` (`error` cleared) in the same write, so the runner rolls it back.
   */
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

  // Live migrations (docs/migration.md; the record, its states and their transitions are in
  // catalog/migration-record.ts). Errors are `MigrationError`s (409 or 404), never partial writes.

  /**
   * Creates a migration in state `copying`, atomically checking that the queue is placed on
   * `from` (else `not_placed`), that `to` differs (`same_pool`), that both pools exist
   * (`unknown_pool`), that the queue has no active migration (`active`, naming it), and — when
   * `maxActiveFrom` is given — that fewer than that many active migrations leave `from`
   * (`busy`). The store assigns the id (creation-ordered) and `created`.
   */
  createMigration(m: NewMigration, opts?: { maxActiveFrom?: number }): Promise<Migration>

  /** The migration, or null. */
  getMigration(id: string): Promise<Migration | null>

  /** Up to `limit` migrations in creation order (id order), after `after`, of `state` when given. */
  listMigrations(opts: { limit: number; after?: string; state?: MigrationState }): Promise<Migration[]>

  /** The queue's active migration (copying, switching, cancelling or cleaning), or null. */
  activeMigration(ref: QueueRef): Promise<Migration | null>

  /** The queue's latest migration (active or ended), or null when it never had one. */
  lastMigration(ref: QueueRef): Promise<Migration | null>

  /** How many active migrations leave `pool`. */
  countActiveFrom(pool: string): Promise<number>

  /**
   * Takes the lease of the oldest active migration whose lease is free or expired (or already
   * `owner`'s), for `ttlMs` of the store's clock, skipping the ids in `skip`. Null when none.
   */
  acquireMigration(owner: string, ttlMs: number, skip?: readonly string[]): Promise<Migration | null>

  /** Extends `owner`'s lease by `ttlMs`; `lease_lost` when another owner holds it or the migration ended. */
  renewMigration(id: string, owner: string, ttlMs: number): Promise<void>

  /** Gives the lease up (no-op when `owner` does not hold it). */
  releaseMigration(id: string, owner: string): Promise<void>

  /**
   * Applies `patch` under `owner`'s lease (compare-and-set on the owner: `lease_lost` otherwise),
   * checking the state transition (`bad_transition`; `cleaning` only comes from `finishSwitch`).
   * Ending the migration (done, cancelled, failed) releases the lease. Returns the record after.
   */
  updateMigration(id: string, owner: string, patch: MigrationPatch): Promise<Migration>

  /**
   * The switch, atomically: the placement moves from `from` to `to`, the state goes
   * `switching` → `cleaning` with `patch` applied, and the catalog version grows by one with a
   * placement-removal entry for the queue (`removalsSince`), so every proxy forgets its cached
   * placement. Under `owner`'s lease. Repeating it on a migration already `cleaning` (a crash
   * after the switch) returns the record unchanged.
   */
  finishSwitch(id: string, owner: string, patch?: MigrationPatch): Promise<Migration>

  /**
   * An operator's cancel: `copying` → `cancelling`, `error` cleared (the runner rolls back: clears the source's
   * fence, drops the target's copy, ends `cancelled`). Already cancelling or ended cancelled:
   * returns it unchanged. From the switch on (`switching`, `cleaning`, `done`) or `failed`:
   * `too_late`. Missing: `not_found`.
   */
  cancelMigration(id: string): Promise<Migration>

  // Subscriptions (catalog/subscription-record.ts; docs/notifications.md). `now` is ms since the
  // epoch: a subscription whose `expires` is not after `now` does not exist for any method.

  /**
   * Creates a subscription (unconfirmed) unless a live one of the same project, queue and
   * subscriber exists, atomically; then returns that one's id and flag with `created: false`.
   */
  createSubscription(s: NewSubscription, now: number): Promise<CreatedSubscription>

  /** The live subscription of that queue with that id, or null. */
  getSubscription(ref: QueueRef, id: string, now: number): Promise<Subscription | null>

  /** Up to `limit` live subscriptions of the queue in id (creation) order, after `after` when given. */
  listSubscriptions(ref: QueueRef, opts: { limit: number; after?: string | undefined; now: number }): Promise<Subscription[]>

  /**
   * Applies `patch` (a new `ttl` restarts the clock: `expires = now + ttl`). `duplicate` when the
   * new subscriber already has a live subscription on the queue; nothing changes then.
   */
  updateSubscription(ref: QueueRef, id: string, patch: SubscriptionPatch, now: number): Promise<SubscriptionUpdate>

  /** Sets `confirmed`; false when there is no such live subscription. */
  confirmSubscription(ref: QueueRef, id: string, confirmed: boolean, now: number): Promise<boolean>

  /** Deletes it (missing: no-op). */
  deleteSubscription(ref: QueueRef, id: string): Promise<void>

  /** Stores the notifier's cursor of a live subscription (missing: no-op). */
  setSubscriptionCursor(ref: QueueRef, id: string, cursor: string): Promise<void>

  /**
   * A number that grows whenever a subscription is created (in any process; a create that finds
   * the subscriber's live subscription changes nothing). A notifier that found a queue without
   * subscriptions may trust that while this number stays the same (proxy/notify/notifier.ts).
   */
  subscriptionsVersion(): Promise<number>

  /** Up to `limit` queues that have (or recently had) subscriptions, in (project, queue) byte order, after `after`. */
  listSubscribedQueues(opts: { limit: number; after?: QueueRef | undefined }): Promise<QueueRef[]>

  close(): Promise<void>
}
