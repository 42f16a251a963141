/**
 * Live queue migration between pools (docs/migration.md): what a store does so that one queue can
 * be copied from its pool (the *source*) to another (the *target*) while clients keep using it,
 * and then switched over in a short, fenced pause.
 *
 * The shape ("copy, journal, fence, switch"):
 * 1. **Journal.** The runner sets a `journal` fence on the source queue (`fenceQueue`). The source
 *    keeps serving every client operation as before, and from then on records, atomically with
 *    each operation, the id of every existing message whose stored state the operation changed
 *    (deleted, claimed, renewed, released, popped, dead-lettered) in the queue's *journal*; a
 *    released claim is journalled under its own id too (its record reads as null, and removing
 *    that id from the copy removes the claim). A purge or a queue delete records a `reset` instead. New posts are not journalled: they come
 *    after the copy cursor and are copied by it.
 * 2. **Copy.** The runner walks the source in FIFO order (`readForMigration`, a cursor over the
 *    store's own sequence) and writes each batch to the target (`importMessages`), where the queue
 *    is held under an `importing` fence: invisible to clients, filled in source order. Between
 *    batches it drains the journal (`readJournal` → `importMessages` upsert/remove → `ackJournal`),
 *    applying only entries at or before the cursor (later ones the cursor will copy as they are).
 * 3. **Switch.** When little is left, the runner sets the source's fence to `moved`: from that
 *    instant the source refuses every client operation on the queue with `QueueMoved`, atomically
 *    with the operation. It copies the rest and drains the journal (the source no longer changes),
 *    copies the metadata, lifts the target's `importing` fence, and switches the catalog's
 *    placement. Clients that hit the fence are retried by their proxy on the new placement; the
 *    pause is the length of that tail.
 * 4. **Clean up.** The source's data is dropped (`dropQueueData`); its `moved` fence stays as a
 *    tombstone, so a proxy with a stale cache can never write to the old pool again (a proxy that
 *    finds a tombstone where the catalog says the queue lives clears it with `fenceQueue(ref,
 *    null, token)`: a compare-and-set, so a newer migration's fence is never cleared by mistake).
 *
 * Why this shape: the source stays the single truth until the switch, so a cancel or a crash
 * before it is a clean rollback (drop the target's copy, clear the fence), and the target never
 * serves a client before it holds everything. Replication is by *state*, not by operation: a
 * journal entry names a message, the runner reads its current record, so applying an entry twice
 * is harmless and a crash anywhere only repeats work.
 */
import type { Metadata, QueueRef } from './contract.js'

/**
 * Bounded work: the most records one `readForMigration` returns, entries one `readJournal`
 * returns or `ackJournal` takes, and records one `importMessages` applies. A larger `limit` is
 * lowered to it; a larger `ackJournal` or `importMessages` is refused (`bad_request`).
 */
export const MIGRATION_BATCH_MAX = 1000
/** Bounded work: `readForMigration` stops after this many bytes of bodies (one record at least). */
export const MIGRATION_BATCH_BYTES = 1024 * 1024

/** A fence on one queue in one store: what the store does with client operations on it. */
export interface QueueFence {
  /** The migration's id: fences are compared and cleared by it. */
  token: string
  /** The pool the queue is moving to (told to proxies in `QueueMoved`). */
  to: string
  /**
   * - `journal` (source, during the copy): every client operation is served, and journals.
   * - `moved` (source, from the switch on): every client operation is refused with `QueueMoved`.
   * - `importing` (target, until the switch): every client operation is refused with `QueueMoved`.
   * Migration operations (`readForMigration` … `dropQueueData`) are never refused by a fence.
   */
  state: 'journal' | 'moved' | 'importing'
}

/** A message exactly as stored: every field a migration must keep. */
export interface MessageRecord {
  id: string
  /** The source store's sequence number (its FIFO order); meaningless in another store. */
  seq: number
  /** JSON text. */
  body: string
  /** The poster's Client-ID (for echo filtering). */
  clientId: string
  /** Current TTL, seconds (a claim may have raised it). */
  ttl: number
  /** Creation time, ms. */
  created: number
  /** Expiry, ms. */
  expires: number
  /** When the message becomes visible (its delay), ms; `created` when it had none. */
  visible: number
  claimCount: number
  /** The claim holding the message, when one was recorded (it may have expired: see `claimExpires`). */
  claimId?: string
  /** The recorded claim's expiry, ms (0 when never claimed). */
  claimExpires: number
}

/** A claim exactly as stored. */
export interface ClaimRecord {
  id: string
  /** Seconds. */
  ttl: number
  /** ms */
  expires: number
  /** When the claim was created or last renewed, ms (its `age` counts from here). */
  updated: number
}

/** One batch of the copy cursor. */
export interface MigrationBatch {
  /** Messages after the cursor in FIFO order, expired ones left out, at most `limit`. */
  records: MessageRecord[]
  /** The active claims those messages name. */
  claims: ClaimRecord[]
  /** The cursor to continue from (the last sequence examined). */
  next: number
  /** True when nothing after `next` existed when the batch was read. */
  end: boolean
  /**
   * The queue's stored metadata when the batch was read (null: the queue does not exist). Client
   * reads are refused under `moved`, so this is how the runner reads the metadata after the
   * switch, when it can no longer change. (Optional in the type only so that older fakes build;
   * both stores always set it.)
   */
  metadata?: Metadata | null
  /**
   * Whether the queue's journal held entries (or a reset) when the batch was read: false lets
   * the runner skip a `readJournal` that would come back empty (a change made after the read is
   * still in the journal for the next drain). Absent (an older store): unknown, drain.
   */
  journal?: boolean
}

/** One journal entry: a message whose state changed, and its state now. */
export interface JournalEntry {
  id: string
  /** Bumped each time the message is journalled again; `ackJournal` removes an entry only at this version. */
  version: number
  /** The message as stored now; null when it no longer exists (deleted, popped, moved to a DLQ). */
  record: MessageRecord | null
}

export interface JournalPage {
  /** At most `limit` entries, oldest first. */
  entries: JournalEntry[]
  /** The active claims the entries' records name. */
  claims: ClaimRecord[]
  /**
   * A purge or a delete of the queue happened since the fence was set (and was not yet
   * acknowledged): the target's copy must be emptied and the cursor restarted from 0 before the
   * entries are applied. Acknowledged by `ackJournal(ref, [], true)`.
   */
  reset: boolean
}

/** What `importMessages` applies to the target's copy, in this order. */
export interface ImportChange {
  /** Empty the copy first (keeps the fence). */
  reset?: boolean
  /** Replace the queue's metadata (the queue is created when absent). */
  metadata?: Metadata
  /**
   * Messages to write: an id the copy does not hold is appended (so the copy keeps the order
   * they are given in); an id it holds has its mutable state replaced (ttl, expires, visible,
   * claim count, claim id and expiry), its place kept.
   */
  upsert?: MessageRecord[]
  /** Claims to write (replacing one of the same id). */
  claims?: ClaimRecord[]
  /** Ids to delete from the copy: messages, and claims of that id (missing ones ignored). */
  remove?: string[]
}

/**
 * The migration operations every store implements (part of `DataDriver`). They ignore fences
 * (they are how a migration works through them) but check the token where they name one.
 */
export interface MigrationOperations {
  /**
   * Sets (`fence`) or clears (`null`) the queue's fence, if its current fence's token is
   * `expect` (`null`: no fence). Otherwise throws `FenceConflict` carrying the current fence.
   * Works whether or not the queue exists; a fence outlives the queue's data (a `moved`
   * tombstone must). Setting `journal` starts an empty journal (setting it again with the same
   * token keeps it: a retry); moving on from `journal` to `moved` keeps the journal (the runner
   * drains it after the switch); clearing the fence, or setting `importing`, drops it.
   *
   * Over RPC a top-level `null` argument arrives as `undefined` (worker/rpc-server.ts): stores
   * read a missing `fence` or `expect` as `null`.
   */
  fenceQueue(ref: QueueRef, fence: QueueFence | null, expect: string | null): Promise<void>

  /** The queue's fence, or null. */
  getFence(ref: QueueRef): Promise<QueueFence | null>

  /** Up to `limit` messages after sequence `after` (0: from the start). Bounded work. */
  readForMigration(ref: QueueRef, after: number, limit: number): Promise<MigrationBatch>

  /** Up to `limit` journal entries, oldest first, with each message's current record. */
  readJournal(ref: QueueRef, limit: number): Promise<JournalPage>

  /**
   * Removes the given entries that are still at the given version (an entry journalled again
   * since it was read stays); `reset` also acknowledges the reset marker.
   */
  ackJournal(ref: QueueRef, entries: { id: string; version: number }[], reset?: boolean): Promise<void>

  /** Applies `change` to the queue's copy, which must hold the `importing` fence `token` (else `FenceConflict`). */
  importMessages(ref: QueueRef, token: string, change: ImportChange): Promise<void>

  /** Counts of the queue's messages, fences ignored (what `stats().total` would say). */
  countForMigration(ref: QueueRef): Promise<number>

  /**
   * Deletes the queue's data (messages, claims, metadata, journal, idempotency keys), in bounded
   * work, when its fence's token is `token` and its state `moved` or `importing` (else
   * `FenceConflict`). A `moved` fence stays (the tombstone), its journal dropped; an `importing`
   * fence goes with the data (a cancelled copy).
   */
  dropQueueData(ref: QueueRef, token: string): Promise<void>
}
