/** Messages on SQLite: post, list, get, delete and pop. */
import type { Statement, Transaction } from 'better-sqlite3'
import { isId, newId } from '../../../shared/ids.js'
import {
  LIST_SCAN_BUDGET,
  type ListMessagesOptions,
  type Message,
  type MessageListing,
  type NewMessage,
  type PoppedMessage,
  type PostOptions,
  type QueueRef,
} from '../../../shared/storage/contract.js'
import { ClaimGone, ClaimNotHeld, MessageClaimed, PostTooLarge, QueueFull } from '../../../shared/storage/errors.js'
import {
  deleteNeedsClaimLookup,
  deleteVerdict,
  exceedsPostSize,
  includeDelayed as effectiveIncludeDelayed,
  markerOf,
  messageDelay,
  messageTtl,
  NO_POLICY,
  parseMarker,
  postSettings,
  type PostSettings,
} from '../../../shared/storage/queue-policy.js'
import {
  ageOf,
  CLAIMABLE_SQL,
  flag,
  MESSAGE_COLUMNS,
  placeholders,
  QID_SQL,
  STAGED_FROM_SQL,
  statementsByCount,
  toMessage,
  type ClaimableRow,
  type Ctx,
  type MessageRow,
} from './context.js'
import type { QueueRow, SqliteQueues } from './queues.js'

/** Bound per inserted row: id, qid, body, client_id, ttl, created, expires, visible. */
const INSERT_COLUMNS = 8

/**
 * Rows per INSERT statement (`#insertAll`): 16 × 8 values stays far below SQLite's limit on
 * bound parameters, and a chunk of a large post (POST_CHUNK) takes 8 statements.
 */
const INSERT_ROWS = 16

interface ListParams {
  qid: number
  after: number
  budget: number
  now: number
  claimed: number
  delayed: number
  echo: number
  clientId: string
  limit: number
}

interface DeleteTarget {
  seq: number
  qid: number
  claim_id: string | null
  claim_expires: number
}

interface HeldRow {
  claim_id: string | null
  claim_expires: number
}

/** Valid ids, each once, as the JSON array the `json_each` statements bind. */
function idList(ids: string[]): string | undefined {
  const valid = [...new Set(ids.filter(isId))]
  return valid.length === 0 ? undefined : JSON.stringify(valid)
}

/** Stored (or answered by the idempotency record), over the queue's post size, or over its quota of messages. */
type PostResult = { ids: string[] } | { maxSize: number } | { full: number }

/** One chunk of a large post: begin (the first), add, or commit (the last). */
export type StageOp = 'begin' | 'add' | 'commit'

/** A chunk's outcome: stored (or answered by the idempotency record), too big, or the stage is gone. */
export type StageResult = PostResult | { lost: true }

export class SqliteMessages {
  readonly #ctx: Ctx
  readonly #queues: SqliteQueues
  /** The INSERT of n rows (1 ≤ n ≤ INSERT_ROWS). */
  readonly #inserter: (n: number) => Statement<unknown[]>
  /** The bound values of one multi-row INSERT, reused. */
  readonly #params: (string | number)[] = []
  readonly #list: Statement<[ListParams], MessageRow>
  readonly #listCapped: Statement<[ListParams], MessageRow>
  /** Large posts being staged in this store right now (`staging`). */
  #staging = 0
  readonly #window: Statement<[number, number, number, number], { last: number | null; n: number }>
  readonly #idemGet: Statement<[string, string, string, number], { ids: string }>
  readonly #idemPut: Statement<[string, string, string, string, number]>
  readonly #stageGet: Statement<[number], { from_seq: number; n: number }>
  readonly #stageBegin: Statement<[number, number]>
  readonly #stageAdd: Statement<[number, number]>
  readonly #stageEnd: Statement<[number]>
  readonly #nextSeq: Statement<[], { next: number }>
  readonly #unstage: Statement<[number, number]>
  readonly #stage: Transaction<(ref: QueueRef, op: StageOp, messages: NewMessage[], ids: string[], allIds: string[], opts: PostOptions, now: number) => StageResult>
  readonly #get: Statement<[string, string, string, number], MessageRow>
  readonly #getMany: Statement<[string, string, string, number], MessageRow>
  readonly #target: Statement<[string, string, string, number], DeleteTarget>
  readonly #claimActive: Statement<[string, number, number], { one: number }>
  readonly #deleteSeq: Statement<[number]>
  readonly #held: Statement<[string, number, number], HeldRow>
  readonly #deleteMany: Statement<[string, number]>
  readonly #claimable: Statement<[number, number, number, number, number], ClaimableRow>
  readonly #countLive: Statement<[number, number, number], { n: number }>
  readonly #topSeq: Statement<[number], { top: number | null }>
  /** Per queue (qid): an upper bound `n` of its unexpired messages, valid while its highest seq is `top` (`#overQuota`). */
  readonly #bounds = new Map<number, { n: number; top: number }>()
  /** What the post being checked will leave in its queue (`#overQuota`). */
  #quotaAfter = 0
  readonly #post: Transaction<(ref: QueueRef, messages: NewMessage[], opts: PostOptions, now: number) => PostResult>
  readonly #deleteOne: Transaction<(ref: QueueRef, id: string, claimId: string | undefined, now: number) => void>
  readonly #deleteIds: Transaction<(ref: QueueRef, list: string, claimIds: string[] | undefined, now: number) => void>
  readonly #pop: Transaction<(ref: QueueRef, limit: number, now: number) => PoppedMessage[]>

  constructor(ctx: Ctx, queues: SqliteQueues) {
    this.#ctx = ctx
    this.#queues = queues
    const db = ctx.db
    const row = `(${placeholders(INSERT_COLUMNS)})`
    this.#inserter = statementsByCount(
      db,
      (n) => `INSERT INTO messages (id, qid, body, client_id, ttl, created, expires, visible) VALUES ${new Array(n).fill(row).join(', ')}`,
    )
    // Bounded work (issue 11): the window is the next LIST_SCAN_BUDGET (or limit) messages of
    // the queue after the marker, read from the index alone; the page is then filtered inside
    // it (`seq <= @upto`), so a listing never walks a backlog of delayed or claimed messages.
    this.#window = db.prepare(
      `SELECT max(seq) AS last, count(*) AS n FROM
       (SELECT seq FROM messages INDEXED BY messages_scan WHERE qid = ? AND seq > ? AND seq < ${STAGED_FROM_SQL('?')} ORDER BY seq LIMIT ?)`,
    )
    this.#idemGet = db.prepare('SELECT ids FROM idempotency WHERE project = ? AND queue = ? AND key = ? AND expires > ?')
    this.#idemPut = db.prepare('INSERT OR REPLACE INTO idempotency (project, queue, key, ids, expires) VALUES (?, ?, ?, ?, ?)')
    this.#stageGet = db.prepare('SELECT from_seq, n FROM staging WHERE qid = ?')
    this.#stageBegin = db.prepare('INSERT INTO staging (qid, from_seq, n) VALUES (?, ?, 0)')
    this.#stageAdd = db.prepare('UPDATE staging SET n = n + ? WHERE qid = ?')
    this.#stageEnd = db.prepare('DELETE FROM staging WHERE qid = ?')
    this.#nextSeq = db.prepare(`SELECT ifnull((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0) + 1 AS next`)
    this.#unstage = db.prepare('DELETE FROM messages INDEXED BY messages_scan WHERE qid = ? AND seq >= ?')
    // The window `w` is read lazily from the index in seq order (no sort): a page that fills
    // early stops the scan there; only rows passing the index filters are read from the table.
    const listSql = (capped: boolean): string =>
      `SELECT ${MESSAGE_COLUMNS.split(', ').map((c) => `m.${c}`).join(', ')}
       FROM (SELECT seq, expires, visible, claim_expires FROM messages INDEXED BY messages_scan
             WHERE qid = @qid AND seq > @after ${capped ? `AND seq < ${STAGED_FROM_SQL('@qid')}` : ''}
             ORDER BY seq LIMIT @budget) AS w
       JOIN messages m ON m.seq = w.seq
       WHERE w.expires > @now
         AND (@claimed OR w.claim_expires <= @now)
         AND (@delayed OR w.visible <= @now)
         AND (@echo OR m.client_id <> @clientId)
       ORDER BY w.seq LIMIT @limit`
    this.#list = db.prepare(listSql(false))
    // While a large post is being staged somewhere, listings also stop below its first seq.
    this.#listCapped = db.prepare(listSql(true))
    this.#get = db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages INDEXED BY messages_id WHERE id = ? AND qid = ${QID_SQL} AND expires > ?`)
    this.#getMany = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages INDEXED BY messages_id
       WHERE id IN (SELECT value FROM json_each(?)) AND qid = ${QID_SQL} AND expires > ?
       ORDER BY seq`,
    )
    this.#target = db.prepare(
      `SELECT seq, qid, claim_id, claim_expires FROM messages INDEXED BY messages_id WHERE id = ? AND qid = ${QID_SQL} AND expires > ?`,
    )
    this.#claimActive = db.prepare('SELECT 1 AS one FROM claims INDEXED BY claims_id WHERE id = ? AND qid = ? AND expires > ?')
    this.#deleteSeq = db.prepare('DELETE FROM messages WHERE seq = ?')
    this.#held = db.prepare(
      `SELECT claim_id, claim_expires FROM messages INDEXED BY messages_id
       WHERE id IN (SELECT value FROM json_each(?)) AND qid = ? AND expires > ?`,
    )
    this.#deleteMany = db.prepare('DELETE FROM messages INDEXED BY messages_id WHERE id IN (SELECT value FROM json_each(?)) AND qid = ?')
    this.#claimable = db.prepare(CLAIMABLE_SQL)
    // The queue's unexpired messages, from the index alone, counted up to the quota and no
    // further: a quota check costs at most `maxMessages` index entries, whatever the backlog.
    this.#countLive = db.prepare(
      'SELECT count(*) AS n FROM (SELECT 1 FROM messages INDEXED BY messages_scan WHERE qid = ? AND expires > ? LIMIT ?)',
    )
    this.#topSeq = db.prepare('SELECT max(seq) AS top FROM messages INDEXED BY messages_scan WHERE qid = ?')

    this.#post = db.transaction((ref: QueueRef, messages: NewMessage[], opts: PostOptions, now: number): PostResult => {
      const queue = this.#queues.ensure(ref, now)
      const prior = this.#prior(ref, opts, now)
      if (prior !== undefined) return prior
      const settings = this.#settings(ref, queue, opts)
      // Returned, not thrown: the lazily created queue must survive the rejection.
      if ('maxSize' in settings) return settings
      if (this.#overQuota(queue.qid, messages.length, opts, now)) return { full: opts.maxMessages! }
      const ids = messages.map(() => newId())
      const top = this.#insertAll(queue.qid, messages, ids, settings, opts.clientId, now)
      this.#remember(ref, opts, ids, now)
      // Last, so that nothing after it can roll the post back (a failed group commit clears them all).
      if (opts.maxMessages !== undefined && opts.maxMessages > 0) this.#bound(queue.qid, this.#quotaAfter, top)
      return { ids }
    })

    // A large post, one chunk per call (docs/redis.md, "Large posts", for the design): the
    // staging row makes readers stop below the post's first seq until the last chunk removes it.
    this.#stage = db.transaction((ref: QueueRef, op: StageOp, messages: NewMessage[], ids: string[], allIds: string[], opts: PostOptions, now: number): StageResult => {
      let qid: number
      if (op === 'begin') {
        const queue = this.#queues.ensure(ref, now)
        const prior = this.#prior(ref, opts, now)
        if (prior !== undefined) return prior
        qid = queue.qid
        const settings = this.#settings(ref, queue, opts)
        if ('maxSize' in settings) return settings
        // The whole post is counted when it begins; the queue is held until it ends.
        if (this.#overQuota(qid, allIds.length, opts, now)) return { full: opts.maxMessages! }
        this.#unstageRow(qid)
        this.#stageBegin.run(qid, this.#nextSeq.get()!.next)
      } else {
        const queue = this.#queues.find(ref)
        if (queue === undefined || this.#stageGet.get(queue.qid) === undefined) return { lost: true }
        qid = queue.qid
      }
      const settings = this.#settings(ref, this.#queues.find(ref)!, opts)
      if ('maxSize' in settings) return settings
      this.#insertAll(qid, messages, ids, settings, opts.clientId, now)
      if (op === 'commit') {
        this.#stageEnd.run(qid)
        this.#remember(ref, opts, allIds, now)
      } else {
        this.#stageAdd.run(messages.length, qid)
      }
      return { ids: allIds }
    })

    this.#deleteOne = db.transaction((ref: QueueRef, id: string, claimId: string | undefined, now: number) => {
      const row = this.#target.get(id, ref.project, ref.queue, now)
      if (row === undefined) return
      const active = row.claim_expires > now
      const other =
        deleteNeedsClaimLookup(active, row.claim_id, claimId) && isId(claimId!) && this.#claimActive.get(claimId!, row.qid, now) !== undefined
      switch (deleteVerdict(active, row.claim_id, claimId, other)) {
        case 'delete':
          this.#deleteSeq.run(row.seq)
          if (this.#ctx.journal.jid !== 0) this.#ctx.journal.note(id)
          return
        case 'claimed':
          throw new MessageClaimed(ref, id)
        case 'not_held':
          throw new ClaimNotHeld(ref, id, claimId!)
        case 'claim_gone':
          throw new ClaimGone(ref, id, claimId!)
      }
    })

    this.#deleteIds = db.transaction((ref: QueueRef, list: string, claimIds: string[] | undefined, now: number) => {
      const queue = this.#queues.find(ref)
      if (queue === undefined) return
      if (claimIds !== undefined) {
        const allowed = new Set(claimIds)
        for (const row of this.#held.iterate(list, queue.qid, now)) {
          if (!(row.claim_expires > now && row.claim_id !== null && allowed.has(row.claim_id))) {
            throw new MessageClaimed(ref)
          }
        }
      }
      this.#deleteMany.run(list, queue.qid)
      // Ids not in the queue are journalled too: harmless (their record reads as null).
      if (this.#ctx.journal.jid !== 0) for (const id of JSON.parse(list) as string[]) this.#ctx.journal.note(id)
    })

    this.#pop = db.transaction((ref: QueueRef, limit: number, now: number): PoppedMessage[] => {
      const queue = this.#queues.find(ref)
      if (queue === undefined) return []
      const rows = this.#claimable.all(queue.qid, now, now, now, limit)
      if (rows.length === 0) return []
      // A pop is a claim that is deleted at once: one temporary claim id for the batch.
      const claimId = newId()
      const journal = this.#ctx.journal
      return rows.map((r) => {
        this.#deleteSeq.run(r.seq)
        if (journal.jid !== 0) journal.note(r.id)
        return { id: r.id, ttl: r.ttl, age: ageOf(r.created, now), body: r.body, claimId, claimCount: r.claim_count + 1 }
      })
    })
  }

  /** The ids of the post this idempotency key already answers for, if any. */
  #prior(ref: QueueRef, opts: PostOptions, now: number): { ids: string[] } | undefined {
    if (opts.idempotencyKey === undefined) return undefined
    const row = this.#idemGet.get(ref.project, ref.queue, opts.idempotencyKey, now)
    return row === undefined ? undefined : { ids: row.ids.split(',') }
  }

  /** Records the post's ids under its idempotency key. */
  #remember(ref: QueueRef, opts: PostOptions, ids: string[], now: number): void {
    if (opts.idempotencyKey === undefined) return
    this.#idemPut.run(ref.project, ref.queue, opts.idempotencyKey, ids.join(','), now + Math.round((opts.idempotencyWindow ?? 300) * 1000))
  }

  /**
   * Whether storing `n` more messages would put the queue over `opts.maxMessages` (0 or absent:
   * no quota). When not, `#quotaAfter` is an upper bound of what the queue holds once they are.
   *
   * Counting the queue's unexpired messages costs one index entry each (~0.2 µs): fine near the
   * quota, too much on every post to a deep queue. So the last quota-checked post leaves, in this
   * process, an upper bound of the queue's messages that stays valid while the queue's highest
   * seq in the file is unchanged: any insert, by whatever path or process (a post without a
   * quota, a dead-letter move, a migration, another worker on the same file), raises it; deletes
   * and expiry only lower the true count. Checked in O(log n) inside the post's write
   * transaction; the exact count (up to the quota, never further) runs only when the bound is
   * missing, stale, or too close to the quota. Kept in memory, not in a table: a row written by
   * every post cost ~8 µs per post (one more page in each commit).
   */
  #overQuota(qid: number, n: number, opts: PostOptions, now: number): boolean {
    const max = opts.maxMessages
    if (max === undefined || max <= 0) return false
    if (n > max) return true
    const known = this.#bounds.get(qid)
    if (known !== undefined && known.n + n <= max && known.top === (this.#topSeq.get(qid)!.top ?? 0)) {
      this.#quotaAfter = known.n + n
      return false
    }
    const live = this.#countLive.get(qid, now, max)!.n
    if (live + n > max) return true
    this.#quotaAfter = live + n
    return false
  }

  #bound(qid: number, n: number, top: number): void {
    const b = this.#bounds.get(qid)
    if (b !== undefined) {
      b.n = n
      b.top = top
      return
    }
    if (this.#bounds.size >= 100_000) this.#bounds.clear()
    this.#bounds.set(qid, { n, top })
  }

  /** Drops every bound `#overQuota` keeps: a group commit failed, so the posts that set them are not stored. */
  forgetQuotaBounds(): void {
    this.#bounds.clear()
  }

  /** The post's settings under the queue's policy, or the size limit the post exceeds. */
  #settings(ref: QueueRef, queue: QueueRow, opts: PostOptions): PostSettings | { maxSize: number } {
    // v1.1 posts never read the metadata (queue-policy.ts, `postSettings`).
    const policy = opts.queuePolicy ? this.#queues.policy(ref, queue) : NO_POLICY
    if (exceedsPostSize(policy, opts.queuePolicy, opts.postBytes)) return { maxSize: policy.maxPostBytes! }
    return postSettings(policy, opts.queuePolicy, opts.defaultTtl)
  }

  /**
   * Inserts the messages, up to INSERT_ROWS per statement, in order; returns the seq of the last
   * one. One multi-row INSERT pays the statement's fixed part (the call into better-sqlite3, its
   * step and reset) once for its rows instead of once per message: post 10's store CPU per
   * message 7.0 → 5.8 µs (docs/benchmarks.md, "SQLite: the sixth wave").
   */
  #insertAll(qid: number, messages: NewMessage[], ids: string[], s: PostSettings, clientId: string, now: number): number {
    let last = 0
    const params = this.#params
    for (let from = 0; from < messages.length; from += INSERT_ROWS) {
      const to = Math.min(messages.length, from + INSERT_ROWS)
      params.length = (to - from) * INSERT_COLUMNS
      let p = 0
      for (let i = from; i < to; i++) {
        const m = messages[i]!
        const ttl = messageTtl(m, s)
        params[p++] = ids[i]!
        params[p++] = qid
        params[p++] = m.body
        params[p++] = clientId
        params[p++] = ttl
        params[p++] = now
        params[p++] = now + ttl * 1000
        params[p++] = now + messageDelay(m, s) * 1000
      }
      last = Number(this.#inserter(to - from).run(params).lastInsertRowid)
    }
    params.length = 0
    return last
  }

  /** Removes a staged post's messages and its staging row (a failed or abandoned large post). */
  #unstageRow(qid: number): void {
    const row = this.#stageGet.get(qid)
    if (row === undefined) return
    this.#unstage.run(qid, row.from_seq)
    this.#stageEnd.run(qid)
  }

  /**
   * One chunk of a large post (see the constructor): `ids` are the chunk's, `allIds` the post's
   * (answered on success, recorded under the idempotency key by 'commit'). The driver runs the
   * chunks in order and holds the queue meanwhile: no other post, purge or delete of it runs
   * between them.
   */
  stageChunk(ref: QueueRef, op: StageOp, messages: NewMessage[], ids: string[], allIds: string[], opts: PostOptions): StageResult {
    return this.#stage.immediate(ref, op, messages, ids, allIds, opts, this.#ctx.clock())
  }

  /**
   * Rolls back the large post being staged in `ref`, if any: its own messages (`ids`), not
   * every message above its first seq — a dead-letter move may have landed there meanwhile.
   */
  unstage(ref: QueueRef, ids: string[]): void {
    const queue = this.#queues.find(ref)
    if (queue === undefined || this.#stageGet.get(queue.qid) === undefined) return
    this.#deleteMany.run(JSON.stringify(ids), queue.qid)
    this.#stageEnd.run(queue.qid)
  }

  /**
   * Brackets a large post (the driver calls it before the first chunk and with `false` once
   * the post committed or was rolled back): while any is open, listings use the statement that
   * stops below staged messages. Counted outside transactions, so a rollback cannot undercount.
   */
  staging(open: boolean): void {
    this.#staging += open ? 1 : -1
  }

  /** Rolls back every large post a crash left half-written (at open). */
  unstageAll(): void {
    for (const { qid } of this.#ctx.db.prepare('SELECT qid FROM staging').all() as { qid: number }[]) this.#unstageRow(qid)
  }

  postMessages(ref: QueueRef, messages: NewMessage[], opts: PostOptions): string[] {
    const result = this.#post.immediate(ref, messages, opts, this.#ctx.clock())
    if ('maxSize' in result) throw new PostTooLarge(ref, result.maxSize)
    if ('full' in result) throw new QueueFull(ref, result.full)
    return result.ids
  }

  listMessages(ref: QueueRef, opts: ListMessagesOptions): MessageListing {
    const queue = this.#queues.find(ref)
    const policy = queue === undefined ? NO_POLICY : this.#queues.policy(ref, queue)
    const includeDelayed = effectiveIncludeDelayed(policy, opts.includeDelayed)
    const after = opts.marker === undefined ? 0 : parseMarker(opts.marker)
    if (queue === undefined || after === undefined || opts.limit <= 0) return { items: [], includeDelayed }
    const now = this.#ctx.clock()
    const budget = Math.max(LIST_SCAN_BUDGET, opts.limit)
    const rows = (this.#staging > 0 ? this.#listCapped : this.#list).all({
      qid: queue.qid,
      after,
      budget,
      now,
      claimed: flag(opts.includeClaimed),
      delayed: flag(includeDelayed),
      echo: flag(opts.echo),
      clientId: opts.clientId,
      limit: opts.limit,
    })
    const listing: MessageListing = { items: rows.map((r) => toMessage(r, now)), includeDelayed }
    // A full page continues after its last message; a short one after the window it examined,
    // unless that was the end of the queue and nothing was found (no endless next links).
    if (rows.length === opts.limit) {
      listing.next = markerOf(rows[rows.length - 1].seq)
    } else {
      // Short page: where did the scan stop, and was that the end? (Index only, ≤ budget entries.)
      const win = this.#window.get(queue.qid, after, queue.qid, budget)!
      if (win.last !== null && (rows.length > 0 || win.n === budget)) listing.next = markerOf(win.last)
    }
    return listing
  }

  getMessage(ref: QueueRef, id: string): Message | null {
    if (!isId(id)) return null
    const now = this.#ctx.clock()
    const row = this.#get.get(id, ref.project, ref.queue, now)
    return row === undefined ? null : toMessage(row, now)
  }

  getMessages(ref: QueueRef, ids: string[]): Message[] {
    const list = idList(ids)
    if (list === undefined) return []
    const now = this.#ctx.clock()
    return this.#getMany.all(list, ref.project, ref.queue, now).map((r) => toMessage(r, now))
  }

  deleteMessage(ref: QueueRef, id: string, claimId?: string): void {
    if (!isId(id)) return
    this.#deleteOne.immediate(ref, id, claimId, this.#ctx.clock())
  }

  deleteMessages(ref: QueueRef, ids: string[], claimIds?: string[]): void {
    const list = idList(ids)
    if (list === undefined) return
    this.#deleteIds.immediate(ref, list, claimIds, this.#ctx.clock())
  }

  popMessages(ref: QueueRef, limit: number): PoppedMessage[] {
    if (limit <= 0) return []
    return this.#pop.immediate(ref, limit, this.#ctx.clock())
  }
}
