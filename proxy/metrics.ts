/**
 * The proxy's metrics, and the one /metrics page: the proxy's own registry merged with every
 * worker's (fetched over RPC) and the supervisor's (pushed over IPC), so a scrape sees the whole
 * deployment — not whichever process happened to answer.
 */
import { uWS } from './uws.js'
import { Counter, Gauge, Histogram } from 'prom-client'
import { CONTENT_TYPE, exposition, LATENCY_BUCKETS, processRegistry, type MetricsJson } from '../shared/metrics.js'
import type { DriverMetrics } from '../worker/storage/metered.js'
import { DEAD_LETTERED, DEAD_LETTERED_HELP } from '../worker/metrics.js'
import type { PoolBacklog } from './backlog.js'
import type { RpcDriver } from './rpc-client.js'
import { histogramChild } from '../shared/histogram-child.js'

export interface WorkerRef {
  pool: string
  index: number
  driver: RpcDriver
}

/** One route/method/status series of the request metrics. */
interface RequestSeries {
  labels: { route: string; method: string; status: string; code: string }
  /** Requests answered; `counted` of them are already in the counter. */
  count: number
  counted: number
  time: { observe(v: number): void }
}

export class ProxyMetrics {
  readonly registry = processRegistry('proxy')
  // `status` is the class (2xx…), kept for existing rules and dashboards; `code` the exact status
  // (bounded: the handful of codes the API answers).
  readonly #requests: Counter<'route' | 'method' | 'status' | 'code'> = new Counter({
    name: 'missive_http_requests_total',
    help: 'HTTP requests answered, by route template, method, status class and status code.',
    labelNames: ['route', 'method', 'status', 'code'],
    registers: [this.registry],
    collect: () => this.#collectRequests(),
  })
  readonly #duration = new Histogram({
    name: 'missive_http_request_duration_seconds',
    help: 'Time from request to reply in the proxy, by route template and method.',
    labelNames: ['route', 'method'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })
  readonly inflight = new Gauge({
    name: 'missive_http_requests_in_flight',
    help: 'Requests received and not yet answered.',
    registers: [this.registry],
  })
  /** Long-polling requests registered now (proxy/long-poll.ts); set by whoever owns them, read at scrape time. */
  longPollWaiting: () => number = () => 0
  readonly #longPoll: Gauge = new Gauge({
    name: 'missive_long_poll_waiting',
    help: 'Long-polling claims and listings (wait=) registered in the proxy: waiting, or trying again after a wake-up.',
    registers: [this.registry],
    collect: () => this.#longPoll.set(this.longPollWaiting()),
  })
  /** WebSocket connections open now (proxy/websocket.ts); set by whoever owns them, read at scrape time. */
  websocketConnections: () => number = () => 0
  readonly #websockets: Gauge = new Gauge({
    name: 'missive_websocket_connections',
    help: "Connections open on Zaqar's WebSocket API (wsPath).",
    registers: [this.registry],
    collect: () => this.#websockets.set(this.websocketConnections()),
  })
  /** For wrapping each worker's RpcDriver (see worker/storage/metered.ts). */
  readonly rpc: DriverMetrics = {
    duration: new Histogram({
      name: 'missive_rpc_call_duration_seconds',
      help: 'Round trip of a storage call from the proxy to a worker, by pool, worker and operation.',
      labelNames: ['pool', 'worker', 'operation', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [this.registry],
    }),
  }
  readonly #scrapeErrors = new Counter({
    name: 'missive_metrics_scrape_errors_total',
    help: 'Workers whose metrics could not be fetched for a /metrics page.',
    registers: [this.registry],
  })
  readonly #workers: WorkerRef[]
  /** The supervisor's registry, asked over IPC (undefined when there is no supervisor). */
  readonly #supervisor: (() => Promise<MetricsJson>) | undefined
  /** Each pool's circuit breakers (proxy/circuit-breaker.ts), read at scrape time. */
  #pools: () => Iterable<[string, readonly { readonly isOpen: boolean }[]]> = () => []
  readonly #poolUp = new Gauge({
    name: 'missive_pool_storage_up',
    help: "1 while every worker of the pool reaches its store (no circuit breaker open), 0 while the pool's requests fail at once (docs/ha.md).",
    labelNames: ['pool'],
    registers: [this.registry],
    collect: () => {
      this.#poolUp.reset()
      for (const [pool, breakers] of this.#pools()) this.#poolUp.set({ pool }, breakers.some((b) => b.isOpen) ? 0 : 1)
    },
  })
  readonly #failovers = new Counter({
    name: 'missive_pool_failovers_total',
    help: "Times a pool's store answered as another server than before: a failover (Sentinel) or a restart (docs/ha.md).",
    labelNames: ['pool'],
    registers: [this.registry],
  })

  readonly #cacheMs: number
  /** The last collection, reused for `cacheMs`; `at` is when it started (performance.now()). */
  #last: { at: number; text: Promise<string> } | undefined

  /**
   * `cache` reads the pooled driver's placement-cache counts (at scrape time). `cacheMs`: how long one
   * aggregated page is reused (default 0: every scrape collects, though concurrent ones share).
   */
  constructor(
    cache: () => { readonly hits: number; readonly misses: number },
    workers: WorkerRef[],
    opts: { cacheMs?: number; supervisor?: () => Promise<MetricsJson> } = {},
  ) {
    this.#workers = workers
    this.#supervisor = opts.supervisor
    this.#cacheMs = opts.cacheMs ?? 0
    const registers = [this.registry]
    new Gauge({
      name: 'missive_rpc_pending_calls',
      help: 'Storage calls sent to a worker and not yet answered (its queue depth as the proxy sees it).',
      labelNames: ['pool', 'worker'],
      registers,
      collect() {
        for (const w of workers) this.set({ pool: w.pool, worker: String(w.index) }, w.driver.pendingCalls)
      },
    })
    new Gauge({
      name: 'missive_rpc_worker_up',
      help: '1 while the proxy holds a connection to the worker.',
      labelNames: ['pool', 'worker'],
      registers,
      collect() {
        for (const w of workers) this.set({ pool: w.pool, worker: String(w.index) }, w.driver.connected ? 1 : 0)
      },
    })
    const hits = new Counter({ name: 'missive_catalog_cache_hits_total', help: 'Placement lookups answered from the proxy cache.', registers })
    const misses = new Counter({ name: 'missive_catalog_cache_misses_total', help: 'Placement lookups that went to the catalog.', registers })
    // Counters mirror the pooled driver's plain counts at scrape time (the hot path only does ++).
    const mirror = (counter: Counter, value: () => number): void => {
      let seen = 0
      ;(counter as unknown as { collect: () => void }).collect = () => {
        const v = value()
        if (v > seen) counter.inc(v - seen)
        seen = v
      }
    }
    mirror(hits, () => cache().hits)
    mirror(misses, () => cache().misses)
  }

  /**
   * Per-pool backlog gauges, read at scrape time from the scanner's last pass (proxy/backlog.ts):
   * the page costs the same with 1 queue or 100,000. Labels: `pool` only (and `state`), never a
   * queue or project.
   */
  watchBacklog(scanner: { readonly pools: ReadonlyMap<string, PoolBacklog> }): void {
    const registers = [this.registry]
    const perPool = (name: string, help: string, read: (b: PoolBacklog) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['pool'],
        registers,
        collect() {
          this.reset()
          for (const [pool, b] of scanner.pools) this.set({ pool }, read(b))
        },
      })
    }
    new Gauge({
      name: 'missive_pool_messages',
      help: 'Messages in the pool by state (free: claimable or delayed; claimed), as of the last backlog scan.',
      labelNames: ['pool', 'state'],
      registers,
      collect() {
        this.reset()
        for (const [pool, b] of scanner.pools) {
          this.set({ pool, state: 'free' }, b.free)
          this.set({ pool, state: 'claimed' }, b.claimed)
        }
      },
    })
    perPool('missive_pool_messages_delayed', 'Of the free messages in the pool, those whose delay has not run out (not claimable yet), as of the last backlog scan.', (b) => b.delayed)
    perPool('missive_pool_queues', 'Queues placed on the pool, as of the last backlog scan.', (b) => b.queues)
    perPool('missive_pool_oldest_message_age_seconds', 'Age of the oldest message in any queue of the pool (SQS ApproximateAgeOfOldestMessage), as of the last backlog scan.', (b) => b.oldestAgeSeconds)
    perPool('missive_pool_backlog_unread_queues', 'Queues whose stats the last backlog scan could not read (not in the sums).', (b) => b.unreadQueues)
    perPool('missive_pool_backlog_scan_age_seconds', 'Seconds since the backlog scan last finished a pass over the pool.', (b) => (Date.now() - b.at) / 1000)
  }

  /**
   * Per route/method/status: the request count (a plain number, added to the counter at scrape
   * time as `mirror` does) and the histogram's labelled child.
   */
  readonly #children = new Map<string, RequestSeries>()

  /** Records one answered request. `route` is the route template, never the concrete path. */
  observe(route: string, method: string, status: number, seconds: number): void {
    const key = `${status}${method} ${route}`
    let c = this.#children.get(key)
    if (c === undefined) {
      c = { labels: { route, method, status: `${Math.floor(status / 100)}xx`, code: String(status) }, count: 0, counted: 0, time: histogramChild(this.#duration, { route, method }) }
      this.#children.set(key, c)
    }
    c.count++
    c.time.observe(seconds)
  }

  /** The request counter's `collect`: adds what each series counted since the last scrape. */
  #collectRequests(): void {
    for (const c of this.#children.values()) {
      if (c.count > c.counted) this.#requests.inc(c.labels, c.count - c.counted)
      c.counted = c.count
    }
  }

  /**
   * `missive_messages_dead_lettered_total{pool}` in the proxy: what the stores it opens itself
   * (pools with `workers: 0`) moved at claim time, and what its mover copied across pools
   * (proxy/dead-letter.ts). Each source is a plain count read at scrape time; `source` tells a
   * reopened driver (counting from 0 again) from the one before. Workers export their own.
   */
  watchDeadLettered(read: () => Iterable<{ pool: string; source: object; n: number }>): void {
    const seen = new WeakMap<object, number>()
    const counter: Counter<'pool'> = new Counter({
      name: DEAD_LETTERED,
      help: DEAD_LETTERED_HELP,
      labelNames: ['pool'],
      registers: [this.registry],
      collect() {
        for (const { pool, source, n } of read()) {
          const before = seen.get(source) ?? 0
          counter.inc({ pool }, n > before ? n - before : 0)
          seen.set(source, Math.max(before, n))
        }
      },
    })
  }

  /** Where `missive_pool_storage_up` reads each pool's breakers. */
  watchPools(source: () => Iterable<[string, readonly { readonly isOpen: boolean }[]]>): void {
    this.#pools = source
  }

  /** A pool is served here: its failover counter exists from now on (at 0). */
  poolOpened(pool: string): void {
    this.#failovers.inc({ pool }, 0)
  }

  /** The pool's store answered as another server (`missive_pool_failovers_total`). */
  failover(pool: string, count = 1): void {
    this.#failovers.inc({ pool }, count)
  }

  /**
   * The whole deployment's exposition. A collection asks every worker over RPC and renders every
   * registry: scrapers polling the page (several Prometheus replicas, say) share one collection
   * while it runs and for `cacheMs` after it started.
   */
  exposition(): Promise<string> {
    const now = performance.now()
    const last = this.#last
    if (last !== undefined && now - last.at < this.#cacheMs) return last.text
    if (last !== undefined && this.#pending === last.text) return last.text
    const text = this.#collect()
    this.#last = { at: now, text }
    this.#pending = text
    const settle = (): void => {
      if (this.#pending === text) this.#pending = undefined
    }
    text.then(settle, () => {
      settle()
      // A failed collection is not reused.
      if (this.#last?.text === text) this.#last = undefined
    })
    return text
  }

  /** The collection still running, shared by every scrape that arrives meanwhile. */
  #pending: Promise<string> | undefined

  /** One collection: this registry and every worker's. A worker that does not answer is skipped and counted. */
  async #collect(): Promise<string> {
    const parts = await Promise.all(
      this.#workers.map(async (w): Promise<MetricsJson> => {
        try {
          return (await w.driver.call('metrics', [])) as MetricsJson
        } catch {
          this.#scrapeErrors.inc()
          return []
        }
      }),
    )
    const supervisor = this.#supervisor === undefined ? [] : await this.#supervisor().catch((): MetricsJson => {
      this.#scrapeErrors.inc()
      return []
    })
    return exposition([await this.registry.getMetricsAsJSON(), ...parts, supervisor])
  }
}

/** How long a scrape waits for the supervisor's metrics before leaving them out. */
const SUPERVISOR_TIMEOUT_MS = 1000

/**
 * Asks the supervisor (this process's parent, over IPC) for its registry: `metrics-request` →
 * `supervisor-metrics` (supervisor/metrics.ts). Undefined when this process has no IPC channel.
 */
export function supervisorMetrics(): (() => Promise<MetricsJson>) | undefined {
  if (typeof process.send !== 'function') return undefined
  let next = 0
  const waiting = new Map<number, (json: MetricsJson) => void>()
  process.on('message', (msg: { type?: string; id?: number; json?: MetricsJson }) => {
    if (msg?.type !== 'supervisor-metrics' || typeof msg.id !== 'number') return
    waiting.get(msg.id)?.(msg.json ?? [])
    waiting.delete(msg.id)
  })
  return () =>
    new Promise<MetricsJson>((resolve, reject) => {
      const id = ++next
      const timer = setTimeout(() => {
        waiting.delete(id)
        reject(new Error('the supervisor did not answer in time'))
      }, SUPERVISOR_TIMEOUT_MS)
      waiting.set(id, (json) => {
        clearTimeout(timer)
        resolve(json)
      })
      process.send!({ type: 'metrics-request', id })
    })
}

/** A second listener serving only GET /metrics, for an admin network (`metricsPort`). */
export function serveMetrics(bind: string, port: number, metrics: ProxyMetrics): Promise<{ close(): void }> {
  const app = uWS.App().get('/metrics', (res) => {
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    metrics.exposition().then(
      (text) => {
        if (aborted) return
        res.cork(() => {
          res.writeHeader('content-type', CONTENT_TYPE)
          res.end(text)
        })
      },
      () => {
        if (!aborted) res.cork(() => res.writeStatus('503 Service Unavailable').end())
      },
    )
  })
  return new Promise((resolve, reject) => {
    app.listen(bind, port, (socket) => {
      if (socket === false) reject(new Error(`cannot listen on ${bind}:${port} for metrics`))
      else resolve({ close: () => uWS.us_listen_socket_close(socket) })
    })
  })
}
