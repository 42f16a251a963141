/**
 * The high-throughput message store on Redis: one `RedisDriver` owns one ioredis connection to
 * a standalone server, the Lua scripts loaded on it, and a background collector.
 *
 * Every operation is one script call (lua/, one per atomic operation, `now` passed in from the
 * injected clock), so nothing takes a round trip per message. Concurrent posts, claims and
 * deletes on one queue are coalesced into one call per kind (coalesce.ts).
 *
 * Durability is checked, not assumed: at connect the driver reads the server's persistence
 * settings with CONFIG GET and refuses to open (`bad_request`, so the worker will not start)
 * when they cannot keep the pool's promise:
 * - `durable`: `appendonly yes`, `appendfsync always`, `no-appendfsync-on-rewrite no` — a write
 *   is fsynced before Redis replies, so an acknowledged post survives a crash of the server or
 *   of the machine; with `wait=n` each write is also followed by `WAIT n wait_timeout` and fails
 *   with `unavailable` unless n replicas acknowledged it.
 * - `fast`: `appendonly yes` with `appendfsync everysec` (or `always`) — up to ~1 s of
 *   acknowledged writes can be lost if the machine fails.
 * Both refuse an `allkeys-*` eviction policy, which would drop messages silently.
 *
 * Connection loss fails operations at once with `unavailable` (no offline queue, no silent
 * resend of writes whose outcome is unknown); ioredis reconnects in the background, and every
 * reconnection is verified again (a failover or a restart may land on a server configured
 * otherwise): until it passes, operations fail with `unavailable`.
 */
import { randomUUID } from 'node:crypto'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { systemClock, type Clock } from '../../../shared/clock.js'
import { MissiveError, unavailable } from '../../../shared/errors.js'
import { BadStoreConfig, StoreUnavailable } from '../../../shared/storage/errors.js'
import { closeRedis, connectRedis } from '../../../shared/redis.js'
import { postedChannel, postedMessage } from '../../../shared/storage/posted.js'
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
import type { ImportChange, JournalPage, MigrationBatch, QueueFence } from '../../../shared/storage/migration.js'
import { RedisClaims } from './claims.js'
import type { Ctx } from './context.js'
import { catalogueKey, queueKeys, queueTag, recordKey, SWEEP_KEY } from './keys.js'
import { RedisMessages } from './messages.js'
import { RedisQueues } from './queues.js'
import { RedisMigration } from './migration.js'
import { connectCluster, masterFor, masters, publishByQueue } from './cluster.js'
import { Scripts } from './scripts.js'
import { redisAddress, redisWhere, type RedisPoolOptions } from '../../../shared/storage/redis-uri.js'

export interface RedisDriverOptions extends RedisPoolOptions {
  clock?: Clock
  /** Coalesce concurrent posts and claims per queue (default true; false for measurements). */
  coalesce?: boolean
  /**
   * Most expired messages (and, separately, expired claims) one collector script deletes.
   * Default 100: such a script runs ~0.5 ms in Redis, which every other client waits for.
   */
  gcStep?: number
  /** Queues visited per collector tick. Default 100. */
  gcQueuesPerTick?: number
  /**
   * Wall time one collector tick may spend (ms, default 50): a queue with more garbage than one
   * step gets further steps within the tick while this budget lasts; the tick after resumes there.
   */
  gcBudgetMs?: number
  /** Called when a background collection fails (the store stays usable). */
  onGcError?: (err: unknown) => void
}

/** Totals of one collector pass. */
export interface GcResult {
  queues: number
  messages: number
  claims: number
  ready: number
}


/** Server replies that mean "cannot serve now" rather than "the code is wrong". */
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MISCONF|READONLY|OOM|NOREPLICAS|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOAUTH|WRONGPASS|NOPERM)\b/

/** Thrown by `acked` when WAIT got fewer replica acks than asked. */
class ReplicaShortfall extends Error {}

function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}

/** Is this error a store that cannot serve (connection, timeout, server state), not a bug? */
function isUnavailable(err: unknown): boolean {
  if (err instanceof ReplicaShortfall) return true
  if (!(err instanceof Error)) return false
  if (isReplyError(err)) return UNAVAILABLE_REPLY.test(err.message)
  return true
}

export class RedisDriver implements DataDriver {
  readonly kind = 'redis'
  readonly options: RedisPoolOptions
  readonly #redis: Redis
  readonly #clock: Clock
  readonly #scripts: Scripts
  readonly #queues: RedisQueues
  readonly #messages: RedisMessages
  readonly #claims: RedisClaims
  readonly #migration: RedisMigration
  readonly #gcStep: number
  readonly #gcQueuesPerTick: number
  readonly #gcBudgetMs: number
  readonly #onGcError: ((err: unknown) => void) | undefined
  /** Where posts are announced to long-polling proxies (shared/storage/posted.ts). */
  readonly #channel: string
  /** Announcements gathered in this microtask checkpoint, per queue tag (#announce). */
  #announcing: Map<string, { ref: QueueRef; count: number; ids: string[] }> | null = null
  #gcCursor = '-'
  #gcRunning = false
  #timer: NodeJS.Timeout | undefined
  #closed = false
  /**
   * Set while the server connected to cannot keep the pool's durability promise (checked again at
   * every reconnection: a failover or a restart may land on a server configured otherwise), or
   * while that check runs: every operation fails with `unavailable` meanwhile (docs/ha.md).
   */
  #broken: string | null = null
  #where = ''
  /** A Redis Cluster pool's client (`#redis` is the same object, typed by its commands). */
  readonly #cluster: Cluster | undefined
  /** The masters (`host:port`) whose persistence was last verified, sorted (Cluster pools). */
  #verifiedMasters = ''
  /**
   * The failover counter (docs/ha.md, "Health"): the servers (Redis `run_id`s; a Cluster: one per
   * master) last seen, and how many times a new one appeared. Sampled at every (re)connection
   * and every `info`, so a failover is counted even when no pool check ran between it and the
   * next one (a check only compares two samples: it missed changes of server between them).
   */
  #servers: readonly string[] = []
  #serverChanges = 0
  #lastServerChange: number | null = null
  /** This driver's identity: a new one (a restarted worker) starts its counter over. */
  readonly #boot = randomUUID()

  private constructor(redis: Redis, opts: RedisDriverOptions, cluster?: Cluster) {
    this.options = opts
    this.#redis = redis
    this.#cluster = cluster
    this.#channel = postedChannel(opts.db)
    this.#clock = opts.clock ?? systemClock
    this.#gcStep = opts.gcStep ?? 100
    this.#gcQueuesPerTick = opts.gcQueuesPerTick ?? 100
    this.#gcBudgetMs = opts.gcBudgetMs ?? 50
    this.#onGcError = opts.onGcError
    this.#scripts = new Scripts(redis)
    const ctx: Ctx = {
      redis,
      scripts: this.#scripts,
      clock: this.#clock,
      acked: (write, key) => this.#acked(write, key),
      cluster: cluster !== undefined,
      catalogue: (ref) => this.#catalogue(ref),
    }
    const coalesce = opts.coalesce ?? true
    this.#claims = new RedisClaims(ctx, { coalesce })
    this.#queues = new RedisQueues(ctx, (ref, dlq) => this.#claims.noteDeadLetter(ref, dlq))
    this.#messages = new RedisMessages(ctx, { coalesce })
    this.#migration = new RedisMigration(ctx, (ref) => this.#queues.uncatalogue(ref))
  }

  /**
   * Connects, verifies the server's persistence against `opts.durability` (unless `verify` is
   * false), loads the scripts and starts the collector. Throws `bad_request` when the server
   * cannot keep the promise, `unavailable` when it cannot be reached.
   */
  static async open(opts: RedisDriverOptions): Promise<RedisDriver> {
    if (opts.cluster !== undefined) return RedisDriver.#openCluster(opts)
    const where = opts.sentinels === undefined ? redisWhere(opts) : `master ${opts.master} (Sentinel ${opts.sentinels.map((s) => `${s.host}:${s.port}`).join(',')})`
    const opened = { now: false }
    const redis = await connectRedis(
      {
        ...(opts.sentinels === undefined ? redisAddress(opts) : sentinelOptions(opts, opened)),
        db: opts.db,
        username: opts.username,
        password: opts.password,
        enableAutoPipelining: opts.autoPipelining,
        // Never resend a write whose outcome is unknown: the caller gets a 503 and decides,
        // rather than a silent duplicate (connectRedis also turns the offline queue off).
        autoResendUnfulfilledCommands: false,
        commandTimeout: opts.commandTimeoutMs,
        connectTimeout: opts.connectTimeoutMs,
        retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      },
      opts.sentinels === undefined ? 'the Redis server' : `the Redis master "${opts.master}"`,
    )
    opened.now = true
    try {
      if (opts.verify) await verifyPersistence(redis, opts, where)
      const driver = new RedisDriver(redis, opts)
      await driver.#scripts.load()
      driver.#startCollector(opts.gcIntervalMs)
      driver.#where = where
      driver.#observe([await runId(redis)])
      // Every later connection (a reconnection, a Sentinel failover) is checked again, and the
      // server it reached is noted (the failover counter).
      redis.on('ready', () => {
        if (opts.verify) void driver.#reverify()
        runId(redis).then((id) => driver.#observe([id]), () => undefined)
      })
      return driver
    } catch (err) {
      redis.disconnect()
      if (err instanceof MissiveError) throw err
      if (isUnavailable(err) && !(err instanceof Error && err.message.startsWith('Lua script'))) {
        throw unavailable(`The Redis server at ${where} failed during start-up: ${(err as Error).message}`, 1, err)
      }
      throw err
    }
  }

  /**
   * A Redis Cluster pool: every master's persistence verified, the scripts loaded on each, and
   * each new master checked whenever the set of masters changes (a failover, a resharding onto a
   * new node): one that fails makes operations fail with `unavailable` until fixed (docs/ha.md).
   */
  static async #openCluster(opts: RedisDriverOptions): Promise<RedisDriver> {
    const where = `Redis Cluster ${opts.cluster!.map((n) => `${n.host}:${n.port}`).join(',')}`
    const cluster = await connectCluster(opts)
    try {
      const nodes = masters(cluster)
      if (opts.verify) for (const node of nodes) await verifyPersistence(node, opts, nodeWhere(where, node))
      const driver = new RedisDriver(cluster as unknown as Redis, opts, cluster)
      await driver.#scripts.load(nodes)
      driver.#where = where
      driver.#verifiedMasters = masterSet(nodes)
      driver.#observe(await Promise.all(nodes.map(runId)))
      driver.#startCollector(opts.gcIntervalMs)
      cluster.on('refresh', () => void driver.#clusterChanged())
      return driver
    } catch (err) {
      cluster.disconnect()
      if (err instanceof MissiveError) throw err
      if (isUnavailable(err) && !(err instanceof Error && err.message.startsWith('Lua script'))) {
        throw unavailable(`The ${where} failed during start-up: ${(err as Error).message}`, 1, err)
      }
      throw err
    }
  }

  /** The slot map was read again: new masters are verified (`#reverifyCluster`) and noted (the failover counter). */
  async #clusterChanged(): Promise<void> {
    const cluster = this.#cluster!
    if (this.#closed || masterSet(masters(cluster)) === this.#verifiedMasters) return
    if (this.options.verify) await this.#reverify()
    else this.#verifiedMasters = masterSet(masters(cluster))
    Promise.all(masters(cluster).map(runId)).then((ids) => this.#observe(ids), () => undefined)
  }

  /** Notes the servers reached now; a server not among the last ones seen is a failover (or a restart). */
  #observe(ids: readonly string[]): void {
    // A Cluster's list of masters may be short for a moment (one dropped from the slot map before
    // its replica is in): noting it would count the master again when it reappears.
    if (ids.length === 0 || ids.length < this.#servers.length) return
    if (this.#servers.length > 0) {
      const fresh = ids.filter((id) => !this.#servers.includes(id)).length
      if (fresh > 0) {
        this.#serverChanges += fresh
        this.#lastServerChange = Date.now()
      }
    }
    this.#servers = ids
  }

  /** The underlying connection, for tests and tools. */
  get redis(): Redis {
    return this.#redis
  }

  #acked<T>(write: Promise<T>, key?: string): Promise<T> {
    const n = this.options.wait
    if (n === 0) return write
    if (this.#cluster !== undefined) return this.#clusterAcked(write, key ?? this.#scripts.lastKey)
    // Issued in the same tick as the write, on the same connection: WAIT covers it.
    const acks = this.#redis.wait(n, this.options.waitTimeoutMs)
    return Promise.all([write, acks]).then(([result, got]) => this.#enough(result, got))
  }

  #enough<T>(result: T, got: number): T {
    if (got < this.options.wait) {
      throw new ReplicaShortfall(`only ${got} of ${this.options.wait} Redis replicas acknowledged the write within ${this.options.waitTimeoutMs} ms`)
    }
    return result
  }

  /**
   * WAIT on a Cluster: sent, in the same tick, on the connection to the master that owns the
   * write's slot, so it follows the write there. A write redirected meanwhile (MOVED, ASK: the
   * slot moved) ran on another master: WAIT is asked again there, where it covers the write too.
   */
  #clusterAcked<T>(write: Promise<T>, key: string): Promise<T> {
    const cluster = this.#cluster!
    const n = this.options.wait
    const timeout = this.options.waitTimeoutMs
    const first = masterFor(cluster, key)
    const acks = first === undefined ? Promise.resolve(-1) : first.node.wait(n, timeout)
    return Promise.all([write, acks]).then(async ([result, got]) => {
      const now = masterFor(cluster, key)
      if (now === undefined) throw new ReplicaShortfall(`no master serves the slot of ${key} now`)
      if (first === undefined || now.at !== first.at) got = await now.node.wait(n, timeout)
      return this.#enough(result, got)
    })
  }

  async #catalogue(ref: QueueRef): Promise<void> {
    if (this.#cluster !== undefined) {
      // Two slots (the project's catalogue, the collector's round-robin): two writes, in this
      // order, as the standalone MULTI does them at once. A crash between leaves the queue out
      // of the round-robin until its next write catalogues it again.
      const catalogue = catalogueKey(ref.project)
      await this.#acked(this.#redis.zadd(catalogue, 0, ref.queue), catalogue)
      await this.#acked(this.#redis.zadd(SWEEP_KEY, 0, queueTag(ref)), SWEEP_KEY)
      return
    }
    await this.#acked(
      this.#redis
        .multi()
        .zadd(catalogueKey(ref.project), 0, ref.queue)
        .zadd(SWEEP_KEY, 0, queueTag(ref))
        .exec()
        .then((r) => {
          const failed = r?.find(([err]) => err !== null)
          if (failed) throw failed[0]
          return r
        }),
    )
  }

  #startCollector(intervalMs: number): void {
    if (intervalMs <= 0) return
    this.#timer = setInterval(() => {
      if (this.#gcRunning || this.#closed) return
      this.#gcRunning = true
      this.collectGarbage()
        .catch((err: unknown) => this.#onGcError?.(err))
        .finally(() => {
          this.#gcRunning = false
        })
    }, intervalMs)
    this.#timer.unref()
  }

  /**
   * One collector tick: the next `gcQueuesPerTick` queues of the round-robin, one bounded
   * collectGarbage script at a time, and more steps on a queue that had more garbage than one
   * step, while the tick's time budget lasts. Readers never see expired data either way; this
   * reclaims memory and keeps the ready index short.
   *
   * The scripts are sent one after another, never pipelined: Redis runs a client's pipelined
   * commands back to back, so 100 pipelined steps over queues full of expired claims blocked every
   * other client for 15–45 ms (seen as Redis `command` latency events and in open-loop p99s).
   * One at a time, a request waits for at most one small step.
   */
  async collectGarbage(): Promise<GcResult> {
    this.#assertOpen()
    const deadline = performance.now() + this.#gcBudgetMs
    const start = this.#gcCursor
    const tags = await this.#redis.zrangebylex(SWEEP_KEY, start, '+', 'LIMIT', 0, this.#gcQueuesPerTick)
    const total: GcResult = { queues: 0, messages: 0, claims: 0, ready: 0 }
    let resumeAt: string | null = null
    for (const tag of tags) {
      // Not queueKeys: the sweep visits every queue in turn and would evict the request path's
      // keys; the script needs the record's key alone, which the tag gives without unescaping.
      const keys = [recordKey(tag)]
      for (;;) {
        // marks: expiry marks dropped (lua/lib.lua, "Expiry marks"), one per post call or so: a
        // busy queue whose backlog never empties makes them faster than one step a second drops.
        const [m, c, r, marks] = await this.#scripts.run<number[]>('collectGarbage', keys, [this.#clock(), this.#gcStep])
        total.messages += m
        total.claims += c
        total.ready += r
        if (m < this.#gcStep && c < this.#gcStep && r < this.#gcStep && marks < this.#gcStep) break
        if (performance.now() >= deadline) {
          resumeAt = tag
          break
        }
      }
      if (resumeAt !== null) break
      total.queues++
      this.#gcCursor = `(${tag}`
      if (performance.now() >= deadline) break
    }
    // The round-robin starts over once a tick reaches the end of the queue list.
    if (resumeAt === null && total.queues === tags.length && tags.length < this.#gcQueuesPerTick) this.#gcCursor = '-'
    return total
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreUnavailable('closed')
  }

  /**
   * Checks the server's persistence again (a new connection: maybe another server). Operations
   * fail until it passes; a server that cannot keep the promise keeps them failing, and the
   * pool's checks (`info`) say why, until its configuration is fixed.
   */
  async #reverify(): Promise<void> {
    if (this.#cluster !== undefined) return this.#reverifyCluster()
    this.#broken ??= 'the persistence of the server just connected to is being checked'
    try {
      await verifyPersistence(this.#redis, this.options, this.#where)
      this.#broken = null
    } catch (err) {
      // A connection lost meanwhile: the next connection checks again.
      if (err instanceof BadStoreConfig) this.#broken = err.message
    }
  }

  /**
   * A Cluster's masters changed: each master not verified yet is checked. Unlike a single
   * server's, the check does not hold the pool's requests while it runs — one master gone from
   * the slot map but not yet from the client's (unreachable: a black hole answers after the
   * command timeout) would hold every shard for as long as it takes to fail — but a master that
   * fails it makes the pool refuse requests (503) until a check passes. A master that cannot be
   * reached is checked at the next change.
   */
  async #reverifyCluster(): Promise<void> {
    const nodes = masters(this.#cluster!)
    const known = new Set(this.#verifiedMasters.split(','))
    const passed: Redis[] = []
    let refused: string | null = null
    for (const node of nodes) {
      if (known.has(masterSet([node])) && this.#broken === null) {
        passed.push(node)
        continue
      }
      try {
        await verifyPersistence(node, this.options, nodeWhere(this.#where, node))
        passed.push(node)
      } catch (err) {
        if (err instanceof BadStoreConfig) refused ??= err.message
      }
    }
    this.#broken = refused
    this.#verifiedMasters = masterSet(passed)
  }

  /** Runs one operation, turning store failures into `unavailable`; bugs pass through. */
  async #guard<T>(op: DriverOperation, fn: () => Promise<T>): Promise<T> {
    this.#assertOpen()
    if (this.#broken !== null) throw new StoreUnavailable('unreachable', op)
    try {
      return await fn()
    } catch (err) {
      if (err instanceof MissiveError) throw err
      if (isUnavailable(err)) throw new StoreUnavailable('unreachable', op, err)
      throw err
    }
  }

  async ping(): Promise<void> {
    // A Cluster pool serves when every master does (each owns part of the queues).
    if (this.#cluster !== undefined) await this.#guard('ping', () => this.#everyMaster((node) => node.ping()))
    else await this.#guard('ping', () => this.#redis.ping())
  }

  /** Runs `fn` on every master of the Cluster; none known (no slots served) is a failure. */
  #everyMaster<T>(fn: (node: Redis) => Promise<T>): Promise<T[]> {
    const nodes = masters(this.#cluster!)
    if (nodes.length === 0) return Promise.reject(new Error('no Redis Cluster master serves slots'))
    return Promise.all(nodes.map(fn))
  }

  /**
   * The server's facts for the pool's health (docs/ha.md): its role, its identity (`run_id`: a
   * change is a failover or a restart), and for a master its online replicas and how long ago
   * the slowest of them acknowledged (INFO replication `lag`). One round trip.
   */
  async info(): Promise<StoreFacts> {
    if (this.#broken !== null && !this.#closed) {
      // The pool's check: see whether it was fixed (CONFIG SET, or another failover), and say why not.
      await this.#reverify()
      if (this.#broken !== null) throw unavailable(this.#broken)
    }
    if (this.#cluster !== undefined) return this.#clusterInfo()
    const [server, replication] = await this.#guard('ping', () =>
      Promise.all([this.#redis.info('server'), this.#redis.info('replication')]),
    )
    const facts = storeFacts(server, replication)
    if (this.options.master !== undefined) facts.master = this.options.master
    if (facts.server !== undefined) this.#observe([facts.server])
    return this.#counted(facts)
  }

  /** The failover counter's state, added to the facts. */
  #counted(facts: StoreFacts): StoreFacts {
    facts.boot = this.#boot
    facts.changes = this.#serverChanges
    if (this.#lastServerChange !== null) facts.lastChange = this.#lastServerChange
    return facts
  }

  /**
   * A Cluster's facts: every master's, folded — `master` when all are; the fewest online
   * replicas any master has (what `wait=` can count on) and the largest lag; `server` names
   * every master's `run_id` (a failover changes one of them).
   */
  async #clusterInfo(): Promise<StoreFacts> {
    const each = await this.#guard('ping', () =>
      this.#everyMaster((node) => Promise.all([node.info('server'), node.info('replication')]).then(([s, r]) => storeFacts(s, r))),
    )
    const ids = each.map((f) => f.server ?? '').sort()
    this.#observe(ids)
    const facts: StoreFacts = { role: each.every((f) => f.role === 'master') ? 'master' : 'mixed', server: ids.join(',') }
    facts.replicas = Math.min(...each.map((f) => f.replicas ?? 0))
    const lags = each.map((f) => f.lagSeconds).filter((l): l is number => l !== undefined)
    if (lags.length > 0) facts.lagSeconds = Math.max(...lags)
    facts.masters = each.length
    return this.#counted(facts)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    // A Cluster's connections are its own (connectCluster), not connectRedis's.
    if (this.#cluster !== undefined) {
      await this.#redis.quit().catch(() => this.#redis.disconnect())
      return
    }
    await closeRedis(this.#redis)
  }

  createQueue(ref: QueueRef, metadata: Metadata): Promise<boolean> {
    return this.#guard('createQueue', () => this.#queues.createQueue(ref, metadata))
  }

  getQueue(ref: QueueRef): Promise<Metadata | null> {
    return this.#guard('getQueue', () => this.#queues.getQueue(ref))
  }

  setQueueMetadata(ref: QueueRef, metadata: Metadata): Promise<void> {
    return this.#guard('setQueueMetadata', () => this.#queues.setQueueMetadata(ref, metadata))
  }

  deleteQueue(ref: QueueRef): Promise<void> {
    return this.#guard('deleteQueue', () => this.#queues.deleteQueue(ref))
  }

  listQueues(project: string, opts: ListQueuesOptions): Promise<QueueListing> {
    return this.#guard('listQueues', () => this.#queues.listQueues(project, opts))
  }

  stats(ref: QueueRef): Promise<QueueStats> {
    return this.#guard('stats', () => this.#queues.stats(ref))
  }

  storedBytes(ref: QueueRef): Promise<number> {
    return this.#guard('storedBytes', () => this.#queues.storedBytes(ref))
  }

  purge(ref: QueueRef): Promise<void> {
    return this.#guard('purge', () => this.#queues.purge(ref))
  }

  postMessages(ref: QueueRef, messages: NewMessage[], opts: PostOptions): Promise<string[]> {
    return this.#guard('postMessages', () => this.#messages.postMessages(ref, messages, opts)).then(({ ids, listening }) => {
      if (listening) this.#announce(ref, ids.length, ids)
      return ids
    })
  }

  listen(ref: QueueRef, ms: number): Promise<void> {
    return this.#guard('listen', () => this.#queues.listen(ref, ms))
  }

  /**
   * Tells long-polling proxies that `ref` may have messages (proxy/long-poll-redis.ts). Done here,
   * after the post resolved, not in the post's script: the script stays the store's, and a lost
   * announcement only delays a waiter to the end of its wait. Never fails the post. Posts are
   * announced only while a listener has marked the queue (`listen`, lua/listenQueue.lua) or when
   * they create it: an announcement costs a command and a write here, a PUBLISH in Redis and a
   * message to every proxy, which together were a tenth of a single-message post's CPU and a
   * fifth of the mixed scenario's (docs/redis.md, "Announcements").
   */
  #announce(ref: QueueRef, count: number, ids?: readonly string[]): void {
    // Every post answered by the replies of one read from Redis (the requests of a coalesced
    // postMessages call, and other queues' calls replied to in the same read) resolves before
    // the next microtask checkpoint ends: they share one line per queue, and the lines one write.
    // A PUBLISH per post cost an ioredis command, a socket write and a Redis call each (7 % of
    // the worker's CPU in a post-10 profile), and the subscribing proxies a message each.
    let batch = this.#announcing
    if (batch === null) {
      batch = this.#announcing = new Map()
      queueMicrotask(() => this.#publishAnnouncements())
    }
    const tag = queueKeys(ref).tag
    const a = batch.get(tag)
    if (a === undefined) batch.set(tag, { ref, count, ids: ids === undefined ? [] : ids.slice() })
    else {
      // count 0 is "unknown: wake every waiter" (postedMessage) and stays so once merged.
      a.count = a.count === 0 || count === 0 ? 0 : a.count + count
      if (ids !== undefined) for (const id of ids) a.ids.push(id)
    }
  }

  #publishAnnouncements(): void {
    const batch = this.#announcing
    this.#announcing = null
    if (batch === null || this.#closed) return
    if (this.#cluster !== undefined) {
      // Each on its queue's master (cluster.ts, publishByQueue): not lost on a master just dead.
      publishByQueue(this.#cluster, this.#channel, [...batch.values()].map((a) => [queueKeys(a.ref).q, postedMessage(a.ref, a.count, a.ids)] as const))
      return
    }
    if (batch.size === 1) {
      for (const a of batch.values()) this.#redis.publish(this.#channel, postedMessage(a.ref, a.count, a.ids)).catch(() => undefined)
      return
    }
    const pipe = this.#redis.pipeline()
    for (const a of batch.values()) pipe.publish(this.#channel, postedMessage(a.ref, a.count, a.ids))
    pipe.exec().catch(() => undefined)
  }

  listMessages(ref: QueueRef, opts: ListMessagesOptions): Promise<MessageListing> {
    return this.#guard('listMessages', () => this.#messages.listMessages(ref, opts))
  }

  getMessage(ref: QueueRef, id: string): Promise<Message | null> {
    return this.#guard('getMessage', () => this.#messages.getMessage(ref, id))
  }

  getMessages(ref: QueueRef, ids: string[]): Promise<Message[]> {
    return this.#guard('getMessages', () => this.#messages.getMessages(ref, ids))
  }

  deleteMessage(ref: QueueRef, id: string, claimId?: string): Promise<void> {
    return this.#guard('deleteMessage', () => this.#messages.deleteMessage(ref, id, claimId))
  }

  deleteMessages(ref: QueueRef, ids: string[], claimIds?: string[]): Promise<void> {
    return this.#guard('deleteMessages', () => this.#messages.deleteMessages(ref, ids, claimIds))
  }

  popMessages(ref: QueueRef, limit: number): Promise<PoppedMessage[]> {
    return this.#guard('popMessages', () => this.#messages.popMessages(ref, limit))
  }

  /** See `DataDriver.deadLettered`. */
  get deadLettered(): number {
    return this.#claims.deadLettered
  }

  createClaim(ref: QueueRef, opts: ClaimOptions): Promise<Claim | null> {
    return this.#guard('createClaim', () => this.#claims.createClaim(ref, opts))
  }

  getClaim(ref: QueueRef, claimId: string): Promise<Claim | null> {
    return this.#guard('getClaim', () => this.#claims.getClaim(ref, claimId))
  }

  renewClaim(ref: QueueRef, claimId: string, opts: { ttl: number; grace: number }): Promise<void> {
    return this.#guard('renewClaim', () => this.#claims.renewClaim(ref, claimId, opts))
  }

  releaseClaim(ref: QueueRef, claimId: string): Promise<void> {
    return this.#guard('releaseClaim', () => this.#claims.releaseClaim(ref, claimId)).then(() => this.#announce(ref, 0))
  }

  // --- migration (shared/storage/migration.ts; redis/migration.ts): never refused by a fence --

  fenceQueue(ref: QueueRef, fence: QueueFence | null, expect: string | null): Promise<void> {
    return this.#guard('fenceQueue', () => this.#migration.fenceQueue(ref, fence, expect))
  }

  getFence(ref: QueueRef): Promise<QueueFence | null> {
    return this.#guard('getFence', () => this.#migration.getFence(ref))
  }

  readForMigration(ref: QueueRef, after: number, limit: number): Promise<MigrationBatch> {
    return this.#guard('readForMigration', () => this.#migration.readForMigration(ref, after, limit))
  }

  readJournal(ref: QueueRef, limit: number): Promise<JournalPage> {
    return this.#guard('readJournal', () => this.#migration.readJournal(ref, limit))
  }

  ackJournal(ref: QueueRef, entries: { id: string; version: number }[], reset?: boolean): Promise<void> {
    return this.#guard('ackJournal', () => this.#migration.ackJournal(ref, entries, reset))
  }

  importMessages(ref: QueueRef, token: string, change: ImportChange): Promise<void> {
    return this.#guard('importMessages', () => this.#migration.importMessages(ref, token, change))
  }

  countForMigration(ref: QueueRef): Promise<number> {
    return this.#guard('countForMigration', () => this.#migration.countForMigration(ref))
  }

  dropQueueData(ref: QueueRef, token: string): Promise<void> {
    return this.#guard('dropQueueData', () => this.#migration.dropQueueData(ref, token))
  }
}

/**
 * ioredis's Sentinel mode (docs/ha.md, "Sentinel pools"): the Sentinels are asked for the master
 * at every (re)connection, and connectRedis follows their `+switch-master` announcements
 * (shared/sentinel-switch.ts, in place of ioredis's `failoverDetector`), so a failover moves the
 * connection without waiting for the old master to time out. Opening fails at once when no
 * Sentinel answers (ioredis would otherwise retry forever). A write refused with READONLY (the
 * old master, back as a replica, still connected) reconnects through the Sentinels; the refused
 * command is not resent (it failed with 503: the client retries, as after any 503).
 */
function sentinelOptions(opts: RedisPoolOptions, opened: { readonly now: boolean }): RedisOptions {
  return {
    sentinels: opts.sentinels,
    name: opts.master,
    role: 'master',
    ...(opts.sentinelPassword !== undefined && { sentinelPassword: opts.sentinelPassword }),
    sentinelCommandTimeout: opts.connectTimeoutMs,
    // Opening: no Sentinel answering is an answer (503, or 400 for an admin's new pool), not a
    // wait. Once open, Sentinels are asked again and again until one answers.
    sentinelRetryStrategy: (times) => (opened.now ? Math.min(50 * 2 ** Math.min(times, 6), 2000) : null),
    reconnectOnError: (err) => (/^READONLY\b/.test(err.message) ? 1 : false),
  }
}

/** What `RedisDriver.info` reports (proxy/circuit-breaker.ts `StoreInfo`). */
export interface StoreFacts {
  role: string
  master?: string
  server?: string
  replicas?: number
  lagSeconds?: number
  /** The driver's identity, and the changes of server it saw (see `RedisDriver.#observe`). */
  boot?: string
  changes?: number
  /** When the last change was seen (ms since the epoch). */
  lastChange?: number
  /** A Cluster pool: how many masters serve slots. */
  masters?: number
}

/** The server's `run_id` (INFO server): its identity until it restarts. */
async function runId(redis: Redis): Promise<string> {
  return /^run_id:(.*?)\r?$/m.exec(await redis.info('server'))?.[1] ?? ''
}

/** The addresses of `nodes`, sorted: a set of masters, compared as text. */
const masterSet = (nodes: readonly Redis[]): string => nodes.map((n) => `${n.options.host}:${n.options.port}`).sort().join(',')

/** `where` narrowed to one node of a Cluster, for messages. */
const nodeWhere = (where: string, node: Redis): string => `${node.options.host}:${node.options.port} (a master of the ${where})`

/** Reads `INFO server` and `INFO replication` replies into the facts a pool's health shows. */
export function storeFacts(server: string, replication: string): StoreFacts {
  const field = (text: string, name: string): string | undefined => new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(text)?.[1]
  const role = field(replication, 'role')
  const facts: StoreFacts = { role: role === 'slave' ? 'replica' : (role ?? 'unknown') }
  const runId = field(server, 'run_id')
  if (runId !== undefined) facts.server = runId
  if (role === 'master') {
    let replicas = 0
    let lag: number | undefined
    for (const m of replication.matchAll(/^slave\d+:(.*?)\r?$/gm)) {
      const kv = Object.fromEntries(m[1]!.split(',').map((p) => p.split('=') as [string, string]))
      if (kv.state !== 'online') continue
      replicas++
      const l = Number(kv.lag)
      if (Number.isFinite(l)) lag = Math.max(lag ?? 0, l)
    }
    facts.replicas = replicas
    if (lag !== undefined) facts.lagSeconds = lag
  }
  return facts
}

/** Reads one CONFIG parameter; a disabled or renamed CONFIG command is reported as such. */
async function configGet(redis: Redis, name: string, where: string, durability: string): Promise<string> {
  let reply: unknown
  try {
    reply = await redis.config('GET', name)
  } catch (err) {
    const msg = (err as Error).message
    if (isReplyError(err) && /unknown command|NOPERM|no permissions/i.test(msg)) {
      throw new BadStoreConfig(
        `Cannot verify that the Redis server at ${where} keeps the durability=${durability} promise: CONFIG GET is ` +
          `disabled, renamed or not permitted there (${msg}). Check its persistence by hand (see docs/redis.md) ` +
          'and add verify=false to the pool URI to skip this check.',
      )
    }
    throw err
  }
  const arr = reply as string[]
  return arr.length >= 2 ? arr[1] : ''
}

/** Refuses a server whose persistence settings cannot keep the pool's durability promise. */
async function verifyPersistence(redis: Redis, opts: RedisPoolOptions, where: string): Promise<void> {
  const get = (name: string) => configGet(redis, name, where, opts.durability)
  const appendonly = await get('appendonly')
  const appendfsync = await get('appendfsync')
  const onRewrite = await get('no-appendfsync-on-rewrite')
  const eviction = await get('maxmemory-policy')
  const problems: string[] = []
  if (appendonly !== 'yes') problems.push(`appendonly is "${appendonly}" (needs yes)`)
  if (opts.durability === 'durable') {
    if (appendfsync !== 'always') problems.push(`appendfsync is "${appendfsync}" (needs always)`)
    if (onRewrite !== 'no') problems.push(`no-appendfsync-on-rewrite is "${onRewrite}" (needs no)`)
  } else if (appendfsync !== 'everysec' && appendfsync !== 'always') {
    problems.push(`appendfsync is "${appendfsync}" (needs everysec or always)`)
  }
  if (eviction.startsWith('allkeys-')) problems.push(`maxmemory-policy is "${eviction}" (would evict messages; use noeviction)`)
  if (problems.length > 0) {
    const conf = opts.durability === 'durable' ? 'deploy/redis/redis-durable.conf' : 'deploy/redis/redis-fast.conf'
    throw new BadStoreConfig(
      `The Redis server at ${where} cannot keep the durability=${opts.durability} promise: ${problems.join('; ')}. ` +
        `Configure it as in ${conf}, or choose another durability for this pool (see docs/redis.md).`,
    )
  }
}
