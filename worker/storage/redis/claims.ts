/**
 * Claims on Redis: create (coalesced per queue, with claim-time dead-lettering), get, renew,
 * release. Concurrent createClaim calls on one queue become one claimMessages script call that
 * serves them in order from the ready index, so they never share a message.
 *
 * Dead-lettering moves messages into another queue, so the script needs that queue's keys up
 * front. The driver remembers each queue's dead-letter queue name (learned from metadata it
 * writes, or from the script itself) and passes it; when the stored name differs, the script
 * changes nothing and says which name is right, and the driver calls again.
 *
 * On a Redis Cluster pool the DLQ lives in another slot, which no script can reach with the
 * queue's: dead-lettering is two steps there, safe under a crash at any point (docs/ha.md,
 * "Dead-letter queues on a Cluster"): the claim moves due messages out of the queue into its
 * outbox (`missive:o:T`, same slot: atomic with the claim; the messages are no longer in the
 * queue, so never seen twice); then `#drainOutbox` puts them into the DLQ (lua/deadLetterPut.lua,
 * which skips an id it already received: a repeated step adds nothing) and only then deletes
 * them from the outbox. A crash between the steps leaves them in the outbox, reported by the
 * next claim on the queue, which finishes the move.
 *
 * The proxy names the dead-letter queue it has checked is on this pool (`ClaimOptions.deadLetter`):
 * then the driver's memory is not consulted, and messages due for any other DLQ stay in the queue
 * and are reported for the proxy to move across pools (docs/pools.md).
 */
import { isId, newId } from '../../../shared/ids.js'
import type { Claim, ClaimOptions, DeadLetterDue, QueueRef } from '../../../shared/storage/contract.js'
import { ClaimNotFound } from '../../../shared/storage/errors.js'
import { claimExtendedTtl } from '../../../shared/storage/queue-policy.js'
import { Coalescer, FULL_MESSAGES, type Outcome } from './coalesce.js'
import { ageOf, checkFence, readViews, type Ctx } from './context.js'
import { outboxKey, queueKeys, receivedKey } from './keys.js'

/** Messages one outbox step moves. */
const OUTBOX_STEP = 100
/** Outbox steps one claim runs at most (the rest wait for the next claim). */
const OUTBOX_STEPS = 10
/** A put step later than this after its outbox read does nothing (lua/deadLetterPut.lua). */
const PUT_GUARD_MS = 60_000
/** How long a DLQ remembers the ids it received (well above the guard, and any clock skew). */
const RECEIVED_MS = 600_000

/** How long a queue's claims report due messages after its DLQ refused a move (ms). */
const REFUSED_MS = 5000

/** How many queues' dead-letter names are remembered before the memory starts over. */
const DLQ_CACHE_MAX = 10_000

type ClaimResult = [] | [string, ...unknown[]]
type ClaimReply = ['OK', number, string, string[], string, number, ...ClaimResult[]] | ['DLQ', string]

export class RedisClaims {
  readonly #ctx: Ctx
  readonly #creates: Coalescer<QueueRef, ClaimOptions, Claim | null>
  readonly #dlq = new Map<string, string>()
  /** Messages moved to a dead-letter queue by claim scripts (`DataDriver.deadLettered`). */
  deadLettered = 0
  /**
   * Cluster pools: queues whose DLQ refused a move (fenced: it is moving or moved to another
   * pool), until when (ms): their claims report due messages for the proxy instead.
   */
  readonly #refused = new Map<string, number>()

  constructor(ctx: Ctx, opts: { coalesce: boolean }) {
    this.#ctx = ctx
    this.#creates = new Coalescer((ref, reqs) => this.#create(ref, reqs), {
      maxBatch: opts.coalesce ? 128 : 1,
      weigh: (req) => req.limit,
      fullWeight: FULL_MESSAGES,
      together: ctx.scripts.together,
    })
  }

  /** Records the dead-letter queue name of `ref` ('' for none), as metadata written here says. */
  noteDeadLetter(ref: QueueRef, dlq: string): void {
    if (this.#dlq.size >= DLQ_CACHE_MAX) this.#dlq.clear()
    this.#dlq.set(queueKeys(ref).tag, dlq)
  }

  createClaim(ref: QueueRef, opts: ClaimOptions): Promise<Claim | null> {
    if (opts.limit <= 0) return Promise.resolve(null)
    return this.#creates.submit(queueKeys(ref).tag, ref, opts)
  }

  async #create(ref: QueueRef, reqs: ClaimOptions[]): Promise<Outcome<Claim | null>[]> {
    const tag = queueKeys(ref).tag
    const args: (string | number)[] = [reqs.length]
    for (const r of reqs) args.push(newId(), r.ttl, claimExtendedTtl(r.ttl, r.grace), r.limit)
    // Coalesced requests come from one proxy route, so they agree on the local DLQ (if one does not,
    // the script reports that DLQ's due messages instead of moving them: nothing is lost).
    const vouched = reqs[0]!.deadLetter
    // Two tries at most: the second uses the name the first reply gave.
    const cluster = this.#ctx.cluster
    for (let attempt = 0; ; attempt++) {
      // A Cluster pool: the DLQ is never in the script's slot; whichever the queue names (or the
      // one the proxy vouched for) is filled through the outbox.
      const refused = cluster && this.#refused.size > 0 && (this.#refused.get(tag) ?? 0) > this.#ctx.clock()
      const dlq = cluster ? (refused ? '' : (vouched ?? '*')) : (vouched ?? this.#dlq.get(tag) ?? '')
      const keys = cluster
        ? [...queueKeys(ref).script, outboxKey(queueKeys(ref))]
        : dlq === ''
          ? queueKeys(ref).script
          : [...queueKeys(ref).script, ...queueKeys({ project: ref.project, queue: dlq }).script]
      const now = this.#ctx.clock()
      const mode = cluster ? '2' : vouched === undefined ? '0' : '1'
      const reply = await this.#ctx.acked(this.#ctx.scripts.run<ClaimReply>('claimMessages', keys, [now, dlq, mode, ...args]))
      checkFence(ref, reply)
      // The claim stands whatever the move does: a step that fails leaves the messages in the
      // outbox, for the next claim on the queue to move.
      const returned = cluster && reply[0] === 'OK' && Number(reply[1]) > 0 ? await this.#drainOutbox(ref).catch(() => undefined) : undefined
      if (reply[0] === 'DLQ') {
        this.noteDeadLetter(ref, reply[1])
        if (attempt < 2) continue
        throw new Error(`claimMessages: the dead-letter queue of ${tag} keeps changing`)
      }
      if (!cluster && Number(reply[1]) === 1 && dlq !== '') await this.#ctx.catalogue({ project: ref.project, queue: dlq })
      this.deadLettered += Number(reply[5])
      const results = reply.slice(6) as ClaimResult[]
      const due: DeadLetterDue | undefined =
        reply[2] === '' ? returned : { queue: reply[2], ids: reply[3], ...(reply[4] !== '' && { ttl: Number(reply[4]) }) }
      return reqs.map((req, n): Outcome<Claim | null> => {
        const res = results[n]
        if (res === undefined || res.length === 0) return { ok: due === undefined ? null : { id: '', age: 0, ttl: req.ttl, messages: [], deadLetter: due } }
        const claim: Claim = { id: String(res[0]), age: 0, ttl: req.ttl, messages: readViews(res, 1, now) }
        if (due !== undefined) claim.deadLetter = due
        return { ok: claim }
      })
    }
  }

  /**
   * Moves what waits in `ref`'s outbox into its dead-letter queue(s), a step of at most
   * OUTBOX_STEP messages at a time: put (idempotent), then delete from the outbox. Stops at the
   * first step that cannot complete (the DLQ fenced, busy, or the step too late): the messages
   * stay in the outbox, and the next claim on the queue carries on.
   */
  async #drainOutbox(ref: QueueRef): Promise<DeadLetterDue | undefined> {
    const { redis } = this.#ctx
    const outbox = outboxKey(queueKeys(ref))
    for (let step = 0; step < OUTBOX_STEPS; step++) {
      const flat = (await redis.hrandfield(outbox, OUTBOX_STEP, 'WITHVALUES')) as string[]
      if (flat.length === 0) return undefined
      const takenAt = this.#ctx.clock()
      const byDlq = new Map<string, string[]>()
      for (let i = 0; i < flat.length; i += 2) {
        const dlq = (JSON.parse(flat[i + 1]!) as { q: string }).q
        let args = byDlq.get(dlq)
        if (args === undefined) byDlq.set(dlq, (args = []))
        args.push(flat[i]!, flat[i + 1]!)
      }
      for (const [queue, entries] of byDlq) {
        const dlq: QueueRef = { project: ref.project, queue }
        const keys = queueKeys(dlq)
        const r = await this.#ctx.acked(
          this.#ctx.scripts.run<[string, number?, number?]>('deadLetterPut', [...keys.script, receivedKey(keys)], [
            this.#ctx.clock(),
            takenAt,
            PUT_GUARD_MS,
            RECEIVED_MS,
            ...entries,
          ]),
        )
        if (r[0] === 'MOVED') return this.#refuse(ref, queue, entries)
        if (r[0] !== 'OK') return undefined
        if (Number(r[1]) === 1) await this.#ctx.catalogue(dlq)
        this.deadLettered += Number(r[2] ?? 0)
        const ids = entries.filter((_, i) => i % 2 === 0)
        await this.#ctx.acked(redis.hdel(outbox, ...ids), outbox)
      }
      if (flat.length < OUTBOX_STEP * 2) return undefined
    }
    return undefined
  }

  /**
   * The DLQ `queue` refused `entries` (fenced by a migration): they go back into `ref`, reported
   * for the proxy to move, and `ref`'s claims report due messages instead of moving them for a
   * while (REFUSED_MS).
   */
  async #refuse(ref: QueueRef, queue: string, entries: string[]): Promise<DeadLetterDue> {
    const keys = queueKeys(ref)
    if (this.#refused.size >= DLQ_CACHE_MAX) this.#refused.clear()
    this.#refused.set(keys.tag, this.#ctx.clock() + REFUSED_MS)
    const ids = entries.filter((_, i) => i % 2 === 0)
    const back = await this.#ctx.acked(
      this.#ctx.scripts.run<string[]>('deadLetterReturn', [...keys.script, outboxKey(keys)], [this.#ctx.clock(), ...ids]),
    )
    const ttl = (JSON.parse(entries[1]!) as { t: string }).t
    return { queue, ids: back, ...(ttl !== '' && { ttl: Number(ttl) }) }
  }

  async getClaim(ref: QueueRef, claimId: string): Promise<Claim | null> {
    if (!isId(claimId)) return null
    const now = this.#ctx.clock()
    const r = await this.#ctx.scripts.run<[string, number, ...unknown[]] | []>('getClaim', queueKeys(ref).script, [now, claimId])
    checkFence(ref, r)
    if (r.length === 0) return null
    return { id: claimId, age: ageOf(Number(r[1]), now), ttl: Number(r[0]), messages: readViews(r, 2, now) }
  }

  async renewClaim(ref: QueueRef, claimId: string, opts: { ttl: number; grace: number }): Promise<void> {
    if (!isId(claimId)) throw new ClaimNotFound(ref, claimId)
    const done = await this.#ctx.acked(
      this.#ctx.scripts.run<number>('renewClaim', queueKeys(ref).script, [this.#ctx.clock(), claimId, opts.ttl, claimExtendedTtl(opts.ttl, opts.grace)]),
    )
    checkFence(ref, done)
    if (done !== 1) throw new ClaimNotFound(ref, claimId)
  }

  async releaseClaim(ref: QueueRef, claimId: string): Promise<void> {
    if (!isId(claimId)) return
    checkFence(ref, await this.#ctx.acked(this.#ctx.scripts.run('releaseClaim', queueKeys(ref).script, [this.#ctx.clock(), claimId])))
  }
}
