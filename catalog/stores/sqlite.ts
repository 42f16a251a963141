/**
 * The embedded catalog: pools, flavors and placements in one SQLite file (WAL), shared by every
 * process of a one-machine deployment.
 *
 * Schema:
 *   pools(name PK, uri, weight, flavor, options JSON)
 *   flavors(name PK) — a flavor's pools are the pools whose `flavor` column names it
 *   placements(project, queue, pool) PK (project, queue), indexed by (pool, project, queue)
 *   meta('version') — a counter bumped in the same transaction as every change, so any process
 *   reading the file sees a new `version()` after any other process changed something.
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
CREATE TABLE IF NOT EXISTS removals (
  version INTEGER PRIMARY KEY,
  project TEXT NOT NULL,
  queue   TEXT NOT NULL
);
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
  resolve(pool: string): void
  reject(err: unknown): void
}

export interface SqliteCatalogOptions {
  /** How long a write waits for another process's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number
}

/** `CatalogStore` on a SQLite file. Opening creates the file and schema if needed. */
export class SqliteCatalog implements CatalogStore {
  readonly path: string
  readonly #db: Database.Database
  readonly #stmt
  readonly #place: (batch: PendingPlace[]) => string[]
  #pending: PendingPlace[] = []
  readonly #removePlacement: (project: string, queue: string) => void
  readonly #deletePool: (name: string) => void
  readonly #putPool: (pool: Pool) => void
  readonly #putFlavor: (name: string, pools: string[]) => void
  readonly #deleteFlavor: (name: string) => void
  #closed = false

  constructor(path: string, opts: SqliteCatalogOptions = {}) {
    this.path = path
    // It holds pool URIs with their passwords.
    ownerOnlyDatabase(path)
    const db = new Database(path)
    this.#db = db
    try {
      db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`)
      db.pragma('journal_mode = WAL')
      // Placements are written once per queue and losing one on power loss would make a queue's
      // messages vanish from view: pay the fsync.
      db.pragma('synchronous = FULL')
      db.exec(SCHEMA)
    } catch (err) {
      db.close()
      throw err
    }
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
    }
    this.#stmt = stmt
    const bump = (): void => {
      stmt.bump.run('version')
    }

    this.#place = db
      .transaction((batch: PendingPlace[]): string[] =>
        // A new placement stales no cached entry (caches only hold placements that exist), so it
        // does not bump the version: proxies would otherwise drop their caches on every new queue.
        batch.map(({ ref, pool }) =>
          stmt.insertPlacement.run(ref.project, ref.queue, pool).changes > 0 ? pool : stmt.getPlacement.get(ref.project, ref.queue)!.pool,
        ),
      )
      .immediate
    this.#removePlacement = db
      .transaction((project: string, queue: string): void => {
        if (stmt.removePlacement.run(project, queue).changes === 0) return
        bump()
        // Remembered with the version it made, so proxies forget this one queue (`removalsSince`).
        const version = stmt.version.get('version')!.value
        stmt.noteRemoval.run(version, project, queue)
        stmt.trimRemovals.run(version - REMOVALS_KEPT)
      })
      .immediate
    this.#deletePool = db
      .transaction((name: string): void => {
        if (stmt.poolInUse.get(name) !== undefined) {
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
      this.#pending.push({ ref, pool, resolve, reject })
      if (this.#pending.length === 1) setImmediate(() => this.#flushPlaces())
    })
  }

  #flushPlaces(): void {
    const batch = this.#pending
    this.#pending = []
    let results: string[]
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

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#db.close()
  }
}
