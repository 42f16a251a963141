/**
 * The migration runner (docs/migration.md): runs in every proxy process and moves queues between
 * pools, one catalog lease per migration, so exactly one runner works on a migration at a time
 * across every proxy and host. A runner that dies (kill -9) stops renewing; once its lease has
 * expired another proxy's runner (or the restarted one) takes the migration over and resumes
 * from the state and cursor persisted in the catalog.
 *
 * It lives in proxy/ rather than catalog/ because it reaches pools the way requests do: through
 * the proxy's pool set and the worker that owns the queue in each pool (`workersOf` +
 * `workerFor` with the queue's routing key); catalog/ knows nothing of workers. Its core takes a
 * `Reach` function, so tests drive it against in-memory or real stores directly.
 *
 * What it does with one migration, by state (shared/storage/migration.ts has the store side):
 * - `copying`: fence the target `importing` and the source `journal`; copy batches in FIFO order
 *   (rate-limited), draining the journal between batches; when a batch reaches the end, go
 *   `switching`.
 * - `switching`: fence the source `moved` (clients now wait), copy the tail, drain the journal,
 *   copy the metadata (read through the cursor, which the fence does not refuse),
 *   compare counts (a mismatch restarts the copy: never switch on one), lift the target's fence,
 *   `finishSwitch` (placement ← target, every proxy forgets the queue).
 * - `cleaning`: drop the source's data (the `moved` fence stays as a tombstone), `done`.
 * - `cancelling`: clear the source's fence, drop the target's copy, `cancelled` (`failed` when
 *   the runner gave up with an error).
 *
 * Why a crash anywhere converges: every step is repeatable. Fences are compare-and-set on the
 * migration's id and a repeat finds its own fence already there; the copy writes state, not
 * operations (an upsert of a message the target holds replaces its state in place), so copying a
 * batch again from an older persisted cursor is harmless; a journal entry is acknowledged only
 * after it was applied, and only at the version read; the catalog's state moves only forward,
 * under the lease (compare-and-set on the owner), and `finishSwitch` is atomic and repeatable.
 * The state is written to the catalog *before* the store step it licenses (`switching` before
 * the `moved` fence), so a cancel racing the switch is refused by the catalog, never half-done.
 * A runner that cannot renew its lease stops touching the stores before the lease can expire
 * (`leaseMs` less a margin, on its own monotonic clock), so two runners never overlap.
 */
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { CatalogStore } from '../catalog/contract.js'
import { isActive, MigrationError, type Migration, type MigrationPatch } from '../catalog/migration-record.js'
import { MissiveError } from '../shared/errors.js'
import type { Logger } from '../shared/log.js'
import type { QueueRef } from '../shared/storage/contract.js'
import { FenceConflict } from '../shared/storage/errors.js'
import { MIGRATION_BATCH_BYTES, type MessageRecord, type MigrationBatch, type MigrationOperations, type QueueFence } from '../shared/storage/migration.js'
import { Rerunning } from '../shared/rerunning.js'

/** What the runner needs of one pool's store for one queue: the migration operations. */
export type MigratingStore = MigrationOperations

/** The store of `pool` that owns `ref` (throws `unavailable` when this proxy cannot reach it). */
export type Reach = (pool: string, ref: QueueRef) => MigratingStore

/** Where the runner reports progress (proxy/migration-metrics.ts implements it for /metrics). */
export interface MigrationObserver {
  running(delta: number): void
  moved(messages: number, bytes: number): void
  journal(entries: number): void
  /** A migration ended: its outcome and how long it ran, seconds. */
  ended(outcome: 'done' | 'cancelled' | 'failed', seconds: number): void
  /** A store or catalog error met (retried or not). */
  error(): void
  /** The clients' pause of one switch, seconds. */
  pause(seconds: number): void
}

export interface MigrationRunnerOptions {
  catalog: CatalogStore
  reach: Reach
  log: Logger
  /** This runner's lease owner name (default `<host>:<pid>:<random>`). */
  owner?: string
  /** Lease length, ms (default 5000); renewed every third of it. */
  leaseMs?: number
  /** How often the catalog is asked for work, ms (default 1000; 0: only on `kick`). */
  pollMs?: number
  /** Migrations this runner works on at once (default 4). */
  maxRunning?: number
  /** Messages per copy batch (default 256). */
  batch?: number
  /** Journal entries per page (default 256). */
  journalBatch?: number
  /** Longest back-off between retries of a failing step, ms (default 5000). */
  maxBackoffMs?: number
  /** Times a count mismatch is re-checked (journal drained again) before the copy restarts (default 3). */
  countChecks?: number
  observer?: MigrationObserver
  /**
   * Called when a migration this runner drove reached a final state (done, cancelled, failed),
   * after it left the runner's slots: a pool drain starts its next migration at once
   * (`MigrationService.migrationEnded`) instead of at the next poll.
   */
  onEnded?: (m: Migration) => void
}

/** The runner lost (or could not keep) its lease: stop at once, touch nothing more. */
class LeaseGone extends Error {}

const refOf = (m: Migration): QueueRef => ({ project: m.project, queue: m.queue })

/** Errors no retry fixes: the migration fails (rolls back) while it still can. */
function permanent(err: unknown): boolean {
  if (err instanceof FenceConflict) return true
  // A store refusing the request itself (one that cannot migrate): no retry changes that.
  if (err instanceof MissiveError && err.code === 'bad_request') return true
  if (err instanceof MigrationError) return err.reason === 'unknown_pool' || err.reason === 'not_placed'
  return false
}

/** A rollback step's error meaning there is nothing of this migration's to undo in that store. */
const nothingOfOurs = (err: unknown): boolean => err instanceof FenceConflict || (err instanceof MissiveError && err.code === 'bad_request')

const errorText = (err: unknown): string =>
  (err instanceof MissiveError ? (err.description ?? err.message) : err instanceof Error ? err.message : String(err)).slice(0, 500)

/** One migration being worked on by this runner. */
class Job {
  aborted = false
  /** performance.now() after which this runner no longer trusts its lease. */
  trustedUntil: number
  timer: NodeJS.Timeout | undefined
  /** The drive loop, settled when the runner let go of the migration. */
  done: Promise<void> = Promise.resolve()
  readonly began = performance.now()
  constructor(
    public m: Migration,
    trustedUntil: number,
  ) {
    this.trustedUntil = trustedUntil
  }
  check(): void {
    if (this.aborted || performance.now() > this.trustedUntil) throw new LeaseGone()
  }
}

export class MigrationRunner {
  readonly owner: string
  readonly #o: Required<Omit<MigrationRunnerOptions, 'observer' | 'owner' | 'onEnded'>> & {
    observer: MigrationObserver | undefined
    onEnded: ((m: Migration) => void) | undefined
  }
  readonly #jobs = new Map<string, Job>()
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  /** Ticks one at a time; a kick during one runs another after it (see `kick`). */
  readonly #rounds = new Rerunning(() => this.#tick(), () => !this.#stopped)

  constructor(opts: MigrationRunnerOptions) {
    this.owner = opts.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
    this.#o = {
      catalog: opts.catalog,
      reach: opts.reach,
      log: opts.log,
      leaseMs: opts.leaseMs ?? 5000,
      pollMs: opts.pollMs ?? 1000,
      maxRunning: opts.maxRunning ?? 4,
      batch: opts.batch ?? 256,
      journalBatch: opts.journalBatch ?? 256,
      maxBackoffMs: opts.maxBackoffMs ?? 5000,
      countChecks: opts.countChecks ?? 3,
      observer: opts.observer,
      onEnded: opts.onEnded,
    }
  }

  /** Starts asking the catalog for work every `pollMs`. */
  start(): this {
    if (this.#o.pollMs > 0 && this.#timer === undefined) {
      this.#timer = setInterval(() => void this.kick(), this.#o.pollMs)
      this.#timer.unref()
    }
    void this.kick()
    return this
  }

  /** Migrations this runner is working on now. */
  get running(): string[] {
    return [...this.#jobs.keys()]
  }

  /**
   * Asks the catalog for work now (an admin write calls it, so its own proxy starts at once). A
   * kick during a tick runs one more tick after it: the running one may have found nothing just
   * before the migration that prompted the kick was created.
   */
  kick(): Promise<void> {
    return this.#rounds.run()
  }

  async #tick(): Promise<void> {
    while (!this.#stopped && this.#jobs.size < this.#o.maxRunning) {
      let m: Migration | null
      // The lease counts from before the request: a slow answer shortens the trust, never extends it.
      const asked = performance.now()
      try {
        m = await this.#o.catalog.acquireMigration(this.owner, this.#o.leaseMs, [...this.#jobs.keys()])
      } catch (err) {
        this.#o.log.warn({ err: errorText(err) }, 'migration runner: the catalog did not answer')
        return
      }
      if (m === null || this.#stopped) return
      this.#start(m, asked)
    }
  }

  #start(m: Migration, asked: number): void {
    const trust = this.#o.leaseMs * 0.8
    const job = new Job(m, asked + trust)
    this.#jobs.set(m.id, job)
    this.#o.observer?.running(1)
    // Renewal: a third of the lease, so two renewals can fail before the lease is in doubt.
    job.timer = setInterval(() => {
      const at = performance.now()
      this.#o.catalog.renewMigration(m.id, this.owner, this.#o.leaseMs).then(
        () => {
          job.trustedUntil = Math.max(job.trustedUntil, at + trust)
        },
        (err: unknown) => {
          if (err instanceof MigrationError) job.aborted = true
        },
      )
    }, this.#o.leaseMs / 3)
    job.timer.unref()
    job.done = this.#drive(job).finally(() => {
      clearInterval(job.timer)
      this.#jobs.delete(m.id)
      this.#o.observer?.running(-1)
      // Ended or handed back: release (a no-op when the migration ended, which released it).
      if (!job.aborted) void this.#o.catalog.releaseMigration(m.id, this.owner).catch(() => {})
      if (this.#stopped) return
      if (!isActive(job.m.state)) {
        try {
          this.#o.onEnded?.(job.m)
        } catch (err) {
          this.#o.log.warn({ migration: m.id, err: errorText(err) }, 'migration runner: onEnded failed')
        }
      }
      void this.kick()
    })
  }

  /**
   * Stops taking work and abandons what runs, without releasing leases: what a crash does (tests
   * use it as one); `stop` is the clean way.
   */
  abandon(): void {
    this.#stopped = true
    clearInterval(this.#timer)
    for (const job of this.#jobs.values()) {
      job.aborted = true
      clearInterval(job.timer)
    }
  }

  /**
   * Stops taking work; running migrations stop at their next step and, once their step in flight
   * has ended (or `waitMs` passed), their leases are released so another proxy continues at once.
   */
  async stop(waitMs = 2000): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    const jobs = [...this.#jobs.entries()]
    for (const [, job] of jobs) {
      job.aborted = true
      clearInterval(job.timer)
    }
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all(jobs.map(([, j]) => j.done)), new Promise((r) => (timer = setTimeout(r, waitMs)))])
    clearTimeout(timer)
    await Promise.all(jobs.map(([id]) => this.#o.catalog.releaseMigration(id, this.owner).catch(() => {})))
  }

  /** Works on one migration until it ends or this runner loses it. */
  async #drive(job: Job): Promise<void> {
    const { log, catalog } = this.#o
    let failures = 0
    for (;;) {
      try {
        job.check()
        const before = job.m.state
        switch (job.m.state) {
          case 'copying':
            await this.#copy(job)
            break
          case 'switching':
            await this.#switch(job)
            break
          case 'cleaning':
            await this.#clean(job)
            break
          case 'cancelling':
            await this.#rollback(job)
            break
          default:
            return
        }
        if (job.m.state !== before) log.info(this.#logFields(job.m), `migration ${job.m.state}`)
        failures = 0
      } catch (err) {
        if (err instanceof LeaseGone) {
          log.info({ migration: job.m.id }, 'migration runner: lease lost, another runner will continue')
          return
        }
        if (err instanceof MigrationError && (err.reason === 'lease_lost' || err.reason === 'not_found')) {
          job.aborted = true
          return
        }
        this.#o.observer?.error()
        if (err instanceof MigrationError && err.reason === 'bad_transition') {
          // The record moved under us (an operator's cancel): carry on from what it says now.
          const now = await catalog.getMigration(job.m.id).catch(() => null)
          if (now === null) return
          job.m = now
          continue
        }
        const text = errorText(err)
        if (permanent(err) && job.m.state === 'copying') {
          log.warn({ ...this.#logFields(job.m), err: text }, 'migration failed; rolling back')
          try {
            job.check()
            job.m = await catalog.updateMigration(job.m.id, this.owner, { state: 'cancelling', error: text })
          } catch {
            // Retried through the loop: the record still says copying.
          }
          continue
        }
        failures++
        log.warn({ ...this.#logFields(job.m), err: text, attempt: failures }, 'migration step failed; retrying')
        // Shown while retrying; not while rolling back, where an error would turn `cancelled` into `failed`.
        if (job.m.state !== 'cancelling') await this.#patch(job, { error: text }).catch(() => {})
        await delay(Math.min(this.#o.maxBackoffMs, 100 * 2 ** Math.min(failures, 10)))
        if (job.aborted) return
      }
    }
  }

  #logFields(m: Migration): Record<string, unknown> {
    return { migration: m.id, project: m.project, queue: m.queue, from: m.from, to: m.to, state: m.state, copied: m.copied }
  }

  /** Writes `patch` under the lease (self-fenced first) and adopts the record. */
  async #patch(job: Job, patch: MigrationPatch): Promise<Migration> {
    job.check()
    job.m = await this.#o.catalog.updateMigration(job.m.id, this.owner, patch)
    return job.m
  }

  /**
   * Sets `fence` on a store, from `expect`, repeatably: finding our own fence already in that
   * state is success, and a finished migration's `moved` tombstone is replaced (compare-and-set
   * on its token) when we set a fence that is not a tombstone.
   */
  async #fence(job: Job, store: MigratingStore, ref: QueueRef, fence: QueueFence, expect: string | null): Promise<void> {
    job.check()
    try {
      await store.fenceQueue(ref, fence, expect)
    } catch (err) {
      if (!(err instanceof FenceConflict)) throw err
      const cur = err.current
      if (cur !== null && cur.token === fence.token && cur.state === fence.state) return
      if (cur !== null && cur.state === 'moved' && cur.token !== fence.token && fence.state !== 'moved') {
        // Only an ended migration leaves a tombstone here: the catalog allows one active per queue.
        job.check()
        await store.fenceQueue(ref, fence, cur.token)
        return
      }
      throw err
    }
  }

  /**
   * Clears our fence; a store that holds another (or none) is left as it is, and so is one that
   * cannot migrate at all (`bad_request`: it never held anything of ours).
   */
  async #unfence(job: Job, store: MigratingStore, ref: QueueRef): Promise<void> {
    job.check()
    try {
      await store.fenceQueue(ref, null, job.m.id)
    } catch (err) {
      if (!nothingOfOurs(err)) throw err
    }
  }

  /** Waits so that `moved` messages since `since` (performance.now()) do not outrun `rate`. */
  async #pace(job: Job, moved: number, since: number): Promise<void> {
    const rate = job.m.rate
    if (!(rate > 0)) return
    const ahead = (moved / rate) * 1000 - (performance.now() - since)
    if (ahead > 1) await delay(ahead)
    job.check()
  }

  /**
   * Applies the source's journal to the target until it is empty (or one short page): entries at
   * or before `cursor` are applied, later ones only acknowledged (the cursor copies them as they
   * are). Returns true when the journal said `reset` (the queue was purged or deleted): the
   * target was emptied and the cursor is back at 0.
   *
   * `ahead`, the batch after the cursor already read but not yet imported (read while the
   * previous one was imported): an entry naming one of its messages may be newer than that read,
   * so its record replaces the batch's (a deleted message, or a released claim, leaves the
   * batch) before the batch is imported. Acknowledging such an entry before that import is safe:
   * the persisted cursor never passes an unimported batch, so a crash in between reads the
   * batch again, as it is then.
   */
  async #drainJournal(job: Job, src: MigratingStore, dst: MigratingStore, cursor: () => number, ahead?: MigrationBatch): Promise<boolean> {
    const ref = refOf(job.m)
    const limit = this.#o.journalBatch
    const held = ahead === undefined ? undefined : new Set(ahead.records.map((r) => r.id))
    for (;;) {
      job.check()
      const page = await src.readJournal(ref, limit)
      if (page.reset) {
        job.check()
        await dst.importMessages(ref, job.m.id, { reset: true })
        // Persisted before the reset is acknowledged: a crash in between sees the reset again.
        await this.#patch(job, { cursor: 0, copied: 0, bytes: 0 })
        job.check()
        await src.ackJournal(ref, [], true)
        return true
      }
      if (page.entries.length === 0) return false
      const at = cursor()
      const upsert: MessageRecord[] = []
      const remove: string[] = []
      const fold = new Map<string, MessageRecord>()
      for (const e of page.entries) {
        if (e.record === null) remove.push(e.id)
        else if (held?.has(e.id) === true) fold.set(e.id, e.record)
        else if (e.record.seq <= at || (ahead !== undefined && e.record.seq <= ahead.next)) upsert.push(e.record)
      }
      if (ahead !== undefined && (fold.size > 0 || remove.length > 0)) {
        const gone = new Set(remove)
        ahead.records = ahead.records.filter((r) => !gone.has(r.id)).map((r) => fold.get(r.id) ?? r)
        // The page's claims after the batch's own: the newer state of a claim wins.
        ahead.claims = [...ahead.claims.filter((c) => !gone.has(c.id)), ...page.claims]
        for (const id of gone) held!.delete(id)
      }
      job.check()
      await dst.importMessages(ref, job.m.id, { upsert, claims: page.claims, remove })
      job.check()
      await src.ackJournal(
        ref,
        page.entries.map((e) => ({ id: e.id, version: e.version })),
      )
      job.m = { ...job.m, journalApplied: job.m.journalApplied + page.entries.length }
      this.#o.observer?.journal(page.entries.length)
      if (page.entries.length < limit) return false
    }
  }

  /**
   * Copies batches after the cursor, draining the journal after each, and persists progress at
   * most every 250 ms. `live` (the copy before the switch: rate-limited) stops once the tail is
   * small: a batch that reached the end, or came back short (fewer records than asked for, not
   * cut by the byte limit), so what is left is what arrived during that one batch. Otherwise (the
   * source frozen at the switch) it goes to the end.
   *
   * Pipelined: the next batch is read from the source while this one is imported into the
   * target, so both stores work at once. The cursor (in memory and persisted) only ever covers
   * imported batches; the journal drain after each import folds newer states into the batch read
   * ahead (`#drainJournal`). A read that saw an empty journal skips the drain: a change made
   * after it is still journalled for the next drain, and the switch always drains to the end.
   */
  async #copyBatches(job: Job, src: MigratingStore, dst: MigratingStore, live: boolean): Promise<void> {
    const ref = refOf(job.m)
    const limit = this.#o.batch
    let cursor = job.m.cursor
    const since = performance.now()
    let movedHere = 0
    let persisted = performance.now()
    job.check()
    let batch = await src.readForMigration(ref, cursor, limit)
    for (;;) {
      let bytes = 0
      for (const r of batch.records) bytes += Buffer.byteLength(r.body)
      // A producer as fast as the copy would keep `end` false for ever: a short batch is tail enough.
      const short = batch.records.length < limit && bytes < MIGRATION_BATCH_BYTES / 2
      const last = batch.end || (live && short)
      job.check()
      const [, ahead] = await Promise.all([
        batch.records.length > 0 ? dst.importMessages(ref, job.m.id, { upsert: batch.records, claims: batch.claims }) : undefined,
        last ? undefined : src.readForMigration(ref, batch.next, limit),
      ])
      cursor = batch.next
      movedHere += batch.records.length
      job.m = { ...job.m, cursor, copied: job.m.copied + batch.records.length, bytes: job.m.bytes + bytes }
      this.#o.observer?.moved(batch.records.length, bytes)
      const reset = (ahead ?? batch).journal !== false && (await this.#drainJournal(job, src, dst, () => cursor, ahead))
      if (reset) cursor = 0
      // The last batch is persisted too: the switch copies from the persisted cursor, and a
      // cursor left 250 ms behind would be copied again while clients wait.
      if (reset || last || performance.now() - persisted > 250) {
        const { cursor: c, copied, bytes: b, journalApplied } = job.m
        await this.#patch(job, { cursor: reset ? 0 : c, copied, bytes: b, journalApplied, error: null })
        persisted = performance.now()
        // An operator's cancel (or the queue's deletion) shows here: stop copying.
        if (job.m.state !== 'copying' && job.m.state !== 'switching') return
      }
      if (last && !reset) return
      if (live) await this.#pace(job, movedHere, since)
      if (reset || ahead === undefined) {
        job.check()
        batch = await src.readForMigration(ref, cursor, limit)
      } else batch = ahead
    }
  }

  async #copy(job: Job): Promise<void> {
    const m = job.m
    const ref = refOf(m)
    const src = this.#o.reach(m.from, ref)
    const dst = this.#o.reach(m.to, ref)
    if (m.started === null) await this.#patch(job, { started: Date.now() })
    await this.#fence(job, dst, ref, { token: m.id, to: m.to, state: 'importing' }, null)
    await this.#fence(job, src, ref, { token: m.id, to: m.to, state: 'journal' }, null)
    // A copy from the start begins on an empty target (whatever an earlier attempt left).
    if (job.m.cursor === 0) {
      job.check()
      await dst.importMessages(ref, m.id, { reset: true })
    }
    if (job.m.sourceCount === null) {
      job.check()
      await this.#patch(job, { sourceCount: await src.countForMigration(ref) })
    }
    await this.#copyBatches(job, src, dst, true)
    if (job.m.state !== 'copying') return
    // The catalog first: a cancel racing this is refused here, before the source is fenced.
    await this.#patch(job, { state: 'switching', switchedAt: Date.now(), error: null })
  }

  async #switch(job: Job): Promise<void> {
    const m = job.m
    const ref = refOf(m)
    const src = this.#o.reach(m.from, ref)
    const dst = this.#o.reach(m.to, ref)
    job.check()
    const targetFence = await dst.getFence(ref)
    // No fence on the target: an earlier run lifted it (everything was copied and checked) and
    // crashed before the catalog switched. Only the catalog step remains.
    if (targetFence !== null) {
      if (targetFence.token !== m.id || targetFence.state !== 'importing') throw new FenceConflict(ref, targetFence)
      await this.#fence(job, src, ref, { token: m.id, to: m.to, state: 'moved' }, m.id)
      let count = 0
      for (let attempt = 0; ; attempt++) {
        await this.#copyBatches(job, src, dst, false)
        // The source refuses every client now: one more drain empties the journal for good.
        while (await this.#drainJournal(job, src, dst, () => job.m.cursor)) await this.#copyBatches(job, src, dst, false)
        job.check()
        const [s, d] = await Promise.all([src.countForMigration(ref), dst.countForMigration(ref)])
        if (s === d) {
          count = s
          break
        }
        this.#o.log.warn({ ...this.#logFields(job.m), source: s, target: d, attempt }, 'migration: counts differ after the copy')
        if (attempt + 1 >= this.#o.countChecks) {
          // Never switch on a mismatch: copy again from the start (the source is frozen now).
          job.check()
          await dst.importMessages(ref, m.id, { reset: true })
          await this.#patch(job, { cursor: 0, copied: 0, bytes: 0, error: `counts differed (source ${s}, target ${d}); copying again` })
          attempt = -1
        }
      }
      // The metadata, now that the source refuses clients and it can no longer change
      // (setQueueMetadata is not journalled). Read through the migration cursor, which the fence
      // does not refuse; a crash before the import repeats it (this branch runs until the
      // target's fence is lifted).
      job.check()
      const last = await src.readForMigration(ref, job.m.cursor, 1)
      if (last.metadata !== undefined && last.metadata !== null) {
        job.check()
        await dst.importMessages(ref, m.id, { metadata: last.metadata })
      }
      await this.#patch(job, { sourceCount: count })
      await this.#unfence(job, dst, ref)
    }
    job.check()
    const pauseMs = Math.max(0, Date.now() - (m.switchedAt ?? Date.now()))
    job.m = await this.#o.catalog.finishSwitch(m.id, this.owner, { pauseMs, error: null })
    this.#o.observer?.pause((job.m.pauseMs ?? pauseMs) / 1000)
  }

  async #clean(job: Job): Promise<void> {
    const m = job.m
    const ref = refOf(m)
    const src = this.#o.reach(m.from, ref)
    job.check()
    try {
      await src.dropQueueData(ref, m.id)
    } catch (err) {
      // Another fence there means the tombstone is not ours to clean (nothing of ours is left).
      if (!(err instanceof FenceConflict)) throw err
      this.#o.log.warn({ ...this.#logFields(m), fence: err.current }, 'migration: the source holds another fence; not dropping its data')
    }
    await this.#patch(job, { state: 'done', finished: Date.now() })
    this.#o.observer?.ended('done', (job.m.finished! - (job.m.started ?? job.m.created)) / 1000)
  }

  async #rollback(job: Job): Promise<void> {
    const m = job.m
    const ref = refOf(m)
    await this.#unfence(job, this.#o.reach(m.from, ref), ref)
    job.check()
    try {
      // The target's copy goes with its `importing` fence; a fence not ours is left alone.
      await this.#o.reach(m.to, ref).dropQueueData(ref, m.id)
    } catch (err) {
      if (!nothingOfOurs(err)) throw err
    }
    const outcome = m.error === null ? 'cancelled' : 'failed'
    await this.#patch(job, { state: outcome, finished: Date.now() })
    this.#o.observer?.ended(outcome, (job.m.finished! - (job.m.started ?? job.m.created)) / 1000)
  }
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
