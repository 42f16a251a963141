/**
 * The supervisor behind `missive serve`: prepares the data directory and catalog (registering the
 * pool `default` from the config), starts the workers of every pool in the catalog, then the
 * proxy once the default pool's workers are ready; restarts crashed children with back-off;
 * watches the catalog and starts, restarts or stops pool workers as pools are added, changed or
 * removed (the proxy follows the same catalog on its own); and on SIGTERM/SIGINT shuts down in
 * order — proxy first (it drains in-flight HTTP requests, which need the workers), then the
 * workers (they drain in-flight storage calls).
 *
 * Children are forked from the entry files next to this one (`.ts` under tsx, `.js` from dist/)
 * and get everything they need in the environment:
 * - every child: `MISSIVE_RESOLVED_CONFIG` (the resolved config as JSON; check it with
 *   `parseConfig`) and `MISSIVE_CATALOG_URI`;
 * - a worker: `MISSIVE_POOL_NAME`, `MISSIVE_POOL_URI`, `MISSIVE_WORKER_SOCKET` (from
 *   `poolSocketPath`), `MISSIVE_WORKER_INDEX`, `MISSIVE_WORKER_NAME` (`worker-<i>` for the
 *   default pool, `worker-<pool>-<i>` for others);
 * - the proxy: `MISSIVE_WORKER_SOCKETS`, a JSON array of the default pool's worker sockets (the
 *   real proxy derives every pool's sockets from the catalog instead).
 * Each child sends `{type: 'ready'}` over IPC once it serves; the proxy adds `port`.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultCatalogUri, openCatalog, type CatalogStore, type Pool } from '../catalog/index.js'
import { DEFAULT_POOL, poolSocketPath, poolWorkerCount, poolWorkerName } from '../catalog/pools.js'
import { redactUri } from '../shared/storage/registry.js'
import { ConfigError, type Config } from '../shared/config.js'
import type { Logger } from '../shared/log.js'
import { ManagedChild } from './child.js'
import { childExecArgv } from './node-flags.js'
import { resolveWorkers } from '../shared/auto-workers.js'
import { isMetricsRequest, supervisorRegistry, type MetricsAnswer } from './metrics.js'
import { SPARE_ENV } from './spare.js'

export { MAX_SOCKET_PATH_BYTES } from '../catalog/pools.js'

/** Extra time a child gets past `drainTimeoutMs` before SIGKILL. */
export const KILL_MARGIN_MS = 2000

/** A pool whose workers failed to start is tried again after this long. */
export const POOL_RETRY_MS = 5000

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
  /** How often the catalog version is checked for pool changes. Default 250 ms. */
  catalogPollMs?: number
  /**
   * Keep one spare worker process forked (supervisor/spare.ts), so a pool added at run time
   * serves without waiting for a fresh process to start. Default true; off with a custom
   * `workerEntry` (the spare becomes the real worker).
   */
  spareWorker?: boolean
}

/** One pre-forked worker process waiting to be assigned a pool; re-forked once taken or dead. */
class SpareWorker {
  #child: ChildProcess | null = null
  #waiting = false
  #stopped = false
  #timer: NodeJS.Timeout | null = null

  constructor(
    readonly entry: string,
    readonly env: NodeJS.ProcessEnv,
    readonly execArgv: string[] | undefined,
    readonly log: Logger,
  ) {}

  start(): void {
    this.#timer = null
    if (this.#stopped) return
    const child = fork(this.entry, [], { env: this.env, execArgv: this.execArgv ?? process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.#child = child
    this.#waiting = false
    child.on('message', (m: { type?: string }) => {
      if (m?.type === 'spare' && this.#child === child) this.#waiting = true
    })
    child.once('exit', (code, signal) => {
      if (this.#child !== child) return
      this.#child = null
      this.#waiting = false
      if (this.#stopped) return
      this.log.warn({ childPid: child.pid, code, signal }, 'spare worker exited; forking another')
      this.#timer = setTimeout(() => this.start(), 1000)
    })
  }

  /** The waiting spare, detached from this manager (a new one is forked), or undefined. */
  take(): ChildProcess | undefined {
    const child = this.#child
    if (child === null || !this.#waiting) return undefined
    child.removeAllListeners('message')
    this.#child = null
    this.#waiting = false
    this.start()
    return child
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#child?.kill()
    this.#child = null
  }
}

export interface Supervisor {
  /** The port the proxy reported. */
  readonly port: number
  /** Socket path of each worker of the default pool. */
  readonly workerSockets: readonly string[]
  /** Current pids (undefined while a child is being restarted); `workers` are the default pool's. */
  pids(): { proxy: number | undefined; workers: (number | undefined)[] }
  /** Current worker pids of every pool the supervisor runs, by pool name. */
  poolPids(): Record<string, (number | undefined)[]>
  /** Ordered shutdown (proxy, then workers). Idempotent; resolves when every child has exited. */
  stop(): Promise<void>
  /** Resolves when the supervisor has stopped (after a signal or `stop()`). */
  readonly done: Promise<void>
}

const here = fileURLToPath(import.meta.url)
const ext = extname(here) === '.ts' ? '.ts' : '.js'
const sibling = (rel: string): string => fileURLToPath(new URL(`../${rel}${ext}`, import.meta.url))

/** Worker `i`'s socket path of `pool` (default: the default pool); throws `ConfigError` when it cannot fit in `sun_path`. */
export function workerSocketPath(dataDir: string, i: number, pool: string = DEFAULT_POOL): string {
  try {
    return poolSocketPath(dataDir, pool, i)
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
}

/** The catalog URI of a config: `catalog`, or the embedded file under `dataDir`. */
export const catalogUriOf = (config: Config): string => config.catalog ?? defaultCatalogUri(config.dataDir)

/**
 * Prepares `<dataDir>` (and `<dataDir>/run`, mode 0700) and the catalog, registering the pool
 * `default` on `config.defaultPool` (updated when the config names another URI).
 */
export async function prepareDataDir(config: Config, log: Logger): Promise<void> {
  await mkdir(config.dataDir, { recursive: true })
  const run = join(config.dataDir, 'run')
  await mkdir(run, { recursive: true, mode: 0o700 })
  await chmod(run, 0o700)
  const catalog = await openCatalog(catalogUriOf(config), { dataDir: config.dataDir })
  try {
    const pool = await catalog.getPool(DEFAULT_POOL)
    if (pool === null) {
      await catalog.putPool({ name: DEFAULT_POOL, uri: config.defaultPool, weight: 1, flavor: null, options: {} })
      log.info({ pool: DEFAULT_POOL }, 'registered the default pool in the catalog')
    } else if (pool.uri !== config.defaultPool) {
      log.warn({ pool: DEFAULT_POOL }, 'the default pool URI changed in the config; updating the catalog')
      await catalog.putPool({ ...pool, uri: config.defaultPool })
    }
  } finally {
    await catalog.close()
  }
}


/** The workers of one pool on this host. */
interface PoolGroup {
  pool: Pool
  /** What, when changed, means the workers must be restarted: URI and worker count. */
  key: string
  children: ManagedChild[]
  sockets: string[]
  /** Set when a worker failed before it was ready: the group is retried after `POOL_RETRY_MS`. */
  failedAt?: number
}

/**
 * Runs a deployment from `config`: the workers of every pool in the catalog (the default pool's
 * must start, others may fail and are retried), then the proxy. While running it watches the
 * catalog and starts, restarts or stops pool workers as pools are added, changed or removed.
 * Resolves once the proxy is ready; throws if start-up fails.
 */
export async function runSupervisor(config: Config, log: Logger, opts: SupervisorOptions = {}): Promise<Supervisor> {
  const workerEntry = opts.workerEntry ?? sibling('worker/main')
  const proxyEntry = opts.proxyEntry ?? sibling('proxy/main')
  for (const entry of [workerEntry, proxyEntry]) {
    if (!existsSync(entry)) throw new Error(`missing entry file ${entry} (is the build complete?)`)
  }
  // The default pool's workers, "auto" resolved for its URI on this host (shared/auto-workers.ts).
  // Decided once, here: the children are handed the number (MISSIVE_RESOLVED_CONFIG below).
  const defaultWorkers = resolveWorkers(config.workers, config.defaultPool)
  if (config.workers === 'auto') log.info({ workers: defaultWorkers.workers, why: defaultWorkers.why }, 'workers for the default pool')
  // Fail early, with the config error, when the data directory is too long for sockets.
  workerSocketPath(config.dataDir, Math.max(0, defaultWorkers.workers - 1))
  await prepareDataDir(config, log)
  const catalogUri = catalogUriOf(config)
  const catalog: CatalogStore = await openCatalog(catalogUri, { dataDir: config.dataDir })

  const base: NodeJS.ProcessEnv = {
    ...process.env,
    MISSIVE_RESOLVED_CONFIG: JSON.stringify({ ...config, workers: defaultWorkers.workers }),
    MISSIVE_CATALOG_URI: catalogUri,
  }
  // The proxy's, the workers' and the spare's Node flags (supervisor/node-flags.ts).
  const execArgv = childExecArgv(opts.execArgv ?? process.execArgv, process.env.NODE_OPTIONS, config.semiSpaceMb)
  const common = {
    execArgv,
    backoffMinMs: opts.backoffMinMs,
    backoffMaxMs: opts.backoffMaxMs,
    healthyAfterMs: opts.healthyAfterMs,
    readyTimeoutMs: opts.readyTimeoutMs,
  }
  const spare =
    opts.spareWorker !== false && opts.workerEntry === undefined
      ? new SpareWorker(sibling('supervisor/spare'), { ...base, [SPARE_ENV]: '1' }, execArgv, log)
      : undefined
  const groups = new Map<string, PoolGroup>()
  const groupKey = (pool: Pool): string => `${pool.uri}\n${poolWorkerCount(pool, defaultWorkers.workers)}`

  const proxy = new ManagedChild(
    {
      ...common,
      role: 'proxy',
      entry: proxyEntry,
      // The real proxy reads its pools from the catalog; the socket list is kept for simple proxies.
      env: { ...base, MISSIVE_WORKER_SOCKETS: JSON.stringify(Array.from({ length: defaultWorkers.workers }, (_, i) => workerSocketPath(config.dataDir, i))) },
    },
    log,
  )
  let port = 0
  proxy.on('ready', (msg: { port?: number }) => {
    if (typeof msg.port === 'number') port = msg.port
  })
  // The proxy serves /metrics for the whole deployment: it asks for the supervisor's own metrics
  // (children's state and restarts, this process's) over IPC at scrape time.
  const registry = config.metrics ? supervisorRegistry(() => [proxy, ...[...groups.values()].flatMap((g) => g.children)]) : undefined
  proxy.on('message', (msg: unknown) => {
    if (registry === undefined || !isMetricsRequest(msg)) return
    registry.getMetricsAsJSON().then(
      (json) => proxy.send({ type: 'supervisor-metrics', id: msg.id, json } satisfies MetricsAnswer),
      (err: unknown) => log.warn({ err }, 'supervisor metrics collection failed'),
    )
  })

  const killAfter = config.drainTimeoutMs + KILL_MARGIN_MS
  let stopping: Promise<void> | null = null

  /** Forks the pool's workers; resolves when all are ready, rejects when one fails first. */
  const startGroup = (pool: Pool, useSpares = false): { group: PoolGroup; started: Promise<void> } => {
    const n = poolWorkerCount(pool, defaultWorkers.workers)
    if (n > 1 && pool.uri.startsWith('sqlite:')) {
      log.warn({ pool: pool.name, workers: n }, 'SQLite allows one writer: several workers on a SQLite pool contend for its lock')
    }
    const sockets = Array.from({ length: n }, (_, i) => workerSocketPath(config.dataDir, i, pool.name))
    const children = sockets.map(
      (socket, i) =>
        new ManagedChild(
          {
            ...common,
            role: poolWorkerName(pool.name, i),
            entry: workerEntry,
            heartbeatMs: config.workerHungAfterMs > 0 ? config.workerHeartbeatMs : 0,
            hungAfterMs: config.workerHungAfterMs,
            env: {
              ...base,
              MISSIVE_POOL_NAME: pool.name,
              MISSIVE_POOL_URI: pool.uri,
              MISSIVE_WORKER_SOCKET: socket,
              MISSIVE_WORKER_INDEX: String(i),
              MISSIVE_WORKER_NAME: poolWorkerName(pool.name, i),
            },
          },
          log,
        ),
    )
    const group: PoolGroup = { pool, key: groupKey(pool), children, sockets }
    groups.set(pool.name, group)
    log.info({ pool: pool.name, uri: redactUri(pool.uri), workers: n }, n === 0 ? 'pool served inside the proxy: no workers' : 'starting pool workers')
    const started = Promise.all(children.map((c) => c.start(useSpares ? spare?.take() : undefined))).then(
      () => undefined,
      async (err: unknown) => {
        group.failedAt = Date.now()
        // The others may be up: stop them too, the group is retried as a whole.
        await Promise.all(children.map((c) => c.stop(killAfter)))
        throw err
      },
    )
    return { group, started }
  }
  const stopGroup = async (group: PoolGroup): Promise<void> => {
    if (groups.get(group.pool.name) === group) groups.delete(group.pool.name)
    log.info({ pool: group.pool.name }, 'stopping pool workers')
    await Promise.all(group.children.map((c) => c.stop(killAfter)))
  }
  const startOptional = (pool: Pool, useSpares = false): Promise<void> =>
    startGroup(pool, useSpares).started.catch((err: unknown) => {
      log.error({ pool: pool.name, err: (err as Error).message, retryInMs: POOL_RETRY_MS }, 'pool workers failed to start')
    })

  /** Brings the running pool groups in line with the catalog's pools. */
  const reconcile = async (pools: Pool[]): Promise<void> => {
    const wanted = new Map(pools.map((p) => [p.name, p]))
    const work: Promise<void>[] = []
    // Pools whose running group is handled below: stopGroup takes a group out of `groups` at
    // once, so the loop that starts new pools must not take a restarted one for new (it would
    // start a second group on the same sockets, each failing on the other's for ever).
    const running = new Set(groups.keys())
    for (const group of [...groups.values()]) {
      const pool = wanted.get(group.pool.name)
      if (pool === undefined) work.push(stopGroup(group))
      else if (groupKey(pool) !== group.key) work.push(stopGroup(group).then(() => startOptional(pool, true)))
      else if (group.failedAt !== undefined && Date.now() - group.failedAt >= POOL_RETRY_MS) {
        work.push(stopGroup(group).then(() => startOptional(pool)))
      } else group.pool = pool
    }
    for (const pool of pools) if (!running.has(pool.name)) work.push(startOptional(pool, true))
    await Promise.all(work)
  }

  let version = await catalog.version()
  let watching: Promise<void> = Promise.resolve()
  let timer: NodeJS.Timeout | undefined
  const tick = async (): Promise<void> => {
    if (stopping !== null) return
    try {
      const v = await catalog.version()
      const retry = [...groups.values()].some((g) => g.failedAt !== undefined && Date.now() - g.failedAt >= POOL_RETRY_MS)
      if (v === version && !retry) return
      version = v
      const pools = await catalog.listPools()
      if (stopping === null) await reconcile(pools)
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot read the catalog; pool workers left as they are')
    }
  }

  let resolveDone!: () => void
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve
  })
  const allWorkers = (): ManagedChild[] => [...groups.values()].flatMap((g) => g.children)
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping !== null) {
      log.warn({ signal }, 'second signal: killing every child now')
      spare?.stop()
      proxy.kill()
      for (const w of allWorkers()) w.kill()
      return
    }
    log.info({ signal }, 'shutting down')
    void stop()
  }
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      clearInterval(timer)
      spare?.stop()
      await proxy.stop(killAfter)
      // A reconcile in progress may still be starting workers: let it settle, then stop them all.
      await watching.catch(() => {})
      await Promise.all(allWorkers().map((w) => w.stop(killAfter)))
      await catalog.close().catch(() => {})
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

  const groupPids = (name: string): (number | undefined)[] => groups.get(name)?.children.map((c) => c.pid) ?? []
  const handle: Supervisor = {
    get port() {
      return port
    },
    get workerSockets() {
      return groups.get(DEFAULT_POOL)?.sockets ?? []
    },
    pids: () => ({ proxy: proxy.pid, workers: groupPids(DEFAULT_POOL) }),
    poolPids: () => Object.fromEntries([...groups.keys()].map((name) => [name, groupPids(name)])),
    stop,
    done,
  }

  // Forked now, the spare is waiting long before a pool is added at run time.
  spare?.start()
  try {
    const pools = await catalog.listPools()
    const others: Promise<void>[] = []
    let required: Promise<void> = Promise.resolve()
    for (const pool of pools) {
      if (pool.name === DEFAULT_POOL) required = startGroup(pool).started
      else others.push(startOptional(pool))
    }
    await Promise.all([required, ...others])
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
  timer = setInterval(() => {
    watching = watching.then(tick)
  }, opts.catalogPollMs ?? 250)
  timer.unref()
  log.info({ port, bind: config.bind, pools: [...groups.keys()], workers: defaultWorkers.workers, dataDir: config.dataDir }, 'missive ready')
  return handle
}
