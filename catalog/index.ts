/**
 * Opens the catalog store a URI names. `sqlite:<path>` (or a bare path) is the embedded store;
 * a relative path is resolved against `dataDir`. Redis and MongoDB stores are not built yet.
 */
import { isAbsolute, join, resolve } from 'node:path'
import type { CatalogStore } from './contract.js'
import { SqliteCatalog } from './stores/sqlite.js'

export type { CatalogStore, Pool } from './contract.js'
export { SqliteCatalog } from './stores/sqlite.js'

/** The catalog file of a one-machine deployment. */
export const catalogPath = (dataDir: string): string => join(dataDir, 'catalog.sqlite')

/** The catalog URI the supervisor hands to its children (`MISSIVE_CATALOG_URI`). */
export const defaultCatalogUri = (dataDir: string): string => `sqlite:${catalogPath(dataDir)}`

/**
 * The store `uri` names: `sqlite:<path>`, `sqlite://<path>` or a plain file path. Throws an
 * `Error` naming the scheme when it is not supported.
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
  throw new Error(`unsupported catalog store "${scheme}:" (supported: sqlite:<path>)`)
}
