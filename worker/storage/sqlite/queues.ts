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

/**
 * Messages counted per step of `statsStep`: about a millisecond of the worker's thread. Counting
 * a whole queue in one statement held it ~20–35 ms per 100,000 messages, and every request of
 * every queue of the worker waited behind it: the proxies' background backlog scan asks for the
 * stats of every queue every 10 s, which put the embedded store's open-loop p99 at 5,000 msgs/s
 * from 2.6 to 7–10 ms once the bench's queues held a few hundred thousand messages
 * (docs/benchmarks.md, "The third wave").
 */
export const STATS_STEP = 10_000

/**
 * Messages summed per step of `bytesStep`. Each reads the message's row (its body), not the
 * scan index alone as a stats step does: a fifth of STATS_STEP keeps a step near a millisecond.
 */
export const BYTES_STEP = 2_000

/** Where a stepped sum of a queue's message bytes stands (`bytesStep`). */
export interface BytesCursor {
  qid: number
  /** Seqs from here on are still to sum. */
  from: number
  bytes: number
}

/** Where a stepped count of a queue's messages stands (`statsStep`). */
export interface StatsCursor {
  qid: number
  /** Seqs from here on are still to count. */
  from: number
  /** The queue's last seq when the count began: later posts are not counted. */
  until: number
  total: number
  claimed: number
  delayed: number
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
  readonly #boundary: Statement<[qid: number, from: number, offset: number], { seq: number }>
  readonly #range: Statement<[now: number, now: number, qid: number, from: number, to: number, now: number], StatsRow>
  readonly #bytes: Statement<[qid: number, from: number, to: number, now: number], { n: number | null }>
  readonly #last: Statement<[number], { seq: number }>
  readonly #stagedFrom: Statement<[number], { seq: number }>
  readonly #oldest: Statement<[number, number, number], EndRow>
  readonly #newest: Statement<[number, number, number], EndRow>
  readonly #removeQueue: Transaction<(qid: number) => void>
  readonly #purge: Transaction<(qid: number) => void>
  readonly #orphan: Statement<[number]>
  readonly #row: Statement<[number], { project: string; name: string; metadata: string; created: number }>
  readonly #recreate: Statement<[string, string, string, number]>
  readonly #policies = new Map<number, { text: string; policy: QueuePolicy }>()
  /**
   * Queue rows found during one group commit (`cacheRows`), by project then name. The commit
   * holds the file's write lock, so no other process changes a row meanwhile, and every change
   * made here goes through this class, which forgets them all.
   */
  #rows: Map<string, Map<string, QueueRow>> | undefined

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
    // A step of a count: the seq STATS_STEP index entries on (where the step ends), then the
    // live messages (not expired) and those under an active claim up to there, both on the scan
    // index alone. Measured on 200,000 messages: ~1–2 ms a step, 22 ms in all, against 15 ms for
    // one statement over the whole queue; one aggregate over a LIMITed subquery cost 3× that.
    this.#boundary = db.prepare('SELECT seq FROM messages INDEXED BY messages_scan WHERE qid = ? AND seq >= ? ORDER BY seq LIMIT 1 OFFSET ?')
    this.#range = db.prepare(
      // Delayed: not visible yet (a delayed message is never claimed); the scan index covers it too.
      `SELECT count(*) AS total, sum(claim_expires > ?) AS claimed, sum(visible > ?) AS delayed FROM messages INDEXED BY messages_scan
       WHERE qid = ? AND seq >= ? AND seq < ? AND expires > ?`,
    )
    // The body's bytes as stored (UTF-8 JSON text): octet_length counts bytes, length characters.
    this.#bytes = db.prepare(
      `SELECT sum(octet_length(body)) AS n FROM messages INDEXED BY messages_scan WHERE qid = ? AND seq >= ? AND seq < ? AND expires > ?`,
    )
    this.#last = db.prepare('SELECT seq FROM messages INDEXED BY messages_scan WHERE qid = ? ORDER BY seq DESC LIMIT 1')
    this.#stagedFrom = db.prepare(`SELECT ${STAGED_FROM_SQL('?')} AS seq`)
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

  /**
   * Remembers the rows `find` reads until called with false: the driver brackets each group
   * commit with it, so the requests of one commit look each queue up once (~1 µs per lookup).
   */
  cacheRows(on: boolean): void {
    this.#rows = on ? new Map() : undefined
  }

  /** Forgets the remembered rows: a queue row changed, or a rolled-back request may have changed one. */
  forgetRows(): void {
    this.#rows?.clear()
  }

  /** The queue's row, or undefined when it does not exist. */
  find(ref: QueueRef): QueueRow | undefined {
    const rows = this.#rows
    if (rows === undefined) return this.#find.get(ref.project, ref.queue)
    let names = rows.get(ref.project)
    let row = names?.get(ref.queue)
    if (row !== undefined) return row
    row = this.#find.get(ref.project, ref.queue)
    if (row === undefined) return undefined
    if (names === undefined) rows.set(ref.project, (names = new Map()))
    names.set(ref.queue, row)
    return row
  }

  /** The queue's row, creating the queue with no metadata. Call inside a write transaction. */
  ensure(ref: QueueRef, now: number): QueueRow {
    const row = this.find(ref)
    if (row !== undefined) return row
    this.forgetRows()
    return this.#insert.get(ref.project, ref.queue, EMPTY_META, now) as QueueRow
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
    this.forgetRows()
    return this.#insert.get(ref.project, ref.queue, JSON.stringify(metadata), this.#ctx.clock()) !== undefined
  }

  getQueue(ref: QueueRef): Metadata | null {
    const row = this.find(ref)
    return row === undefined ? null : this.parse(row.metadata)
  }

  setQueueMetadata(ref: QueueRef, metadata: Metadata): void {
    this.forgetRows()
    const { changes } = this.#update.run(JSON.stringify(metadata), ref.project, ref.queue)
    if (changes === 0) throw new QueueNotFound(ref)
  }

  deleteQueue(ref: QueueRef): void {
    const row = this.find(ref)
    this.forgetRows()
    if (row !== undefined) this.#removeQueue.immediate(row.qid)
  }

  purge(ref: QueueRef): void {
    const row = this.find(ref)
    this.forgetRows()
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

  /** The queue's stats in one go (migration counts; requests use `statsStep`). */
  stats(ref: QueueRef): QueueStats {
    let r = this.statsStep(ref, undefined)
    while ('qid' in r) r = this.statsStep(ref, r)
    return r
  }

  /**
   * One bounded step of counting the queue's messages: at most STATS_STEP of them. Returns the
   * stats once the count is complete, else where to go on from; the caller lets other work run
   * between steps. A queue purged or deleted and made again meanwhile is counted afresh; the
   * counts are of each message as it was when its step ran (as Zaqar's stores, which read in
   * several commands, do).
   */
  statsStep(ref: QueueRef, cursor: StatsCursor | undefined): QueueStats | StatsCursor {
    const row = this.find(ref)
    if (row === undefined) return { total: 0, claimed: 0, free: 0, delayed: 0 }
    let cur = cursor
    if (cur === undefined || cur.qid !== row.qid) {
      const last = this.#last.get(row.qid)
      if (last === undefined) return { total: 0, claimed: 0, free: 0, delayed: 0 }
      // A large post being staged when the count begins is left out whole, even if it commits
      // between two steps: counting from there on would show part of it (a post is all or
      // nothing to readers, tests/security/bounded-work.test.ts).
      const staged = (this.#stagedFrom.get(row.qid) as { seq: number }).seq
      cur = { qid: row.qid, from: 0, until: Math.min(last.seq, staged - 1), total: 0, claimed: 0, delayed: 0 }
    }
    const now = this.#ctx.clock()
    const q = row.qid
    const end = this.#boundary.get(q, cur.from, STATS_STEP)
    const to = end === undefined || end.seq > cur.until ? cur.until + 1 : end.seq
    // A large post being staged (messages.ts) is not counted: its messages are not visible yet.
    const staged = (this.#stagedFrom.get(q) as { seq: number }).seq
    const counts = this.#range.get(now, now, q, cur.from, Math.min(to, staged), now) as StatsRow
    cur.total += counts.total
    cur.claimed += counts.claimed ?? 0
    cur.delayed += counts.delayed ?? 0
    if (to <= cur.until) {
      cur.from = to
      return cur
    }
    return this.#finish(q, cur, now)
  }

  /**
   * One bounded step of summing the bytes of the queue's unexpired messages' bodies: at most
   * BYTES_STEP of them. Returns the sum once complete, else where to go on from (as
   * `statsStep`: the caller lets other work run between steps). Messages of a large post being
   * staged count: the quota is about what the store holds.
   */
  bytesStep(ref: QueueRef, cursor: BytesCursor | undefined): number | BytesCursor {
    const row = this.find(ref)
    if (row === undefined) return 0
    const q = row.qid
    const cur = cursor === undefined || cursor.qid !== q ? { qid: q, from: 0, bytes: 0 } : cursor
    const end = this.#boundary.get(q, cur.from, BYTES_STEP)
    const to = end === undefined ? Number.MAX_SAFE_INTEGER : end.seq
    cur.bytes += (this.#bytes.get(q, cur.from, to, this.#ctx.clock()) as { n: number | null }).n ?? 0
    if (end === undefined) return cur.bytes
    cur.from = to
    return cur
  }

  #finish(qid: number, counts: StatsCursor, now: number): QueueStats {
    const claimed = counts.claimed
    const stats: QueueStats = { total: counts.total, claimed, free: counts.total - claimed, delayed: counts.delayed }
    if (counts.total > 0) {
      const oldest = this.#oldest.get(qid, now, qid)
      const newest = this.#newest.get(qid, now, qid)
      if (oldest !== undefined) stats.oldest = { id: oldest.id, age: ageOf(oldest.created, now), created: oldest.created }
      if (newest !== undefined) stats.newest = { id: newest.id, age: ageOf(newest.created, now), created: newest.created }
    }
    return stats
  }
}
