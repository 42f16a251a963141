/**
 * The worker process: opens one pool's storage driver and serves it over RPC on a Unix socket.
 *
 * Started by the supervisor (child_process.fork) with:
 *   MISSIVE_RESOLVED_CONFIG  the resolved config as JSON (validated again here)
 *   MISSIVE_POOL_URI         the storage URI of the pool this worker serves
 *   MISSIVE_WORKER_SOCKET    the Unix socket path to listen on
 *   MISSIVE_WORKER_INDEX     optional, for logs and metrics
 *   MISSIVE_POOL_NAME        optional, the pool's name in the catalog (metrics label; default `default`)
 *   MISSIVE_WORKER_NAME      optional, the process name in logs and metrics (default `worker-<index>`)
 * Sends `{type: 'ready'}` over IPC once listening, and answers the supervisor's
 * `{type: 'heartbeat', n}` with the same message (and the proxies' `heartbeat` RPC call): a worker
 * that stops answering is taken for hung and restarted (supervisor/child.ts). On SIGTERM (or when the supervisor's IPC
 * channel goes away) it stops accepting calls, lets those in flight finish (at most
 * `drainTimeoutMs`), closes the driver and exits 0. SIGINT is ignored under a supervisor: a
 * Ctrl-C reaches the whole process group, and the supervisor decides the shutdown order.
 */
import { parseConfig, type Config } from '../shared/config.js'
import { MissiveError } from '../shared/errors.js'
import { createLogger } from '../shared/log.js'
import { deadLetteredCounter, deadLetteredOf, workerMetrics } from './metrics.js'
import { serveRpc } from './rpc-server.js'
import { metered } from './storage/metered.js'
import { redactUri } from '../shared/storage/registry.js'
import { openDriver } from './storage/index.js'

function requireEnv(name: string): string {
  const v = process.env[name]
  if (v === undefined || v === '') {
    process.stderr.write(`missive worker: environment variable ${name} is required (the worker is started by "missive serve")\n`)
    process.exit(2)
  }
  return v
}

async function main(): Promise<void> {
  let config: Config
  try {
    config = parseConfig(JSON.parse(requireEnv('MISSIVE_RESOLVED_CONFIG')))
  } catch (err) {
    process.stderr.write(`missive worker: bad MISSIVE_RESOLVED_CONFIG: ${(err as Error).message}\n`)
    process.exit(2)
  }
  const poolUri = requireEnv('MISSIVE_POOL_URI')
  const socketPath = requireEnv('MISSIVE_WORKER_SOCKET')
  const index = process.env.MISSIVE_WORKER_INDEX
  const processName = process.env.MISSIVE_WORKER_NAME || (index === undefined ? 'worker' : `worker-${index}`)
  const log = createLogger(processName, config.logLevel)

  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception')
    process.exit(1)
  })
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection')
    process.exit(1)
  })

  let driver
  try {
    driver = await openDriver(poolUri, { dataDir: config.dataDir, durability: config.durability })
  } catch (err) {
    if (err instanceof MissiveError && err.code === 'bad_request') {
      process.stderr.write(`missive worker: cannot open pool ${redactUri(poolUri)}: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
  const metrics = workerMetrics(processName)
  const pool = process.env.MISSIVE_POOL_NAME ?? 'default'
  const served = config.metrics ? metered(driver, metrics.driver, { pool, worker: index ?? '0' }) : driver
  const opened = driver
  if (config.metrics) deadLetteredCounter(metrics.registry, pool, () => deadLetteredOf(opened))
  const server = await serveRpc(served, socketPath, log, {
    extraOps: {
      metrics: async () => (config.metrics ? metrics.registry.getMetricsAsJSON() : []),
      heartbeat: async () => 1,
      // The store's facts for the proxy's pool checks (proxy/circuit-breaker.ts): a round trip to
      // the store, so a check fails when the store cannot answer.
      storeInfo: async () => {
        const info = (driver as { info?: () => Promise<unknown> }).info
        if (info !== undefined) return info.call(driver)
        await driver.ping()
        return { role: 'embedded' }
      },
    },
  })

  let stopping = false
  const shutdown = async (reason: string): Promise<void> => {
    if (stopping) return
    stopping = true
    log.info({ reason, inFlight: server.inFlight }, 'worker draining')
    // Leave the driver time to close after the drain, within the supervisor's kill margin.
    await server.close(config.drainTimeoutMs)
    try {
      await driver.close()
    } catch (err) {
      log.error({ err }, 'driver close failed')
    }
    log.info('worker stopped')
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  if (process.send !== undefined) {
    process.on('SIGINT', () => {})
    process.on('disconnect', () => void shutdown('supervisor gone'))
    // Answered on this event loop: a stopped or stuck process leaves the supervisor unanswered.
    process.on('message', (msg: { type?: unknown; n?: unknown }) => {
      if (msg?.type === 'heartbeat') process.send?.({ type: 'heartbeat', n: msg.n })
    })
    process.send({ type: 'ready' })
  } else {
    process.on('SIGINT', () => void shutdown('SIGINT'))
  }
  log.info({ pool: redactUri(poolUri), socket: socketPath, driver: driver.kind }, 'worker ready')
}

main().catch((err: unknown) => {
  process.stderr.write(`missive worker: failed to start: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
