/**
 * What the per-resource parts of the SQLite driver share: the connection, the clock, the row
 * shapes and the conversions from rows to contract objects.
 */
import type { Database, Statement } from 'better-sqlite3'
import type { Clock } from '../../../shared/clock.js'
import type { Message, QueueRef } from '../../../shared/storage/contract.js'
import { ageOf } from '../common.js'
import type { JournalSink } from './migration.js'

export { ageOf } from '../common.js'

export interface Ctx {
  readonly db: Database
  readonly clock: Clock
  /** Where the operation running now journals the messages it changes (migration.ts). */
  readonly journal: JournalSink
  /** Whether a migration fences `ref` against client writes (`moved` or `importing`). */
  fenced(ref: QueueRef): boolean
}

/** The columns of `messages` that readers need. */
export interface MessageRow {
  seq: number
  id: string
  body: string
  ttl: number
  created: number
  claim_id: string | null
  claim_expires: number
  claim_count: number
}

/** The column list matching `MessageRow`, for SELECTs. */
export const MESSAGE_COLUMNS = 'seq, id, body, ttl, created, claim_id, claim_expires, claim_count'


/** A row as readers see it; `claimId` only while the claim is active. */
export function toMessage(row: MessageRow, now: number): Message {
  const m: Message = {
    id: row.id,
    ttl: row.ttl,
    age: ageOf(row.created, now),
    created: row.created,
    body: row.body,
    claimCount: row.claim_count,
  }
  if (row.claim_id !== null && row.claim_expires > now) m.claimId = row.claim_id
  return m
}



/** A bound boolean: better-sqlite3 binds numbers, not booleans. */
export const flag = (b: boolean): number => (b ? 1 : 0)

/**
 * Bounded work (issue 11): a claim or pop examines at most this many messages from the head of
 * the queue (index entries only, ~0.15 µs each: ~0.6 ms at most). A queue whose first 4,096 messages are all
 * delayed, claimed or expired-but-not-collected answers "nothing to claim" until some of them
 * become claimable, expire or are collected.
 */
export const CLAIM_SCAN_BUDGET = 4096

/** The first seq of the large post being staged in queue `qid` (SQL), or a seq beyond any. */
export const STAGED_FROM_SQL = (qid: string): string => `ifnull((SELECT from_seq FROM staging WHERE qid = ${qid}), 9007199254740991)`

/**
 * The columns and filter that pick claimable messages of one queue, oldest first: not expired,
 * visible (delay over) and not under an active claim, among the first CLAIM_SCAN_BUDGET messages
 * of the queue (and never a staged one). Bind: qid, now, now, now, limit. The window `w` reads
 * the scan index alone, lazily, in seq order (no sort): the filter stops it as soon as `limit`
 * rows matched, and only matching rows are read from the table.
 */
export const CLAIMABLE_SQL = `WITH p(qid, now1, now2, now3, lim) AS (SELECT ?, ?, ?, ?, ?)
  SELECT ${MESSAGE_COLUMNS.split(', ').map((c) => `m.${c}`).join(', ')}, m.expires
  FROM (SELECT seq, expires, visible, claim_expires FROM messages INDEXED BY messages_scan
        WHERE qid = (SELECT qid FROM p) AND seq < ${STAGED_FROM_SQL('(SELECT qid FROM p)')}
        ORDER BY seq LIMIT ${CLAIM_SCAN_BUDGET}) AS w
  JOIN messages m ON m.seq = w.seq
  WHERE w.expires > (SELECT now1 FROM p) AND w.visible <= (SELECT now2 FROM p) AND w.claim_expires <= (SELECT now3 FROM p)
  ORDER BY w.seq LIMIT (SELECT lim FROM p)`

/** A claimable row: a message row plus its expiry. */
export interface ClaimableRow extends MessageRow {
  expires: number
}

/** The queue id of (project, name), as a sub-select; binds project, name. */
export const QID_SQL = '(SELECT qid FROM queues INDEXED BY queues_name WHERE project = ? AND name = ?)'

/**
 * A statement over n rows (a multi-row INSERT, an `IN (…)` list), prepared for each n on first
 * use: `sql(n)` writes it. One statement for many rows pays its fixed part (bind, step, reset,
 * the call into better-sqlite3) once.
 */
export function statementsByCount(db: Database, sql: (n: number) => string): (n: number) => Statement<unknown[]> {
  const byCount: (Statement<unknown[]> | undefined)[] = []
  return (n) => (byCount[n] ??= db.prepare<unknown[]>(sql(n)))
}

/** `n` SQL placeholders, comma-separated. */
export const placeholders = (n: number): string => new Array(n).fill('?').join(', ')
