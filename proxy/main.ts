/**
 * The proxy process entry, started by the supervisor with:
 * - `MISSIVE_RESOLVED_CONFIG`: the validated config as JSON;
 * - `MISSIVE_CATALOG_URI`: the catalog store.
 * The pools come from the catalog: for each, the proxy connects to the sockets the supervisor's
 * workers listen on (`poolSocketPath`), and follows pools being added, changed and removed.
 * Sends `{type:'ready', port}` over IPC once listening; drains on SIGTERM and exits 0.
 */
import { defaultCatalogUri, openCatalog, type Pool } from '../catalog/index.js'
import { Notifier } from './notify/notifier.js'
import { DEFAULT_POOL, poolSocketPath, poolWorkerCount } from '../catalog/pools.js'
import { resolveWorkers } from '../shared/auto-workers.js'
import { redactUri } from '../shared/storage/registry.js'
import { parseConfig } from '../shared/config.js'
import { MissiveError } from '../shared/errors.js'
import { createLogger } from '../shared/log.js'
import type { DataDriver } from '../shared/storage/contract.js'
import { metered } from '../worker/storage/metered.js'
import { HttpServer } from './app.js'
import { createAuthenticator } from './auth/index.js'
import { RateLimiter } from './limits/index.js'
import { EmbeddedPool } from './embedded.js'
import { LongPoll } from './long-poll.js'
import { RedisWakeups } from './long-poll-redis.js'
import { isRedisUri, parseRedisUri } from '../shared/storage/redis-uri.js'
import { ProxyMetrics, supervisorMetrics, serveMetrics, type WorkerRef } from './metrics.js'
import { BACKLOG, BacklogScanner } from './backlog.js'
import { RpcDriver } from './rpc-client.js'
import { CircuitBreaker, type StoreInfo } from './circuit-breaker.js'
import { PooledDriver } from './pooled-driver.js'
import { PoolSet, type PoolConnector } from './pool-set.js'
import { catalogMigrationLookup, MigrationService, reachThrough } from './migration-control.js'
import { MigrationMetrics } from './migration-metrics.js'
import { MigrationRunner } from './migration-runner.js'

async function main(): Promise<void> {
  const config = parseConfig(JSON.parse(process.env.MISSIVE_RESOLVED_CONFIG ?? '{}'))
  const log = createLogger('proxy', config.logLevel, { async: config.accessLog })
  const catalogUri = process.env.MISSIVE_CATALOG_URI ?? config.catalog ?? defaultCatalogUri(config.dataDir)
  const catalog = await openCatalog(catalogUri, { dataDir: config.dataDir })

  // Every worker's RpcDriver, by pool; `workers` is the live list the metrics page reads.
  const rpc = new Map<string, RpcDriver[]>()
  // Pools with no workers (`workers: 0`): their driver runs in this process.
  const embedded = new Map<string, EmbeddedPool>()
  const workers: WorkerRef[] = []
  // Parked long polls, and per Redis pool the subscriber that wakes them on other proxies' posts.
  const longPoll = new LongPoll({ perProject: config.longPollMaxWaitersPerProject, total: config.longPollMaxWaiters })
  const wakeups = new Map<string, RedisWakeups>()
  // Set once the HTTP server exists (WebSocket pushes of posts made through other proxies).
  let server: HttpServer | undefined
  const watch = (pool: Pool): RedisWakeups | undefined => {
    if (!isRedisUri(pool.uri) || config.longPollMaxWait === 0) return undefined
    try {
      // Posts made through other proxies: long polls are woken, WebSocket subscribers get pushes.
      const w = new RedisWakeups(parseRedisUri(pool.uri, config.durability), longPoll, log, (ref, ids) => server?.websocket?.subscriptions.remote(ref, ids))
      wakeups.set(pool.name, w)
      return w
    } catch (err) {
      // The pool's own driver reports a bad URI; waiters there just wait out their time.
      log.warn({ pool: pool.name, err: (err as Error).message }, 'long-poll wake-ups: cannot follow the pool')
      return undefined
    }
  }
  // What each `connector.open` made, by the driver list it returned: a pool re-opened (its worker
  // count changed) is opened before its old drivers close, so `close` must release exactly what
  // the old open made — the maps above already name the new one.
  const opened = new Map<DataDriver[], { wake: RedisWakeups | undefined; local?: EmbeddedPool; rpc: RpcDriver[] }>()
  const metrics = config.metrics ? new ProxyMetrics(() => storage, workers, { cacheMs: config.metricsCacheMs, supervisor: supervisorMetrics() }) : undefined
  if (metrics) {
    metrics.longPollWaiting = () => longPoll.size
    metrics.websocketConnections = () => server?.websocket?.size ?? 0
  }
  // Each pool worker's circuit breaker, by pool (docs/ha.md, "Failure isolation").
  const breakers = new Map<string, CircuitBreaker[]>()
  const guarded = (pool: string, worker: string, driver: DataDriver, rpc?: RpcDriver): DataDriver => {
    const b = new CircuitBreaker(driver, {
      failures: config.poolBreakerFailures,
      stallMs: config.poolStallMs,
      checkMs: config.poolCheckMs,
      ...(rpc && {
        info: () => rpc.call('storeInfo', []) as Promise<StoreInfo>,
        lastHeard: () => rpc.lastHeard,
        abort: (err: () => MissiveError) => rpc.failPending(err),
      }),
      onChange: (open, reason) =>
        open ? log.warn({ pool, worker, reason }, 'pool store unreachable: its requests fail at once') : log.info({ pool, worker }, 'pool store reachable again'),
      onFailover: (from, to, count) => {
        log.warn({ pool, worker, from, to, count }, 'pool store is another server now (failover or restart)')
        // Every worker of the pool sees it: count it once, from the first worker.
        if (breakers.get(pool)?.[0] === b) metrics?.failover(pool, count)
      },
    })
    metrics?.poolOpened(pool)
    breakers.set(pool, [...(breakers.get(pool) ?? []), b])
    return b.driver
  }
  // A number when the supervisor started this proxy (it decides "auto" once); resolved here
  // otherwise, once, not at every catalog reload.
  const defaultWorkers = resolveWorkers(config.workers, config.defaultPool).workers
  const connector: PoolConnector = {
    key: (pool: Pool) => String(poolWorkerCount(pool, defaultWorkers)),
    open(pool: Pool): DataDriver[] {
      const n = poolWorkerCount(pool, defaultWorkers)
      const wake = watch(pool)
      if (n === 0) {
        const local = new EmbeddedPool(pool.name, pool.uri, { dataDir: config.dataDir, durability: config.durability }, log)
        embedded.set(pool.name, local)
        rpc.delete(pool.name)
        log.info({ pool: pool.name, workers: 0 }, 'pool served inside the proxy')
        const served = [guarded(pool.name, 'proxy', metrics ? metered(local.driver, metrics.rpc, { pool: pool.name, worker: 'proxy' }) : local.driver)]
        opened.set(served, { wake, local, rpc: [] })
        return served
      }
      const drivers = Array.from(
        { length: n },
        // A worker that is not up yet is retried often: a new pool serves as soon as it is.
        (_, i) =>
          new RpcDriver(poolSocketPath(config.dataDir, pool.name, i), {
            timeoutMs: config.rpcTimeoutMs,
            log,
            reconnectMaxMs: 250,
            // A worker that stops answering fails its calls at once (docs/operations.md).
            heartbeatMs: config.workerHungAfterMs > 0 ? config.workerHeartbeatMs : 0,
            hungAfterMs: config.workerHungAfterMs,
          }),
      )
      rpc.set(pool.name, drivers)
      embedded.delete(pool.name)
      drivers.forEach((driver, index) => workers.push({ pool: pool.name, index, driver }))
      log.info({ pool: pool.name, workers: n }, 'pool connected')
      const served = drivers.map((d, i) =>
        guarded(
          pool.name,
          String(i),
          metrics ? metered(d, metrics.rpc, { pool: pool.name, worker: String(i) }) : d,
          d,
        ),
      )
      opened.set(served, { wake, rpc: drivers })
      return served
    },
    close(pool: string, closing: DataDriver[]): void {
      // A pool re-opened (its worker count changed) is opened before the old drivers close:
      // only the old drivers' breakers go, or the new ones would be forgotten (never counted).
      const left = (breakers.get(pool) ?? []).filter((b) => {
        if (!closing.includes(b.driver)) return true
        b.close()
        return false
      })
      if (left.length > 0) breakers.set(pool, left)
      else breakers.delete(pool)
      const made = opened.get(closing)
      opened.delete(closing)
      if (made === undefined) return
      made.wake?.close()
      if (wakeups.get(pool) === made.wake) wakeups.delete(pool)
      if (made.local && embedded.get(pool) === made.local) embedded.delete(pool)
      void made.local?.close()
      if (rpc.get(pool) === made.rpc) rpc.delete(pool)
      for (let i = workers.length - 1; i >= 0; i--) if (made.rpc.includes(workers[i]!.driver as RpcDriver)) workers.splice(i, 1)
      for (const d of made.rpc) void d.close()
      log.info({ pool, workers: made.local ? 0 : made.rpc.length }, 'pool disconnected')
    },
  }
  metrics?.watchPools(() => breakers)
  const pools = new PoolSet({ catalog, connector, defaultPool: DEFAULT_POOL, pollMs: config.catalogPollMs })
  // Long-poll and push marks name the pool a queue was on: a queue deleted or moved anywhere is
  // marked again where it lives now, and a change to the pools drops the long-poll ones
  // (proxy/long-poll.ts; push marks are renewed every 20 s anyway, proxy/websocket-push.ts).
  pools.onRemoval((ref) => {
    longPoll.placementRemoved(ref)
    server?.websocket?.subscriptions.placementRemoved(ref)
  })
  pools.onVersion(() => longPoll.forgetMarks())
  // Every pool behind one driver: handlers cannot tell it from a single store.
  const storage = new PooledDriver({ pools, log, switchWaitMs: config.migrationSwitchWaitMs, migrations: catalogMigrationLookup(catalog) })
  await pools.refresh()
  // Listen only once the workers answer, so the first requests do not meet a 503: the default
  // pool's are required, other pools' are waited for a little (their supervisor started them first).
  if (!rpc.has(DEFAULT_POOL) && !embedded.has(DEFAULT_POOL)) throw new Error(`the catalog has no pool named ${DEFAULT_POOL}`)
  const ready = (pool: string, timeoutMs: number): Promise<void>[] => {
    const local = embedded.get(pool)
    return local ? [local.ready(timeoutMs)] : (rpc.get(pool) ?? []).map((d) => d.ready(timeoutMs))
  }
  try {
    await Promise.all(ready(DEFAULT_POOL, 10_000))
  } catch (err) {
    // A default pool served here that its driver refuses is a configuration error, as in a worker.
    if (err instanceof MissiveError && err.code === 'bad_request') {
      process.stderr.write(`missive proxy: cannot open pool ${redactUri(embedded.get(DEFAULT_POOL)?.uri ?? DEFAULT_POOL)}: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
  await Promise.allSettled([...rpc.keys(), ...embedded.keys()].flatMap((pool) => ready(pool, 5_000)))
  // A breaker may have tripped on a check made while its pool was still opening (an embedded
  // Redis pool connecting): check the open ones again now that the pools answer, before listening.
  for (let i = 0; i < 2; i++) await Promise.allSettled([...breakers.values()].flat().filter((b) => b.isOpen).map((b) => b.check()))

  // Live migrations (docs/migration.md): every proxy runs a runner, taking work through catalog leases.
  const mconf = config.migration
  const runner =
    mconf.concurrency === 0
      ? undefined
      : new MigrationRunner({
          catalog,
          reach: reachThrough(pools),
          log,
          leaseMs: mconf.leaseMs,
          pollMs: mconf.pollMs,
          maxRunning: mconf.concurrency,
          batch: mconf.batch,
          journalBatch: mconf.batch,
          ...(metrics && { observer: new MigrationMetrics(metrics.registry) }),
          // A drain's next queue starts as soon as one of its migrations ends, not at the next poll.
          onEnded: (m) => migrations.migrationEnded(m),
        })
  const migrations = new MigrationService({ catalog, pools, getQueue: (ref) => storage.getQueue(ref), config: mconf, log, kick: () => void runner?.kick() })
  pools.migrations = migrations
  const drainTimer = setInterval(() => void migrations.drainTick().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'drain top-up failed')), mconf.pollMs)
  drainTimer.unref()

  // Per-pool backlog for /metrics and GET /v2/admin/queues/top, scanned in the background.
  const backlog = new BacklogScanner(pools, log, { cycleMs: config.backlogScanMs }).start()
  BACKLOG.set(pools, backlog)
  metrics?.watchBacklog(backlog)
  metrics?.watchDeadLettered(function* () {
    for (const [pool, local] of embedded) {
      const c = local.deadLettered
      if (c !== undefined) yield { pool, ...c }
    }
    for (const [pool, source] of storage.deadLetters.movedFrom) yield { pool, source, n: source.n }
  })
  const auth = await createAuthenticator(config, { catalogUri, log })
  // Subscriptions' deliveries (docs/notifications.md): off the request path, resumed from the catalog's cursors.
  const notifier = new Notifier({ catalog, storage, config, log, registry: metrics?.registry })
  const limiter = await RateLimiter.open(config, catalogUri)
  // Quotas of queues per project are checked where queues are placed (docs/limits.md, "Quotas").
  if (limiter?.quotas) storage.queueQuota = (project) => limiter.queueQuota(project)
  // Stored bytes per project: summed by the backlog scan, enforced by the limiter (docs/limits.md).
  backlog.storedBytes = limiter?.storedBytes
  server = new HttpServer({ config, storage, control: pools, log, longPoll, auth, limiter, notifier, ...(metrics && { metrics }) })
  const port = await server.listen()
  const metricsServer = metrics && config.metricsPort > 0 ? await serveMetrics(config.metricsBind ?? config.bind, config.metricsPort, metrics) : undefined
  log.info({ bind: config.bind, port, ...(config.adminPort > 0 && { adminBind: config.adminBind ?? config.bind, adminPort: config.adminPort }) }, 'proxy listening')
  process.send?.({ type: 'ready', port })
  runner?.start()
  void notifier.start().catch((err: unknown) => log.warn({ err }, 'notifier: start-up scan failed (queues are served on their next post)'))
  // The access log is buffered: push it out at least every second, so `tail -f` keeps up.
  if (config.accessLog) setInterval(() => log.flush(), 1000).unref()

  let stopping = false
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    log.info({ signal, inflight: server.inflight }, 'draining')
    clearInterval(drainTimer)
    // Leases released: another proxy takes over at once instead of after a lease's length.
    await runner?.stop()
    await server.drain(config.drainTimeoutMs)
    server.close()
    notifier.close()
    backlog.stop()
    metricsServer?.close()
    await storage.close()
    for (const w of wakeups.values()) w.close()
    await Promise.all([...[...rpc.values()].flat(), ...embedded.values()].map((d) => d.close()))
    await auth.close()
    await limiter?.close()
    await catalog.close()
    log.info('proxy stopped')
    log.flush()
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
  // The supervisor going away (IPC channel closed) means nobody will restart or stop us cleanly.
  process.on('disconnect', () => void stop('disconnect'))
}

main().catch((err: unknown) => {
  process.stderr.write(`missive proxy: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
