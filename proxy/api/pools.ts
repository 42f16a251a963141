/**
 * Pools admin API (zaqar/transport/wsgi/v2_0/pools.py): `/v2/pools`, `/v2/pools/{pool}`, and Missive's per-pool stats at
 * `/v2/admin/pools/{pool}/stats`. Every call needs the admin token (`requireAdmin`), checked
 * before the body: a caller without it learns nothing from validation errors.
 *
 * Where Missive differs from Zaqar (docs/api.md): deleting a pool that queues are still placed on
 * is refused with 409 (Zaqar strands them); the default pool cannot be deleted; pool names follow
 * the queue-name rule; a `uri` naming the same store as another pool's (same Redis server and
 * database, same SQLite file) is refused with 409 on every store; `sqlite:` files must lie inside
 * the data directory and never be the catalog's; `uri` passwords are masked in every answer.
 */
import { isAbsolute, relative, resolve } from 'node:path'
import type { Pool } from '../../catalog/contract.js'
import { catalogFile, defaultCatalogUri } from '../../catalog/index.js'
import { DEFAULT_POOL, isPoolName, MAX_POOL_WORKERS } from '../../catalog/pools.js'
import { badRequest, invalidBody, MissiveError, notFound } from '../../shared/errors.js'
import {
  availableStoreOf,
  poolCapabilities,
  realPath,
  redactUri,
  sqlitePath,
  StoreUriError,
} from '../../shared/storage/registry.js'
import { StorageError } from '../../shared/storage/errors.js'
import { storageErrorHttp } from '../storage-errors.js'
import { isObject, toJson } from '../json.js'
import type { Query } from '../params.js'
import { empty, json, type Reply } from '../transport.js'
import { pageLimit } from '../validate.js'
import { requiredBody } from './body.js'
import type { ApiRequest } from './context.js'
import { requireAdmin } from './system.js'

const MAX_WEIGHT = 2 ** 32 - 1
/** How long PUT/PATCH wait for a new pool URI to answer. */
const CONNECT_TIMEOUT_MS = 10_000
/** Queues whose stats are summed for one pool-stats call (the rest are counted, not read). */
export const STATS_QUEUE_SAMPLE = 1000

/** Python's repr of a JSON value, as jsonschema prints it in its messages. */
export function pyRepr(v: unknown): string {
  if (typeof v === 'string') return `'${v.replaceAll("'", "\\'")}'`
  if (v === null) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  return JSON.stringify(v)
}

/** The request body as a plain-JSON object (numbers as doubles), or Zaqar's 400. */
export function bodyObject(req: ApiRequest): Record<string, unknown> {
  if (req.body !== null && req.body.length === 0) throw invalidBody('Request body can not be empty')
  const doc = requiredBody(req)
  if (!isObject(doc)) throw invalidBody('Document type not supported.')
  // Admin documents are configuration: exact big numbers buy nothing here.
  return JSON.parse(toJson(doc)) as Record<string, unknown>
}

/** jsonschema's `additionalProperties: false` message for the first unknown key. */
export function rejectExtraKeys(doc: Record<string, unknown>, allowed: readonly string[]): void {
  const extra = Object.keys(doc).filter((k) => !allowed.includes(k))
  if (extra.length > 0) {
    const list = extra.map(pyRepr).join(', ')
    throw invalidBody(`Additional properties are not allowed (${list} ${extra.length === 1 ? 'was' : 'were'} unexpected)`)
  }
}

/** One page of `items` (sorted by name) after `marker`, with Zaqar's next link. */
export function page<T extends { name: string }>(
  req: ApiRequest,
  items: T[],
  maxPerPage: number,
): { items: T[]; links: { rel: string; href: string }[]; contentLocation: string } {
  const q = req.query
  const limit = pageLimit(q.int('limit', 10), maxPerPage)
  q.bool('detailed', false)
  const marker = q.get('marker')
  const after = marker === undefined ? items : items.filter((i) => i.name > marker)
  const slice = after.slice(0, limit)
  const links =
    slice.length === 0 ? [] : [{ rel: 'next', href: q.nextLink(req.path, slice[slice.length - 1]!.name, (k) => (k === 'detailed' ? 'bool' : k === 'limit' ? 'string' : undefined)) }]
  return { items: slice, links, contentLocation: relativeUri(req.path, q) }
}

/** The request's path and query as sent (Zaqar's `Content-Location` on listings). */
const relativeUri = (path: string, q: Query): string =>
  q.entries.length === 0 ? path : `${path}?${q.entries.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`

const poolHref = (req: ApiRequest, name: string): string => `${req.profile.prefix}/pools/${name}`

/** A pool as the API shows it: the `uri`'s password masked, as everywhere else (`redactUri`). */
function poolJson(req: ApiRequest, p: Pool, detailed: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { name: p.name, uri: redactUri(p.uri), weight: p.weight, flavor: p.flavor, href: poolHref(req, p.name) }
  if (detailed) out.options = p.options
  return out
}

function weightField(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidBody(`${pyRepr(v)} is not of type 'integer'`)
  if (v < 0) throw invalidBody(`${v} is less than the minimum of 0`)
  if (v > MAX_WEIGHT) throw invalidBody(`${v} is greater than the maximum of ${MAX_WEIGHT}`)
  return v
}

function uriField(v: unknown): string {
  if (typeof v !== 'string') throw invalidBody(`${pyRepr(v)} is not of type 'string'`)
  if (v.length > 255) throw invalidBody(`${pyRepr(redactUri(v))} is too long`)
  return v
}

/** `flavor`: a string of at most 255 characters; "" (and null) mean no flavor. */
function flavorField(v: unknown): string | null {
  if (v === null) return null
  if (typeof v !== 'string') throw invalidBody(`${pyRepr(v)} is not of type 'string'`)
  if (v.length > 255) throw invalidBody(`${pyRepr(v)} is too long`)
  return v === '' ? null : v
}

/**
 * The flavor a pool body sets, undefined when it sets none: `flavor`, or under v1.1 its older
 * name `group` (a v1.1 pool group is a flavor here: the flavor's pools are the group's pools).
 */
function flavorOf(req: ApiRequest, doc: Record<string, unknown>): string | null | undefined {
  const flavor = Object.hasOwn(doc, 'flavor') ? flavorField(doc.flavor) : undefined
  if (req.profile.name !== 'v1.1' || !Object.hasOwn(doc, 'group')) return flavor
  const group = flavorField(doc.group)
  if (flavor !== undefined && flavor !== group) throw invalidBody('`group` and `flavor` name the same thing; they must not differ.')
  return group
}

function optionsField(v: unknown): Record<string, unknown> {
  if (!isObject(v)) throw invalidBody(`${pyRepr(v)} is not of type 'object'`)
  if (Object.hasOwn(v, 'workers')) {
    const w = v.workers
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > MAX_POOL_WORKERS) {
      throw invalidBody(`options.workers must be an integer from 0 (served inside the proxy) to ${MAX_POOL_WORKERS}.`)
    }
  }
  return v
}

/**
 * Opens the storage `uri` names and closes it again: 400 `cannot connect to <uri>` (credentials
 * redacted, the reason appended) when that fails within the timeout.
 */
async function checkConnect(req: ApiRequest, uri: string): Promise<void> {
  // Imported here, not at the top: the drivers (native SQLite, ioredis, Lua) load into the proxy
  // only when an admin adds or changes a pool, or when the proxy serves a pool itself.
  const { openDriver } = await import('../../worker/storage/index.js')
  const opening = openDriver(uri, { dataDir: req.config.dataDir, durability: req.config.durability })
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS)
  })
  try {
    const driver = await Promise.race([opening, timeout])
    await driver.ping()
    await driver.close()
  } catch (err) {
    // A driver that opens after the timeout is closed rather than leaked.
    opening.then((d) => d.close(), () => {})
    const reason = redactUri(
      err instanceof StorageError ? storageErrorHttp(err).description : err instanceof MissiveError ? (err.description ?? err.message) : (err as Error).message,
    )
    req.log.warn({ requestId: req.requestId, uri: redactUri(uri), reason }, 'pool URI check failed')
    throw invalidBody(`cannot connect to ${redactUri(uri)}: ${reason}`)
  } finally {
    clearTimeout(timer)
  }
}

/** 400 when the other pools of `flavor` offer other capabilities than `uri` (Zaqar's rule). */
async function checkCapabilities(req: ApiRequest, name: string, uri: string, flavor: string | null): Promise<void> {
  if (flavor === null) return
  const others = (await req.control.catalog.listPools()).filter((p) => p.flavor === flavor && p.name !== name)
  if (others.length === 0) return
  const want = poolCapabilities(uri).sort().join(',')
  if (others.some((p) => poolCapabilities(p.uri).sort().join(',') !== want)) {
    throw new MissiveError('bad_request', 'The pool being added does not support the minimum set of capabilities', {
      title: 'Unable to create pool',
    })
  }
}

/**
 * The file a `sqlite:` pool URI names, after checking it lies inside the data directory
 * (symlinks resolved) and is not the catalog's file or one of its companions: 400 otherwise.
 * An admin token must not be a way to read or corrupt any file the service can open.
 */
function confinedSqliteFile(req: ApiRequest, uri: string): string {
  const raw = sqlitePath(uri, req.config.dataDir)
  if (raw === ':memory:') return raw
  const dataDir = realPath(resolve(req.config.dataDir))
  const file = realPath(raw)
  const rel = relative(dataDir, file)
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw invalidBody(`${redactUri(uri)}: a sqlite: pool file must be inside the data directory (a path relative to it, such as sqlite:pools/p1.sqlite).`)
  }
  const catalog = catalogFile(req.config.catalog ?? defaultCatalogUri(req.config.dataDir), req.config.dataDir)
  if (catalog !== null) {
    const c = realPath(catalog)
    if ([c, `${c}-wal`, `${c}-shm`, `${c}-journal`].includes(file)) throw invalidBody(`${redactUri(uri)}: that is the catalog's file; a pool needs a file of its own.`)
  }
  return file
}

/**
 * The store a pool URI names, normalised for comparison (the registry's `identity`: Redis host,
 * port and database; a SQLite file's real path). Throws 400 for a URI no pool may have: a
 * `sqlite:` file outside the data directory, a malformed Redis URI, a store this build has no
 * driver for (MongoDB), an unknown scheme.
 */
function storeOf(req: ApiRequest, uri: string): string {
  try {
    const store = availableStoreOf(uri)
    if (store.name === 'sqlite') confinedSqliteFile(req, uri)
    return store.identity(uri, { dataDir: req.config.dataDir, durability: req.config.durability })
  } catch (err) {
    if (err instanceof StoreUriError) throw invalidBody(`cannot connect to ${redactUri(uri)}: ${err.reason}`)
    throw err
  }
}

/** `storeOf` for a pool already in the catalog: its URI as is when it no longer passes the checks. */
function storedStoreOf(req: ApiRequest, uri: string): string {
  try {
    return storeOf(req, uri)
  } catch {
    return uri
  }
}

/** 409 when another pool's URI names the same store (see `storeOf`): two pools on one store would mix their queues. */
async function checkUriUnique(req: ApiRequest, name: string, uri: string): Promise<void> {
  const store = storeOf(req, uri)
  if (store === 'sqlite::memory:') return
  const other = (await req.control.catalog.listPools()).find((p) => p.name !== name && storedStoreOf(req, p.uri) === store)
  if (other !== undefined) throw new MissiveError('conflict', `Pool ${other.name} already uses this uri.`)
}

/**
 * A `uri` sent back as the API showed it (password masked) means "keep the stored one": a client
 * may GET a pool and PUT or PATCH the document back without learning the password.
 */
const unmasked = (uri: string, current: Pool | null): string =>
  current !== null && uri !== current.uri && uri === redactUri(current.uri) ? current.uri : uri

/** PUT /v2/pools/{pool}: create or replace (201 either way, as Zaqar). */
export async function putPool(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const name = req.params.pool!
  if (!isPoolName(name)) {
    throw badRequest(`Pool names may contain only ASCII letters, digits, underscores, dashes and dots, and be 1 to 64 characters long.`)
  }
  const doc = bodyObject(req)
  // `group` is the pre-Queens name of `flavor`'s ancestor: under v2 accepted and ignored (as
  // zaqar/transport/wsgi/v2_0/pools.py does); under v1.1 it is that API's word for the flavor (see `flavorOf`).
  rejectExtraKeys(doc, ['weight', 'uri', 'flavor', 'options', 'group'])
  if (!Object.hasOwn(doc, 'weight')) throw invalidBody(`'weight' is a required property`)
  if (!Object.hasOwn(doc, 'uri')) throw invalidBody(`'uri' is a required property`)
  const pool: Pool = {
    name,
    weight: weightField(doc.weight),
    uri: unmasked(uriField(doc.uri), await req.control.catalog.getPool(name)),
    flavor: flavorOf(req, doc) ?? null,
    options: Object.hasOwn(doc, 'options') ? optionsField(doc.options) : {},
  }
  await checkCapabilities(req, name, pool.uri, pool.flavor)
  await checkUriUnique(req, name, pool.uri)
  await checkConnect(req, pool.uri)
  await req.control.catalog.putPool(pool)
  await req.control.refresh()
  return empty(201, [['location', poolHref(req, name)]])
}

/** GET /v2/pools/{pool}[?detailed=true] */
export async function getPool(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const detailed = req.query.bool('detailed', false)
  const pool = await req.control.catalog.getPool(req.params.pool!)
  if (pool === null) throw notFound(`Pool ${req.params.pool!} does not exist`)
  return json(200, poolJson(req, pool, detailed))
}

/** PATCH /v2/pools/{pool}: any of weight, uri, flavor, options; 200 with the pool. */
export async function patchPool(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const doc = bodyObject(req)
  const fields = ['uri', 'weight', 'flavor', 'options', ...(req.profile.name === 'v1.1' ? ['group'] : [])].filter((k) => Object.hasOwn(doc, k))
  if (fields.length === 0) throw invalidBody('One of `uri`, `weight`, `flavor`, or `options` needs to be specified')
  const name = req.params.pool!
  const current = await req.control.catalog.getPool(name)
  if (current === null) throw notFound(`Pool ${name} does not exist`)
  const pool: Pool = { ...current }
  if (Object.hasOwn(doc, 'weight')) pool.weight = weightField(doc.weight)
  if (Object.hasOwn(doc, 'uri')) pool.uri = unmasked(uriField(doc.uri), current)
  const flavor = flavorOf(req, doc)
  if (flavor !== undefined) pool.flavor = flavor
  if (Object.hasOwn(doc, 'options')) pool.options = optionsField(doc.options)
  if (pool.flavor !== current.flavor || pool.uri !== current.uri) await checkCapabilities(req, name, pool.uri, pool.flavor)
  if (pool.uri !== current.uri) {
    await checkUriUnique(req, name, pool.uri)
    await checkConnect(req, pool.uri)
  }
  await req.control.catalog.putPool(pool)
  await req.control.refresh()
  return json(200, poolJson(req, pool, false))
}

/**
 * DELETE /v2/pools/{pool}: 204, also for a missing pool. 403 for the default pool and for the
 * last pool of a flavor (Zaqar); 409 while queues are placed on it (Missive).
 */
export async function deletePool(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const name = req.params.pool!
  const catalog = req.control.catalog
  const pool = await catalog.getPool(name)
  if (pool === null) return empty(204)
  if (name === DEFAULT_POOL) {
    throw new MissiveError('forbidden', 'The default pool cannot be deleted: queues without a placement are read from it.', {
      title: 'Unable to delete',
    })
  }
  if (pool.flavor !== null) {
    const flavor = await catalog.getFlavor(pool.flavor)
    if (flavor !== null && flavor.pools.length === 1 && flavor.pools[0] === name) {
      throw new MissiveError('forbidden', `This pool is used by flavors ${flavor.name}; It cannot be deleted.`, { title: 'Unable to delete' })
    }
  }
  try {
    await catalog.deletePool(name)
  } catch (err) {
    if (err instanceof MissiveError && err.code === 'conflict') {
      const n = await catalog.countPlacements(name)
      throw new MissiveError('conflict', `Pool ${name} still holds ${n} queue${n === 1 ? '' : 's'}; delete them before the pool.`, {
        title: 'Unable to delete',
      })
    }
    throw err
  }
  await req.control.refresh()
  return empty(204)
}

/** GET /v2/pools?marker=&limit=&detailed= */
export async function listPools(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const detailed = req.query.bool('detailed', false)
  const all = await req.control.catalog.listPools()
  const { items, links, contentLocation } = page(req, all, req.config.limits.max_pools_per_page)
  return json(200, { pools: items.map((p) => poolJson(req, p, detailed)), links }, [['content-location', contentLocation]])
}

/**
 * Messages on pool `name`: claimed, free (of which `delayed` not visible yet) and total summed over at most `STATS_QUEUE_SAMPLE` of
 * the queues placed on it (`complete` says whether that was all of them and every one answered),
 * with the exact count of queues. Shared by pool stats and health (`message_volume`).
 */
export async function messageVolume(
  req: ApiRequest,
  name: string,
  reachable: boolean,
): Promise<{ queues: number; claimed: number; free: number; delayed: number; total: number; queues_counted: number; complete: boolean }> {
  const catalog = req.control.catalog
  const queues = await catalog.countPlacements(name)
  const messages = { claimed: 0, free: 0, delayed: 0, total: 0, queues_counted: 0, complete: true }
  if (reachable && queues > 0) {
    const refs = await catalog.listPlacements(name, { limit: STATS_QUEUE_SAMPLE })
    // Each ref is routed to the worker its queue maps to (same hash as every other call).
    for (let i = 0; i < refs.length; i += 50) {
      const batch = await Promise.all(
        refs.slice(i, i + 50).map((ref) => req.storage.stats(ref).catch(() => null)),
      )
      for (const s of batch) {
        if (s === null) {
          messages.complete = false
          continue
        }
        messages.claimed += s.claimed
        messages.free += s.free
        messages.delayed += s.delayed ?? 0
        messages.total += s.total
        messages.queues_counted++
      }
    }
    if (messages.queues_counted < queues) messages.complete = false
  } else if (queues > 0) messages.complete = false
  return { queues, ...messages }
}

/**
 * GET /v2/admin/pools/{pool}/stats (Missive): queues placed on the pool (exact, from the
 * catalog); messages summed over at most `STATS_QUEUE_SAMPLE` of them (`complete` says whether
 * that was all); and each worker's health as this proxy sees it (ping round trip).
 */
export async function poolStats(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const name = req.params.pool!
  const catalog = req.control.catalog
  const pool = await catalog.getPool(name)
  if (pool === null) throw notFound(`Pool ${name} does not exist`)
  const drivers = req.control.pools.get(name) ?? []
  const workers = await Promise.all(
    drivers.map(async (d, index) => {
      const t0 = performance.now()
      try {
        await d.ping()
        return { index, reachable: true, ping_seconds: (performance.now() - t0) / 1000 }
      } catch {
        return { index, reachable: false, ping_seconds: null }
      }
    }),
  )
  const reachable = workers.some((w) => w.reachable)
  const { queues, ...messages } = await messageVolume(req, name, reachable)
  return json(200, {
    name,
    uri: redactUri(pool.uri),
    weight: pool.weight,
    flavor: pool.flavor,
    capabilities: poolCapabilities(pool.uri),
    queues,
    messages,
    storage: { reachable, workers },
  })
}
