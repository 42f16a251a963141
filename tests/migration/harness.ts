/**
 * A whole Missive (`missive serve`: supervisor, proxy, a worker per pool) with two pools for the
 * live-migration tests, over real stores: the embedded SQLite pool `default` and Redis pools on
 * real redis-servers on free loopback ports. One queue is placed on the source pool; the tests
 * move it with the admin API (`/v2/admin/migrations`, docs/migration.md) while `Traffic` runs.
 *
 * Pool names by pair: SQLite→Redis `default`→`r1`, Redis→SQLite `r1`→`default`, Redis→Redis
 * `r1`→`r2` (the SQLite default pool then takes no queue), SQLite→SQLite `default`→`s2`. Processes are the tests' helpers'
 * (tests/helpers/index.ts, which start them as the bench does, perf/lib/procs.ts); a service
 * killed with `kill -9` is started again on the same data directory with `restart`, and the
 * clients made here follow it to its new port.
 */
import { randomUUID } from 'node:crypto'
import { RedisCatalog } from '../../catalog/stores/redis.js'
import { zaqarClient, type HttpResp, type RequestOptions, type ZaqarClient } from '../helpers/http.js'
import { childProcesses, startMissive, startRedis, waitFor, type MissiveProcess, type RedisProcess, type Teardown } from '../helpers/index.js'
import { running } from '../helpers/proc.js'
import { ADMIN_TOKEN } from '../pools/harness.js'
import { poolWorkerPids } from '../pools/util.js'

export type Store = 'sqlite' | 'redis'

export interface ClusterOptions {
  from: Store
  to: Store
  /**
   * `durable`: SQLite synchronous=FULL, Redis pools `durability=durable` on servers with
   * `appendfsync always` (a 201 survives kill -9 of anything). Default `fast`.
   */
  durability?: 'durable' | 'fast'
  /** A Redis catalog (so that a second service can share catalog and pools). Default: SQLite, in the data dir. */
  redisCatalog?: boolean
  /** More config for the service (JSON config file). */
  config?: Record<string, unknown>
}

export interface Cluster {
  /** The service as now running (replaced by `restart`). */
  svc: MissiveProcess
  /** Source and target pool names. */
  from: string
  to: string
  /** Redis servers by pool name (`r1`, `r2`), and the catalog's when `redisCatalog`. */
  redis: Map<string, RedisProcess>
  /** The environment every service of this cluster runs with. */
  env: Record<string, string>
  /** A client of the service as now running (follows `restart`), acting as `project`. */
  client(project?: string): ZaqarClient
  /** A client of another service `svc` (a second proxy), acting as `project`. */
  clientOf(svc: MissiveProcess, project: string): ZaqarClient
  /** An admin request (token included) to the service as now running. */
  admin(method: string, path: string, body?: unknown): Promise<HttpResp>
  /** Starts the service again on the same data directory (after a kill -9 of it or of its supervisor). */
  restart(): Promise<MissiveProcess>
  /** Another whole service sharing the catalog and every pool (needs `redisCatalog`; SQLite pools are not shared). */
  second(config?: Record<string, unknown>): Promise<MissiveProcess>
  /**
   * `kill -9` of one process, then what brings it back: the supervisor restarts its proxy and
   * workers itself (this waits for the new one to answer); a killed supervisor's children stop on
   * their own and the service is started again on its data; a redis-server is started again on
   * its port and files. Returns the pid killed.
   */
  kill9(role: KillRole, pools?: { from: string; to: string }): Promise<number>
}

/** What `kill9` can kill: the proxy, a pool's worker, the supervisor, a pool's redis-server. */
export type KillRole = 'proxy' | 'source-worker' | 'target-worker' | 'supervisor' | 'source-redis' | 'target-redis'

/** The pools of a pair: names, and which Redis servers and extra SQLite pools they need. */
export function poolsOf(from: Store, to: Store): { from: string; to: string; redis: string[]; sqlite: string[] } {
  if (from === 'sqlite' && to === 'sqlite') return { from: 'default', to: 's2', redis: [], sqlite: ['s2'] }
  if (from === 'sqlite') return { from: 'default', to: 'r1', redis: ['r1'], sqlite: [] }
  if (to === 'sqlite') return { from: 'r1', to: 'default', redis: ['r1'], sqlite: [] }
  return { from: 'r1', to: 'r2', redis: ['r1', 'r2'], sqlite: [] }
}

export async function startCluster(t: Teardown, opts: ClusterOptions): Promise<Cluster> {
  const durable = opts.durability === 'durable'
  const names = poolsOf(opts.from, opts.to)
  const redis = new Map<string, RedisProcess>()
  for (const name of names.redis) redis.set(name, await startRedis(t, durable ? { appendfsync: 'always' } : { appendfsync: 'everysec' }))
  const env: Record<string, string> = {
    MISSIVE_ADMIN_TOKEN: ADMIN_TOKEN,
    MISSIVE_DURABILITY: durable ? 'durable' : 'fast',
  }
  if (opts.redisCatalog) {
    const catalog = await startRedis(t, durable ? { appendfsync: 'always' } : {})
    redis.set('catalog', catalog)
    env.MISSIVE_CATALOG = `${catalog.url}?prefix=mig:`
  }
  const config = { durability: durable ? 'durable' : 'fast', ...opts.config }
  let svc = await startMissive(t, { env, config, timeoutMs: 60_000 })
  const dataDir = svc.dataDir
  const admin = (method: string, path: string, body?: unknown): Promise<HttpResp> =>
    zaqarClient(svc.baseUrl, { project: 'admin', timeoutMs: 45_000 }).req(method, path, { headers: { 'X-Auth-Token': ADMIN_TOKEN }, ...(body !== undefined && { body }) })

  for (const name of names.redis) {
    const r = await admin('PUT', `/v2/pools/${name}`, { weight: 1, uri: `${redis.get(name)!.url}?durability=${durable ? 'durable' : 'fast'}` })
    if (r.status !== 201) throw new Error(`adding pool ${name}: ${r.status} ${r.text}`)
  }
  for (const name of names.sqlite) {
    const r = await admin('PUT', `/v2/pools/${name}`, { weight: 1, uri: `sqlite:${name}.sqlite` })
    if (r.status !== 201) throw new Error(`adding pool ${name}: ${r.status} ${r.text}`)
  }
  // Only the source takes new queues while the tests create theirs (`placeOnSource`).
  for (const name of ['default', ...names.redis, ...names.sqlite]) {
    const r = await admin('PATCH', `/v2/pools/${name}`, { weight: name === names.from ? 1 : 0 })
    if (r.status !== 200) throw new Error(`weighting pool ${name}: ${r.status} ${r.text}`)
  }
  await poolsReachable(admin, ['default', ...names.redis, ...names.sqlite])

  // Client timeouts above the proxy's own RPC timeout (30 s): a slow answer is the proxy's to give
  // (503), and the machine these tests share may be very busy.
  const movable = (project: string): ZaqarClient => {
    const clientId = randomUUID()
    return {
      get base() {
        return svc.baseUrl
      },
      project,
      clientId,
      req: (method: string, path: string, o?: RequestOptions) => zaqarClient(svc.baseUrl, { project, clientId, timeoutMs: 45_000 }).req(method, path, o),
    }
  }

  const cluster: Cluster = {
    get svc() {
      return svc
    },
    from: names.from,
    to: names.to,
    redis,
    env,
    client: (project = `p-${randomUUID()}`) => movable(project),
    clientOf: (other, project) => zaqarClient(other.baseUrl, { project, timeoutMs: 45_000 }),
    admin,
    async restart() {
      svc = await startMissive(t, { env, config, dataDir, timeoutMs: 60_000 })
      await poolsReachable(admin, ['default', ...names.redis, ...names.sqlite])
      return svc
    },
    async kill9(role, pools = { from: names.from, to: names.to }) {
      const pool = role.startsWith('source') ? pools.from : pools.to
      if (role === 'source-redis' || role === 'target-redis') {
        const r = redis.get(pool)
        if (r === undefined) throw new Error(`pool ${pool} has no redis-server`)
        await r.kill9()
        redis.set(pool, await startRedis(t, { appendfsync: durable ? 'always' : 'everysec', dir: r.dir, port: r.port }))
        return r.pid
      }
      if (role === 'supervisor') {
        const kids = (await childProcesses(svc.pid)).map((k) => k.pid)
        const pid = svc.pid
        process.kill(pid, 'SIGKILL')
        // Its children stop when their channel to it closes (proxy: after draining).
        await waitFor(() => kids.every((k: number) => !running(k)), { timeoutMs: 60_000, what: 'the killed supervisor’s children to stop' })
        await this.restart()
        return pid
      }
      let pid: number | undefined
      if (role === 'proxy') pid = (await svc.children()).proxy
      else pid = (await poolWorkerPids(svc.pid, dataDir)).get(pool)?.[0]
      if (pid === undefined) throw new Error(`no ${role} process (pool ${pool})`)
      process.kill(pid, 'SIGKILL')
      await waitFor(
        async () => {
          const now = role === 'proxy' ? [(await svc.children()).proxy] : ((await poolWorkerPids(svc.pid, dataDir)).get(pool) ?? [])
          return now.some((p) => p !== undefined && p !== pid)
        },
        { timeoutMs: 60_000, what: `the supervisor to restart the ${role}` },
      )
      // Answering again (the proxy listens on the same port once restarted).
      await waitFor(async () => (await admin('GET', '/v2/ping').catch(() => undefined))?.status === 204, { timeoutMs: 60_000, what: 'the service to answer again' })
      return pid
    },
    async second(more = {}) {
      if (!opts.redisCatalog) throw new Error('a second service needs the Redis catalog')
      // Its own data dir (its own SQLite default pool, never used by these tests' queues).
      return startMissive(t, { env, config: { ...config, ...more }, timeoutMs: 60_000 })
    },
  }
  return cluster
}

/**
 * Waits until the proxy reaches a worker of each pool (the supervisor starts a new pool's worker
 * on its own schedule; a migration to a pool the proxy cannot reach is refused).
 */
export async function poolsReachable(admin: (method: string, path: string) => Promise<HttpResp>, pools: string[]): Promise<void> {
  for (const pool of pools) {
    await waitFor(async () => (await admin('GET', `/v2/admin/pools/${pool}/stats`)).json?.storage?.reachable === true, {
      timeoutMs: 60_000,
      what: `pool ${pool} to be served`,
    })
  }
}

/**
 * Creates `queue` (with `metadata`) for `client`'s project on the cluster's source pool, then lets
 * every pool but the source take new queues again (the target must accept the migration).
 */
export async function placeOnSource(c: Cluster, client: ZaqarClient, queue: string, metadata: Record<string, unknown>): Promise<void> {
  const r = await client.req('PUT', `/v2/queues/${queue}`, { body: metadata })
  if (r.status !== 201 && r.status !== 204) throw new Error(`creating ${queue}: ${r.status} ${r.text}`)
  const w = await c.admin('PATCH', `/v2/pools/${c.to}`, { weight: 1 })
  if (w.status !== 200) throw new Error(`weighting ${c.to}: ${w.status} ${w.text}`)
}

/** The pool the catalog places `ref` on, read straight from the catalog store (Redis catalog only). */
export async function placementIn(c: Cluster, project: string, queue: string): Promise<string | null> {
  const r = c.redis.get('catalog')
  if (r === undefined) throw new Error('no Redis catalog')
  const cat = await RedisCatalog.open({ host: '127.0.0.1', port: r.port, prefix: 'mig:' })
  try {
    return await cat.getPlacement({ project, queue })
  } finally {
    await cat.close()
  }
}

/** A migration as `GET /v2/admin/migrations/<id>` shows it (the fields these tests read). */
export interface MigrationView {
  id: string
  state: string
  messages_copied: number
  remaining: number | null
  pause_ms: number | null
  messages_per_second: number
  error: string | null
  [k: string]: unknown
}

/** Starts moving `queue` of `project` to `to`: the migration's id. */
export async function startMigration(c: Cluster, project: string, queue: string, to: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await c.admin('POST', '/v2/admin/migrations', { project, queue, to_pool: to, ...extra })
  if (r.status !== 202) throw new Error(`starting the migration: ${r.status} ${r.text}`)
  return String(r.json.id)
}

export async function getMigration(c: Cluster, id: string): Promise<MigrationView> {
  const r = await c.admin('GET', `/v2/admin/migrations/${id}`)
  if (r.status !== 200) throw new Error(`reading migration ${id}: ${r.status} ${r.text}`)
  return r.json as MigrationView
}

const FINAL = new Set(['done', 'cancelled', 'failed'])

/** Waits until the migration is in a final state (done, cancelled, failed); returns it. */
export async function migrationEnded(c: Cluster, id: string, timeoutMs = 60_000): Promise<MigrationView> {
  return (await waitFor(
    async () => {
      const m = await getMigration(c, id)
      return FINAL.has(m.state) ? m : undefined
    },
    { timeoutMs, intervalMs: 20, what: `migration ${id} to end` },
  ))!
}
