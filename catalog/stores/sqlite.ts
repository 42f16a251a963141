/**
 * The embedded catalog: pools, flavors and placements in one SQLite file (WAL), shared by every
 * process of a one-machine deployment.
 *
 * Schema (subscriptions: catalog/stores/sqlite-subscriptions.ts):
 *   pools(name PK, uri, weight, flavor, options JSON)
 *   flavors(name PK) — a flavor's pools are the pools whose `flavor` column names it
 *   placements(project, queue, pool) PK (project, queue), indexed by (pool, project, queue)
 *   meta('version') — a counter bumped in the same transaction as every change, so any process
 *   reading the file sees a new `version()` after any other process changed something.
 *   meta('subscriptions') — the same for subscription creates (`subscriptionsVersion()`).
 *   removals(version PK, project, queue) — the placement removals and the versions they made,
 *   the last `REMOVALS_KEPT` of them (written in the removal's transaction).
 *
 * Placement is insert-if-absent (`INSERT … ON CONFLICT DO NOTHING`, then read back) inside one
 * IMMEDIATE transaction, so racing writers in several processes agree on one pool. Placements
 * asked for in one event-loop turn share one transaction and so one fsync (group commit): queue
 * creation is otherwise bound by the disk's fsync rate.
 */
import Database from 'better-sqlite3'
import { MissiveError } from '../../shared/errors.js'
import { ownerOnlyDatabase } from '../../shared/owner-only.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import { REMOVALS_KEPT, type CatalogStore, type Flavor, type PlacementRemoval, type Pool } from '../contract.js'
import {
  canMove,
  migrationErrors as errs,
  newMigrationId,
  PATCH_FIELDS,
  type Migration,
  type MigrationPatch,
  type MigrationState,
  type NewMigration,
} from '../migration-record.js'
import type { CreatedSubscription, NewSubscription, Subscription, SubscriptionPatch, SubscriptionUpdate } from '../subscription-record.js'
import { SqliteSubscriptions, SUBSCRIPTIONS_SCHEMA } from './sqlite-subscriptions.js'

interface MigrationRow {
  id: string
  project: string
  queue: string
  from_pool: string
  to_pool: string
  rate: number
  origin: string
  state: MigrationState
  cursor: number
  copied: number
  bytes: number
  journal_applied: number
  source_count: number | null
  error: string | null
  created: number
  started: number | null
  switched_at: number | null
  finished: number | null
  pause_ms: number | null
  lease_owner: string | null
  lease_expires: number
}

const toMigration = (r: MigrationRow): Migration => ({
  id: r.id,
  project: r.project,
  queue: r.queue,
  from: r.from_pool,
  to: r.to_pool,
  rate: r.rate,
  origin: r.origin,
  state: r.state,
  cursor: r.cursor,
  copied: r.copied,
  bytes: r.bytes,
  journalApplied: r.journal_applied,
  sourceCount: r.source_count,
  error: r.error,
  created: r.created,
  started: r.started,
  switchedAt: r.switched_at,
  finished: r.finished,
  pauseMs: r.pause_ms,
  leaseOwner: r.lease_owner,
  leaseExpires: r.lease_expires,
})

/** Patch field → column. */
const COLUMN: Record<(typeof PATCH_FIELDS)[number], string> = {
  state: 'state',
  cursor: 'cursor',
  copied: 'copied',
  bytes: 'bytes',
  journalApplied: 'journal_applied',
  sourceCount: 'source_count',
  error: 'error',
  started: 'started',
  switchedAt: 'switched_at',
  finished: 'finished',
  pauseMs: 'pause_ms',
}

const ACTIVE_SQL = "('copying', 'switching', 'cleaning', 'cancelling')"
const FINAL = (s: MigrationState): boolean => s === 'done' || s === 'cancelled' || s === 'failed'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS pools (
  name    TEXT PRIMARY KEY,
  uri     TEXT NOT NULL,
  weight  REAL NOT NULL,
  flavor  TEXT,
  options TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS placements (
  project TEXT NOT NULL,
  queue   TEXT NOT NULL,
  pool    TEXT NOT NULL,
  PRIMARY KEY (project, queue)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS placements_by_pool_ref ON placements (pool, project, queue);
CREATE TABLE IF NOT EXISTS flavors (
  name TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('version', 0) ON CONFLICT (key) DO NOTHING;
INSERT INTO meta (key, value) VALUES ('subscriptions', 0) ON CONFLICT (key) DO NOTHING;
CREATE TABLE IF NOT EXISTS removals (
  version INTEGER PRIMARY KEY,
  project TEXT NOT NULL,
  queue   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS migrations (
  id              TEXT PRIMARY KEY,
  project         TEXT NOT NULL,
  queue           TEXT NOT NULL,
  from_pool       TEXT NOT NULL,
  to_pool         TEXT NOT NULL,
  rate            REAL NOT NULL,
  origin          TEXT NOT NULL,
  state           TEXT NOT NULL,
  cursor          INTEGER NOT NULL DEFAULT 0,
  copied          INTEGER NOT NULL DEFAULT 0,
  bytes           INTEGER NOT NULL DEFAULT 0,
  journal_applied INTEGER NOT NULL DEFAULT 0,
  source_count    INTEGER,
  error           TEXT,
  created         INTEGER NOT NULL,
  started         INTEGER,
  switched_at     INTEGER,
  finished        INTEGER,
  pause_ms        REAL,
  lease_owner     TEXT,
  lease_expires   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS migrations_active_ref ON migrations (project, queue)
  WHERE state IN ('copying', 'switching', 'cleaning', 'cancelling');
CREATE INDEX IF NOT EXISTS migrations_by_state ON migrations (state, id);
CREATE INDEX IF NOT EXISTS migrations_by_ref ON migrations (project, queue, id);
`

interface PoolRow {
  name: string
  uri: string
  weight: number
  flavor: string | null
  options: string
}

const toPool = (row: PoolRow): Pool => ({
  name: row.name,
  uri: row.uri,
  weight: row.weight,
  flavor: row.flavor,
  options: JSON.parse(row.options) as Record<string, unknown>,
})

interface PendingPlace {
  ref: QueueRef
  pool: string
  /** `placeWithin`'s quota of queues per project (absent: `place`). */
  max?: number
  resolve(pool: string | null): void
  reject(err: unknown): void
}

export interface SqliteCatalogOptions {
  /** How long a write waits for another process's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number
}

/** `CatalogStore` on a SQLite file. Opening creates the file and schema if needed. */
/**
 * Opens the catalog's SQLite file, as every table kept there (placements, pools, API keys, limit
 * overrides) needs it: the owner's only (it holds pool URIs with their passwords), WAL, waiting
 * `busyTimeoutMs` for another process's write, and an fsync per commit (a placement, key or
 * override lost on power loss would make a queue's messages vanish from view, or a revoked key
 * work again).
 */
export function openCatalogDatabase(path: string, busyTimeoutMs = 5000): Database.Database {
  ownerOnlyDatabase(path)
  const db = new Database(path)
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
  } catch (err) {
    db.close()
    throw err
  }
  return db
}

export class SqliteCatalog implements CatalogStore {
  readonly path: string
  readonly #db: Database.Database
  readonly #stmt
  readonly #place: (batch: PendingPlace[]) => (string | null)[]
  #pending: PendingPlace[] = []
  readonly #removePlacement: (project: string, queue: string) => void
  readonly #deletePool: (name: string) => void
  readonly #putPool: (pool: Pool) => void
  readonly #putFlavor: (name: string, pools: string[]) => void
  readonly #deleteFlavor: (name: string) => void
  readonly #createMigration: (m: NewMigration, maxActiveFrom: number | undefined) => Migration
  readonly #acquireMigration: (owner: string, ttlMs: number, skip: readonly string[]) => Migration | null
  readonly #renewMigration: (id: string, owner: string, ttlMs: number) => void
  readonly #updateMigration: (id: string, owner: string, patch: MigrationPatch) => Migration
  readonly #finishSwitch: (id: string, owner: string, patch: MigrationPatch) => Migration
  readonly #cancelMigration: (id: string) => Migration
  readonly #subs: SqliteSubscriptions
  #closed = false

  constructor(path: string, opts: SqliteCatalogOptions = {}) {
    this.path = path
    const db = openCatalogDatabase(path, opts.busyTimeoutMs)
    this.#db = db
    try {
      db.exec(SCHEMA)
      db.exec(SUBSCRIPTIONS_SCHEMA)
    } catch (err) {
      db.close()
      throw err
    }
    this.#subs = new SqliteSubscriptions(db)
    const stmt = {
      getPlacement: db.prepare<[string, string], { pool: string }>('SELECT pool FROM placements WHERE project = ? AND queue = ?'),
      insertPlacement: db.prepare<[string, string, string]>(
        'INSERT INTO placements (project, queue, pool) VALUES (?, ?, ?) ON CONFLICT (project, queue) DO NOTHING',
      ),
      removePlacement: db.prepare<[string, string]>('DELETE FROM placements WHERE project = ? AND queue = ?'),
      putPool: db.prepare<[string, string, number, string | null, string]>(
        `INSERT INTO pools (name, uri, weight, flavor, options) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET uri = excluded.uri, weight = excluded.weight,
           flavor = excluded.flavor, options = excluded.options`,
      ),
      getPool: db.prepare<[string], PoolRow>('SELECT name, uri, weight, flavor, options FROM pools WHERE name = ?'),
      listPools: db.prepare<[], PoolRow>('SELECT name, uri, weight, flavor, options FROM pools ORDER BY name'),
      poolInUse: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM placements WHERE pool = ? LIMIT 1'),
      deletePool: db.prepare<[string]>('DELETE FROM pools WHERE name = ?'),
      countPlacements: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM placements WHERE pool = ?'),
      // A project's queues, counted up to a quota and no further (the primary key's index).
      countProject: db.prepare<[string, number], { n: number }>('SELECT COUNT(*) AS n FROM (SELECT 1 FROM placements WHERE project = ? LIMIT ?)'),
      listPlacements: db.prepare<[string, number], { project: string; queue: string }>(
        'SELECT project, queue FROM placements WHERE pool = ? ORDER BY project, queue LIMIT ?',
      ),
      listPlacementsAfter: db.prepare<[string, string, string, string, number], { project: string; queue: string }>(
        `SELECT project, queue FROM placements WHERE pool = ? AND (project > ? OR (project = ? AND queue > ?))
         ORDER BY project, queue LIMIT ?`,
      ),
      insertFlavor: db.prepare<[string]>('INSERT INTO flavors (name) VALUES (?) ON CONFLICT (name) DO NOTHING'),
      hasFlavor: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM flavors WHERE name = ?'),
      listFlavors: db.prepare<[], { name: string }>('SELECT name FROM flavors ORDER BY name'),
      deleteFlavor: db.prepare<[string]>('DELETE FROM flavors WHERE name = ?'),
      poolsOfFlavor: db.prepare<[string], { name: string }>('SELECT name FROM pools WHERE flavor = ? ORDER BY name'),
      setPoolFlavor: db.prepare<[string | null, string]>('UPDATE pools SET flavor = ? WHERE name = ?'),
      clearFlavor: db.prepare<[string]>('UPDATE pools SET flavor = NULL WHERE flavor = ?'),
      bump: db.prepare('UPDATE meta SET value = value + 1 WHERE key = ?'),
      version: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE key = ?'),
      noteRemoval: db.prepare<[number, string, string]>('INSERT OR REPLACE INTO removals (version, project, queue) VALUES (?, ?, ?)'),
      trimRemovals: db.prepare<[number]>('DELETE FROM removals WHERE version <= ?'),
      removalsSince: db.prepare<[number], { version: number; project: string; queue: string }>(
        'SELECT version, project, queue FROM removals WHERE version > ? ORDER BY version',
      ),
      getMigration: db.prepare<[string], MigrationRow>('SELECT * FROM migrations WHERE id = ?'),
      activeMigration: db.prepare<[string, string], MigrationRow>(`SELECT * FROM migrations WHERE project = ? AND queue = ? AND state IN ${ACTIVE_SQL}`),
      lastMigration: db.prepare<[string, string], MigrationRow>('SELECT * FROM migrations WHERE project = ? AND queue = ? ORDER BY id DESC LIMIT 1'),
      activeFrom: db.prepare<[string], { n: number }>(`SELECT COUNT(*) AS n FROM migrations WHERE from_pool = ? AND state IN ${ACTIVE_SQL}`),
      activeTo: db.prepare<[string], { one: number }>(`SELECT 1 AS one FROM migrations WHERE to_pool = ? AND state IN ${ACTIVE_SQL} LIMIT 1`),
      insertMigration: db.prepare<[string, string, string, string, string, number, string, number]>(
        `INSERT INTO migrations (id, project, queue, from_pool, to_pool, rate, origin, state, created)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'copying', ?)`,
      ),
      listMigrations: db.prepare<[string, number], MigrationRow>('SELECT * FROM migrations WHERE id > ? ORDER BY id LIMIT ?'),
      listMigrationsIn: db.prepare<[string, string, number], MigrationRow>('SELECT * FROM migrations WHERE state = ? AND id > ? ORDER BY id LIMIT ?'),
      leasable: db.prepare<[string, number], MigrationRow>(
        `SELECT * FROM migrations WHERE state IN ${ACTIVE_SQL} AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires <= ?) ORDER BY id`,
      ),
      setLease: db.prepare<[string | null, number, string]>('UPDATE migrations SET lease_owner = ?, lease_expires = ? WHERE id = ?'),
      cancelCopying: db.prepare<[string, string]>("UPDATE migrations SET state = 'cancelling', error = NULL WHERE project = ? AND queue = ? AND state = 'copying'"),
      movePlacement: db.prepare<[string, string, string, string]>('UPDATE placements SET pool = ? WHERE project = ? AND queue = ? AND pool = ?'),
    }
    this.#stmt = stmt
    const bump = (): void => {
      stmt.bump.run('version')
    }

    this.#place = db
      .transaction((batch: PendingPlace[]): (string | null)[] =>
        // A new placement stales no cached entry (caches only hold placements that exist), so it
        // does not bump the version: proxies would otherwise drop their caches on every new queue.
        batch.map(({ ref, pool, max }) => {
          if (max !== undefined) {
            const placed = stmt.getPlacement.get(ref.project, ref.queue)
            if (placed !== undefined) return placed.pool
            // Counted inside the IMMEDIATE transaction: no other writer places in between.
            if (stmt.countProject.get(ref.project, max)!.n >= max) return null
          }
          return stmt.insertPlacement.run(ref.project, ref.queue, pool).changes > 0 ? pool : stmt.getPlacement.get(ref.project, ref.queue)!.pool
        }),
      )
      .immediate
    this.#removePlacement = db
      .transaction((project: string, queue: string): void => {
        if (stmt.removePlacement.run(project, queue).changes === 0) return
        // The queue is gone: a copy in progress rolls back (its runner sees `cancelling`).
        stmt.cancelCopying.run(project, queue)
        bump()
        // Remembered with the version it made, so proxies forget this one queue (`removalsSince`).
        const version = stmt.version.get('version')!.value
        stmt.noteRemoval.run(version, project, queue)
        stmt.trimRemovals.run(version - REMOVALS_KEPT)
      })
      .immediate
    this.#deletePool = db
      .transaction((name: string): void => {
        if (stmt.poolInUse.get(name) !== undefined || stmt.activeTo.get(name) !== undefined) {
          throw new MissiveError('conflict', `Pool ${name} still holds queues; move or delete them first.`)
        }
        if (stmt.deletePool.run(name).changes > 0) bump()
      })
      .immediate
    this.#putPool = db
      .transaction((pool: Pool): void => {
        stmt.putPool.run(pool.name, pool.uri, pool.weight, pool.flavor, JSON.stringify(pool.options ?? {}))
        bump()
      })
      .immediate
    this.#putFlavor = db
      .transaction((name: string, pools: string[]): void => {
        for (const p of pools) {
          if (stmt.getPool.get(p) === undefined) throw new MissiveError('not_found', `Pool ${p} does not exist`)
        }
        stmt.insertFlavor.run(name)
        stmt.clearFlavor.run(name)
        for (const p of pools) stmt.setPoolFlavor.run(name, p)
        bump()
      })
      .immediate
    this.#deleteFlavor = db
      .transaction((name: string): void => {
        const had = stmt.deleteFlavor.run(name).changes > 0
        if (stmt.clearFlavor.run(name).changes > 0 || had) bump()
      })
      .immediate

    const held = (id: string, owner: string): MigrationRow => {
      const row = stmt.getMigration.get(id)
      if (row === undefined) throw errs.notFound(id)
      if (row.lease_owner !== owner) throw errs.leaseLost(id)
      return row
    }
    const applyPatch = (id: string, patch: MigrationPatch, endLease: boolean): void => {
      const sets: string[] = []
      const values: (string | number | null)[] = []
      for (const f of PATCH_FIELDS) {
        const v = patch[f]
        if (v === undefined) continue
        sets.push(`${COLUMN[f]} = ?`)
        values.push(v)
      }
      if (endLease) sets.push('lease_owner = NULL, lease_expires = 0')
      if (sets.length === 0) return
      // The column list comes from PATCH_FIELDS only: no caller text reaches the SQL.
      db.prepare(`UPDATE migrations SET ${sets.join(', ')} WHERE id = ?`).run(...values, id)
    }
    this.#createMigration = db
      .transaction((m: NewMigration, maxActiveFrom: number | undefined): Migration => {
        if (m.from === m.to) throw errs.samePool(m)
        for (const p of [m.from, m.to]) if (stmt.getPool.get(p) === undefined) throw errs.unknownPool(p)
        const placed = stmt.getPlacement.get(m.project, m.queue)?.pool ?? null
        if (placed !== m.from) throw errs.notPlaced(m, placed)
        const active = stmt.activeMigration.get(m.project, m.queue)
        if (active !== undefined) throw errs.active(m, active.id)
        if (maxActiveFrom !== undefined && stmt.activeFrom.get(m.from)!.n >= maxActiveFrom) throw errs.busy(m.from, maxActiveFrom)
        const now = Date.now()
        const id = newMigrationId(now)
        stmt.insertMigration.run(id, m.project, m.queue, m.from, m.to, m.rate, m.origin, now)
        return toMigration(stmt.getMigration.get(id)!)
      })
      .immediate
    this.#acquireMigration = db
      .transaction((owner: string, ttlMs: number, skip: readonly string[]): Migration | null => {
        const now = Date.now()
        const row = stmt.leasable.all(owner, now).find((r) => !skip.includes(r.id))
        if (row === undefined) return null
        stmt.setLease.run(owner, now + ttlMs, row.id)
        return toMigration(stmt.getMigration.get(row.id)!)
      })
      .immediate
    this.#renewMigration = db
      .transaction((id: string, owner: string, ttlMs: number): void => {
        const row = held(id, owner)
        if (FINAL(row.state)) throw errs.leaseLost(id)
        stmt.setLease.run(owner, Date.now() + ttlMs, id)
      })
      .immediate
    this.#updateMigration = db
      .transaction((id: string, owner: string, patch: MigrationPatch): Migration => {
        const row = held(id, owner)
        const to = patch.state ?? row.state
        if (!canMove(row.state, to)) throw errs.badTransition(id, row.state, to)
        applyPatch(id, patch, FINAL(to))
        return toMigration(stmt.getMigration.get(id)!)
      })
      .immediate
    this.#finishSwitch = db
      .transaction((id: string, owner: string, patch: MigrationPatch): Migration => {
        const row = held(id, owner)
        if (row.state === 'cleaning') return toMigration(row)
        if (row.state !== 'switching') throw errs.badTransition(id, row.state, 'cleaning')
        if (stmt.movePlacement.run(row.to_pool, row.project, row.queue, row.from_pool).changes === 0) {
          throw errs.notPlaced({ ...toMigration(row) }, stmt.getPlacement.get(row.project, row.queue)?.pool ?? null)
        }
        bump()
        // A removal entry: every proxy forgets just this queue's cached placement.
        const version = stmt.version.get('version')!.value
        stmt.noteRemoval.run(version, row.project, row.queue)
        stmt.trimRemovals.run(version - REMOVALS_KEPT)
        applyPatch(id, { ...patch, state: 'cleaning' }, false)
        return toMigration(stmt.getMigration.get(id)!)
      })
      .immediate
    this.#cancelMigration = db
      .transaction((id: string): Migration => {
        const row = stmt.getMigration.get(id)
        if (row === undefined) throw errs.notFound(id)
        if (row.state === 'copying') {
          applyPatch(id, { state: 'cancelling', error: null }, false)
          return toMigration(stmt.getMigration.get(id)!)
        }
        if (row.state === 'cancelling' || row.state === 'cancelled') return toMigration(row)
        throw errs.tooLate(id, row.state)
      })
      .immediate
  }

  #open(): void {
    if (this.#closed) throw new MissiveError('unavailable', 'The catalog is closed.', { retryAfter: 1 })
  }

  /** Runs `fn`, turning lock contention that outlasted busy_timeout into a retryable 503. */
  #run<T>(fn: () => T): T {
    this.#open()
    try {
      return fn()
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
        throw new MissiveError('unavailable', 'The catalog is busy. Please try again in a few seconds.', { retryAfter: 1, cause: err })
      }
      throw err
    }
  }

  async getPlacement(ref: QueueRef): Promise<string | null> {
    return this.#run(() => this.#stmt.getPlacement.get(ref.project, ref.queue)?.pool ?? null)
  }

  place(ref: QueueRef, pool: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.#open()
      this.#pending.push({ ref, pool, resolve: (p) => resolve(p!), reject })
      if (this.#pending.length === 1) setImmediate(() => this.#flushPlaces())
    })
  }

  placeWithin(ref: QueueRef, pool: string, maxQueues: number): Promise<string | null> {
    return new Promise<string | null>((resolve, reject) => {
      this.#open()
      this.#pending.push({ ref, pool, max: maxQueues, resolve, reject })
      if (this.#pending.length === 1) setImmediate(() => this.#flushPlaces())
    })
  }

  #flushPlaces(): void {
    const batch = this.#pending
    this.#pending = []
    let results: (string | null)[]
    try {
      results = this.#run(() => this.#place(batch))
    } catch (err) {
      for (const p of batch) p.reject(err)
      return
    }
    batch.forEach((p, i) => p.resolve(results[i]!))
  }

  async removePlacement(ref: QueueRef): Promise<void> {
    this.#run(() => this.#removePlacement(ref.project, ref.queue))
  }

  async countPlacements(pool: string): Promise<number> {
    return this.#run(() => this.#stmt.countPlacements.get(pool)!.n)
  }

  async listPlacements(pool: string, opts: { limit: number; after?: QueueRef }): Promise<QueueRef[]> {
    const { limit, after } = opts
    return this.#run(() =>
      after === undefined
        ? this.#stmt.listPlacements.all(pool, limit)
        : this.#stmt.listPlacementsAfter.all(pool, after.project, after.project, after.queue, limit),
    ).map((r) => ({ project: r.project, queue: r.queue }))
  }

  async putFlavor(name: string, pools: string[]): Promise<void> {
    this.#run(() => this.#putFlavor(name, pools))
  }

  async getFlavor(name: string): Promise<Flavor | null> {
    return this.#run(() =>
      this.#stmt.hasFlavor.get(name) === undefined ? null : { name, pools: this.#stmt.poolsOfFlavor.all(name).map((r) => r.name) },
    )
  }

  async listFlavors(): Promise<Flavor[]> {
    return this.#run(() =>
      this.#db.transaction(() =>
        this.#stmt.listFlavors.all().map(({ name }) => ({ name, pools: this.#stmt.poolsOfFlavor.all(name).map((r) => r.name) })),
      )(),
    )
  }

  async deleteFlavor(name: string): Promise<void> {
    this.#run(() => this.#deleteFlavor(name))
  }

  async putPool(pool: Pool): Promise<void> {
    this.#run(() => this.#putPool(pool))
  }

  async getPool(name: string): Promise<Pool | null> {
    const row = this.#run(() => this.#stmt.getPool.get(name))
    return row === undefined ? null : toPool(row)
  }

  async listPools(): Promise<Pool[]> {
    return this.#run(() => this.#stmt.listPools.all()).map(toPool)
  }

  async deletePool(name: string): Promise<void> {
    this.#run(() => this.#deletePool(name))
  }

  async version(): Promise<number> {
    return this.#run(() => this.#stmt.version.get('version')!.value)
  }

  async removalsSince(after: number): Promise<PlacementRemoval[]> {
    return this.#run(() => this.#stmt.removalsSince.all(after)).map((r) => ({ version: r.version, ref: { project: r.project, queue: r.queue } }))
  }

  async createMigration(m: NewMigration, opts: { maxActiveFrom?: number } = {}): Promise<Migration> {
    return this.#run(() => this.#createMigration(m, opts.maxActiveFrom))
  }

  async getMigration(id: string): Promise<Migration | null> {
    const row = this.#run(() => this.#stmt.getMigration.get(id))
    return row === undefined ? null : toMigration(row)
  }

  async listMigrations(opts: { limit: number; after?: string; state?: MigrationState }): Promise<Migration[]> {
    const after = opts.after ?? ''
    return this.#run(() =>
      opts.state === undefined ? this.#stmt.listMigrations.all(after, opts.limit) : this.#stmt.listMigrationsIn.all(opts.state, after, opts.limit),
    ).map(toMigration)
  }

  async activeMigration(ref: QueueRef): Promise<Migration | null> {
    const row = this.#run(() => this.#stmt.activeMigration.get(ref.project, ref.queue))
    return row === undefined ? null : toMigration(row)
  }

  async lastMigration(ref: QueueRef): Promise<Migration | null> {
    const row = this.#run(() => this.#stmt.lastMigration.get(ref.project, ref.queue))
    return row === undefined ? null : toMigration(row)
  }

  async countActiveFrom(pool: string): Promise<number> {
    return this.#run(() => this.#stmt.activeFrom.get(pool)!.n)
  }

  async acquireMigration(owner: string, ttlMs: number, skip: readonly string[] = []): Promise<Migration | null> {
    return this.#run(() => {
      // Every proxy asks every second: a plain read first, so an idle catalog takes no write lock.
      if (!this.#stmt.leasable.all(owner, Date.now()).some((r) => !skip.includes(r.id))) return null
      return this.#acquireMigration(owner, ttlMs, skip)
    })
  }

  async renewMigration(id: string, owner: string, ttlMs: number): Promise<void> {
    this.#run(() => this.#renewMigration(id, owner, ttlMs))
  }

  async releaseMigration(id: string, owner: string): Promise<void> {
    this.#run(() => {
      const row = this.#stmt.getMigration.get(id)
      if (row !== undefined && row.lease_owner === owner) this.#stmt.setLease.run(null, 0, id)
    })
  }

  async updateMigration(id: string, owner: string, patch: MigrationPatch): Promise<Migration> {
    return this.#run(() => this.#updateMigration(id, owner, patch))
  }

  async finishSwitch(id: string, owner: string, patch: MigrationPatch = {}): Promise<Migration> {
    return this.#run(() => this.#finishSwitch(id, owner, patch))
  }

  async cancelMigration(id: string): Promise<Migration> {
    return this.#run(() => this.#cancelMigration(id))
  }

  async createSubscription(s: NewSubscription, now: number): Promise<CreatedSubscription> {
    return this.#run(() => this.#subs.create(s, now))
  }

  async subscriptionsVersion(): Promise<number> {
    return this.#run(() => this.#stmt.version.get('subscriptions')!.value)
  }

  async getSubscription(ref: QueueRef, id: string, now: number): Promise<Subscription | null> {
    return this.#run(() => this.#subs.get(ref, id, now))
  }

  async listSubscriptions(ref: QueueRef, opts: { limit: number; after?: string | undefined; now: number }): Promise<Subscription[]> {
    return this.#run(() => this.#subs.list(ref, opts))
  }

  async updateSubscription(ref: QueueRef, id: string, patch: SubscriptionPatch, now: number): Promise<SubscriptionUpdate> {
    return this.#run(() => this.#subs.update(ref, id, patch, now))
  }

  async confirmSubscription(ref: QueueRef, id: string, confirmed: boolean, now: number): Promise<boolean> {
    return this.#run(() => this.#subs.confirm(ref, id, confirmed, now))
  }

  async deleteSubscription(ref: QueueRef, id: string): Promise<void> {
    this.#run(() => this.#subs.delete(ref, id))
  }

  async setSubscriptionCursor(ref: QueueRef, id: string, cursor: string): Promise<void> {
    this.#run(() => this.#subs.setCursor(ref, id, cursor))
  }

  async listSubscribedQueues(opts: { limit: number; after?: QueueRef | undefined }): Promise<QueueRef[]> {
    return this.#run(() => this.#subs.queues(opts))
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#db.close()
  }
}
