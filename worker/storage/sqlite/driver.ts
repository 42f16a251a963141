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
 * Expired rows are filtered at read time everywhere; a background timer deletes them in bounded
 * batches so the file does not grow without bound.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { systemClock, type Clock } from '../../../shared/clock.js'
import { MissiveError, unavailable } from '../../../shared/errors.js'
import type {
  Claim,
  ClaimOptions,
  DataDriver,
  DriverOperation,
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
} from '../contract.js'
import { SqliteClaims } from './claims.js'
import type { Ctx } from './context.js'
import { SqliteMessages } from './messages.js'
import { SqliteQueues } from './queues.js'
import { applySchema } from './schema.js'

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
  /** Called when a background collection fails (the store stays usable). */
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

/** What the client reads when the store fails, per operation (Zaqar's wording where it has one). */
const FAILURE: Record<DriverOperation, string> = {
  ping: 'The message store is not available.',
  createQueue: 'Queue could not be created.',
  getQueue: 'Queue metadata could not be retrieved.',
  setQueueMetadata: 'Queue metadata could not be updated.',
  deleteQueue: 'Queue could not be deleted.',
  listQueues: 'Queues could not be listed.',
  stats: 'Queue stats could not be read.',
  purge: 'Queue could not be purged.',
  postMessages: 'Messages could not be enqueued.',
  listMessages: 'Messages could not be listed.',
  getMessage: 'Message could not be retrieved.',
  getMessages: 'Messages could not be retrieved.',
  deleteMessage: 'Unable to delete message.',
  deleteMessages: 'Messages could not be deleted.',
  popMessages: 'Messages could not be popped.',
  createClaim: 'Claim could not be created.',
  getClaim: 'Claim could not be queried.',
  renewClaim: 'Claim could not be updated.',
  releaseClaim: 'Claim could not be deleted.',
}

const GC_CHAIN_LIMIT = 100

export class SqliteDriver implements DataDriver {
  readonly kind = 'sqlite'
  readonly path: string
  readonly #db: Database.Database
  readonly #clock: Clock
  readonly #queues: SqliteQueues
  readonly #messages: SqliteMessages
  readonly #claims: SqliteClaims
  readonly #gcBatchSize: number
  readonly #onGcError: ((err: unknown) => void) | undefined
  readonly #gcMessages: Database.Statement<[number, number], number>
  readonly #gcClaims: Database.Statement<[number, number], number>
  readonly #gc: Database.Transaction<(now: number, maxRows: number) => GcResult>
  #timer: NodeJS.Timeout | undefined
  #closed = false

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
    const ctx: Ctx = { db, clock: this.#clock }
    this.#queues = new SqliteQueues(ctx)
    this.#messages = new SqliteMessages(ctx, this.#queues)
    this.#claims = new SqliteClaims(ctx, this.#queues)
    // Rows are picked through the expiry index, then deleted one by rowid: a `DELETE ... IN
    // (subquery)` lets the planner choose a full scan when statistics are stale.
    this.#gcMessages = db.prepare<[number, number], number>('SELECT seq FROM messages INDEXED BY messages_expires WHERE expires <= ? LIMIT ?').pluck()
    this.#gcClaims = db.prepare<[number, number], number>('SELECT rowid FROM claims INDEXED BY claims_expires WHERE expires <= ? LIMIT ?').pluck()
    const deleteMessage = db.prepare('DELETE FROM messages WHERE seq = ?')
    const deleteClaim = db.prepare('DELETE FROM claims WHERE rowid = ?')
    this.#gc = db.transaction((now: number, maxRows: number): GcResult => {
      const seqs = this.#gcMessages.all(now, maxRows)
      for (const seq of seqs) deleteMessage.run(seq)
      const rowids = this.#gcClaims.all(now, maxRows)
      for (const rowid of rowids) deleteClaim.run(rowid)
      return { messages: seqs.length, claims: rowids.length }
    })
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

  #assertOpen(): void {
    if (this.#closed) throw unavailable('The message store is closed.')
  }

  /** Runs one operation, turning store failures into `unavailable`; bugs pass through. */
  #guard<T>(op: DriverOperation, fn: () => T): T {
    this.#assertOpen()
    try {
      return fn()
    } catch (err) {
      if (err instanceof MissiveError) throw err
      if (err instanceof Database.SqliteError && UNAVAILABLE_CODES.test(err.code)) {
        throw unavailable(`${FAILURE[op]} Please try again in a few seconds.`, 1, err)
      }
      throw err
    }
  }

  async ping(): Promise<void> {
    this.#guard('ping', () => this.#db.prepare('SELECT 1').get())
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    this.#db.close()
  }

  async createQueue(ref: QueueRef, metadata: Metadata): Promise<boolean> {
    return this.#guard('createQueue', () => this.#queues.createQueue(ref, metadata))
  }

  async getQueue(ref: QueueRef): Promise<Metadata | null> {
    return this.#guard('getQueue', () => this.#queues.getQueue(ref))
  }

  async setQueueMetadata(ref: QueueRef, metadata: Metadata): Promise<void> {
    this.#guard('setQueueMetadata', () => this.#queues.setQueueMetadata(ref, metadata))
  }

  async deleteQueue(ref: QueueRef): Promise<void> {
    this.#guard('deleteQueue', () => this.#queues.deleteQueue(ref))
  }

  async listQueues(project: string, opts: ListQueuesOptions): Promise<QueueListing> {
    return this.#guard('listQueues', () => this.#queues.listQueues(project, opts))
  }

  async stats(ref: QueueRef): Promise<QueueStats> {
    return this.#guard('stats', () => this.#queues.stats(ref))
  }

  async purge(ref: QueueRef): Promise<void> {
    this.#guard('purge', () => this.#queues.purge(ref))
  }

  async postMessages(ref: QueueRef, messages: NewMessage[], opts: PostOptions): Promise<string[]> {
    return this.#guard('postMessages', () => this.#messages.postMessages(ref, messages, opts))
  }

  async listMessages(ref: QueueRef, opts: ListMessagesOptions): Promise<MessageListing> {
    return this.#guard('listMessages', () => this.#messages.listMessages(ref, opts))
  }

  async getMessage(ref: QueueRef, id: string): Promise<Message | null> {
    return this.#guard('getMessage', () => this.#messages.getMessage(ref, id))
  }

  async getMessages(ref: QueueRef, ids: string[]): Promise<Message[]> {
    return this.#guard('getMessages', () => this.#messages.getMessages(ref, ids))
  }

  async deleteMessage(ref: QueueRef, id: string, claimId?: string): Promise<void> {
    this.#guard('deleteMessage', () => this.#messages.deleteMessage(ref, id, claimId))
  }

  async deleteMessages(ref: QueueRef, ids: string[], claimIds?: string[]): Promise<void> {
    this.#guard('deleteMessages', () => this.#messages.deleteMessages(ref, ids, claimIds))
  }

  async popMessages(ref: QueueRef, limit: number): Promise<PoppedMessage[]> {
    return this.#guard('popMessages', () => this.#messages.popMessages(ref, limit))
  }

  async createClaim(ref: QueueRef, opts: ClaimOptions): Promise<Claim | null> {
    return this.#guard('createClaim', () => this.#claims.createClaim(ref, opts))
  }

  async getClaim(ref: QueueRef, claimId: string): Promise<Claim | null> {
    return this.#guard('getClaim', () => this.#claims.getClaim(ref, claimId))
  }

  async renewClaim(ref: QueueRef, claimId: string, opts: { ttl: number; grace: number }): Promise<void> {
    this.#guard('renewClaim', () => this.#claims.renewClaim(ref, claimId, opts))
  }

  async releaseClaim(ref: QueueRef, claimId: string): Promise<void> {
    this.#guard('releaseClaim', () => this.#claims.releaseClaim(ref, claimId))
  }
}
