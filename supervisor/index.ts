/**
 * The supervisor behind `missive serve`: prepares the data directory and catalog, starts the
 * workers, then the proxy once every worker is ready, restarts crashed children with back-off,
 * and on SIGTERM/SIGINT shuts down in order — proxy first (it drains in-flight HTTP requests,
 * which need the workers), then the workers (they drain in-flight storage calls).
 *
 * Children are forked from the entry files next to this one (`.ts` under tsx, `.js` from dist/)
 * and get everything they need in the environment:
 * - every child: `MISSIVE_RESOLVED_CONFIG` (the resolved config as JSON; check it with
 *   `parseConfig`) and `MISSIVE_CATALOG_URI`;
 * - a worker: `MISSIVE_POOL_URI`, `MISSIVE_WORKER_SOCKET`, `MISSIVE_WORKER_INDEX`;
 * - the proxy: `MISSIVE_WORKER_SOCKETS`, a JSON array of the workers' socket paths (index i is
 *   worker i; all serve the pool named `default`).
 * Each child sends `{type: 'ready'}` over IPC once it serves; the proxy adds `port`.
 */
import { existsSync } from 'node:fs'
import { chmod, mkdir } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultCatalogUri, openCatalog } from '../catalog/index.js'
import { ConfigError, type Config } from '../shared/config.js'
import type { Logger } from '../shared/log.js'
import { ManagedChild } from './child.js'

/** Linux `sun_path` holds 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107

/** Extra time a child gets past `drainTimeoutMs` before SIGKILL. */
export const KILL_MARGIN_MS = 2000

export interface SupervisorOptions {
  /** Worker entry script (default: worker/main next to this file). */
  workerEntry?: string
  /** Proxy entry script (default: proxy/main next to this file). */
  proxyEntry?: string
  /** Node flags for children (default: this process's `execArgv`). */
  execArgv?: string[]
  /** Stop on SIGTERM/SIGINT (default true). Tests that call `stop()` themselves pass false. */
  handleSignals?: boolean
  /** Restart back-off bounds, for tests. */
  backoffMinMs?: number
  backoffMaxMs?: number
  healthyAfterMs?: number
  readyTimeoutMs?: number
}

export interface Supervisor {
  /** The port the proxy reported. */
  readonly port: number
  /** Socket path of each worker. */
  readonly workerSockets: readonly string[]
  /** Current pids (undefined while a child is being restarted). */
  pids(): { proxy: number | undefined; workers: (number | undefined)[] }
  /** Ordered shutdown (proxy, then workers). Idempotent; resolves when every child has exited. */
  stop(): Promise<void>
  /** Resolves when the supervisor has stopped (after a signal or `stop()`). */
  readonly done: Promise<void>
}

const here = fileURLToPath(import.meta.url)
const ext = extname(here) === '.ts' ? '.ts' : '.js'
const sibling = (rel: string): string => fileURLToPath(new URL(`../${rel}${ext}`, import.meta.url))

/** Worker `i`'s socket path; throws `ConfigError` when it would not fit in `sun_path`. */
export function workerSocketPath(dataDir: string, i: number): string {
  const path = join(dataDir, 'run', `worker-${i}.sock`)
  const bytes = Buffer.byteLength(path)
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new ConfigError(
      `dataDir is too long for worker sockets: ${path} is ${bytes} bytes, Unix sockets allow ` +
        `${MAX_SOCKET_PATH_BYTES}. Choose a shorter dataDir (MISSIVE_DATA_DIR).`,
    )
  }
  return path
}

/**
 * Prepares `<dataDir>` (and `<dataDir>/run`, mode 0700) and the catalog, registering the pool
 * `default` on `config.defaultPool` (updated when the config names another URI).
 */
export async function prepareDataDir(config: Config, log: Logger): Promise<void> {
  await mkdir(config.dataDir, { recursive: true })
  const run = join(config.dataDir, 'run')
  await mkdir(run, { recursive: true, mode: 0o700 })
  await chmod(run, 0o700)
  const catalog = await openCatalog(defaultCatalogUri(config.dataDir))
  try {
    const pool = await catalog.getPool('default')
    if (pool === null) {
      await catalog.putPool({ name: 'default', uri: config.defaultPool, weight: 1, flavor: null, options: {} })
      log.info({ pool: 'default' }, 'registered the default pool in the catalog')
    } else if (pool.uri !== config.defaultPool) {
      log.warn({ pool: 'default' }, 'the default pool URI changed in the config; updating the catalog')
      await catalog.putPool({ ...pool, uri: config.defaultPool })
    }
  } finally {
    await catalog.close()
  }
}

/** Runs a deployment from `config`. Resolves once the proxy is ready; throws if start-up fails. */
export async function runSupervisor(config: Config, log: Logger, opts: SupervisorOptions = {}): Promise<Supervisor> {
  const sockets = Array.from({ length: config.workers }, (_, i) => workerSocketPath(config.dataDir, i))
  const workerEntry = opts.workerEntry ?? sibling('worker/main')
  const proxyEntry = opts.proxyEntry ?? sibling('proxy/main')
  for (const entry of [workerEntry, proxyEntry]) {
    if (!existsSync(entry)) throw new Error(`missing entry file ${entry} (is the build complete?)`)
  }
  if (config.workers > 1 && config.defaultPool.startsWith('sqlite:')) {
    log.warn({ workers: config.workers }, 'SQLite allows one writer: several workers on a SQLite pool contend for its lock')
  }
  await prepareDataDir(config, log)

  const base: NodeJS.ProcessEnv = {
    ...process.env,
    MISSIVE_RESOLVED_CONFIG: JSON.stringify(config),
    MISSIVE_CATALOG_URI: defaultCatalogUri(config.dataDir),
  }
  const common = {
    execArgv: opts.execArgv,
    backoffMinMs: opts.backoffMinMs,
    backoffMaxMs: opts.backoffMaxMs,
    healthyAfterMs: opts.healthyAfterMs,
    readyTimeoutMs: opts.readyTimeoutMs,
  }
  const workers = sockets.map(
    (socket, i) =>
      new ManagedChild(
        {
          ...common,
          role: `worker-${i}`,
          entry: workerEntry,
          env: { ...base, MISSIVE_POOL_URI: config.defaultPool, MISSIVE_WORKER_SOCKET: socket, MISSIVE_WORKER_INDEX: String(i) },
        },
        log,
      ),
  )
  const proxy = new ManagedChild(
    { ...common, role: 'proxy', entry: proxyEntry, env: { ...base, MISSIVE_WORKER_SOCKETS: JSON.stringify(sockets) } },
    log,
  )

  let port = 0
  proxy.on('ready', (msg: { port?: number }) => {
    if (typeof msg.port === 'number') port = msg.port
  })
  // The proxy serves /metrics for the whole deployment: tell it the restart counts whenever a
  // child (re)becomes ready, the proxy itself included.
  const pushRestarts = (): void => {
    const restarts: Record<string, number> = { proxy: proxy.restarts }
    for (const w of workers) restarts[w.role] = w.restarts
    proxy.send({ type: 'restarts', restarts })
  }
  for (const child of [proxy, ...workers]) child.on('ready', pushRestarts)

  const killAfter = config.drainTimeoutMs + KILL_MARGIN_MS
  let stopping: Promise<void> | null = null
  let resolveDone!: () => void
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve
  })
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping !== null) {
      log.warn({ signal }, 'second signal: killing every child now')
      proxy.kill()
      for (const w of workers) w.kill()
      return
    }
    log.info({ signal }, 'shutting down')
    void stop()
  }
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await proxy.stop(killAfter)
      await Promise.all(workers.map((w) => w.stop(killAfter)))
      if (opts.handleSignals !== false) {
        process.off('SIGTERM', onSignal)
        process.off('SIGINT', onSignal)
      }
      log.info('missive stopped')
      resolveDone()
    })()
    return stopping
  }
  if (opts.handleSignals !== false) {
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  }

  const handle: Supervisor = {
    get port() {
      return port
    },
    workerSockets: sockets,
    pids: () => ({ proxy: proxy.pid, workers: workers.map((w) => w.pid) }),
    stop,
    done,
  }

  try {
    await Promise.all(workers.map((w) => w.start()))
    if (stopping !== null) return handle
    await proxy.start()
  } catch (err) {
    // A signal during start-up is an orderly stop, not a failure.
    const signalled = stopping !== null
    await stop()
    if (signalled) return handle
    // Children exit 2 when they reject their configuration (a bad pool URI, say).
    if ((err as { exitCode?: unknown }).exitCode === 2) {
      throw new ConfigError(`${(err as Error).message}: it rejected the configuration (its message is above)`)
    }
    throw err
  }
  log.info({ port, bind: config.bind, workers: config.workers, dataDir: config.dataDir }, 'missive ready')
  return handle
}
