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
 * Zaqar itself requires both queues on one pool (zaqar/storage/redis/claims.py, `create`: "the
 * queue and dead letter queue must be created on the same pool").
 */
import type { Logger } from '../shared/log.js'
import type { DataDriver, DeadLetterDue, QueueRef } from '../shared/storage/contract.js'
import type { Router } from './router.js'

/** The Client-ID of messages copied into a dead-letter queue on another pool. */
export const DEAD_LETTER_CLIENT_ID = '00000000-0000-0000-0000-000000000000'

/** Cross-pool moves one proxy runs at once; more wait for a later claim to report them again. */
const MAX_MOVES = 64

export class DeadLetterMover {
  readonly #router: Router
  /** Source queues with a cross-pool move under way in this proxy. */
  readonly #moving = new Set<string>()
  /** Messages moved across pools (copied, then deleted from the source) by this proxy. */
  moved = 0
  /** Cross-pool moves that failed (the messages stayed in the source). */
  failures = 0

  constructor(router: Router) {
    this.#router = router
  }

  /**
   * Acts on what a claim on `ref` (served by `source`) reported. Resolves true when the DLQ turned
   * out to be on the source's pool: a claim made now with `router.localDeadLetter(ref)` moves the
   * due messages itself. A cross-pool move runs in the background (the claim does not wait for
   * another pool); its failure is logged and retried by the next claim that reports the messages.
   * Never throws: the claim's answer does not depend on it.
   */
  async settle(ref: QueueRef, source: DataDriver, due: DeadLetterDue, log: Logger): Promise<boolean> {
    const router = this.#router
    const dlq: QueueRef = { project: ref.project, queue: due.queue }
    let from: string
    let to: string
    try {
      from = (await router.placementOf(ref)) ?? router.defaultPool
      to = await router.placeUnlessPlaced(dlq, from)
    } catch (err) {
      // The catalog is unreachable: the messages wait in the source for the next claim.
      log.warn({ err, project: ref.project, queue: ref.queue, dlq: due.queue }, 'dead-letter placement could not be read')
      return false
    }
    if (to === from) {
      router.noteLocalDeadLetter(ref, due.queue)
      return true
    }
    const key = `${ref.queue}/${ref.project}`
    if (this.#moving.has(key) || this.#moving.size >= MAX_MOVES) return false
    this.#moving.add(key)
    this.#move(ref, source, dlq, due).then(
      (n) => {
        this.moved += n
        this.#moving.delete(key)
      },
      (err: unknown) => {
        this.failures++
        this.#moving.delete(key)
        log.warn({ err, project: ref.project, queue: ref.queue, dlq: due.queue, pool: to }, 'dead-letter move to another pool failed; retried on the next claim')
      },
    )
    return false
  }

  /** Copies the still-due messages to `dlq`'s pool, then deletes them from the source. */
  async #move(ref: QueueRef, source: DataDriver, dlq: QueueRef, due: DeadLetterDue): Promise<number> {
    const target = await this.#router.driverFor(dlq, false)
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
