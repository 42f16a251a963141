/**
 * Per-project rate limits (docs/limits.md): requests per second on every versioned route and
 * messages per second on posts, each a token bucket. Defaults from `rateLimits` in the config,
 * per-project overrides from the catalog (admin API, proxy/limits/admin-api.ts).
 *
 * And the quotas (docs/limits.md, "Quotas"), whose defaults are `quotas` in the config and whose
 * overrides are in the same record: this class only says what a project's quota is; each is
 * counted where every proxy sees the same number — queues per project by the catalog's
 * placement (`CatalogStore.placeWithin`, asked by proxy/pooled-driver.ts when a queue is
 * created), messages per queue by the store inside its atomic post (`PostOptions.maxMessages`).
 * Stored bytes per project are the exception, enforced eventually from the background scan's
 * sums with a bounded overshoot (stored-bytes.ts).
 *
 * Where the buckets are counted decides what "per project" means: with a Redis catalog (several
 * proxies, several hosts) in that Redis, one bucket per project for the whole deployment; with the
 * embedded SQLite catalog (one proxy process) in the process, which is then the whole deployment.
 *
 * Cost on the hot path: a cached override lookup and, in-process, one bucket update (sync, no
 * await); with Redis, one script call per limited request (docs/limits.md has the numbers).
 */
import type { Redis } from 'ioredis'
import { defaultCatalogUri } from '../../catalog/index.js'
import type { Config } from '../../shared/config.js'
import { MissiveError, unavailable } from '../../shared/errors.js'
import { LocalBuckets, REDIS_TAKE } from './bucket.js'
import { StoredBytes } from './stored-bytes.js'
import { openLimitStore, type LimitStore, type ProjectLimits } from './store.js'

export type { ProjectLimits } from './store.js'

/** A project's limits once defaults and its override are merged (0: no limit). */
export interface EffectiveLimits {
  requestsPerSecond: number
  requestBurst: number
  messagesPerSecond: number
  messageBurst: number
  queuesPerProject: number
  messagesPerQueue: number
  bytesPerProject: number
}

type ScriptedRedis = Redis & { missiveTake(key: string, n: number, rate: number, burst: number): Promise<number> }

/** 429 for a project over a limit, with the wait as `Retry-After`. */
export const tooMany = (what: string, rate: number, wait: number): MissiveError =>
  new MissiveError('too_many_requests', `This project exceeded its limit of ${rate} ${what} per second.`, { retryAfter: wait })

/** The burst a rate gets when none is set: one second's worth (at least 1). */
const burstOf = (rate: number, burst: number | undefined): number => (burst !== undefined && burst > 0 ? burst : Math.max(1, rate))

export class RateLimiter {
  readonly store: LimitStore
  readonly #defaults: ProjectLimits
  readonly #cacheMs: number
  readonly #cache = new Map<string, { limits: EffectiveLimits; until: number }>()
  /** In-process buckets, one map per kind (keyed by project: no key built per request). */
  readonly #local = { r: new LocalBuckets(), m: new LocalBuckets() }
  readonly #redis: ScriptedRedis | undefined
  readonly #prefix: string
  /** `rateLimits.enabled`: off, no bucket is asked (quotas alone are on). */
  readonly rates: boolean
  /** `quotas.enabled`. */
  readonly quotas: boolean
  /**
   * Stored bytes per project (the backlog scan's sums and this proxy's posts since) when quotas
   * are on; the scan reads bytes only once some project's byte quota was seen (`wanted`).
   */
  readonly storedBytes: StoredBytes | undefined

  constructor(config: Config, store: LimitStore) {
    const r = config.rateLimits
    const q = config.quotas
    this.rates = r.enabled
    this.quotas = q.enabled
    this.#defaults = {
      requestsPerSecond: r.requestsPerSecond,
      requestBurst: r.requestBurst,
      messagesPerSecond: r.messagesPerSecond,
      messageBurst: r.messageBurst,
      queuesPerProject: q.queuesPerProject,
      messagesPerQueue: q.messagesPerQueue,
      bytesPerProject: q.bytesPerProject,
    }
    this.#cacheMs = r.overrideCacheMs
    this.storedBytes = q.enabled ? new StoredBytes() : undefined
    if (this.storedBytes !== undefined && q.bytesPerProject > 0) this.storedBytes.wanted = true
    this.store = store
    this.#prefix = `${store.prefix}rate:`
    if (store.redis !== undefined) {
      store.redis.defineCommand('missiveTake', { numberOfKeys: 1, lua: REDIS_TAKE })
      this.#redis = store.redis as ScriptedRedis
    }
  }

  /** Opens the limiter over the catalog's override table; undefined when both `rateLimits` and `quotas` are off. */
  static async open(config: Config, catalogUri?: string): Promise<RateLimiter | undefined> {
    if (!config.rateLimits.enabled && !config.quotas.enabled) return undefined
    const uri = catalogUri ?? config.catalog ?? defaultCatalogUri(config.dataDir)
    return new RateLimiter(config, await openLimitStore(uri, config.dataDir))
  }

  /** The configured defaults merged with `override`: what is in force (0 for what is off). */
  effective(override: ProjectLimits | null): EffectiveLimits {
    const m = { ...this.#defaults, ...override }
    const rps = this.rates ? (m.requestsPerSecond ?? 0) : 0
    const mps = this.rates ? (m.messagesPerSecond ?? 0) : 0
    return {
      requestsPerSecond: rps,
      requestBurst: burstOf(rps, m.requestBurst),
      messagesPerSecond: mps,
      messageBurst: burstOf(mps, m.messageBurst),
      queuesPerProject: this.quotas ? (m.queuesPerProject ?? 0) : 0,
      messagesPerQueue: this.quotas ? (m.messagesPerQueue ?? 0) : 0,
      bytesPerProject: this.quotas ? (m.bytesPerProject ?? 0) : 0,
    }
  }

  /** What this proxy counts of the project's stored bytes (the admin API shows it); undefined when quotas are off. */
  usage(project: string): { storedBytes: number; scannedBytes: number; passStartedAt: number; passEndedAt: number } | undefined {
    const b = this.storedBytes
    if (b === undefined) return undefined
    return { storedBytes: b.of(project), scannedBytes: b.scanned(project), passStartedAt: b.passStartedAt, passEndedAt: b.passEndedAt }
  }

  #limits(project: string): EffectiveLimits | Promise<EffectiveLimits> {
    const now = Date.now()
    const hit = this.#cache.get(project)
    if (hit !== undefined && hit.until > now) return hit.limits
    return this.store.get(project).then((o) => {
      const limits = this.effective(o)
      // A byte quota in force: from the next pass on, the scan sums stored bytes.
      if (limits.bytesPerProject > 0 && this.storedBytes !== undefined) this.storedBytes.wanted = true
      if (this.#cache.size >= 100_000) this.#cache.clear()
      this.#cache.set(project, { limits, until: Date.now() + this.#cacheMs })
      return limits
    })
  }

  /** Forgets the cached limits of `project` (its override just changed here). */
  forget(project: string): void {
    this.#cache.delete(project)
  }

  #take(kind: 'r' | 'm', project: string, n: number, rate: number, burst: number): number | Promise<number> {
    if (this.#redis === undefined) return this.#local[kind].take(project, n, rate, burst)
    // The project inside a hash tag: one slot per bucket on a Redis Cluster too.
    return this.#redis.missiveTake(`${this.#prefix}${kind}:{${project}}`, n, rate, burst).then(
      (micros) => micros / 1e6,
      (err: unknown) => {
        throw unavailable('The rate-limit counters cannot be reached.', 1, err)
      },
    )
  }

  /** Throws 429 when `project` is over its requests per second; sync when nothing must be asked. */
  request(project: string): void | Promise<void> {
    if (!this.rates) return
    const limits = this.#limits(project)
    if (limits instanceof Promise) return limits.then((l) => this.#requestWith(project, l))
    return this.#requestWith(project, limits)
  }

  #requestWith(project: string, l: EffectiveLimits): void | Promise<void> {
    if (l.requestsPerSecond === 0) return
    const wait = this.#take('r', project, 1, l.requestsPerSecond, l.requestBurst)
    if (typeof wait === 'number') {
      if (wait > 0) throw tooMany('requests', l.requestsPerSecond, wait)
      return
    }
    return wait.then((w) => {
      if (w > 0) throw tooMany('requests', l.requestsPerSecond, w)
    })
  }

  /**
   * Throws 429 when posting `n` messages would put `project` over its messages per second, 403
   * when the project's stored bytes (as far as this proxy knows: stored-bytes.ts) have reached
   * its byte quota; else counts the post's `bytes` as accepted and answers its quota of messages
   * per queue (0: none), which the store checks in the post.
   */
  async messages(project: string, n: number, bytes = 0): Promise<number> {
    const l = await this.#limits(project)
    if (l.messagesPerSecond !== 0) {
      const wait = await this.#take('m', project, n, l.messagesPerSecond, l.messageBurst)
      if (wait > 0) throw tooMany('messages', l.messagesPerSecond, wait)
    }
    if (l.bytesPerProject !== 0 && this.storedBytes !== undefined) {
      if (this.storedBytes.of(project) >= l.bytesPerProject) {
        throw new MissiveError('quota_exceeded', `Project ${project} may store at most ${l.bytesPerProject} bytes of messages (its quota); consume some, or ask for a larger quota.`)
      }
      this.storedBytes.accepted(project, bytes)
    }
    return l.messagesPerQueue
  }

  /** The quota of queues of `project` (0: none); sync when its limits are cached. */
  queueQuota(project: string): number | Promise<number> {
    const l = this.#limits(project)
    return l instanceof Promise ? l.then((x) => x.queuesPerProject) : l.queuesPerProject
  }

  async close(): Promise<void> {
    await this.store.close()
  }
}
