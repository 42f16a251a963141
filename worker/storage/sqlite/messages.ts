/** Messages on SQLite: post, list, get, delete and pop. */
import type { Statement, Transaction } from 'better-sqlite3'
import { MissiveError } from '../../../shared/errors.js'
import { isId, newId } from '../../../shared/ids.js'
import {
  DELETE_ERRORS,
  LIST_SCAN_BUDGET,
  RESERVED,
  type ListMessagesOptions,
  type Message,
  type MessageListing,
  type NewMessage,
  type PoppedMessage,
  type PostOptions,
  type QueueRef,
} from '../contract.js'
import {
  ageOf,
  CLAIMABLE_SQL,
  flag,
  MESSAGE_COLUMNS,
  metaPositive,
  QID_SQL,
  toMessage,
  type ClaimableRow,
  type Ctx,
  type MessageRow,
} from './context.js'
import type { SqliteQueues } from './queues.js'

interface InsertParams {
  id: string
  qid: number
  body: string
  clientId: string
  ttl: number
  created: number
  expires: number
  visible: number
}

interface ListParams {
  qid: number
  after: number
  upto: number
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

/** Markers are the decimal `seq` of the last message of a page. */
const MARKER_RE = /^(0|[1-9][0-9]{0,14})$/

/** The sequence number a marker stands for, or undefined when it is not one of ours. */
export function parseMarker(marker: string): number | undefined {
  return MARKER_RE.test(marker) ? Number(marker) : undefined
}

/** Valid ids, each once, as the JSON array the `json_each` statements bind. */
function idList(ids: string[]): string | undefined {
  const valid = [...new Set(ids.filter(isId))]
  return valid.length === 0 ? undefined : JSON.stringify(valid)
}

type PostResult = { ids: string[] } | { maxSize: number }

export class SqliteMessages {
  readonly #ctx: Ctx
  readonly #queues: SqliteQueues
  readonly #insert: Statement<[InsertParams]>
  readonly #list: Statement<[ListParams], MessageRow>
  readonly #window: Statement<[number, number, number], { last: number | null; n: number }>
  readonly #get: Statement<[string, string, string, number], MessageRow>
  readonly #getMany: Statement<[string, string, string, number], MessageRow>
  readonly #target: Statement<[string, string, string, number], DeleteTarget>
  readonly #claimActive: Statement<[string, number, number], { one: number }>
  readonly #deleteSeq: Statement<[number]>
  readonly #held: Statement<[string, number, number], HeldRow>
  readonly #deleteMany: Statement<[string, number]>
  readonly #claimable: Statement<[number, number, number, number, number], ClaimableRow>
  readonly #post: Transaction<(ref: QueueRef, messages: NewMessage[], opts: PostOptions, now: number) => PostResult>
  readonly #deleteOne: Transaction<(ref: QueueRef, id: string, claimId: string | undefined, now: number) => void>
  readonly #deleteIds: Transaction<(ref: QueueRef, list: string, claimIds: string[] | undefined, now: number) => void>
  readonly #pop: Transaction<(ref: QueueRef, limit: number, now: number) => PoppedMessage[]>

  constructor(ctx: Ctx, queues: SqliteQueues) {
    this.#ctx = ctx
    this.#queues = queues
    const db = ctx.db
    this.#insert = db.prepare(
      `INSERT INTO messages (id, qid, body, client_id, ttl, created, expires, visible)
       VALUES (@id, @qid, @body, @clientId, @ttl, @created, @expires, @visible)`,
    )
    // Bounded work (issue 11): the window is the next LIST_SCAN_BUDGET (or limit) messages of
    // the queue after the marker, read from the index alone; the page is then filtered inside
    // it (`seq <= @upto`), so a listing never walks a backlog of delayed or claimed messages.
    this.#window = db.prepare(
      `SELECT max(seq) AS last, count(*) AS n FROM
       (SELECT seq FROM messages INDEXED BY messages_scan WHERE qid = ? AND seq > ? ORDER BY seq LIMIT ?)`,
    )
    this.#list = db.prepare(
      `SELECT ${MESSAGE_COLUMNS} FROM messages INDEXED BY messages_scan
       WHERE qid = @qid AND seq > @after AND seq <= @upto AND expires > @now
         AND (@claimed OR claim_expires <= @now)
         AND (@delayed OR visible <= @now)
         AND (@echo OR client_id <> @clientId)
       ORDER BY seq LIMIT @limit`,
    )
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

    this.#post = db.transaction((ref: QueueRef, messages: NewMessage[], opts: PostOptions, now: number): PostResult => {
      const queue = this.#queues.ensure(ref, now)
      let defaultTtl = opts.defaultTtl
      let honourDelay = false
      let defaultDelay = 0
      if (opts.useQueueLimits) {
        const meta = this.#queues.parse(queue.metadata)
        const maxSize = metaPositive(meta, RESERVED.maxPostSize)
        // Returned, not thrown: the lazily created queue must survive the rejection.
        if (maxSize !== undefined && opts.requestBytes > maxSize) return { maxSize }
        defaultTtl = metaPositive(meta, RESERVED.defaultTtl) ?? defaultTtl
        const delay = metaPositive(meta, RESERVED.defaultDelay)
        if (delay !== undefined) {
          honourDelay = true
          defaultDelay = delay
        }
      }
      const ids: string[] = []
      for (const m of messages) {
        const id = newId()
        const ttl = m.ttl ?? defaultTtl
        const delay = honourDelay ? (m.delay ?? defaultDelay) : 0
        this.#insert.run({
          id,
          qid: queue.qid,
          body: m.body,
          clientId: opts.clientId,
          ttl,
          created: now,
          expires: now + ttl * 1000,
          visible: now + delay * 1000,
        })
        ids.push(id)
      }
      return { ids }
    })

    this.#deleteOne = db.transaction((ref: QueueRef, id: string, claimId: string | undefined, now: number) => {
      const row = this.#target.get(id, ref.project, ref.queue, now)
      if (row === undefined) return
      const claimed = row.claim_expires > now
      if (claimId === undefined) {
        if (claimed) throw new MissiveError('message_claimed', DELETE_ERRORS.claimed)
      } else if (!claimed) {
        throw new MissiveError('claim_invalid', DELETE_ERRORS.notClaimed)
      } else if (claimId !== row.claim_id) {
        const other = isId(claimId) && this.#claimActive.get(claimId, row.qid, now) !== undefined
        throw other
          ? new MissiveError('message_claimed', DELETE_ERRORS.claimed)
          : new MissiveError('claim_invalid', DELETE_ERRORS.claimGone)
      }
      this.#deleteSeq.run(row.seq)
    })

    this.#deleteIds = db.transaction((ref: QueueRef, list: string, claimIds: string[] | undefined, now: number) => {
      const queue = this.#queues.find(ref)
      if (queue === undefined) return
      if (claimIds !== undefined) {
        const allowed = new Set(claimIds)
        for (const row of this.#held.iterate(list, queue.qid, now)) {
          if (!(row.claim_expires > now && row.claim_id !== null && allowed.has(row.claim_id))) {
            throw new MissiveError('message_claimed', DELETE_ERRORS.claimed)
          }
        }
      }
      this.#deleteMany.run(list, queue.qid)
    })

    this.#pop = db.transaction((ref: QueueRef, limit: number, now: number): PoppedMessage[] => {
      const queue = this.#queues.find(ref)
      if (queue === undefined) return []
      const rows = this.#claimable.all(queue.qid, now, now, now, limit)
      if (rows.length === 0) return []
      // A pop is a claim that is deleted at once: one temporary claim id for the batch.
      const claimId = newId()
      return rows.map((r) => {
        this.#deleteSeq.run(r.seq)
        return { id: r.id, ttl: r.ttl, age: ageOf(r.created, now), body: r.body, claimId, claimCount: r.claim_count + 1 }
      })
    })
  }

  postMessages(ref: QueueRef, messages: NewMessage[], opts: PostOptions): string[] {
    const result = this.#post.immediate(ref, messages, opts, this.#ctx.clock())
    if ('maxSize' in result) {
      throw new MissiveError('bad_request', `Message collection size is too large. Max size ${result.maxSize}`)
    }
    return result.ids
  }

  listMessages(ref: QueueRef, opts: ListMessagesOptions): MessageListing {
    const queue = this.#queues.find(ref)
    const meta = queue === undefined ? {} : this.#queues.parse(queue.metadata)
    // API.md §5.2: without a queue default delay Zaqar forces include_delayed on, whatever the
    // client asked; with one, the client's choice stands and the default is off.
    const includeDelayed = metaPositive(meta, RESERVED.defaultDelay) === undefined || opts.includeDelayed === true
    const after = opts.marker === undefined ? 0 : parseMarker(opts.marker)
    if (queue === undefined || after === undefined || opts.limit <= 0) return { items: [], includeDelayed }
    const now = this.#ctx.clock()
    const budget = Math.max(LIST_SCAN_BUDGET, opts.limit)
    const win = this.#window.get(queue.qid, after, budget)!
    if (win.last === null) return { items: [], includeDelayed }
    const rows = this.#list.all({
      qid: queue.qid,
      after,
      upto: win.last,
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
    if (rows.length === opts.limit) listing.next = String(rows[rows.length - 1].seq)
    else if (rows.length > 0 || win.n === budget) listing.next = String(win.last)
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
