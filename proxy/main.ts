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
import { HttpServer } from './app.js'
import { RpcDriver } from './rpc-client.js'
import { Router } from './router.js'

async function main(): Promise<void> {
  const config = parseConfig(JSON.parse(process.env.MISSIVE_RESOLVED_CONFIG ?? '{}'))
  const log = createLogger('proxy', config.logLevel)
  const sockets = JSON.parse(process.env.MISSIVE_WORKER_SOCKETS ?? '[]') as string[]
  if (!Array.isArray(sockets) || sockets.length === 0) throw new Error('MISSIVE_WORKER_SOCKETS names no worker socket')
  const catalog = await openCatalog(process.env.MISSIVE_CATALOG_URI ?? defaultCatalogUri(config.dataDir), { dataDir: config.dataDir })
  const drivers = sockets.map((s) => new RpcDriver(s, { timeoutMs: config.rpcTimeoutMs, log }))
  // Listen only once the workers answer, so the first requests do not meet a 503.
  await Promise.all(drivers.map((d) => d.ready(10_000)))
  const router = new Router({ catalog, pools: new Map([['default', drivers]]), defaultPool: 'default' })
  const server = new HttpServer({ config, router, log })
  const port = await server.listen()
  log.info({ bind: config.bind, port }, 'proxy listening')
  process.send?.({ type: 'ready', port })

  let stopping = false
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    log.info({ signal, inflight: server.inflight }, 'draining')
    await server.drain(config.drainTimeoutMs)
    server.close()
    router.close()
    await Promise.all(drivers.map((d) => d.close()))
    await catalog.close()
    log.info('proxy stopped')
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
