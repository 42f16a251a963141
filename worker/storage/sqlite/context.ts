/**
 * What the per-resource parts of the SQLite driver share: the connection, the clock, the row
 * shapes and the conversions from rows to contract objects.
 */
import type { Database } from 'better-sqlite3'
import type { Clock } from '../../../shared/clock.js'
import type { Message, Metadata } from '../contract.js'
import { ageOf, isQueueName, metaNumber, metaPositive } from '../common.js'

export { ageOf, isQueueName, metaNumber, metaPositive } from '../common.js'

export interface Ctx {
  readonly db: Database
  readonly clock: Clock
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
 * The columns and filter that pick claimable messages of one queue, oldest first: not expired,
 * visible (delay over) and not under an active claim. Bind: qid, now, now, now, limit. Pinned to
 * the scan index, whose trailing columns answer the filter without reading rows.
 */
export const CLAIMABLE_SQL = `SELECT ${MESSAGE_COLUMNS}, expires FROM messages INDEXED BY messages_scan
  WHERE qid = ? AND expires > ? AND visible <= ? AND claim_expires <= ?
  ORDER BY seq LIMIT ?`

/** A claimable row: a message row plus its expiry. */
export interface ClaimableRow extends MessageRow {
  expires: number
}

/** The queue id of (project, name), as a sub-select; binds project, name. */
export const QID_SQL = '(SELECT qid FROM queues INDEXED BY queues_name WHERE project = ? AND name = ?)'
