/**
 * Per-pool backlog for /metrics and the admin top-N listing, at a cost that does not grow with
 * scrapes: a background scan walks every pool's queues (from the catalog's placements) in small
 * batches paced to a tenth of the time with few calls in flight (so it never competes with requests for long), asks each queue's worker for its stats, and publishes per-pool totals and the
 * top queues when a pass over a pool ends. A scrape only reads the last published numbers (work
 * proportional to the number of pools, never to the number of queues); with 100,000 queues a pass
 * takes longer, the page does not (perf/scrape-cost.ts measures both).
 *
 * The numbers are as of the end of the last pass (`missive_pool_backlog_scan_age_seconds` says how
 * old). Each proxy scans on its own; with several proxies, take `max by (pool)` rather than a sum.
 *
 * With the byte quota on (`storedBytes` set: proxy/limits/stored-bytes.ts), the scan also asks
 * each queue's store for its stored bytes and publishes the sums per project when a pass over
 * every pool ends.
 */
import type { CatalogStore } from '../catalog/contract.js'
import type { Logger } from '../shared/log.js'
import type { QueueRef, QueueStats } from '../shared/storage/contract.js'
import type { ControlPlane } from './pool-set.js'
import type { StoredBytes } from './limits/stored-bytes.js'
import { routingKey } from './placement-cache.js'
import { workerFor } from './worker-choice.js'

/**
 * Queues read from the catalog per step, and stats calls in flight at once within a step. Few in
 * flight: a burst of stats calls queues ahead of requests in the worker, and 50 at once (the
 * first version) doubled the open-loop p99 at 5,000 msgs/s in the bench (docs/benchmarks.md).
 */
const BATCH = 100
const CONCURRENCY = 4
/**
 * Pause between steps: at least this, and nine times what the step took, so the scan keeps the
 * workers busy at most a tenth of the time it runs and requests always come first.
 */
const PAUSE_MS = 20
const DUTY_PAUSE = 9
/** Least time from the start of one full pass to the start of the next (`backlogScanMs`). */
const CYCLE_MS = 10_000
/** Queues kept per top list (the admin API's largest `limit`). */
export const TOP_MAX = 100

/** One pool's totals from its last complete pass. */
export interface PoolBacklog {
  queues: number
  free: number
  claimed: number
  total: number
  /** Of the free messages, those whose delay has not run out (`QueueStats.delayed`). */
  delayed: number
  /** Age of the oldest message of any of its queues, seconds (0 when there is none). */
  oldestAgeSeconds: number
  /** Queues whose stats could not be read in that pass (their messages are not in the sums). */
  unreadQueues: number
  /** When the pass ended (Date.now()). */
  at: number
}

/** One queue in a top list. */
export interface QueueBacklog {
  pool: string
  project: string
  name: string
  free: number
  claimed: number
  total: number
  delayed: number
  oldest_age: number
}

type TopBy = 'backlog' | 'age'

const score = (by: TopBy, q: QueueBacklog): number => (by === 'backlog' ? q.free : q.oldest_age)

/** Keeps the `TOP_MAX` best of what it is offered (sorted lazily, in batches). */
class Top {
  #items: QueueBacklog[] = []
  constructor(readonly by: TopBy) {}
  offer(q: QueueBacklog): void {
    if (score(this.by, q) <= 0) return
    this.#items.push(q)
    if (this.#items.length >= 4 * TOP_MAX) this.#trim()
  }
  #trim(): void {
    this.#items.sort((a, b) => score(this.by, b) - score(this.by, a) || (a.pool + a.project + a.name < b.pool + b.project + b.name ? -1 : 1))
    this.#items.length = Math.min(this.#items.length, TOP_MAX)
  }
  result(): QueueBacklog[] {
    this.#trim()
    return this.#items
  }
}

export class BacklogScanner {
  readonly #catalog: CatalogStore
  /** Read at each call: the control plane's pool map changes as pools come and go. */
  readonly #control: ControlPlane
  readonly #log: Logger | undefined
  readonly #byPool = new Map<string, PoolBacklog>()
  #top: { backlog: QueueBacklog[]; age: QueueBacklog[]; at: number | undefined } = { backlog: [], age: [], at: undefined }
  #stopped = false
  #timer: NodeJS.Timeout | undefined
  #wake: (() => void) | undefined
  readonly #cycleMs: number
  /** Completed full passes (tests wait on it). */
  passes = 0
  /** Set when the byte quota is on: each pass also sums stored bytes per project into it. */
  storedBytes: StoredBytes | undefined

  constructor(control: ControlPlane, log?: Logger, opts: { cycleMs?: number } = {}) {
    this.#catalog = control.catalog
    this.#control = control
    this.#log = log
    this.#cycleMs = opts.cycleMs ?? CYCLE_MS
  }

  /** Starts scanning in the background (the first pass at once). */
  start(): this {
    void this.#loop()
    return this
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#wake?.()
  }

  /** Per pool, the last complete pass (pools not yet scanned once are absent). */
  get pools(): ReadonlyMap<string, PoolBacklog> {
    return this.#byPool
  }

  /** The top `limit` queues by free messages (`backlog`) or oldest message age (`age`), as of `at`. */
  top(by: TopBy, limit: number): { queues: QueueBacklog[]; at: number | undefined } {
    return { queues: this.#top[by].slice(0, limit), at: this.#top.at }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve
      this.#timer = setTimeout(resolve, ms)
      this.#timer.unref()
    })
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      const started = Date.now()
      try {
        await this.#pass()
        this.passes++
      } catch (err) {
        this.storedBytes?.passAbandoned()
        this.#log?.warn({ err }, 'backlog scan failed; retrying on the next cycle')
      }
      if (this.#stopped) return
      await this.#sleep(Math.max(PAUSE_MS, this.#cycleMs - (Date.now() - started)))
    }
  }

  /** One pass over every pool. */
  async #pass(): Promise<void> {
    const backlog = new Top('backlog')
    const age = new Top('age')
    // Stored bytes per project (the byte quota): bounded by the number of projects with queues.
    const stored = this.storedBytes?.wanted === true ? this.storedBytes : undefined
    const bytes = stored === undefined ? undefined : new Map<string, number>()
    stored?.passStarted()
    const names = (await this.#catalog.listPools()).map((p) => p.name)
    for (const pool of names) {
      if (this.#stopped) return
      const sums: PoolBacklog = { queues: 0, free: 0, claimed: 0, total: 0, delayed: 0, oldestAgeSeconds: 0, unreadQueues: 0, at: 0 }
      let after: QueueRef | undefined
      for (;;) {
        const stepStarted = performance.now()
        const refs = await this.#catalog.listPlacements(pool, after === undefined ? { limit: BATCH } : { limit: BATCH, after })
        for (let i = 0; i < refs.length; i += CONCURRENCY) {
          const chunk = refs.slice(i, i + CONCURRENCY)
          const stats = await Promise.all(chunk.map((ref) => this.#stats(pool, ref, bytes)))
          for (const [j, s] of stats.entries()) {
            sums.queues++
            if (s === null) {
              sums.unreadQueues++
              continue
            }
            const ref = chunk[j]!
            const oldest = s.oldest?.age ?? 0
            const delayed = s.delayed ?? 0
            sums.free += s.free
            sums.delayed += delayed
            sums.claimed += s.claimed
            sums.total += s.total
            if (oldest > sums.oldestAgeSeconds) sums.oldestAgeSeconds = oldest
            const q: QueueBacklog = { pool, project: ref.project, name: ref.queue, free: s.free, claimed: s.claimed, total: s.total, delayed, oldest_age: oldest }
            backlog.offer(q)
            age.offer(q)
          }
        }
        if (refs.length < BATCH || this.#stopped) break
        after = refs[refs.length - 1]
        await this.#sleep(Math.max(PAUSE_MS, DUTY_PAUSE * (performance.now() - stepStarted)))
      }
      sums.at = Date.now()
      this.#byPool.set(pool, sums)
    }
    for (const p of [...this.#byPool.keys()]) if (!names.includes(p)) this.#byPool.delete(p)
    this.#top = { backlog: backlog.result(), age: age.result(), at: Date.now() }
    // A pass cut short by stop() is not complete: its sums would miss queues.
    if (bytes !== undefined && !this.#stopped) stored?.passEnded(bytes)
  }

  /**
   * The queue's stats from the worker that serves it (as every other call is routed), or null;
   * with `bytes`, its stored bytes too, added to its project's (none when they cannot be read).
   */
  #stats(pool: string, ref: QueueRef, bytes: Map<string, number> | undefined): Promise<QueueStats | null> {
    const driver = workerFor(this.#control.pools.get(pool), routingKey(ref.project, ref.queue))
    if (driver === undefined) return Promise.resolve(null)
    const stats = driver.stats(ref).catch(() => null)
    if (bytes === undefined) return stats
    // After the stats, not beside them: no more calls in flight per worker than before.
    return stats.then(async (s) => {
      const n = await driver.storedBytes(ref).catch(() => 0)
      if (n > 0) bytes.set(ref.project, (bytes.get(ref.project) ?? 0) + n)
      return s
    })
  }
}

/** The scanner of each control plane (set by proxy/main.ts; read by the admin API and metrics). */
export const BACKLOG = new WeakMap<ControlPlane, BacklogScanner>()
