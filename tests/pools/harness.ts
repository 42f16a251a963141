/**
 * In-process harness for the pool tests: the real HTTP front end, pool set and pooled driver over a real catalog,
 * with every catalog pool served by a driver opened in this process (no worker processes), so
 * admin-API cases run fast. Full-service behaviour (workers per pool, supervisor) is tested with
 * `startMissive` in the other files here.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import type { CatalogStore, Pool } from '../../catalog/contract.js'
import { SqliteCatalog } from '../../catalog/stores/sqlite.js'
import type { Random } from '../../catalog/placement.js'
import { HttpServer } from '../../proxy/app.js'
import { PooledDriver } from '../../proxy/pooled-driver.js'
import { PoolSet, type PoolConnector } from '../../proxy/pool-set.js'
import { parseConfig, type Config } from '../../shared/config.js'
import { createLogger } from '../../shared/log.js'
import type { DataDriver } from '../../shared/storage/contract.js'
import { defineOperations, invoke, type DriverOperation, type OpArgs, type OpResult } from '../../shared/storage/operations.js'
import { openDriver } from '../../worker/storage/index.js'
import { zaqarClient } from '../helpers/http.js'
import { tempDir, type Teardown } from '../helpers/index.js'

export const ADMIN_TOKEN = 'admin-secret-token'

export interface Resp {
  status: number
  headers: Headers
  text: string
  json: any // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface PoolHarness {
  base: string
  config: Config
  catalog: CatalogStore
  /** The pools as this proxy follows them (the admin API's control plane). */
  pools: PoolSet
  /** The pooled driver the handlers use. */
  storage: PooledDriver
  project: string
  dir: string
  /** fetch with Client-ID, X-Project-ID and (unless `admin: false`) the admin token. */
  req(method: string, path: string, opts?: { body?: unknown; raw?: string; headers?: Record<string, string | null>; admin?: boolean }): Promise<Resp>
}

/** A driver that waits for `opening` on every call (the connector's `open` is synchronous). */
function lazyDriver(opening: Promise<DataDriver>): DataDriver {
  opening.catch(() => {})
  return defineOperations(
    { kind: 'lazy', close: () => opening.then((d) => d.close()) },
    <K extends DriverOperation>(op: K) =>
      (...args: OpArgs<K>): Promise<OpResult<K>> =>
        opening.then((d) => invoke(d, op, args)),
  )
}

export async function startPoolHarness(
  t: Teardown,
  opts: { config?: Record<string, unknown>; random?: Random; catalog?: CatalogStore } = {},
): Promise<PoolHarness> {
  const dir = await tempDir(t, 'missive-pools-')
  const config = parseConfig({ port: 0, dataDir: dir, logLevel: 'silent', durability: 'fast', adminToken: ADMIN_TOKEN, ...opts.config })
  const catalog = opts.catalog ?? new SqliteCatalog(join(dir, 'catalog.sqlite'))
  await catalog.putPool({ name: 'default', uri: 'sqlite:', weight: 1, flavor: null, options: {} })
  const open: DataDriver[] = []
  const connector: PoolConnector = {
    key: (p: Pool) => p.uri,
    open(p: Pool) {
      const d = lazyDriver(openDriver(p.uri, { dataDir: dir, durability: 'fast' }))
      open.push(d)
      return [d]
    },
    close(_pool: string, drivers: DataDriver[]) {
      for (const d of drivers) void d.close().catch(() => {})
    },
  }
  const pools = new PoolSet({ catalog, connector, defaultPool: 'default', pollMs: 100, ...(opts.random && { random: opts.random }) })
  const log = createLogger('test', 'silent')
  const storage = new PooledDriver({ pools, log })
  await pools.refresh()
  const server = new HttpServer({ config, storage, control: pools, log })
  const port = await server.listen()
  t.teardown(async () => {
    await server.drain(0)
    server.close()
    pools.close()
    await Promise.all(open.map((d) => d.close().catch(() => {})))
    await catalog.close()
  })
  const base = `http://127.0.0.1:${port}`
  const project = `p-${randomUUID()}`
  const clientId = randomUUID()
  const client = zaqarClient(base, { project, clientId })
  return {
    base,
    config,
    catalog,
    pools,
    storage,
    project,
    dir,
    req: (method, path, o = {}) =>
      client.req(method, path, { ...o, headers: { ...(o.admin !== false && { 'X-Auth-Token': ADMIN_TOKEN }), ...o.headers } }),
  }
}
