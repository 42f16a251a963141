/**
 * The proxy process entry, started by the supervisor with:
 * - `MISSIVE_RESOLVED_CONFIG`: the validated config as JSON;
 * - `MISSIVE_CATALOG_URI`: the catalog store.
 * The pools come from the catalog: for each, the proxy connects to the sockets the supervisor's
 * workers listen on (`poolSocketPath`), and follows pools being added, changed and removed.
 * Sends `{type:'ready', port}` over IPC once listening; drains on SIGTERM and exits 0.
 */
import { defaultCatalogUri, openCatalog, type Pool } from '../catalog/index.js'
import { DEFAULT_POOL, poolSocketPath, poolWorkerCount } from '../catalog/pools.js'
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
import { ProxyMetrics, serveMetrics, type WorkerRef } from './metrics.js'
import { RpcDriver } from './rpc-client.js'
import { PooledDriver } from './pooled-driver.js'
import { PoolSet, type PoolConnector } from './pool-set.js'

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
  const metrics = config.metrics ? new ProxyMetrics(() => storage, workers, { cacheMs: config.metricsCacheMs }) : undefined
  const connector: PoolConnector = {
    key: (pool: Pool) => String(poolWorkerCount(pool, config.workers)),
    open(pool: Pool): DataDriver[] {
      const n = poolWorkerCount(pool, config.workers)
      if (n === 0) {
        const local = new EmbeddedPool(pool.name, pool.uri, { dataDir: config.dataDir, durability: config.durability }, log)
        embedded.set(pool.name, local)
        log.info({ pool: pool.name, workers: 0 }, 'pool served inside the proxy')
        return [metrics ? metered(local.driver, metrics.rpc, { pool: pool.name, worker: 'proxy' }) : local.driver]
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
      drivers.forEach((driver, index) => workers.push({ pool: pool.name, index, driver }))
      log.info({ pool: pool.name, workers: n }, 'pool connected')
      return metrics ? drivers.map((d, i) => metered(d, metrics.rpc, { pool: pool.name, worker: String(i) })) : drivers
    },
    close(pool: string): void {
      const local = embedded.get(pool)
      embedded.delete(pool)
      void local?.close()
      const drivers = rpc.get(pool) ?? []
      rpc.delete(pool)
      for (let i = workers.length - 1; i >= 0; i--) if (drivers.includes(workers[i]!.driver)) workers.splice(i, 1)
      for (const d of drivers) void d.close()
      log.info({ pool }, 'pool disconnected')
    },
  }
  if (metrics) {
    const m = metrics
    // The supervisor pushes its children's restart counts over IPC.
    process.on('message', (msg: { type?: string; restarts?: Record<string, number> }) => {
      if (msg?.type === 'restarts' && msg.restarts) m.setRestarts(msg.restarts)
    })
  }
  const pools = new PoolSet({ catalog, connector, defaultPool: DEFAULT_POOL, pollMs: 250 })
  // Every pool behind one driver: handlers cannot tell it from a single store.
  const storage = new PooledDriver({ pools, log })
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

  const auth = await createAuthenticator(config, { catalogUri, log })
  const limiter = await RateLimiter.open(config, catalogUri)
  const server = new HttpServer({ config, storage, control: pools, log, auth, limiter, ...(metrics && { metrics }) })
  const port = await server.listen()
  const metricsServer = metrics && config.metricsPort > 0 ? await serveMetrics(config.metricsBind ?? config.bind, config.metricsPort, metrics) : undefined
  log.info({ bind: config.bind, port, ...(config.adminPort > 0 && { adminBind: config.adminBind ?? config.bind, adminPort: config.adminPort }) }, 'proxy listening')
  process.send?.({ type: 'ready', port })
  // The access log is buffered: push it out at least every second, so `tail -f` keeps up.
  if (config.accessLog) setInterval(() => log.flush(), 1000).unref()

  let stopping = false
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    log.info({ signal, inflight: server.inflight }, 'draining')
    await server.drain(config.drainTimeoutMs)
    server.close()
    metricsServer?.close()
    await storage.close()
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
