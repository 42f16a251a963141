/**
 * The embedded message store: one SQLite file in WAL mode, owned by one `SqliteDriver`.
 *
 * better-sqlite3 is synchronous, so each operation runs to completion on the worker's thread:
 * within a process operations never interleave, and every multi-row change is one transaction
 * (BEGIN IMMEDIATE, so a second process sharing the file waits on `busy_timeout` rather than
 * failing on a lock upgrade). The async methods exist to honour the `DataDriver` shape.
 *
 * Durability: `durable` commits with `synchronous=FULL` (the WAL is fsynced before a post
 * returns); `fast` uses `synchronous=NORMAL` (safe against a process crash, not power loss).
 *
 * Group commit: writes that arrive in the same turn of the event loop (the RPC server decodes a
 * whole socket read per turn) run in one outer transaction, each inside its own savepoint, and
 * are answered after the one COMMIT — so N concurrent posts cost one fsync, not N. An operation
 * that fails rolls back only its savepoint; its neighbours commit. Reads run at once: a writer is
 * answered only after its commit, so read-your-writes holds for every client.
 *
 * Expired rows are filtered at read time everywhere; a background timer deletes them in bounded
 * batches so the file does not grow without bound. WAL checkpoints run in a background thread
 * (checkpointer.ts), not inside commits.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { systemClock, type Clock } from '../../../shared/clock.js'
import { MissiveError } from '../../../shared/errors.js'
import { PostTooLarge, QueueFull, StoreUnavailable } from '../../../shared/storage/errors.js'
import type {
  Claim,
  ClaimOptions,
  DataDriver,
  ListMessagesOptions,
  ListQueuesOptions,
  Message,
  MessageListing,
  Metadata,
  NewMessage,
  PoppedMessage,
  PostOptions,
  QueueListing,
  QueueRef,
  QueueStats,
} from '../../../shared/storage/contract.js'
import type { DriverOperation } from '../../../shared/storage/operations.js'
import { POST_CHUNK, POST_CHUNK_BYTES } from '../../../shared/storage/contract.js'
import { bodyBytes, chunksOf } from '../common.js'
import { newId } from '../../../shared/ids.js'
import { SqliteClaims } from './claims.js'
import type { Ctx } from './context.js'
import { SqliteMessages } from './messages.js'
import { SqliteQueues, type BytesCursor, type StatsCursor } from './queues.js'
import { Checkpointer, RESTART_FRAMES, walSizeLimit } from './checkpointer.js'
import { applySchema } from './schema.js'
import { JournalSink, SqliteMigration } from './migration.js'
import type { ImportChange, JournalPage, MigrationBatch, QueueFence } from '../../../shared/storage/migration.js'

export interface SqliteDriverOptions {
  /** The database file (created with its directory if missing), or `:memory:`. */
  path: string
  durability: 'durable' | 'fast'
  clock?: Clock
  /** How long a statement waits on another process's lock before failing, ms. Default 5000. */
  busyTimeoutMs?: number
  /** Period of the expired-row collector, ms; 0 disables the timer. Default 1000. */
  gcIntervalMs?: number
  /** Rows deleted per collector transaction. Default 1000. */
  gcBatchSize?: number
  /**
   * Period of the WAL checkpoints run by a background thread, ms (default 200). 0: SQLite's
   * automatic checkpoints, inside commits on the worker's thread.
   */
  checkpointIntervalMs?: number
  /** WAL frames past which the WAL is made to start over (checkpointer.ts, RESTART_FRAMES). */
  walRestartFrames?: number
  /** Called when a background collection or checkpoint fails (the store stays usable). */
  onGcError?: (err: unknown) => void
}

/** Rows removed by one `collectGarbage` call. */
export interface GcResult {
  messages: number
  claims: number
}

/** SQLite result codes that mean "the store cannot serve now", not "the code is wrong". */
const UNAVAILABLE_CODES =
  /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|NOMEM|PROTOCOL|CORRUPT|NOTADB|PERM|NOLFS|INTERRUPT|AUTH)/


const GC_CHAIN_LIMIT = 100

export class SqliteDriver implements DataDriver {
  readonly kind = 'sqlite'
  readonly path: string
  readonly #db: Database.Database
  readonly #clock: Clock
  readonly #queues: SqliteQueues
  readonly #messages: SqliteMessages
  readonly #claims: SqliteClaims
  readonly #migration: SqliteMigration
  readonly #journal: JournalSink
  readonly #gcBatchSize: number
  readonly #onGcError: ((err: unknown) => void) | undefined
  readonly #gcMessages: Database.Statement<[number, number], number>
  readonly #gcClaims: Database.Statement<[number, number], number>
  readonly #gc: Database.Transaction<(now: number, maxRows: number) => GcResult>
  #timer: NodeJS.Timeout | undefined
  #checkpointer: Checkpointer | undefined
  #closed = false
  /** Writes waiting for this turn's group commit. */
  #batch: PendingWrite[] = []
  readonly #commitBatch: Database.Transaction<(batch: PendingWrite[]) => void>
  readonly #fencedRead: Database.Transaction<(ref: QueueRef, fn: () => unknown) => unknown>
  readonly #inSnapshot: Database.Transaction<(fn: () => unknown) => unknown>

  /** Opens (creating if needed) the store at `opts.path`. Throws if the file cannot be used. */
  constructor(opts: SqliteDriverOptions) {
    this.path = opts.path
    this.#clock = opts.clock ?? systemClock
    this.#gcBatchSize = opts.gcBatchSize ?? 1000
    this.#onGcError = opts.onGcError
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true })
    const db = new Database(opts.path)
    try {
      db.pragma('journal_mode = WAL')
      db.pragma(`synchronous = ${opts.durability === 'durable' ? 'FULL' : 'NORMAL'}`)
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`)
      db.pragma('temp_store = MEMORY')
      db.pragma('cache_size = -32768')
      applySchema(db)
    } catch (err) {
      db.close()
      throw err
    }
    this.#db = db
    if (opts.path !== ':memory:' && (opts.checkpointIntervalMs ?? 200) > 0) {
      db.pragma('wal_autocheckpoint = 0')
      // A burst the checkpoints could not keep up with (or writes before the thread is up)
      // leaves a long WAL file; SQLite reuses a WAL file without shrinking it, so without a
      // limit that disk stays taken. The commit that starts the WAL over cuts it back to four
      // times the restart length; a WAL that stays under that is never cut (cutting and then
      // growing again costs the block allocations the restart exists to avoid).
      db.pragma(`journal_size_limit = ${walSizeLimit(opts.walRestartFrames ?? RESTART_FRAMES)}`)
      this.#checkpointer = new Checkpointer(opts.path, opts.checkpointIntervalMs ?? 200, (err) => {
        if (this.#closed) return
        db.pragma('wal_autocheckpoint = 1000')
        this.#onGcError?.(err)
      }, opts.walRestartFrames)
    }
    this.#journal = new JournalSink(db)
    const ctx: Ctx = { db, clock: this.#clock, journal: this.#journal, fenced: (ref) => this.#migration.refuses(ref) }
    this.#queues = new SqliteQueues(ctx)
    this.#messages = new SqliteMessages(ctx, this.#queues)
    this.#claims = new SqliteClaims(ctx, this.#queues)
    this.#migration = new SqliteMigration(ctx, this.#queues)
    // Large posts a crash left half-written are rolled back: they were never acknowledged.
    db.transaction(() => this.#messages.unstageAll()).immediate()
    // Rows are picked through the expiry index, then deleted one by rowid: a `DELETE ... IN
    // (subquery)` lets the planner choose a full scan when statistics are stale.
    this.#gcMessages = db.prepare<[number, number], number>('SELECT seq FROM messages INDEXED BY messages_expires WHERE expires <= ? LIMIT ?').pluck()
    this.#gcClaims = db.prepare<[number, number], number>('SELECT rowid FROM claims INDEXED BY claims_expires WHERE expires <= ? LIMIT ?').pluck()
    const deleteMessage = db.prepare('DELETE FROM messages WHERE seq = ?')
    const deleteClaim = db.prepare('DELETE FROM claims WHERE rowid = ?')
    const orphan = db.prepare<[], number>('SELECT qid FROM orphans LIMIT 1').pluck()
    const orphanMessages = db.prepare<[number, number], number>('SELECT seq FROM messages INDEXED BY messages_scan WHERE qid = ? LIMIT ?').pluck()
    const orphanClaims = db.prepare<[number, number], number>('SELECT rowid FROM claims INDEXED BY claims_queue WHERE qid = ? LIMIT ?').pluck()
    const unorphan = db.prepare('DELETE FROM orphans WHERE qid = ?')
    const deadJournal = db.prepare<[], number>('SELECT jid FROM dead_journals LIMIT 1').pluck()
    const deadEntries = db.prepare<[number, number], number>('SELECT version FROM journal INDEXED BY journal_order WHERE jid = ? LIMIT ?').pluck()
    const deleteEntry = db.prepare('DELETE FROM journal WHERE version = ?')
    const undead = db.prepare('DELETE FROM dead_journals WHERE jid = ?')
    const gcKeys = db.prepare(
      `DELETE FROM idempotency WHERE (project, queue, key) IN
       (SELECT project, queue, key FROM idempotency INDEXED BY idempotency_expires WHERE expires <= ? LIMIT ?)`,
    )
    this.#gc = db.transaction((now: number, maxRows: number): GcResult => {
      const seqs = this.#gcMessages.all(now, maxRows)
      for (const seq of seqs) deleteMessage.run(seq)
      const rowids = this.#gcClaims.all(now, maxRows)
      for (const rowid of rowids) deleteClaim.run(rowid)
      gcKeys.run(now, maxRows)
      // Rows of deleted and purged queues (queues.ts), within what is left of the batch.
      let messages = seqs.length
      let claims = rowids.length
      const room = maxRows - Math.max(messages, claims)
      const qid = room > 0 ? orphan.get() : undefined
      if (qid !== undefined) {
        const more = orphanMessages.all(qid, room)
        for (const seq of more) deleteMessage.run(seq)
        const moreClaims = orphanClaims.all(qid, room)
        for (const rowid of moreClaims) deleteClaim.run(rowid)
        if (more.length < room && moreClaims.length < room) unorphan.run(qid)
        messages += more.length
        claims += moreClaims.length
      }
      // Entries of dropped migration journals (migration.ts), a batch at a time.
      const jid = deadJournal.get()
      if (jid !== undefined) {
        const versions = deadEntries.all(jid, maxRows)
        for (const v of versions) deleteEntry.run(v)
        if (versions.length < maxRows) undead.run(jid)
      }
      return { messages, claims }
    })
    this.#commitBatch = db.transaction((batch: PendingWrite[]) => {
      this.#queues.cacheRows(true)
      try {
        for (const w of batch) {
          try {
            // Each operation is itself a transaction: nested here, better-sqlite3 makes it a
            // savepoint, rolled back alone if the operation throws.
            w.result = this.#guard(w.op, w.fn)
            w.ok = true
          } catch (err) {
            w.error = err
            // Its savepoint may have taken back a queue row it made.
            this.#queues.forgetRows()
          }
        }
      } finally {
        this.#queues.cacheRows(false)
      }
    })
    this.#fencedRead = db.transaction((ref: QueueRef, fn: () => unknown) => {
      this.#migration.enter(ref)
      return fn()
    })
    this.#inSnapshot = db.transaction((fn: () => unknown) => fn())
    const interval = opts.gcIntervalMs ?? 1000
    if (interval > 0) {
      this.#timer = setInterval(() => this.#gcTick(0), interval)
      this.#timer.unref()
    }
  }

  /**
   * Deletes up to `maxRows` expired messages and up to `maxRows` expired claims, in one
   * transaction. Readers never see expired rows either way; this only reclaims space.
   */
  collectGarbage(maxRows: number = this.#gcBatchSize): GcResult {
    this.#assertOpen()
    return this.#guard('deleteMessages', () => this.#gc.immediate(this.#clock(), maxRows))
  }

  /** One timer tick: a batch, chained on the next turn while batches come back full. */
  #gcTick(chained: number): void {
    if (this.#closed) return
    let result: GcResult
    try {
      result = this.collectGarbage(this.#gcBatchSize)
    } catch (err) {
      this.#onGcError?.(err)
      return
    }
    const full = result.messages >= this.#gcBatchSize || result.claims >= this.#gcBatchSize
    if (full && chained < GC_CHAIN_LIMIT) setImmediate(() => this.#gcTick(chained + 1))
  }

  /** Queues a write for this turn's group commit; resolves after the COMMIT that holds it. */
  #write<T>(op: DriverOperation, fn: () => T): Promise<T> {
    this.#assertOpen()
    return new Promise<T>((resolve, reject) => {
      if (this.#batch.length === 0) setImmediate(() => this.#flush())
      this.#batch.push({ op, fn, resolve: resolve as (v: unknown) => void, reject, ok: false })
    })
  }

  /** Commits every queued write in one transaction, then answers each. */
  #flush(): void {
    const batch = this.#batch
    if (batch.length === 0) return
    this.#batch = []
    try {
      this.#assertOpen()
      this.#guard(batch[0]!.op, () => this.#commitBatch.immediate(batch))
    } catch (err) {
      // Nothing of the batch is stored: even the operations that ran must fail, and what they
      // taught the quota checks (messages.ts, `#overQuota`) is forgotten with them.
      this.#messages.forgetQuotaBounds()
      for (const w of batch) w.reject(w.ok ? err : (w.error ?? err))
      return
    }
    for (const w of batch) {
      if (w.ok) w.resolve(w.result)
      else w.reject(w.error)
    }
    if (this.#checkpointer?.restartDue() === true) this.#restartWal()
  }

  /** Lets the WAL start over (checkpointer.ts, `restartDue`); a pass that fails is tried again after the next transaction. */
  #restartWal(): void {
    let copiedAll = false
    try {
      const [r] = this.#db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[]
      copiedAll = r !== undefined && r.busy === 0 && r.log === r.checkpointed
    } catch (err) {
      this.#onGcError?.(err)
    }
    this.#checkpointer?.restartDone(copiedAll)
  }

  /**
   * A client write: queued for the group commit like any write, and fenced inside its
   * transaction (migration.ts): refused under `moved`/`importing`; under `journal`, the messages
   * it changes are journalled (`reset`: the operation empties the queue, journalled as a reset).
   */
  #clientWrite<T>(op: DriverOperation, ref: QueueRef, fn: () => T, reset = false): Promise<T> {
    return this.#write(op, () => {
      const jid = this.#migration.enter(ref)
      if (jid === 0) return fn()
      this.#journal.jid = jid
      try {
        const result = fn()
        if (reset) this.#migration.markReset(ref)
        return result
      } finally {
        this.#journal.jid = 0
      }
    })
  }

  /**
   * A client read: refused under a `moved`/`importing` fence. The check and the read run in one
   * deferred (read) transaction, so they see one snapshot even when another process shares the
   * file; on a WAL file that is also cheaper than two statements each taking its own read lock
   * (~2 µs each).
   */
  #read<T>(op: DriverOperation, ref: QueueRef, fn: () => T): T {
    return this.#guard(op, () => this.#fencedRead.deferred(ref, fn) as T)
  }

  /** A migration read of several statements, in one snapshot. */
  #snapshot<T>(op: DriverOperation, fn: () => T): T {
    return this.#guard(op, () => this.#inSnapshot.deferred(fn) as T)
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreUnavailable('closed')
  }

  /** Runs one operation, turning store failures into `unavailable`; bugs pass through. */
  #guard<T>(op: DriverOperation, fn: () => T): T {
    this.#assertOpen()
    try {
      return fn()
    } catch (err) {
      if (err instanceof MissiveError) throw err
      if (err instanceof Database.SqliteError && UNAVAILABLE_CODES.test(err.code)) {
        throw new StoreUnavailable('unreachable', op, err)
      }
      throw err
    }
  }

  async ping(): Promise<void> {
    this.#guard('ping', () => this.#db.prepare('SELECT 1').get())
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#flush()
    this.#closed = true
    await this.#checkpointer?.stop()
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    this.#db.close()
  }

  async createQueue(ref: QueueRef, metadata: Metadata): Promise<boolean> {
    return this.#clientWrite('createQueue', ref, () => this.#queues.createQueue(ref, metadata))
  }

  async getQueue(ref: QueueRef): Promise<Metadata | null> {
    return this.#read('getQueue', ref, () => this.#queues.getQueue(ref))
  }

  async setQueueMetadata(ref: QueueRef, metadata: Metadata): Promise<void> {
    return this.#clientWrite('setQueueMetadata', ref, () => this.#queues.setQueueMetadata(ref, metadata))
  }

  async deleteQueue(ref: QueueRef): Promise<void> {
    if (this.#held.size > 0) await this.#idle(ref)
    return this.#clientWrite('deleteQueue', ref, () => this.#queues.deleteQueue(ref), true)
  }

  async listQueues(project: string, opts: ListQueuesOptions): Promise<QueueListing> {
    return this.#guard('listQueues', () => this.#queues.listQueues(project, opts))
  }

  async stats(ref: QueueRef): Promise<QueueStats> {
    // In steps of STATS_STEP messages with a turn of the event loop between them, so that a
    // large queue's count never holds every other request of this worker (queues.ts).
    let r = this.#read('stats', ref, () => this.#queues.statsStep(ref, undefined))
    while ('qid' in r) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      const cursor: StatsCursor = r
      r = this.#read('stats', ref, () => this.#queues.statsStep(ref, cursor))
    }
    return r
  }

  async storedBytes(ref: QueueRef): Promise<number> {
    // In steps of BYTES_STEP messages, as stats: the scan's sum never holds the worker.
    let r = this.#read('storedBytes', ref, () => this.#queues.bytesStep(ref, undefined))
    while (typeof r !== 'number') {
      await new Promise<void>((resolve) => setImmediate(resolve))
      const cursor: BytesCursor = r
      r = this.#read('storedBytes', ref, () => this.#queues.bytesStep(ref, cursor))
    }
    return r
  }

  async purge(ref: QueueRef): Promise<void> {
    if (this.#held.size > 0) await this.#idle(ref)
    return this.#clientWrite('purge', ref, () => this.#queues.purge(ref), true)
  }

  async postMessages(ref: QueueRef, messages: NewMessage[], opts: PostOptions): Promise<string[]> {
    const chunks = messages.length > POST_CHUNK || bodyBytes(messages) > POST_CHUNK_BYTES ? chunksOf(messages) : undefined
    if (chunks === undefined || chunks.length === 1) {
      if (this.#held.size > 0) await this.#idle(ref)
      return this.#clientWrite('postMessages', ref, () => this.#messages.postMessages(ref, messages, opts))
    }
    return this.#postLarge(ref, messages, opts, chunks, await this.#acquire(ref))
  }

  /**
   * A post too large for one bounded transaction: one chunk per group commit, invisible until
   * the last (messages.ts), with the queue held so no other post, purge or delete of it runs in
   * between. Any failure rolls the staged chunks back before the error is answered.
   */
  async #postLarge(ref: QueueRef, messages: NewMessage[], opts: PostOptions, chunks: [number, number][], release: () => void): Promise<string[]> {
    const allIds = messages.map(() => newId())
    this.#messages.staging(true)
    // Whether the staged rows are surely gone (committed or rolled back): only then may
    // listings stop looking for them; else they keep stopping below them until a restart.
    let settled = false
    try {
      for (let c = 0; c < chunks.length; c++) {
        const [from, to] = chunks[c]!
        const op = c === 0 ? 'begin' : c === chunks.length - 1 ? 'commit' : 'add'
        const r = await this.#clientWrite('postMessages', ref, () => this.#messages.stageChunk(ref, op, messages.slice(from, to), allIds.slice(from, to), allIds, opts))
        if ('maxSize' in r) throw new PostTooLarge(ref, r.maxSize)
        if ('full' in r) throw new QueueFull(ref, r.full)
        if ('lost' in r) throw new StoreUnavailable('interrupted', 'postMessages')
        if (r.ids !== allIds) {
          settled = true
          return r.ids
        }
      }
      settled = true
      return allIds
    } catch (err) {
      await this.#write('postMessages', () => this.#messages.unstage(ref, allIds)).then(
        () => (settled = true),
        () => undefined,
      )
      throw err
    } finally {
      if (settled) this.#messages.staging(false)
      release()
    }
  }

  /** Queues held by a large post, with the promise that resolves when it lets go. */
  readonly #held = new Map<string, Promise<void>>()

  /**
   * Holds `ref` once no other large post does; resolves with the function that lets go. The
   * check and the hold are one synchronous step: several posts waiting on one holder all wake
   * together, and a check made in one turn and a hold taken in a later one would let them all
   * in at once (each one's first chunk then dropped the others' staging: 503s for posts that
   * had stored part of their messages).
   */
  async #acquire(ref: QueueRef): Promise<() => void> {
    const key = JSON.stringify([ref.project, ref.queue])
    for (let p = this.#held.get(key); p !== undefined; p = this.#held.get(key)) await p
    let done!: () => void
    const p = new Promise<void>((resolve) => (done = resolve))
    this.#held.set(key, p)
    return () => {
      if (this.#held.get(key) === p) this.#held.delete(key)
      done()
    }
  }

  /** Resolves once no large post holds `ref`. */
  async #idle(ref: QueueRef): Promise<void> {
    const key = JSON.stringify([ref.project, ref.queue])
    for (let p = this.#held.get(key); p !== undefined; p = this.#held.get(key)) await p
  }

  async listMessages(ref: QueueRef, opts: ListMessagesOptions): Promise<MessageListing> {
    return this.#read('listMessages', ref, () => this.#messages.listMessages(ref, opts))
  }

  async getMessage(ref: QueueRef, id: string): Promise<Message | null> {
    return this.#read('getMessage', ref, () => this.#messages.getMessage(ref, id))
  }

  async getMessages(ref: QueueRef, ids: string[]): Promise<Message[]> {
    return this.#read('getMessages', ref, () => this.#messages.getMessages(ref, ids))
  }

  async deleteMessage(ref: QueueRef, id: string, claimId?: string): Promise<void> {
    return this.#clientWrite('deleteMessage', ref, () => this.#messages.deleteMessage(ref, id, claimId))
  }

  async deleteMessages(ref: QueueRef, ids: string[], claimIds?: string[]): Promise<void> {
    return this.#clientWrite('deleteMessages', ref, () => this.#messages.deleteMessages(ref, ids, claimIds))
  }

  async popMessages(ref: QueueRef, limit: number): Promise<PoppedMessage[]> {
    return this.#clientWrite('popMessages', ref, () => this.#messages.popMessages(ref, limit))
  }

  /** See `DataDriver.deadLettered`. */
  get deadLettered(): number {
    return this.#claims.deadLettered
  }

  async createClaim(ref: QueueRef, opts: ClaimOptions): Promise<Claim | null> {
    return this.#clientWrite('createClaim', ref, () => this.#claims.createClaim(ref, opts))
  }

  async getClaim(ref: QueueRef, claimId: string): Promise<Claim | null> {
    return this.#read('getClaim', ref, () => this.#claims.getClaim(ref, claimId))
  }

  async renewClaim(ref: QueueRef, claimId: string, opts: { ttl: number; grace: number }): Promise<void> {
    return this.#clientWrite('renewClaim', ref, () => this.#claims.renewClaim(ref, claimId, opts))
  }

  async releaseClaim(ref: QueueRef, claimId: string): Promise<void> {
    return this.#clientWrite('releaseClaim', ref, () => this.#claims.releaseClaim(ref, claimId))
  }

  /** Nothing to mark: every post to this store passes through the proxy that serves it, which wakes its own listeners. */
  async listen(_ref: QueueRef, _ms: number): Promise<void> {}

  // --- migration (shared/storage/migration.ts; sqlite/migration.ts): never refused by a fence --

  async fenceQueue(ref: QueueRef, fence: QueueFence | null, expect: string | null): Promise<void> {
    return this.#write('fenceQueue', () => this.#migration.fenceQueue(ref, fence, expect))
  }

  async getFence(ref: QueueRef): Promise<QueueFence | null> {
    return this.#guard('getFence', () => this.#migration.getFence(ref))
  }

  async readForMigration(ref: QueueRef, after: number, limit: number): Promise<MigrationBatch> {
    return this.#snapshot('readForMigration', () => this.#migration.readForMigration(ref, after, limit))
  }

  async readJournal(ref: QueueRef, limit: number): Promise<JournalPage> {
    return this.#snapshot('readJournal', () => this.#migration.readJournal(ref, limit))
  }

  async ackJournal(ref: QueueRef, entries: { id: string; version: number }[], reset?: boolean): Promise<void> {
    return this.#write('ackJournal', () => this.#migration.ackJournal(ref, entries, reset === true))
  }

  async importMessages(ref: QueueRef, token: string, change: ImportChange): Promise<void> {
    return this.#write('importMessages', () => this.#migration.importMessages(ref, token, change))
  }

  async countForMigration(ref: QueueRef): Promise<number> {
    return this.#snapshot('countForMigration', () => this.#migration.countForMigration(ref))
  }

  async dropQueueData(ref: QueueRef, token: string): Promise<void> {
    if (this.#held.size > 0) await this.#idle(ref)
    return this.#write('dropQueueData', () => this.#migration.dropQueueData(ref, token))
  }
}

/** A write waiting for its group commit. */
interface PendingWrite {
  op: DriverOperation
  fn: () => unknown
  resolve(value: unknown): void
  reject(err: unknown): void
  ok: boolean
  result?: unknown
  error?: unknown
}
