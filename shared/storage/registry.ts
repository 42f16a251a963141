/**
 * The store registry: every kind of message store a pool URI can name, and what can be known of
 * it without connecting — its scheme, whether this build has its driver, Zaqar's capability
 * names, the store a URI names once normalised (to find two pools on one store), and how to show
 * the URI without its credentials.
 *
 * Proxy, catalog and supervisor read stores only through this module. The drivers themselves live
 * in `worker/storage/<name>/` and are opened by `worker/storage/index.ts`, whose table of openers
 * is keyed by `StoreName`: adding a store is one entry here, one folder there, one opener (the
 * compiler asks for it), and the contract suite pointed at it (docs/architecture.md).
 */
import { realpathSync, existsSync } from 'node:fs'
import { basename, dirname, isAbsolute, join, resolve } from 'node:path'
import { isRedisUri, parseRedisUri, type Durability } from './redis-uri.js'

/** The stores this registry knows; each has a descriptor below. */
export type StoreName = 'sqlite' | 'redis' | 'mongodb'

/** What a descriptor needs to read a URI. */
export interface StoreContext {
  /** Relative `sqlite:` paths are resolved against it. */
  dataDir: string
  /** The deployment's durability, for stores whose URI can override it. */
  durability: Durability
}

/** A URI this build cannot use as a pool: `reason` is a sentence for the operator. */
export class StoreUriError extends Error {
  readonly reason: string
  constructor(reason: string) {
    super(reason)
    this.name = 'StoreUriError'
    this.reason = reason
  }
}

export interface StoreDescriptor {
  readonly name: StoreName
  /** True for the URIs of this store (supported forms or not). */
  matches(uri: string): boolean
  /** False when this build has no driver for it (the URI is recognised, then refused). */
  readonly available: boolean
  /**
   * Zaqar's capability names (zaqar/storage/base.py `Capabilities`), as Zaqar's own drivers
   * report them; flavors require every pool of a flavor to offer the same set.
   */
  readonly capabilities: readonly string[]
  /**
   * The store the URI names, normalised, without connecting: two URIs with the same identity are
   * the same store (a pool each would mix their queues). Throws `StoreUriError` for a URI that
   * cannot name a pool.
   */
  identity(uri: string, ctx: StoreContext): string
}

/** The file a `sqlite:` URI names: `sqlite:` alone is `<dataDir>/pool-default.sqlite`; `sqlite::memory:` is memory. */
export function sqlitePath(uri: string, dataDir: string): string {
  const rest = uri.slice('sqlite:'.length)
  if (rest === '') return join(resolve(dataDir), 'pool-default.sqlite')
  if (rest === ':memory:') return rest
  return isAbsolute(rest) ? rest : resolve(dataDir, rest)
}

/** The real path of `path` (symlinks resolved) as far as it exists, the rest appended. */
export function realPath(path: string): string {
  let dir = path
  const rest: string[] = []
  while (!existsSync(dir)) {
    const parent = dirname(dir)
    if (parent === dir) break
    rest.unshift(basename(dir))
    dir = parent
  }
  return join(realpathSync(dir), ...rest)
}

const SQLITE: StoreDescriptor = {
  name: 'sqlite',
  matches: (uri) => uri.startsWith('sqlite:'),
  available: true,
  // The embedded store is durable (fsync per commit in `durable` mode) and not built for throughput.
  capabilities: ['FIFO', 'CLAIMS', 'DURABILITY', 'AOD'],
  identity(uri, ctx) {
    const path = sqlitePath(uri, ctx.dataDir)
    return path === ':memory:' ? 'sqlite::memory:' : `sqlite:${realPath(path)}`
  },
}

const REDIS: StoreDescriptor = {
  name: 'redis',
  // `redis:` alone too: Zaqar's Unix-socket form (`redis:/path`).
  matches: isRedisUri,
  available: true,
  // As Zaqar's Redis driver reports them: no DURABILITY whatever the persistence settings.
  capabilities: ['FIFO', 'CLAIMS', 'AOD', 'HIGH_THROUGHPUT'],
  identity(uri, ctx) {
    let o
    try {
      o = parseRedisUri(uri, ctx.durability)
    } catch (err) {
      throw new StoreUriError((err as { description?: string }).description ?? (err as Error).message)
    }
    const norm = (h: string): string => (h.toLowerCase() === 'localhost' ? '127.0.0.1' : h.toLowerCase())
    // A Sentinel pool is its master's name as its Sentinels know it (the servers behind it change).
    if (o.sentinels !== undefined) {
      const sentinels = o.sentinels.map((s) => `${norm(s.host)}:${s.port}`).sort()
      return `redis+sentinel://${sentinels.join(',')}/${o.master}/${o.db}`
    }
    // A Cluster pool is the nodes it is discovered from (any of them would do: named as given, sorted).
    if (o.cluster !== undefined) return `redis+cluster://${o.cluster.map((n) => `${norm(n.host)}:${n.port}`).sort().join(',')}`
    // A Unix socket is its path as written (Zaqar's form; one server may answer on a socket and a port).
    if (o.path !== undefined) return `redis:${o.path}/${o.db}`
    return `redis://${norm(o.host)}:${o.port}/${o.db}`
  },
}

const MONGODB: StoreDescriptor = {
  name: 'mongodb',
  matches: (uri) => /^mongodb(\+srv)?:\/\//i.test(uri),
  available: false,
  capabilities: ['FIFO', 'CLAIMS', 'DURABILITY', 'AOD', 'HIGH_THROUGHPUT'],
  identity() {
    throw new StoreUriError(
      "there is no MongoDB store in this build. Pools can use redis:// (Zaqar's Redis URIs are read as they are) or sqlite:.",
    )
  },
}

/** Every store, in the order URIs are matched. */
export const STORES: readonly StoreDescriptor[] = [SQLITE, REDIS, MONGODB]

/** The descriptor of the store `uri` names, or undefined for a scheme no store has. */
export function storeOf(uri: string): StoreDescriptor | undefined {
  return STORES.find((s) => s.matches(uri))
}

/**
 * Like `storeOf`, but a URI no pool can use throws `StoreUriError`: an unknown scheme, or a store
 * this build has no driver for.
 */
export function availableStoreOf(uri: string): StoreDescriptor {
  const store = storeOf(uri)
  if (store === undefined) {
    const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:/.exec(uri)?.[0] ?? redactUri(uri)
    throw new StoreUriError(`Unsupported storage URI "${scheme}": this build supports sqlite: and redis:// only.`)
  }
  if (!store.available) store.identity(uri, { dataDir: '.', durability: 'durable' })
  return store
}

/** Zaqar's capability names for the store `uri` names; none for an unknown scheme. */
export const poolCapabilities = (uri: string): string[] => [...(storeOf(uri)?.capabilities ?? [])]

/**
 * The URI without credentials (`redis://***@host`): the one redaction for answers, errors and
 * logs. The whole user-info goes, user name included: Zaqar's Redis form puts the password there.
 * Zaqar's Unix-socket form puts it before the path (`redis:secret@/path`: `redis:***@/path`).
 * Also inside a sentence (an error that names the URI).
 */
export const redactUri = (uri: string): string =>
  uri.replace(/\/\/[^@/]*@/, '//***@').replace(/\bredis:(?!\/\/)(?:[^/?#@\s][^?#@\s]*|\/[^/?#@\s]*)@/i, 'redis:***@')
