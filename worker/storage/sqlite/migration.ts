/**
 * Migration support on SQLite (shared/storage/migration.ts): the fence of each queue, its
 * journal, and the migration operations.
 *
 * Fences live in their own table keyed by (project, queue), so a fence outlives the queue's row
 * (the `moved` tombstone) and exists before it (an `importing` copy). The driver reads the fence
 * inside the transaction of every client write, and just before every client read, in the same
 * synchronous turn (driver.ts, `#clientWrite` / `#read`). Not an in-memory map alone, because
 * several processes may open one file (proxies serving an embedded pool): a fence set by one must
 * stop the others' next operation. The fast path: while the file holds no fence at all, and no
 * other connection has committed since that was checked (`PRAGMA data_version`, ~0.1 µs, no
 * table read), the check is that one pragma; otherwise one primary-key lookup. A read in one
 * process racing a fence set by another sees the queue as it stood at that instant, which the
 * source keeps until its data is dropped.
 *
 * The journal: one row per changed message, `INSERT OR REPLACE` on (jid, id), so journalling a
 * message again gives it a new, higher `version` and moves it to the end. A journal is dropped by
 * naming its jid in `dead_journals`: the collector deletes its rows in bounded batches.
 */
import type { Database, Statement } from 'better-sqlite3'
import { isId } from '../../../shared/ids.js'
import { badRequest, MissiveError } from '../../../shared/errors.js'
import type { QueueRef } from '../../../shared/storage/contract.js'
import { FenceConflict, QueueMoved } from '../../../shared/storage/errors.js'
import {
  MIGRATION_BATCH_BYTES,
  MIGRATION_BATCH_MAX,
  type ClaimRecord,
  type ImportChange,
  type JournalEntry,
  type JournalPage,
  type MessageRecord,
  type MigrationBatch,
  type QueueFence,
} from '../../../shared/storage/migration.js'
import { STAGED_FROM_SQL, type Ctx } from './context.js'
import type { SqliteQueues } from './queues.js'

interface FenceRow {
  token: string
  dest: string
  state: QueueFence['state']
  jid: number
  reset: number
}

/** A row of the messages table as the migration reads it (every column but qid). */
export interface RecordRow {
  seq: number
  id: string
  body: string
  client_id: string
  ttl: number
  created: number
  expires: number
  visible: number
  claim_id: string | null
  claim_expires: number
  claim_count: number
}

const RECORD_COLUMNS = 'seq, id, body, client_id, ttl, created, expires, visible, claim_id, claim_expires, claim_count'

const toFence = (row: FenceRow): QueueFence => ({ token: row.token, to: row.dest, state: row.state })

function toRecord(r: RecordRow): MessageRecord {
  const rec: MessageRecord = {
    id: r.id,
    seq: r.seq,
    body: r.body,
    clientId: r.client_id,
    ttl: r.ttl,
    created: r.created,
    expires: r.expires,
    visible: r.visible,
    claimCount: r.claim_count,
    claimExpires: r.claim_expires,
  }
  if (r.claim_id !== null) rec.claimId = r.claim_id
  return rec
}

const clampLimit = (limit: number): number => Math.max(1, Math.min(MIGRATION_BATCH_MAX, Math.floor(limit) || 1))

/**
 * The journal sink of the operation running now: the driver sets `jid` from the queue's fence
 * before a client write and clears it after; the resources call `note` for each message whose
 * stored state they change. 0: nothing is journalled (no fence, the usual case: one compare).
 */
export class JournalSink {
  jid = 0
  readonly #put: Statement<[number, string]>

  constructor(db: Database) {
    this.#put = db.prepare('INSERT OR REPLACE INTO journal (jid, id) VALUES (?, ?)')
  }

  /** Journals message `id` (call only when `jid !== 0`). */
  note(id: string): void {
    this.#put.run(this.jid, id)
  }
}

export class SqliteMigration {
  readonly #ctx: Ctx
  readonly #queues: SqliteQueues
  readonly #fence: Statement<[string, string], FenceRow>
  readonly #dataVersion: Statement<[], number>
  readonly #anyFence: Statement<[], number>
  /** True when the file held no fence at `data_version` `#seen` (and this connection set none since). */
  #fenceFree = false
  #seen = -1
  readonly #putFence: Statement<[string, string, string, string, string, number, number]>
  readonly #dropFence: Statement<[string, string]>
  readonly #setReset: Statement<[number, string, string]>
  readonly #newJid: Statement<[], { jid: number }>
  readonly #freeJid: Statement<[number]>
  readonly #killJournal: Statement<[number]>
  readonly #read: Statement<[number, number, number, number], RecordRow>
  readonly #staged: Statement<[number], { one: number }>
  readonly #journalled: Statement<[number], number>
  readonly #entries: Statement<[number, number], { version: number; id: string }>
  readonly #record: Statement<[string, number], RecordRow>
  readonly #claim: Statement<[string, number, number], { id: string; ttl: number; expires: number; updated: number }>
  readonly #ack: Statement<[number, string, number]>
  readonly #byId: Statement<[string], { seq: number; qid: number }>
  readonly #orphaned: Statement<[number, number], { one: number }>
  readonly #deleteSeq: Statement<[number]>
  readonly #update: Statement<[number, number, number, number, string | null, number, number]>
  readonly #insert: Statement<[string, number, string, string, number, number, number, number, string | null, number, number]>
  readonly #putClaim: Statement<[string, number, number, number, number]>
  readonly #remove: Statement<[string, number]>
  readonly #removeClaims: Statement<[string, number]>
  readonly #dropKeys: Statement<[string, string, number]>

  constructor(ctx: Ctx, queues: SqliteQueues) {
    this.#ctx = ctx
    this.#queues = queues
    const db = ctx.db
    this.#fence = db.prepare('SELECT token, dest, state, jid, reset FROM fences WHERE project = ? AND queue = ?')
    this.#dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck()
    this.#anyFence = db.prepare<[], number>('SELECT EXISTS (SELECT 1 FROM fences)').pluck()
    this.#putFence = db.prepare('INSERT OR REPLACE INTO fences (project, queue, token, dest, state, jid, reset) VALUES (?, ?, ?, ?, ?, ?, ?)')
    this.#dropFence = db.prepare('DELETE FROM fences WHERE project = ? AND queue = ?')
    this.#setReset = db.prepare('UPDATE fences SET reset = ? WHERE project = ? AND queue = ?')
    this.#newJid = db.prepare('INSERT INTO journal_ids DEFAULT VALUES RETURNING jid')
    this.#freeJid = db.prepare('DELETE FROM journal_ids WHERE jid = ?')
    this.#killJournal = db.prepare('INSERT OR IGNORE INTO dead_journals (jid) VALUES (?)')
    this.#read = db.prepare(
      `SELECT ${RECORD_COLUMNS} FROM messages INDEXED BY messages_scan
       WHERE qid = ? AND seq > ? AND seq < ${STAGED_FROM_SQL('?')} ORDER BY seq LIMIT ?`,
    )
    this.#staged = db.prepare('SELECT 1 AS one FROM staging WHERE qid = ?')
    this.#journalled = db.prepare<[number], number>('SELECT EXISTS (SELECT 1 FROM journal INDEXED BY journal_order WHERE jid = ?)').pluck()
    this.#entries = db.prepare('SELECT version, id FROM journal INDEXED BY journal_order WHERE jid = ? ORDER BY version LIMIT ?')
    this.#record = db.prepare(`SELECT ${RECORD_COLUMNS} FROM messages INDEXED BY messages_id WHERE id = ? AND qid = ?`)
    this.#claim = db.prepare('SELECT id, ttl, expires, updated FROM claims INDEXED BY claims_id WHERE id = ? AND qid = ? AND expires > ?')
    this.#ack = db.prepare('DELETE FROM journal WHERE jid = ? AND id = ? AND version = ?')
    this.#byId = db.prepare('SELECT seq, qid FROM messages INDEXED BY messages_id WHERE id = ?')
    this.#orphaned = db.prepare(
      'SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM orphans WHERE qid = ?) OR NOT EXISTS (SELECT 1 FROM queues WHERE qid = ?)',
    )
    this.#deleteSeq = db.prepare('DELETE FROM messages WHERE seq = ?')
    this.#update = db.prepare(
      `UPDATE messages SET ttl = ?, expires = ?, visible = ?, claim_count = ?, claim_id = ?, claim_expires = ?
       WHERE seq = ? `,
    )
    this.#insert = db.prepare(
      `INSERT INTO messages (id, qid, body, client_id, ttl, created, expires, visible, claim_id, claim_expires, claim_count)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.#putClaim = db.prepare(
      `INSERT INTO claims (id, qid, ttl, expires, updated) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET qid = excluded.qid, ttl = excluded.ttl, expires = excluded.expires, updated = excluded.updated`,
    )
    this.#remove = db.prepare('DELETE FROM messages INDEXED BY messages_id WHERE id IN (SELECT value FROM json_each(?)) AND qid = ?')
    this.#removeClaims = db.prepare('DELETE FROM claims WHERE id IN (SELECT value FROM json_each(?)) AND qid = ?')
    this.#dropKeys = db.prepare(
      `DELETE FROM idempotency WHERE (project, queue, key) IN
       (SELECT project, queue, key FROM idempotency WHERE project = ? AND queue = ? LIMIT ?)`,
    )
  }

  /**
   * The fence check of a client operation: throws `QueueMoved` under `moved` or `importing`;
   * returns the journal id to write to under `journal`, else 0.
   */
  enter(ref: QueueRef): number {
    if (this.#noFences()) return 0
    const f = this.#fence.get(ref.project, ref.queue)
    if (f === undefined) return 0
    if (f.state === 'journal') return f.jid
    throw new QueueMoved(ref, toFence(f))
  }

  /** Whether client writes to `ref` are refused (a `moved` or `importing` fence). */
  refuses(ref: QueueRef): boolean {
    if (this.#noFences()) return false
    const f = this.#fence.get(ref.project, ref.queue)
    return f !== undefined && f.state !== 'journal'
  }

  /** Whether the file surely holds no fence now (see the module comment). */
  #noFences(): boolean {
    const v = this.#dataVersion.get()!
    if (this.#fenceFree && v === this.#seen) return true
    this.#seen = v
    this.#fenceFree = this.#anyFence.get() === 0
    return this.#fenceFree
  }

  /** Journals a purge or delete of the queue (its fence is `journal`). */
  markReset(ref: QueueRef): void {
    this.#setReset.run(1, ref.project, ref.queue)
  }

  /** The queue's fence as stored, or undefined. */
  #current(ref: QueueRef): FenceRow | undefined {
    return this.#fence.get(ref.project, ref.queue)
  }

  #newJournal(): number {
    const { jid } = this.#newJid.get()!
    this.#freeJid.run(jid)
    return jid
  }

  fenceQueue(ref: QueueRef, fenceArg: QueueFence | null | undefined, expectArg: string | null | undefined): void {
    // Conservative (the transaction may yet roll back): the next check reads the table.
    this.#fenceFree = false
    const fence = fenceArg ?? null
    const expect = expectArg ?? null
    const cur = this.#current(ref)
    if ((cur?.token ?? null) !== expect) throw new FenceConflict(ref, cur === undefined ? null : toFence(cur))
    const oldJid = cur?.jid ?? 0
    if (fence === null) {
      this.#dropFence.run(ref.project, ref.queue)
      if (oldJid !== 0) this.#killJournal.run(oldJid)
      return
    }
    let jid = 0
    let reset = 0
    const keep =
      cur !== undefined && cur.token === fence.token && ((fence.state === 'journal' && cur.state === 'journal') || (fence.state === 'moved' && cur.state !== 'importing'))
    if (keep) {
      jid = oldJid
      reset = cur.reset
    } else {
      if (oldJid !== 0) this.#killJournal.run(oldJid)
      if (fence.state === 'journal') jid = this.#newJournal()
    }
    this.#putFence.run(ref.project, ref.queue, fence.token, fence.to, fence.state, jid, reset)
  }

  getFence(ref: QueueRef): QueueFence | null {
    const f = this.#current(ref)
    return f === undefined ? null : toFence(f)
  }

  /** The active claims among `names` (claim ids of records), of queue `qid`. */
  #claims(names: Set<string>, qid: number, now: number): ClaimRecord[] {
    const out: ClaimRecord[] = []
    for (const id of names) {
      const c = this.#claim.get(id, qid, now)
      if (c !== undefined) out.push({ id: c.id, ttl: c.ttl, expires: c.expires, updated: c.updated })
    }
    return out
  }

  /** Whether the queue's journal holds entries or a reset (`MigrationBatch.journal`). */
  #pending(ref: QueueRef): boolean {
    const f = this.#current(ref)
    return f !== undefined && f.jid !== 0 && (f.reset === 1 || this.#journalled.get(f.jid) === 1)
  }

  readForMigration(ref: QueueRef, after: number, limit: number): MigrationBatch {
    const queue = this.#queues.find(ref)
    const from = Number.isFinite(after) ? after : 0
    if (queue === undefined) return { records: [], claims: [], next: from, end: true, metadata: null, journal: this.#pending(ref) }
    const now = this.#ctx.clock()
    const cap = clampLimit(limit)
    const records: MessageRecord[] = []
    const names = new Set<string>()
    let next = from
    let examined = 0
    let bytes = 0
    for (const r of this.#read.iterate(queue.qid, from, queue.qid, cap)) {
      examined++
      next = r.seq
      if (r.expires > now) {
        records.push(toRecord(r))
        if (r.claim_id !== null && r.claim_expires > now) names.add(r.claim_id)
        bytes += r.body.length
        if (bytes >= MIGRATION_BATCH_BYTES) break
      }
    }
    const cut = examined === cap || bytes >= MIGRATION_BATCH_BYTES
    // A large post being staged lies beyond what was read: not the end yet.
    const end = !cut && this.#staged.get(queue.qid) === undefined
    return { records, claims: this.#claims(names, queue.qid, now), next, end, metadata: this.#queues.parse(queue.metadata), journal: this.#pending(ref) }
  }

  readJournal(ref: QueueRef, limit: number): JournalPage {
    const f = this.#current(ref)
    if (f === undefined || f.jid === 0) return { entries: [], claims: [], reset: false }
    const queue = this.#queues.find(ref)
    const now = this.#ctx.clock()
    const names = new Set<string>()
    const entries: JournalEntry[] = []
    let bytes = 0
    for (const { version, id } of this.#entries.iterate(f.jid, clampLimit(limit))) {
      const r = queue === undefined ? undefined : this.#record.get(id, queue.qid)
      const live = r !== undefined && r.expires > now
      if (live && r.claim_id !== null && r.claim_expires > now) names.add(r.claim_id)
      entries.push({ id, version, record: live ? toRecord(r) : null })
      if (live) bytes += r.body.length
      if (bytes >= MIGRATION_BATCH_BYTES) break
    }
    const claims = queue === undefined ? [] : this.#claims(names, queue.qid, now)
    return { entries, claims, reset: f.reset === 1 }
  }

  ackJournal(ref: QueueRef, entries: { id: string; version: number }[], reset: boolean): void {
    if (entries.length > MIGRATION_BATCH_MAX) throw badRequest(`at most ${MIGRATION_BATCH_MAX} journal entries per acknowledgement`)
    const f = this.#current(ref)
    if (f === undefined || f.jid === 0) return
    for (const e of entries) this.#ack.run(f.jid, e.id, e.version)
    if (reset) this.#setReset.run(0, ref.project, ref.queue)
  }

  importMessages(ref: QueueRef, token: string, change: ImportChange): void {
    const upsert = change.upsert ?? []
    const remove = change.remove ?? []
    if (upsert.length > MIGRATION_BATCH_MAX || remove.length > MIGRATION_BATCH_MAX || (change.claims?.length ?? 0) > MIGRATION_BATCH_MAX) {
      throw badRequest(`at most ${MIGRATION_BATCH_MAX} records per import`)
    }
    const f = this.#current(ref)
    if (f === undefined || f.token !== token || f.state !== 'importing') throw new FenceConflict(ref, f === undefined ? null : toFence(f))
    const now = this.#ctx.clock()
    if (change.reset === true) this.#queues.purge(ref)
    if (change.metadata !== undefined && !this.#queues.createQueue(ref, change.metadata)) this.#queues.setQueueMetadata(ref, change.metadata)
    if (upsert.length === 0 && remove.length === 0 && (change.claims?.length ?? 0) === 0) return
    const qid = this.#queues.ensure(ref, now).qid
    for (const rec of upsert) {
      if (!isId(rec.id)) throw badRequest(`malformed message id ${JSON.stringify(rec.id)}`)
      const claimId = rec.claimId ?? null
      const claimExpires = claimId === null ? 0 : rec.claimExpires
      const held = this.#byId.get(rec.id)
      if (held !== undefined && held.qid === qid) {
        this.#update.run(rec.ttl, rec.expires, rec.visible, rec.claimCount, claimId, claimExpires, held.seq)
        continue
      }
      if (held !== undefined) {
        // Left by an earlier copy of the queue here that awaits the collector: it goes now.
        if (this.#orphaned.get(held.qid, held.qid) === undefined) {
          throw new MissiveError('conflict', `message ${rec.id} already exists in another queue of this store`)
        }
        this.#deleteSeq.run(held.seq)
      }
      this.#insert.run(rec.id, qid, rec.body, rec.clientId, rec.ttl, rec.created, rec.expires, rec.visible, claimId, claimExpires, rec.claimCount)
    }
    for (const c of change.claims ?? []) this.#putClaim.run(c.id, qid, c.ttl, c.expires, c.updated)
    if (remove.length > 0) {
      const list = JSON.stringify(remove)
      this.#remove.run(list, qid)
      this.#removeClaims.run(list, qid)
    }
  }

  countForMigration(ref: QueueRef): number {
    return this.#queues.stats(ref).total
  }

  dropQueueData(ref: QueueRef, token: string): void {
    const f = this.#current(ref)
    if (f === undefined || f.token !== token || f.state === 'journal') throw new FenceConflict(ref, f === undefined ? null : toFence(f))
    // The row goes at once, its messages and claims to the collector (bounded, like deleteQueue);
    // idempotency keys beyond one batch are left to expire with their window.
    this.#queues.deleteQueue(ref)
    this.#dropKeys.run(ref.project, ref.queue, MIGRATION_BATCH_MAX)
    if (f.jid !== 0) this.#killJournal.run(f.jid)
    if (f.state === 'importing') this.#dropFence.run(ref.project, ref.queue)
    else this.#putFence.run(ref.project, ref.queue, f.token, f.dest, f.state, 0, 0)
  }
}
