/**
 * Opens the catalog store a URI names: `sqlite:<path>` (or a bare path) is the embedded store, a
 * relative path resolved against `dataDir`; `redis://…` is the store several hosts share.
 */
import { isAbsolute, join, resolve } from 'node:path'
import type { CatalogStore } from './contract.js'

export type { CatalogStore, Flavor, Pool } from './contract.js'

/** The catalog file of a one-machine deployment. */
export const catalogPath = (dataDir: string): string => join(dataDir, 'catalog.sqlite')

/** The embedded catalog's URI: what the config's `catalog` defaults to. */
export const defaultCatalogUri = (dataDir: string): string => `sqlite:${catalogPath(dataDir)}`

/**
 * The file of an embedded (SQLite) catalog URI, absolute; null for a catalog that is not a file
 * (Redis). The admin API refuses pools on this file.
 */
export function catalogFile(uri: string, dataDir: string): string | null {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase()
  if (scheme !== undefined && scheme !== 'sqlite' && scheme !== 'file') return null
  let path = scheme === undefined ? uri : uri.slice(scheme.length + 1)
  if (path.startsWith('//')) path = path.slice(2)
  if (path === '') path = catalogPath(dataDir)
  return isAbsolute(path) ? path : resolve(dataDir, path)
}

/**
 * The store `uri` names: `sqlite:<path>`, `sqlite://<path>`, a plain file path, or
 * `redis://[[user]:password@]host[:port][/db][?prefix=…]`, or a Sentinel-watched one,
 * `redis+sentinel://host:port[,…]/<master>[/db][?…]` (docs/ha.md). Throws an `Error` naming the scheme when
 * it is not supported; a Redis server that does not answer throws `unavailable`.
 */
export async function openCatalog(uri: string, opts: { dataDir?: string } = {}): Promise<CatalogStore> {
  // Each store is imported when opened: a process loads the native SQLite addon or ioredis only
  // for the catalog (and pools) it actually uses.
  const file = catalogFile(uri, opts.dataDir ?? '.')
  if (file !== null) {
    const { SqliteCatalog } = await import('./stores/sqlite.js')
    return new SqliteCatalog(file)
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase()
  if (scheme === 'redis' || scheme === 'redis+sentinel') {
    const { parseRedisCatalogUri, RedisCatalog } = await import('./stores/redis.js')
    return RedisCatalog.open(parseRedisCatalogUri(uri))
  }
  throw new Error(`unsupported catalog store "${scheme}:" (supported: sqlite:<path>, redis://host:port, redis+sentinel://host:port,…/<master>)`)
}
