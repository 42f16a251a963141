/**
 * The proxy process entry, started by the supervisor with:
 * - `MISSIVE_RESOLVED_CONFIG`: the validated config as JSON;
 * - `MISSIVE_WORKER_SOCKETS`: JSON array of the default pool's worker sockets;
 * - `MISSIVE_CATALOG_URI`: the catalog store.
 * Sends `{type:'ready', port}` over IPC once listening; drains on SIGTERM and exits 0.
 */
import { defaultCatalogUri, openCatalog } from '../catalog/index.js'
import { parseConfig } from '../shared/config.js'
import { createLogger } from '../shared/log.js'
import type { DataDriver } from '../worker/storage/contract.js'
import { metered } from '../worker/storage/metered.js'
import { HttpServer } from './app.js'
import { ProxyMetrics, serveMetrics } from './metrics.js'
import { RpcDriver } from './rpc-client.js'
import { Router } from './router.js'

async function main(): Promise<void> {
  const config = parseConfig(JSON.parse(process.env.MISSIVE_RESOLVED_CONFIG ?? '{}'))
  const log = createLogger('proxy', config.logLevel, { async: config.accessLog })
  const sockets = JSON.parse(process.env.MISSIVE_WORKER_SOCKETS ?? '[]') as string[]
  if (!Array.isArray(sockets) || sockets.length === 0) throw new Error('MISSIVE_WORKER_SOCKETS names no worker socket')
  const catalog = await openCatalog(process.env.MISSIVE_CATALOG_URI ?? defaultCatalogUri(config.dataDir), { dataDir: config.dataDir })
  const drivers = sockets.map((s) => new RpcDriver(s, { timeoutMs: config.rpcTimeoutMs, log }))
  // Listen only once the workers answer, so the first requests do not meet a 503.
  await Promise.all(drivers.map((d) => d.ready(10_000)))
  const workers = drivers.map((driver, index) => ({ pool: 'default', index, driver }))
  let metrics: ProxyMetrics | undefined
  let routed: DataDriver[] = drivers
  if (config.metrics) {
    metrics = new ProxyMetrics(() => router, workers)
    const m = metrics
    routed = drivers.map((d, i) => metered(d, m.rpc, { pool: 'default', worker: String(i) }))
    // The supervisor pushes its children's restart counts over IPC.
    process.on('message', (msg: { type?: string; restarts?: Record<string, number> }) => {
      if (msg?.type === 'restarts' && msg.restarts) m.setRestarts(msg.restarts)
    })
  }
  const router = new Router({ catalog, pools: new Map([['default', routed]]), defaultPool: 'default' })
  const server = new HttpServer({ config, router, log, ...(metrics && { metrics }) })
  const port = await server.listen()
  const metricsServer = metrics && config.metricsPort > 0 ? await serveMetrics(config.bind, config.metricsPort, metrics) : undefined
  log.info({ bind: config.bind, port }, 'proxy listening')
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
    router.close()
    await Promise.all(drivers.map((d) => d.close()))
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
