/**
 * Opens the catalog store a URI names: `sqlite:<path>` (or a bare path) is the embedded store, a
 * relative path resolved against `dataDir`; `redis://…` is the store several hosts share.
 */
import { isAbsolute, join, resolve } from 'node:path'
import type { CatalogStore } from './contract.js'
import { parseRedisCatalogUri, RedisCatalog } from './stores/redis.js'
import { SqliteCatalog } from './stores/sqlite.js'

export type { CatalogStore, Flavor, Pool } from './contract.js'
export { SqliteCatalog } from './stores/sqlite.js'
export { RedisCatalog } from './stores/redis.js'

/** The catalog file of a one-machine deployment. */
export const catalogPath = (dataDir: string): string => join(dataDir, 'catalog.sqlite')

/** The embedded catalog's URI: what the config's `catalog` defaults to. */
export const defaultCatalogUri = (dataDir: string): string => `sqlite:${catalogPath(dataDir)}`

/**
 * The store `uri` names: `sqlite:<path>`, `sqlite://<path>`, a plain file path, or
 * `redis://[[user]:password@]host[:port][/db][?prefix=…]`. Throws an `Error` naming the scheme when
 * it is not supported; a Redis server that does not answer throws `unavailable`.
 */
export async function openCatalog(uri: string, opts: { dataDir?: string } = {}): Promise<CatalogStore> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase()
  if (scheme === undefined || scheme === 'sqlite' || scheme === 'file') {
    let path = scheme === undefined ? uri : uri.slice(scheme.length + 1)
    if (path.startsWith('//')) path = path.slice(2)
    if (path === '') path = catalogPath(opts.dataDir ?? '.')
    if (!isAbsolute(path)) path = resolve(opts.dataDir ?? '.', path)
    return new SqliteCatalog(path)
  }
  if (scheme === 'redis') return RedisCatalog.open(parseRedisCatalogUri(uri))
  throw new Error(`unsupported catalog store "${scheme}:" (supported: sqlite:<path>, redis://host:port)`)
}
