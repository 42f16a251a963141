/**
 * In-process proxies with authentication: the real HTTP server (uWS, routes, the authenticator
 * under test) over a real store — the embedded SQLite store or a Redis pool — and a real catalog
 * (a SQLite file or a Redis server, which also holds the API keys). Several proxies may share
 * one catalog and one store, as proxies on several hosts do.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openCatalog } from '../../catalog/index.js'
import { HttpServer } from '../../proxy/app.js'
import { createAuthenticator, type Authenticator } from '../../proxy/auth/index.js'
import { RateLimiter } from '../../proxy/limits/index.js'
import { PooledDriver } from '../../proxy/pooled-driver.js'
import { PoolSet } from '../../proxy/pool-set.js'
import { parseConfig, type Config } from '../../shared/config.js'
import { createLogger } from '../../shared/log.js'
import type { DataDriver } from '../../shared/storage/contract.js'
import { openDriver } from '../../worker/storage/index.js'
import { startRedis, type Teardown } from '../helpers/index.js'

/** Which store and catalog a run uses. */
export interface Backend {
  name: 'sqlite' | 'redis'
  /** The default pool's storage URI. */
  store: string
  /** The catalog URI (and so where API keys live). */
  catalog: string
  dataDir: string
}

/** A SQLite store and catalog in a temp dir, or a Redis pool and a Redis catalog on a real server. */
export async function backend(t: Teardown, name: 'sqlite' | 'redis'): Promise<Backend> {
  const dataDir = mkdtempSync(join(tmpdir(), 'missive-auth-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  if (name === 'sqlite') return { name, store: 'sqlite:', catalog: `sqlite:${join(dataDir, 'catalog.sqlite')}`, dataDir }
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  return { name, store: `redis://127.0.0.1:${redis.port}/0`, catalog: `redis://127.0.0.1:${redis.port}/1`, dataDir }
}

export interface Proxy {
  base: string
  config: Config
  auth: Authenticator
}

/** The store's driver, one per backend, shared by every proxy of a test (closed in teardown). */
const drivers = new WeakMap<Backend, Promise<DataDriver>>()

function driverOf(t: Teardown, b: Backend): Promise<DataDriver> {
  let d = drivers.get(b)
  if (d === undefined) {
    d = openDriver(b.store, { dataDir: b.dataDir, durability: 'fast' })
    drivers.set(b, d)
    const opened = d
    t.teardown(async () => opened.then((dr) => dr.close(), () => undefined))
  }
  return d
}

/** One proxy over `b`, configured with `overrides` (e.g. `{ auth: { strategy: 'keys' } }`). */
export async function startProxy(t: Teardown, b: Backend, overrides: Record<string, unknown> = {}): Promise<Proxy> {
  const config = parseConfig({ port: 0, dataDir: b.dataDir, logLevel: 'silent', catalog: b.catalog, ...overrides })
  const log = createLogger('test', 'silent')
  const driver = await driverOf(t, b)
  const catalog = await openCatalog(b.catalog, { dataDir: b.dataDir })
  if ((await catalog.getPool('default')) === null) await catalog.putPool({ name: 'default', uri: b.store, weight: 1, flavor: null, options: {} })
  const pools = new PoolSet({ catalog, connector: { key: () => '', open: () => [driver], close: () => {} }, defaultPool: 'default', pollMs: 0 })
  await pools.refresh()
  const auth = await createAuthenticator(config, { log })
  const limiter = await RateLimiter.open(config)
  const storage = new PooledDriver({ pools, log })
  if (limiter?.quotas) storage.queueQuota = (project) => limiter.queueQuota(project)
  const server = new HttpServer({ config, storage, control: pools, log, auth, limiter })
  const port = await server.listen()
  t.teardown(async () => {
    await server.drain(0)
    server.close()
    pools.close()
    await auth.close()
    await limiter?.close()
    await catalog.close()
  })
  return { base: `http://127.0.0.1:${port}`, config, auth }
}
