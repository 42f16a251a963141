/** Queues on SQLite: the `queues` table, plus the queue-wide reads and deletes (stats, purge). */
import type { Statement, Transaction } from 'better-sqlite3'
import type { ListQueuesOptions, Metadata, QueueEntry, QueueListing, QueueRef, QueueStats } from '../../../shared/storage/contract.js'
import { QueueNotFound } from '../../../shared/storage/errors.js'
import { NO_POLICY, queuePolicy, type QueuePolicy } from '../../../shared/storage/queue-policy.js'
import { ageOf, STAGED_FROM_SQL, type Ctx } from './context.js'

/** A queue's row as the other resources need it. */
export interface QueueRow {
  qid: number
  metadata: string
}

interface ListedQueue {
  name: string
  metadata: string
}

interface StatsRow {
  total: number
  claimed: number | null
  delayed: number | null
}

interface EndRow {
  id: string
  created: number
}

const EMPTY_META = '{}'

/**
 * Policies are remembered per queue while its metadata text stays the same: posts, listings and
 * claims then skip parsing it. Bounded: small metadata only, a fixed number of queues.
 */
const POLICY_CACHE_MAX = 1024
const POLICY_CACHE_TEXT_MAX = 1024

export class SqliteQueues {
  readonly #ctx: Ctx
  readonly #find: Statement<[string, string], QueueRow>
  readonly #insert: Statement<[string, string, string, number], QueueRow>
  readonly #update: Statement<[string, string, string]>
  readonly #delete: Statement<[number]>
  readonly #list: Statement<[string, string, number, string], ListedQueue>
  readonly #count: Statement<[string], { n: number }>
  readonly #stats: Statement<[now: number, now: number, qid: number, now: number, qid: number], StatsRow>
  readonly #oldest: Statement<[number, number, number], EndRow>
  readonly #newest: Statement<[number, number, number], EndRow>
  readonly #removeQueue: Transaction<(qid: number) => void>
  readonly #purge: Transaction<(qid: number) => void>
  readonly #orphan: Statement<[number]>
  readonly #row: Statement<[number], { project: string; name: string; metadata: string; created: number }>
  readonly #recreate: Statement<[string, string, string, number]>
  readonly #policies = new Map<number, { text: string; policy: QueuePolicy }>()

  constructor(ctx: Ctx) {
    this.#ctx = ctx
    const db = ctx.db
    this.#find = db.prepare('SELECT qid, metadata FROM queues INDEXED BY queues_name WHERE project = ? AND name = ?')
    this.#insert = db.prepare(
      'INSERT INTO queues (project, name, metadata, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING qid, metadata',
    )
    this.#update = db.prepare('UPDATE queues INDEXED BY queues_name SET metadata = ? WHERE project = ? AND name = ?')
    this.#delete = db.prepare('DELETE FROM queues WHERE qid = ?')
    // Bounded work (issue 11): a delete or purge drops the queue row (a purge puts a fresh one,
    // with a new qid, in its place) and leaves the old qid's messages and claims, unreachable
    // by then, to the collector, which deletes them in bounded batches (driver.ts). Deleting
    // them here cost ~200 ms per 100,000 messages, with the worker's thread blocked.
    this.#orphan = db.prepare('INSERT OR IGNORE INTO orphans (qid) VALUES (?)')
    this.#row = db.prepare('SELECT project, name, metadata, created FROM queues WHERE qid = ?')
    this.#recreate = db.prepare('INSERT INTO queues (project, name, metadata, created) VALUES (?, ?, ?, ?)')
    // instr() rather than LIKE: the name filter is a literal substring, `_` and `%` included.
    this.#list = db.prepare(
      `SELECT name, metadata FROM queues INDEXED BY queues_name
       WHERE project = ? AND name > ? AND (? = 0 OR instr(name, ?) > 0)
       ORDER BY name`,
    )
    this.#count = db.prepare('SELECT count(*) AS n FROM queues INDEXED BY queues_name WHERE project = ?')
    // A large post being staged (messages.ts) is not counted: its messages are not visible yet.
    this.#stats = db.prepare(
      // Delayed: not visible yet (a delayed message is never claimed). The scan index covers
      // every column read, so the count costs what the total already did.
      `SELECT count(*) AS total, sum(claim_expires > ?) AS claimed, sum(visible > ?) AS delayed FROM messages INDEXED BY messages_scan
       WHERE qid = ? AND expires > ? AND seq < ${STAGED_FROM_SQL('?')}`,
    )
    this.#oldest = db.prepare(
      `SELECT id, created FROM messages INDEXED BY messages_scan WHERE qid = ? AND expires > ? AND seq < ${STAGED_FROM_SQL('?')} ORDER BY seq ASC LIMIT 1`,
    )
    this.#newest = db.prepare(
      `SELECT id, created FROM messages INDEXED BY messages_scan WHERE qid = ? AND expires > ? AND seq < ${STAGED_FROM_SQL('?')} ORDER BY seq DESC LIMIT 1`,
    )
    this.#removeQueue = db.transaction((qid: number) => {
      this.#delete.run(qid)
      this.#orphan.run(qid)
    })
    this.#purge = db.transaction((qid: number) => {
      const row = this.#row.get(qid)!
      this.#delete.run(qid)
      this.#recreate.run(row.project, row.name, row.metadata, row.created)
      this.#orphan.run(qid)
    })
  }

  /** The queue's row, or undefined when it does not exist. */
  find(ref: QueueRef): QueueRow | undefined {
    return this.#find.get(ref.project, ref.queue)
  }

  /** The queue's row, creating the queue with no metadata. Call inside a write transaction. */
  ensure(ref: QueueRef, now: number): QueueRow {
    return this.find(ref) ?? (this.#insert.get(ref.project, ref.queue, EMPTY_META, now) as QueueRow)
  }

  /** Parses stored metadata; it was serialised by this driver, so it is always an object. */
  parse(text: string): Metadata {
    return text === EMPTY_META ? {} : (JSON.parse(text) as Metadata)
  }

  /** The queue's policy (shared/storage/queue-policy.ts), from its stored metadata. */
  policy(ref: QueueRef, row: QueueRow): QueuePolicy {
    const text = row.metadata
    if (text === EMPTY_META) return NO_POLICY
    const hit = this.#policies.get(row.qid)
    if (hit !== undefined && hit.text === text) return hit.policy
    const policy = queuePolicy(ref.queue, this.parse(text))
    if (text.length <= POLICY_CACHE_TEXT_MAX) {
      if (this.#policies.size >= POLICY_CACHE_MAX) this.#policies.clear()
      this.#policies.set(row.qid, { text, policy })
    }
    return policy
  }

  createQueue(ref: QueueRef, metadata: Metadata): boolean {
    // One statement: SQLite's single writer makes racing creates yield exactly one row.
    return this.#insert.get(ref.project, ref.queue, JSON.stringify(metadata), this.#ctx.clock()) !== undefined
  }

  getQueue(ref: QueueRef): Metadata | null {
    const row = this.find(ref)
    return row === undefined ? null : this.parse(row.metadata)
  }

  setQueueMetadata(ref: QueueRef, metadata: Metadata): void {
    const { changes } = this.#update.run(JSON.stringify(metadata), ref.project, ref.queue)
    if (changes === 0) throw new QueueNotFound(ref)
  }

  deleteQueue(ref: QueueRef): void {
    const row = this.find(ref)
    if (row !== undefined) this.#removeQueue.immediate(row.qid)
  }

  purge(ref: QueueRef): void {
    const row = this.find(ref)
    if (row !== undefined) this.#purge.immediate(row.qid)
  }

  listQueues(project: string, opts: ListQueuesOptions): QueueListing {
    const filters = opts.filters === undefined ? [] : Object.entries(opts.filters)
    const name = opts.name ?? ''
    const items: QueueEntry[] = []
    if (opts.limit > 0) {
      // Scans in name order and stops once the page is full: filters are applied as rows
      // stream by, so a page is never short while later queues still match.
      for (const row of this.#list.iterate(project, opts.marker ?? '', name === '' ? 0 : 1, name)) {
        let meta: Metadata | undefined
        if (filters.length > 0) {
          meta = this.parse(row.metadata)
          if (!filters.every(([k, v]) => Object.hasOwn(meta as Metadata, k) && (meta as Metadata)[k] === v)) continue
        }
        const entry: QueueEntry = { name: row.name }
        if (opts.detailed === true) entry.metadata = meta ?? this.parse(row.metadata)
        items.push(entry)
        if (items.length >= opts.limit) break
      }
    }
    const listing: QueueListing = { items }
    if (items.length > 0) listing.next = items[items.length - 1].name
    if (opts.withCount === true) listing.count = (this.#count.get(project) as { n: number }).n
    return listing
  }

  stats(ref: QueueRef): QueueStats {
    const row = this.find(ref)
    if (row === undefined) return { total: 0, claimed: 0, free: 0, delayed: 0 }
    const now = this.#ctx.clock()
    const counts = this.#stats.get(now, now, row.qid, now, row.qid) as StatsRow
    const claimed = counts.claimed ?? 0
    const stats: QueueStats = { total: counts.total, claimed, free: counts.total - claimed, delayed: counts.delayed ?? 0 }
    if (counts.total > 0) {
      const oldest = this.#oldest.get(row.qid, now, row.qid)
      const newest = this.#newest.get(row.qid, now, row.qid)
      if (oldest !== undefined) stats.oldest = { id: oldest.id, age: ageOf(oldest.created, now), created: oldest.created }
      if (newest !== undefined) stats.newest = { id: newest.id, age: ageOf(newest.created, now), created: newest.created }
    }
    return stats
  }
}
