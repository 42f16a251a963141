/** Claims on SQLite: leases over messages, with claim-time dead-lettering (zaqar/transport/wsgi/v2_0/claims.py). */
import type { Statement, Transaction } from 'better-sqlite3'
import { isId, newId } from '../../../shared/ids.js'
import type { Claim, ClaimOptions, Message, QueueRef } from '../../../shared/storage/contract.js'
import { ClaimNotFound } from '../../../shared/storage/errors.js'
import { claimExtendedTtl, claimExtends, isDeadLetterDue } from '../../../shared/storage/queue-policy.js'
import {
  ageOf,
  CLAIMABLE_SQL,
  MESSAGE_COLUMNS,
  placeholders,
  QID_SQL,
  statementsByCount,
  toMessage,
  type ClaimableRow,
  type Ctx,
  type MessageRow,
} from './context.js'
import type { SqliteQueues } from './queues.js'

interface ClaimRow {
  qid: number
  ttl: number
  expires: number
  updated: number
}

/** Messages claimed per UPDATE statement (`#takeAll`): Zaqar's default claim limit (20), so one statement per claim. */
const TAKE_ROWS = 20

interface ExtendParams {
  claimId: string
  qid: number
  now: number
  claimExpires: number
  extendedTtl: number
  extendedExpires: number
}

interface MovedRow {
  id: string
  body: string
  client_id: string
  created: number
  claim_count: number
}

interface MoveParams extends MovedRow {
  qid: number
  ttl: number
  expires: number
  visible: number
}

/**
 * At most this many messages due for a remote dead-letter queue are read past and reported by one
 * claim (bounded work: the rest are reported by later claims, as the first ones move out).
 */
const DUE_MAX = 100

export class SqliteClaims {
  /** Messages moved to a dead-letter queue by committed claims (`DataDriver.deadLettered`). */
  deadLettered = 0
  /** Moves made by the claim transaction running now. */
  #movedNow = 0
  readonly #ctx: Ctx
  readonly #queues: SqliteQueues
  readonly #claimable: Statement<[number, number, number, number, number], ClaimableRow>
  /** The UPDATE claiming n messages by seq (1 ≤ n ≤ TAKE_ROWS). */
  readonly #taker: (n: number) => Statement<unknown[]>
  readonly #moveOut: Statement<[number], MovedRow>
  readonly #moveIn: Statement<[MoveParams]>
  readonly #insertClaim: Statement<[string, number, number, number, number]>
  readonly #getClaim: Statement<[string, string, string, number], ClaimRow>
  readonly #claimMessages: Statement<[string, number, number, number], MessageRow>
  readonly #renewClaim: Statement<[number, number, number, string]>
  readonly #extend: Statement<[ExtendParams]>
  readonly #deleteClaim: Statement<[string, number]>
  readonly #unclaim: Statement<[string, number]>
  readonly #claimIds: Statement<[string, number], string>
  readonly #create: Transaction<(ref: QueueRef, opts: ClaimOptions, now: number) => Claim | null>
  readonly #renew: Transaction<(ref: QueueRef, claimId: string, ttl: number, grace: number, now: number) => void>
  readonly #release: Transaction<(ref: QueueRef, claimId: string) => void>

  constructor(ctx: Ctx, queues: SqliteQueues) {
    this.#ctx = ctx
    this.#queues = queues
    const db = ctx.db
    this.#claimable = db.prepare(CLAIMABLE_SQL)
    // SET expressions read the old row, so both CASEs test the original expiry.
    this.#taker = statementsByCount(
      db,
      (n) => `UPDATE messages SET claim_id = ?, claim_expires = ?, claim_count = claim_count + 1,
           ttl = CASE WHEN expires < ? THEN ? ELSE ttl END,
           expires = CASE WHEN expires < ? THEN ? ELSE expires END
         WHERE seq IN (${placeholders(n)})`,
    )
    // A move deletes and re-inserts the row so it takes a new `seq`: it joins the DLQ at its
    // tail, unclaimed, keeping its id, body, creation time and claim count.
    this.#moveOut = db.prepare('DELETE FROM messages WHERE seq = ? RETURNING id, body, client_id, created, claim_count')
    this.#moveIn = db.prepare(
      `INSERT INTO messages (id, qid, body, client_id, ttl, created, expires, visible, claim_count)
       VALUES (@id, @qid, @body, @client_id, @ttl, @created, @expires, @visible, @claim_count)`,
    )
    this.#insertClaim = db.prepare('INSERT INTO claims (id, qid, ttl, expires, updated) VALUES (?, ?, ?, ?, ?)')
    this.#getClaim = db.prepare(
      `SELECT qid, ttl, expires, updated FROM claims INDEXED BY claims_id WHERE id = ? AND qid = ${QID_SQL} AND expires > ?`,
    )
    this.#claimMessages = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages INDEXED BY messages_claim
       WHERE claim_id = ? AND qid = ? AND expires > ? AND claim_expires > ? ORDER BY seq`,
    )
    this.#renewClaim = db.prepare('UPDATE claims INDEXED BY claims_id SET ttl = ?, expires = ?, updated = ? WHERE id = ?')
    this.#extend = db.prepare(
      `UPDATE messages INDEXED BY messages_claim SET claim_expires = @claimExpires,
         ttl = CASE WHEN expires < @claimExpires THEN @extendedTtl ELSE ttl END,
         expires = CASE WHEN expires < @claimExpires THEN @extendedExpires ELSE expires END
       WHERE claim_id = @claimId AND qid = @qid AND expires > @now AND claim_expires > @now`,
    )
    this.#deleteClaim = db.prepare('DELETE FROM claims INDEXED BY claims_id WHERE id = ? AND qid = ?')
    this.#claimIds = db.prepare<[string, number], string>('SELECT id FROM messages INDEXED BY messages_claim WHERE claim_id = ? AND qid = ?').pluck()
    this.#unclaim = db.prepare('UPDATE messages INDEXED BY messages_claim SET claim_id = NULL, claim_expires = 0 WHERE claim_id = ? AND qid = ?')

    this.#create = db.transaction((ref: QueueRef, opts: ClaimOptions, now: number): Claim | null => {
      const queue = this.#queues.find(ref)
      if (queue === undefined) return null
      const dlq = this.#queues.policy(ref, queue).deadLetter
      // A DLQ the caller has not vouched for as local (ClaimOptions.deadLetter) is not filled
      // here: its due messages stay, and are read past (up to DUE_MAX) so they block no claim.
      // A DLQ fenced by a migration (moving or moved away) is not filled here either: its due
      // messages are reported, for the proxy to move to wherever the queue lives.
      const defer =
        dlq !== undefined &&
        ((opts.deadLetter !== undefined && opts.deadLetter !== dlq.queue) || this.#ctx.fenced({ project: ref.project, queue: dlq.queue }))
      const rows = this.#claimable.all(queue.qid, now, now, now, defer ? opts.limit + DUE_MAX : opts.limit)
      if (rows.length === 0) return null
      const due: string[] = []
      /** Seqs of the messages this claim takes (`#takeAll`). */
      const taken: number[] = []
      const claimId = newId()
      const claimExpires = now + opts.ttl * 1000
      const extendedTtl = claimExtendedTtl(opts.ttl, opts.grace)
      const extendedExpires = now + extendedTtl * 1000
      const messages: Message[] = []
      for (const r of rows) {
        if (dlq !== undefined && isDeadLetterDue(dlq, r.claim_count)) {
          if (defer) {
            due.push(r.id)
            continue
          }
          const target = this.#queues.ensure({ project: ref.project, queue: dlq.queue }, now)
          const moved = this.#moveOut.get(r.seq) as MovedRow
          if (this.#ctx.journal.jid !== 0) this.#ctx.journal.note(r.id)
          this.#moveIn.run({
            ...moved,
            qid: target.qid,
            ttl: dlq.ttl ?? r.ttl,
            expires: dlq.ttl === undefined ? r.expires : now + dlq.ttl * 1000,
            visible: now,
          })
          this.#movedNow++
          continue
        }
        taken.push(r.seq)
        if (this.#ctx.journal.jid !== 0) this.#ctx.journal.note(r.id)
        const extended = claimExtends(r.expires, claimExpires)
        messages.push({
          id: r.id,
          ttl: extended ? extendedTtl : r.ttl,
          age: ageOf(r.created, now),
          created: r.created,
          body: r.body,
          claimId,
          claimCount: r.claim_count + 1,
        })
        if (messages.length === opts.limit) break
      }
      this.#takeAll(taken, claimId, claimExpires, extendedTtl, extendedExpires)
      const deadLetter = due.length === 0 ? undefined : { queue: dlq!.queue, ids: due, ...(dlq!.ttl !== undefined && { ttl: dlq!.ttl }) }
      if (messages.length === 0) return deadLetter === undefined ? null : { id: '', age: 0, ttl: opts.ttl, messages, deadLetter }
      this.#insertClaim.run(claimId, queue.qid, opts.ttl, claimExpires, now)
      const claim: Claim = { id: claimId, age: 0, ttl: opts.ttl, messages }
      if (deadLetter !== undefined) claim.deadLetter = deadLetter
      return claim
    })

    this.#renew = db.transaction((ref: QueueRef, claimId: string, ttl: number, grace: number, now: number) => {
      const claim = this.#getClaim.get(claimId, ref.project, ref.queue, now)
      if (claim === undefined) throw new ClaimNotFound(ref, claimId)
      const claimExpires = now + ttl * 1000
      const extendedTtl = claimExtendedTtl(ttl, grace)
      this.#renewClaim.run(ttl, claimExpires, now, claimId)
      this.#journalClaim(claimId, claim.qid)
      this.#extend.run({ claimId, qid: claim.qid, now, claimExpires, extendedTtl, extendedExpires: now + extendedTtl * 1000 })
    })

    this.#release = db.transaction((ref: QueueRef, claimId: string) => {
      const queue = this.#queues.find(ref)
      if (queue === undefined) return
      const { changes } = this.#deleteClaim.run(claimId, queue.qid)
      this.#journalClaim(claimId, queue.qid)
      // The claim itself goes too: journalled under its own id, whose record reads as missing.
      if (changes > 0 && this.#ctx.journal.jid !== 0) this.#ctx.journal.note(claimId)
      this.#unclaim.run(claimId, queue.qid)
    })
  }

  /**
   * Claims the messages of `seqs`, TAKE_ROWS per UPDATE. One statement for the claim's messages
   * rather than one per message saves the statement's fixed part (bind, step, reset) for all but
   * one; the rows written are the same.
   */
  #takeAll(seqs: number[], claimId: string, claimExpires: number, extendedTtl: number, extendedExpires: number): void {
    for (let from = 0; from < seqs.length; from += TAKE_ROWS) {
      const n = Math.min(TAKE_ROWS, seqs.length - from)
      // claim id, claim expiry, claim expiry, extended ttl, claim expiry, extended expiry, seqs.
      const params: (string | number)[] = [claimId, claimExpires, claimExpires, extendedTtl, claimExpires, extendedExpires]
      for (let i = from; i < from + n; i++) params.push(seqs[i]!)
      this.#taker(n).run(params)
    }
  }

  /** Under a journal fence: journals the messages of the claim (a renew or release changes them all). */
  #journalClaim(claimId: string, qid: number): void {
    const journal = this.#ctx.journal
    if (journal.jid === 0) return
    for (const id of this.#claimIds.all(claimId, qid)) journal.note(id)
  }

  createClaim(ref: QueueRef, opts: ClaimOptions): Claim | null {
    if (opts.limit <= 0) return null
    this.#movedNow = 0
    const claim = this.#create.immediate(ref, opts, this.#ctx.clock())
    // Counted once the transaction committed: a rolled-back move moved nothing.
    this.deadLettered += this.#movedNow
    return claim
  }

  getClaim(ref: QueueRef, claimId: string): Claim | null {
    if (!isId(claimId)) return null
    const now = this.#ctx.clock()
    const claim = this.#getClaim.get(claimId, ref.project, ref.queue, now)
    if (claim === undefined) return null
    const messages = this.#claimMessages.all(claimId, claim.qid, now, now).map((r) => toMessage(r, now))
    return { id: claimId, age: ageOf(claim.updated, now), ttl: claim.ttl, messages }
  }

  renewClaim(ref: QueueRef, claimId: string, opts: { ttl: number; grace: number }): void {
    if (!isId(claimId)) throw new ClaimNotFound(ref, claimId)
    this.#renew.immediate(ref, claimId, opts.ttl, opts.grace, this.#ctx.clock())
  }

  releaseClaim(ref: QueueRef, claimId: string): void {
    if (!isId(claimId)) return
    this.#release.immediate(ref, claimId)
  }
}
