/**
 * What the admin API and the pooled driver ask of live migrations (docs/migration.md): start one
 * (checked: the queue exists, the target is another pool this proxy can reach), move a queue to a
 * pool of another flavor (a PATCH of `_flavor`), keep pool drains topped up, plan a rebalance.
 * The work itself is the runner's (proxy/migration-runner.ts); everything here is a catalog
 * write that any runner, in any proxy, then picks up.
 *
 * Drains are kept in the catalog, on the pool record (`options.drain`), so they outlive any proxy:
 * every proxy's `drainTick` tops each draining pool up to its `max_concurrent` active migrations,
 * and the catalog's `maxActiveFrom` guard keeps that limit exact however many proxies race.
 */
import type { CatalogStore, Pool } from '../catalog/contract.js'
import { isActive, isMigrationId, MigrationError, type Migration } from '../catalog/migration-record.js'
import { choosePool, type Random } from '../catalog/placement.js'
import type { MigrationSchema } from '../shared/config.js'
import { MissiveError, notFound, unavailable } from '../shared/errors.js'
import type { Logger } from '../shared/log.js'
import type { DataDriver, QueueRef } from '../shared/storage/contract.js'
import type { z } from 'zod'
import type { Reach } from './migration-runner.js'
import type { MigrationLookup } from './pooled-driver.js'
import { routingKey } from './placement-cache.js'
import { workerFor } from './worker-choice.js'
import { Rerunning } from '../shared/rerunning.js'

export type MigrationConfig = z.infer<typeof MigrationSchema>

/** How long `reachable` waits for a pool's workers to answer a ping. */
export const REACHABLE_TIMEOUT_MS = 3000

/** A pool drain as stored on the pool (`options.drain`). */
export interface DrainSpec {
  max_concurrent: number
  /** Messages per second per migration. */
  rate: number
  /** When the drain was asked for, ms. */
  started: number
}

/** The drain a pool record carries, or null. */
export function drainOf(pool: Pool): DrainSpec | null {
  const d = pool.options?.drain
  if (typeof d !== 'object' || d === null) return null
  const { max_concurrent, rate, started } = d as Record<string, unknown>
  if (typeof max_concurrent !== 'number' || typeof rate !== 'number' || typeof started !== 'number') return null
  return { max_concurrent, rate, started }
}

/** The pools a queue leaving `pool` may go to: its flavor group, weight above 0, not itself. */
export const drainTargets = (pools: readonly Pool[], pool: Pool): Pool[] => pools.filter((p) => p.name !== pool.name && p.flavor === pool.flavor && p.weight > 0)

/** One pool's part in a rebalance plan. */
export interface PoolShare {
  name: string
  flavor: string | null
  weight: number
  queues: number
  /** Its share of its flavor group's queues now, and the share its weight asks for. */
  share: number
  target: number
}

/** The control plane's view of migrations: what `ControlPlane.migrations` holds. */
export interface MigrationControl {
  readonly config: MigrationConfig
  /**
   * Starts moving `ref` to pool `to` (origin: who asks). Throws 404 for a queue that does not
   * exist, `MigrationError`s for the catalog's refusals, 409 when a pool is unreachable.
   */
  start(ref: QueueRef, to: string, opts: { rate?: number; origin: string }): Promise<Migration>
  /**
   * A PATCH of `_flavor` to a flavor the queue's pool is not in: starts moving the queue to a
   * pool of that flavor, chosen by weight. The pooled driver calls it instead of refusing, once
   * the new metadata is stored on the source (the runner copies the metadata just before the
   * switch; a write landing after that copy would not follow the queue). Throws `bad_request`
   * for an unknown flavor, `unavailable` when no pool of it takes queues, and what `start` throws.
   */
  moveToFlavor(ref: QueueRef, flavor: string): Promise<Migration>
  /** Tops every draining pool up to its concurrency (each proxy calls it every `pollMs`). */
  drainTick(): Promise<void>
  /**
   * A migration this proxy's runner drove has ended: when a drain started it, the drain's next
   * migration starts now rather than at the next `pollMs` tick (the runner calls it).
   */
  migrationEnded(m: Migration): void
  /** The shares of every flavor group's pools, and migrations started to even them out. */
  rebalance(opts: { tolerance: number; maxConcurrent: number; rate: number }): Promise<{ pools: PoolShare[]; started: Migration[]; balanced: boolean }>
  /** True when a worker of `pool` answers a ping from this proxy. */
  reachable(pool: string): Promise<boolean>
  /** Asks this proxy's runner to look for work now. */
  kick(): void
}

export interface MigrationServiceOptions {
  catalog: CatalogStore
  /** The pools as this proxy follows them. */
  pools: {
    current(): Promise<{ pools: Pool[] }>
    refresh(): Promise<unknown>
    workersOf(pool: string): DataDriver[]
    choose(flavor: string | null): Promise<string>
    readonly defaultPool: string
  }
  /** Reads a queue wherever it lives (the pooled driver). */
  getQueue(ref: QueueRef): Promise<unknown>
  config: MigrationConfig
  log: Logger
  kick?: () => void
  random?: Random
}

export class MigrationService implements MigrationControl {
  readonly config: MigrationConfig
  readonly #o: MigrationServiceOptions
  readonly #drainRounds = new Rerunning(() => this.#drainTick())

  constructor(opts: MigrationServiceOptions) {
    this.#o = opts
    this.config = opts.config
  }

  kick(): void {
    this.#o.kick?.()
  }

  async reachable(pool: string): Promise<boolean> {
    // A pool added through another proxy a moment ago: load it here before judging it.
    if (!(await this.#o.pools.current()).pools.some((p) => p.name === pool)) await this.#o.pools.refresh().catch(() => {})
    let workers: DataDriver[]
    try {
      workers = this.#o.pools.workersOf(pool)
    } catch {
      return false
    }
    let timer: NodeJS.Timeout | undefined
    // A worker that accepts and never answers would hold the admin request for the RPC timeout.
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer')), REACHABLE_TIMEOUT_MS)
    })
    try {
      await Promise.race([Promise.any(workers.map((w) => w.ping())), late])
      return true
    } catch {
      return false
    } finally {
      clearTimeout(timer)
    }
  }

  async start(ref: QueueRef, to: string, opts: { rate?: number; origin: string }): Promise<Migration> {
    const { catalog, pools } = this.#o
    if ((await catalog.getPool(to)) === null) throw new MigrationError('unknown_pool', `Pool ${to} does not exist`)
    let from = await catalog.getPlacement(ref)
    if (from === null) {
      // A queue with no placement lives on the default pool, if it exists at all.
      if ((await this.#o.getQueue(ref)) === null) throw notFound(`Queue ${ref.queue} does not exist in project ${ref.project}.`)
      from = await catalog.place(ref, pools.defaultPool)
    }
    if (from === to) throw new MigrationError('same_pool', `Queue ${ref.queue} is already on pool ${to}.`)
    for (const pool of [to, from]) {
      if (!(await this.reachable(pool))) {
        throw new MissiveError('conflict', `Pool ${pool} is not reachable from this proxy; nothing was started.`, { title: 'Unable to migrate' })
      }
    }
    const m = await catalog.createMigration({ ...ref, from, to, rate: opts.rate ?? this.config.rate, origin: opts.origin })
    this.#o.log.info({ migration: m.id, project: m.project, queue: m.queue, from, to, origin: m.origin }, 'migration created')
    this.kick()
    return m
  }

  async moveToFlavor(ref: QueueRef, flavor: string): Promise<Migration> {
    const to = await this.#o.pools.choose(flavor)
    return this.start(ref, to, { origin: 'flavor' })
  }

  /**
   * One top-up at a time per proxy; a call during one runs one more after it, as the running one
   * may have counted a slot's migration as active just before it ended.
   */
  drainTick(): Promise<void> {
    return this.#drainRounds.run()
  }

  migrationEnded(m: Migration): void {
    if (!m.origin.startsWith('drain:')) return
    this.drainTick().catch((err: unknown) => this.#o.log.warn({ pool: m.from, err: (err as Error).message }, 'drain top-up failed'))
  }

  async #drainTick(): Promise<void> {
    const { catalog, log } = this.#o
    const { pools } = await this.#o.pools.current()
    for (const pool of pools) {
      const drain = drainOf(pool)
      if (drain === null) continue
      const targets = drainTargets(pools, pool)
      let active = await catalog.countActiveFrom(pool.name)
      let after: QueueRef | undefined
      // Bounded: at most 1,000 placements looked at per pool per tick.
      for (let scanned = 0; active < drain.max_concurrent && scanned < 1000; ) {
        const refs = await catalog.listPlacements(pool.name, { limit: 100, ...(after && { after }) })
        if (refs.length === 0) break
        for (const ref of refs) {
          after = ref
          scanned++
          // A read first: a queue already moving is skipped without a write, and one whose move
          // failed during this drain is not retried every tick (the operator sees it failed).
          const last = await catalog.lastMigration(ref)
          if (last !== null && (isActive(last.state) || (last.state === 'failed' && last.origin === `drain:${pool.name}` && last.created >= drain.started))) continue
          const to = choosePool(targets, pool.flavor, this.#o.random)
          if (to === null) {
            log.warn({ pool: pool.name }, 'drain: no other pool of its flavor can take queues; waiting')
            return
          }
          try {
            const m = await catalog.createMigration(
              { ...ref, from: pool.name, to, rate: drain.rate, origin: `drain:${pool.name}` },
              { maxActiveFrom: drain.max_concurrent },
            )
            log.info({ migration: m.id, project: m.project, queue: m.queue, from: m.from, to }, 'drain: migration created')
            active++
          } catch (err) {
            if (!(err instanceof MigrationError)) throw err
            // `active`: that queue is moving already; `busy`: another proxy filled the slots.
            if (err.reason === 'busy') active = drain.max_concurrent
          }
          if (active >= drain.max_concurrent) break
        }
      }
    }
    this.kick()
  }

  async rebalance(opts: { tolerance: number; maxConcurrent: number; rate: number }): Promise<{ pools: PoolShare[]; started: Migration[]; balanced: boolean }> {
    const { catalog } = this.#o
    const { pools } = await this.#o.pools.current()
    const shares: PoolShare[] = []
    const started: Migration[] = []
    let balanced = true
    const groups = new Map<string | null, Pool[]>()
    for (const p of pools) (groups.get(p.flavor) ?? groups.set(p.flavor, []).get(p.flavor)!).push(p)
    for (const [flavor, group] of groups) {
      const counts = await Promise.all(group.map((p) => catalog.countPlacements(p.name)))
      const total = counts.reduce((a, b) => a + b, 0)
      const weights = group.reduce((a, p) => a + Math.max(0, p.weight), 0)
      const rows = group.map((p, i) => ({
        pool: p,
        name: p.name,
        flavor,
        weight: p.weight,
        queues: counts[i]!,
        share: total === 0 ? 0 : counts[i]! / total,
        target: weights === 0 ? 0 : Math.max(0, p.weight) / weights,
      }))
      for (const { pool: _pool, ...row } of rows) shares.push(row)
      if (total === 0 || weights === 0) continue
      // Queues each pool holds beyond (over) or short of (under) its weight's share.
      const over = rows.filter((r) => r.share > r.target + opts.tolerance).map((r) => ({ r, excess: Math.floor(r.queues - r.target * total) }))
      const under = rows.filter((r) => r.share < r.target - opts.tolerance && r.weight > 0).map((r) => ({ r, room: Math.ceil(r.target * total - r.queues) }))
      if (over.length > 0 || under.length > 0) balanced = false
      // Moving from a pool over its share to those below it; the others are within tolerance.
      const receivers = under.length > 0 ? under : rows.filter((r) => r.weight > 0 && r.share <= r.target).map((r) => ({ r, room: Math.ceil(r.target * total - r.queues) }))
      for (const o of over.sort((a, b) => b.excess - a.excess)) {
        let want = Math.min(o.excess, opts.maxConcurrent - (await catalog.countActiveFrom(o.r.name)))
        let after: QueueRef | undefined
        while (want > 0 && started.length < opts.maxConcurrent * groups.size) {
          const refs = await catalog.listPlacements(o.r.name, { limit: 50, ...(after && { after }) })
          if (refs.length === 0) break
          for (const ref of refs) {
            after = ref
            const dest = receivers.filter((u) => u.room > 0).sort((a, b) => b.room - a.room)[0]
            if (dest === undefined || want <= 0) break
            try {
              started.push(
                await catalog.createMigration(
                  { ...ref, from: o.r.name, to: dest.r.name, rate: opts.rate, origin: 'rebalance' },
                  { maxActiveFrom: opts.maxConcurrent },
                ),
              )
              dest.room--
              want--
            } catch (err) {
              if (!(err instanceof MigrationError)) throw err
              if (err.reason === 'busy') want = 0
            }
          }
          if (receivers.every((u) => u.room <= 0)) break
        }
      }
    }
    if (started.length > 0) {
      this.#o.log.info({ started: started.length }, 'rebalance: migrations created')
      this.kick()
    }
    return { pools: shares, started, balanced }
  }
}

/**
 * How a proxy's runner reaches a queue's store in a pool: the pool's worker that owns the queue
 * (`workerFor` with its routing key), as every request on the queue does.
 */
export function reachThrough(pools: { workersOf(pool: string): DataDriver[] }): Reach {
  return (pool, ref) => {
    const driver = workerFor(pools.workersOf(pool), routingKey(ref.project, ref.queue))
    if (driver === undefined) throw unavailable(`Pool ${pool} has no running worker.`)
    return driver
  }
}

/**
 * What the pooled driver's routing reads of migrations (proxy/pooled-driver.ts
 * `MigrationLookup`), from the catalog: the queue's active migration, and whether a migration
 * switched (`cleaning` or `done`: the target took everything; `cancelled` and `failed` never
 * switched, as there is no way back from `switching`).
 */
export function catalogMigrationLookup(catalog: CatalogStore): MigrationLookup {
  return {
    activeMigration: (ref) => catalog.activeMigration(ref),
    switched: async (id) => {
      const m = isMigrationId(id) ? await catalog.getMigration(id) : null
      return m !== null && (m.state === 'cleaning' || m.state === 'done')
    },
  }
}
