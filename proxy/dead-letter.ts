/**
 * Dead-lettering across pools (docs/pools.md, "Dead-letter queues across pools").
 *
 * A worker only moves a message to the queue's `_dead_letter_queue` inside its own pool, and only
 * when the proxy has checked, in the catalog, that the DLQ is placed on that same pool (the claim
 * carries the name: `ClaimOptions.deadLetter`). Otherwise the claim leaves the due messages in the
 * source — not claimable, not lost — and reports them; the proxy then:
 * - places a DLQ that has no placement on the source's pool (insert-if-absent, so racing proxies
 *   agree), which makes the move an in-pool one from the next claim on;
 * - for a DLQ placed on another pool, copies the messages there (a post) and then deletes them
 *   from the source. At least once: a crash between the two, or two proxies seeing the same
 *   messages, can leave a duplicate in the DLQ, never a loss. When the DLQ's pool is down the copy
 *   fails, the messages stay in the source, and the next claim on the queue tries again.
 *
 * The pooled driver (proxy/pooled-driver.ts) runs this inside `createClaim`. It also learns a
 * queue's DLQ from the metadata it creates or sets (`learn`) and checks where that DLQ lives before
 * the queue's first claim (`prepare`), so that a DLQ on the same pool is filled atomically from the
 * first claim on — as in a single store — rather than from the claim after the one that found it.
 *
 * Zaqar itself requires both queues on one pool (zaqar/storage/redis/claims.py, `create`: "the
 * queue and dead letter queue must be created on the same pool").
 */
import type { Logger } from '../shared/log.js'
import type { DataDriver, DeadLetterDue, Metadata, QueueRef } from '../shared/storage/contract.js'
import { queuePolicy } from '../shared/storage/queue-policy.js'

/** The Client-ID of messages copied into a dead-letter queue on another pool. */
export const DEAD_LETTER_CLIENT_ID = '00000000-0000-0000-0000-000000000000'

/** Cross-pool moves one proxy runs at once; more wait for a later claim to report them again. */
const MAX_MOVES = 64

/** What the mover needs of routing (the pooled driver provides it). */
export interface DeadLetterRouting {
  /** The pool unplaced queues are read from. */
  readonly defaultPool: string
  /** The pool a queue is placed on, or null (no catalog read when cached). */
  placementOf(ref: QueueRef): Promise<string | null>
  /** The pool `ref` is placed on; when it has none, places it on `pool` (insert-if-absent). */
  placeUnlessPlaced(ref: QueueRef, pool: string): Promise<string>
  /** Records that `ref`'s dead-letter queue `dlq` lives on the same pool as `ref`. */
  noteLocalDeadLetter(ref: QueueRef, dlq: string): void
  /** The driver serving an existing queue (never places it). */
  driverOf(ref: QueueRef): Promise<DataDriver>
}

export class DeadLetterMover {
  readonly #routing: DeadLetterRouting
  readonly #log: Logger
  readonly #maxPending: number
  /** Source queues with a cross-pool move under way in this proxy. */
  readonly #moving = new Set<string>()
  /** Routing key → DLQ named by metadata written through this proxy, not yet located. */
  readonly #pending = new Map<string, string>()
  /** Messages moved across pools (copied, then deleted from the source) by this proxy. */
  moved = 0
  /** The same, by the pool of the queue they left (`missive_messages_dead_lettered_total`). */
  readonly movedFrom = new Map<string, { n: number }>()
  /** Cross-pool moves that failed (the messages stayed in the source). */
  failures = 0

  /** `maxPending`: how many queues' not-yet-located DLQs are remembered (oldest dropped). */
  constructor(routing: DeadLetterRouting, log: Logger, maxPending = 100_000) {
    this.#routing = routing
    this.#log = log
    this.#maxPending = maxPending
  }

  /** Notes the DLQ that metadata just written for `ref` (routing key `key`) asks for. */
  learn(ref: QueueRef, key: string, meta: Metadata): void {
    // The stores' own rule (shared/storage/queue-policy.ts): no complete rule, nothing to locate.
    const dlq = queuePolicy(ref.queue, meta).deadLetter?.queue
    if (dlq === undefined) {
      if (this.#pending.size !== 0) this.#pending.delete(key)
      return
    }
    this.#pending.set(key, dlq)
    if (this.#pending.size > this.#maxPending) this.#pending.delete(this.#pending.keys().next().value!)
  }

  /** Forgets what was learned about `key`'s queue (deleted). */
  forget(key: string): void {
    this.#pending.delete(key)
  }

  /** Whether `prepare` has work for `key` (checked on every claim: one Map lookup at most). */
  pending(key: string): boolean {
    return this.#pending.size !== 0 && this.#pending.has(key)
  }

  /**
   * Locates the learned DLQ of `ref` before a claim: a DLQ without a placement is placed on the
   * source's pool (as the first due message would do), and a DLQ on the source's pool is noted
   * as local. Never throws: a catalog that does not answer leaves it to `settle`.
   */
  async prepare(ref: QueueRef, key: string): Promise<void> {
    const dlq = this.#pending.get(key)
    this.#pending.delete(key)
    if (dlq !== undefined) await this.#locate(ref, dlq)
  }

  /** [source pool, DLQ pool] (placing an unplaced DLQ on the source's), noted when equal; null: catalog down. */
  async #locate(ref: QueueRef, queue: string): Promise<[string, string] | null> {
    const routing = this.#routing
    try {
      const from = (await routing.placementOf(ref)) ?? routing.defaultPool
      const to = await routing.placeUnlessPlaced({ project: ref.project, queue }, from)
      if (to === from) routing.noteLocalDeadLetter(ref, queue)
      return [from, to]
    } catch (err) {
      // The catalog is unreachable: the messages wait in the source for the next claim.
      this.#log.warn({ err, project: ref.project, queue: ref.queue, dlq: queue }, 'dead-letter placement could not be read')
      return null
    }
  }

  /**
   * Acts on what a claim on `ref` (served by `source`) reported. Resolves true when the DLQ turned
   * out to be on the source's pool: a claim made now with the local DLQ moves the due messages
   * itself. A cross-pool move runs in the background (the claim does not wait for another pool);
   * its failure is logged and retried by the next claim that reports the messages. Never throws:
   * the claim's answer does not depend on it.
   */
  async settle(ref: QueueRef, source: DataDriver, due: DeadLetterDue): Promise<boolean> {
    const located = await this.#locate(ref, due.queue)
    if (located === null) return false
    const [from, to] = located
    if (to === from) return true
    const key = `${ref.queue}/${ref.project}`
    if (this.#moving.has(key) || this.#moving.size >= MAX_MOVES) return false
    this.#moving.add(key)
    const dlq: QueueRef = { project: ref.project, queue: due.queue }
    this.#move(ref, source, dlq, due).then(
      (n) => {
        this.moved += n
        const from_ = this.movedFrom.get(from)
        if (from_ === undefined) this.movedFrom.set(from, { n })
        else from_.n += n
        this.#moving.delete(key)
      },
      (err: unknown) => {
        this.failures++
        this.#moving.delete(key)
        this.#log.warn({ err, project: ref.project, queue: ref.queue, dlq: due.queue, pool: to }, 'dead-letter move to another pool failed; retried on the next claim')
      },
    )
    return false
  }

  /** Copies the still-due messages to `dlq`'s pool, then deletes them from the source. */
  async #move(ref: QueueRef, source: DataDriver, dlq: QueueRef, due: DeadLetterDue): Promise<number> {
    const target = await this.#routing.driverOf(dlq)
    // A message claimed since (its queue's metadata changed meanwhile) is not moved.
    const messages = (await source.getMessages(ref, due.ids)).filter((m) => m.claimId === undefined)
    if (messages.length === 0) return 0
    await target.postMessages(
      dlq,
      messages.map((m) => ({ body: m.body, ttl: due.ttl ?? m.ttl })),
      { clientId: DEAD_LETTER_CLIENT_ID, defaultTtl: due.ttl ?? 3600, postBytes: 0, queuePolicy: false },
    )
    await source.deleteMessages(
      ref,
      messages.map((m) => m.id),
    )
    return messages.length
  }
}
