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
 * The proxy names the dead-letter queue it has checked is on this pool (`ClaimOptions.deadLetter`):
 * then the driver's memory is not consulted, and messages due for any other DLQ stay in the queue
 * and are reported for the proxy to move across pools (docs/pools.md).
 */
import { isId, newId } from '../../../shared/ids.js'
import type { Claim, ClaimOptions, DeadLetterDue, QueueRef } from '../../../shared/storage/contract.js'
import { ClaimNotFound } from '../../../shared/storage/errors.js'
import { claimExtendedTtl } from '../../../shared/storage/queue-policy.js'
import { Coalescer, type Outcome } from './coalesce.js'
import { ageOf, checkFence, toMessage, type Ctx, type MessageTuple } from './context.js'
import { queueKeys } from './keys.js'

/** How many queues' dead-letter names are remembered before the memory starts over. */
const DLQ_CACHE_MAX = 10_000

type ClaimResult = [] | [string, ...MessageTuple[]]
type ClaimReply = ['OK', number, string, string[], string, number, ...ClaimResult[]] | ['DLQ', string]

export class RedisClaims {
  readonly #ctx: Ctx
  readonly #creates: Coalescer<QueueRef, ClaimOptions, Claim | null>
  readonly #dlq = new Map<string, string>()
  /** Messages moved to a dead-letter queue by claim scripts (`DataDriver.deadLettered`). */
  deadLettered = 0

  constructor(ctx: Ctx, opts: { coalesce: boolean }) {
    this.#ctx = ctx
    this.#creates = new Coalescer((ref, reqs) => this.#create(ref, reqs), opts.coalesce ? 128 : 1)
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
    for (let attempt = 0; ; attempt++) {
      const dlq = vouched ?? this.#dlq.get(tag) ?? ''
      const keys = dlq === '' ? queueKeys(ref).list : [...queueKeys(ref).list, ...queueKeys({ project: ref.project, queue: dlq }).list]
      const now = this.#ctx.clock()
      const mode = vouched === undefined ? '0' : '1'
      const reply = await this.#ctx.acked(this.#ctx.scripts.run<ClaimReply>('claimMessages', keys, [now, dlq, mode, ...args]))
      checkFence(ref, reply)
      if (reply[0] === 'DLQ') {
        this.noteDeadLetter(ref, reply[1])
        if (attempt < 2) continue
        throw new Error(`claimMessages: the dead-letter queue of ${tag} keeps changing`)
      }
      if (Number(reply[1]) === 1 && dlq !== '') await this.#ctx.catalogue({ project: ref.project, queue: dlq })
      this.deadLettered += Number(reply[5])
      const results = reply.slice(6) as ClaimResult[]
      const due: DeadLetterDue | undefined =
        reply[2] === '' ? undefined : { queue: reply[2], ids: reply[3], ...(reply[4] !== '' && { ttl: Number(reply[4]) }) }
      return reqs.map((req, n): Outcome<Claim | null> => {
        const res = results[n]
        if (res === undefined || res.length === 0) return { ok: due === undefined ? null : { id: '', age: 0, ttl: req.ttl, messages: [], deadLetter: due } }
        const [id, ...tuples] = res as [string, ...MessageTuple[]]
        const claim: Claim = { id, age: 0, ttl: req.ttl, messages: tuples.map((t) => toMessage(t, now)) }
        if (due !== undefined) claim.deadLetter = due
        return { ok: claim }
      })
    }
  }

  async getClaim(ref: QueueRef, claimId: string): Promise<Claim | null> {
    if (!isId(claimId)) return null
    const now = this.#ctx.clock()
    const r = await this.#ctx.scripts.run<[string, number, ...MessageTuple[]] | []>('getClaim', queueKeys(ref).list, [now, claimId])
    checkFence(ref, r)
    if (r.length === 0) return null
    const [ttl, updated, ...tuples] = r
    return { id: claimId, age: ageOf(Number(updated), now), ttl: Number(ttl), messages: tuples.map((t) => toMessage(t, now)) }
  }

  async renewClaim(ref: QueueRef, claimId: string, opts: { ttl: number; grace: number }): Promise<void> {
    if (!isId(claimId)) throw new ClaimNotFound(ref, claimId)
    const done = await this.#ctx.acked(
      this.#ctx.scripts.run<number>('renewClaim', queueKeys(ref).list, [this.#ctx.clock(), claimId, opts.ttl, claimExtendedTtl(opts.ttl, opts.grace)]),
    )
    checkFence(ref, done)
    if (done !== 1) throw new ClaimNotFound(ref, claimId)
  }

  async releaseClaim(ref: QueueRef, claimId: string): Promise<void> {
    if (!isId(claimId)) return
    checkFence(ref, await this.#ctx.acked(this.#ctx.scripts.run('releaseClaim', queueKeys(ref).list, [this.#ctx.clock(), claimId])))
  }
}
