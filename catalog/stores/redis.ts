/**
 * The catalog on Redis: what several proxy hosts share. Pools, flavors and placements live under
 * one key prefix (default `missive:catalog:`) of a standalone (or Sentinel-fronted) Redis; the
 * scripts touch several keys, so this store does not run on Redis Cluster.
 *
 * Layout (P = prefix; a placement member is `<project>\0<queue>`, so byte order of the member is
 * the byte order of (project, queue): project ids come from an HTTP header and never hold NUL):
 *
 * | key              | type   | holds                                                           |
 * |------------------|--------|-----------------------------------------------------------------|
 * | `P version`      | STRING | counter bumped by every change that can stale a cache           |
 * | `P pools`        | ZSET   | pool names, score 0 (ZRANGE gives them in byte order)           |
 * | `P pool:<name>`  | HASH   | `uri`, `weight`, `options` (JSON text), `flavor` (absent = null)|
 * | `P flavors`      | ZSET   | flavor names, score 0                                           |
 * | `P placements`   | HASH   | member → pool name                                              |
 * | `P placed:<pool>`| ZSET   | the pool's members, score 0: counts and ordered listing         |
 * | `P removals`     | ZSET   | `<version>\0<member>` by version: the last placement removals   |
 *
 * Every write is one Lua script or one MULTI, so a reader never sees half a change, and
 * placement is insert-if-absent (HGET then HSET inside one script) across every process sharing
 * the server. Proxies learn about changes by polling `version` (one GET per second each).
 */
import type { Redis } from 'ioredis'
import { MissiveError, unavailable } from '../../shared/errors.js'
import { connectRedis } from '../../shared/redis.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import { REMOVALS_KEPT, type CatalogStore, type Flavor, type PlacementRemoval, type Pool } from '../contract.js'

/** Returns the pool the queue lives on: the existing placement, or ARGV[2] now written. */
const PLACE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then return cur end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return ARGV[2]
`

/**
 * KEYS: placements, version. ARGV: member, prefix, removals kept. Returns 1 when a placement was
 * removed; the removal is remembered with the version it made (`removalsSince`).
 */
const REMOVE_PLACEMENT = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', ARGV[2] .. 'placed:' .. cur, ARGV[1])
local v = redis.call('INCR', KEYS[2])
local log = ARGV[2] .. 'removals'
redis.call('ZADD', log, v, v .. '\\0' .. ARGV[1])
redis.call('ZREMRANGEBYSCORE', log, '-inf', v - tonumber(ARGV[3]))
return 1
`

/** KEYS: pools, pool hash, placed set, version. ARGV: name. Returns -1 when queues remain. */
const DELETE_POOL = `
if redis.call('ZCARD', KEYS[3]) > 0 then return -1 end
local n = redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
if n > 0 then redis.call('INCR', KEYS[4]) end
return n
`

/**
 * KEYS: flavors, pools, version. ARGV: prefix, flavor name, pool names…
 * Returns '' on success, or the first listed pool that does not exist (nothing changed then).
 */
const PUT_FLAVOR = `
local prefix, name = ARGV[1], ARGV[2]
local listed = {}
for i = 3, #ARGV do
  if redis.call('EXISTS', prefix .. 'pool:' .. ARGV[i]) == 0 then return ARGV[i] end
  listed[ARGV[i]] = true
end
redis.call('ZADD', KEYS[1], 0, name)
for _, p in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local key = prefix .. 'pool:' .. p
  if listed[p] then
    redis.call('HSET', key, 'flavor', name)
  elseif redis.call('HGET', key, 'flavor') == name then
    redis.call('HDEL', key, 'flavor')
  end
end
redis.call('INCR', KEYS[3])
return ''
`

/** KEYS: flavors, pools, version. ARGV: prefix, flavor name. */
const DELETE_FLAVOR = `
local prefix, name = ARGV[1], ARGV[2]
local changed = redis.call('ZREM', KEYS[1], name)
for _, p in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local key = prefix .. 'pool:' .. p
  if redis.call('HGET', key, 'flavor') == name then
    redis.call('HDEL', key, 'flavor')
    changed = 1
  end
end
if changed > 0 then redis.call('INCR', KEYS[3]) end
return changed
`

type Scripted = Redis & {
  catalogPlace(placements: string, placed: string, member: string, pool: string): Promise<string>
  catalogRemovePlacement(placements: string, version: string, member: string, prefix: string, kept: number): Promise<number>
  catalogDeletePool(pools: string, pool: string, placed: string, version: string, name: string): Promise<number>
  catalogPutFlavor(flavors: string, pools: string, version: string, prefix: string, name: string, ...poolNames: string[]): Promise<string>
  catalogDeleteFlavor(flavors: string, pools: string, version: string, prefix: string, name: string): Promise<number>
}

export interface RedisCatalogOptions {
  host: string
  port: number
  db?: number
  username?: string
  password?: string
  /** Key prefix. Default `missive:catalog:`. */
  prefix?: string
  /** First connection attempt and each command. Default 5000 ms. */
  timeoutMs?: number
}

/**
 * `redis://[[user]:password@]host[:port][/db][?prefix=…&timeout=ms]` → options. Throws an `Error`
 * (never echoing the password) when the URI is malformed.
 */
export function parseRedisCatalogUri(uri: string): RedisCatalogOptions {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    throw new Error('malformed Redis catalog URI (expected redis://[[user]:password@]host[:port][/db])')
  }
  if (url.protocol !== 'redis:') throw new Error(`unsupported catalog URI scheme "${url.protocol}" (expected redis://)`)
  const opts: RedisCatalogOptions = { host: url.hostname || '127.0.0.1', port: url.port === '' ? 6379 : Number(url.port) }
  const db = url.pathname.replace(/^\//, '')
  if (db !== '') {
    if (!/^\d+$/.test(db)) throw new Error(`Redis catalog URI: the database must be a number, got "${db}"`)
    opts.db = Number(db)
  }
  if (url.username !== '') opts.username = decodeURIComponent(url.username)
  if (url.password !== '') opts.password = decodeURIComponent(url.password)
  for (const [k, v] of url.searchParams) {
    if (k === 'prefix') opts.prefix = v
    else if (k === 'timeout' && /^\d+$/.test(v) && Number(v) > 0) opts.timeoutMs = Number(v)
    else throw new Error(`Redis catalog URI: unknown or invalid option "${k}"`)
  }
  return opts
}

const member = (ref: QueueRef): string => `${ref.project}\u0000${ref.queue}`
const fromMember = (m: string): QueueRef => {
  const at = m.indexOf('\u0000')
  return { project: m.slice(0, at), queue: m.slice(at + 1) }
}

/** `CatalogStore` on Redis. Use `RedisCatalog.open`. */
export class RedisCatalog implements CatalogStore {
  readonly #redis: Scripted
  readonly #p: string
  readonly #k: { version: string; pools: string; flavors: string; placements: string }
  #closed = false

  private constructor(redis: Redis, prefix: string) {
    redis.defineCommand('catalogPlace', { numberOfKeys: 2, lua: PLACE })
    redis.defineCommand('catalogRemovePlacement', { numberOfKeys: 2, lua: REMOVE_PLACEMENT })
    redis.defineCommand('catalogDeletePool', { numberOfKeys: 4, lua: DELETE_POOL })
    redis.defineCommand('catalogPutFlavor', { numberOfKeys: 3, lua: PUT_FLAVOR })
    redis.defineCommand('catalogDeleteFlavor', { numberOfKeys: 3, lua: DELETE_FLAVOR })
    this.#redis = redis as Scripted
    this.#p = prefix
    this.#k = { version: `${prefix}version`, pools: `${prefix}pools`, flavors: `${prefix}flavors`, placements: `${prefix}placements` }
  }

  /** Connects; throws `unavailable` when the server does not answer within the timeout. */
  static async open(opts: RedisCatalogOptions): Promise<RedisCatalog> {
    const timeout = opts.timeoutMs ?? 5000
    // Fail fast while disconnected: a proxy answers 503 and keeps its cached placements.
    const redis = await connectRedis(
      {
        host: opts.host,
        port: opts.port,
        db: opts.db ?? 0,
        username: opts.username,
        password: opts.password,
        commandTimeout: timeout,
        connectTimeout: timeout,
        retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
      },
      'the Redis catalog',
    )
    return new RedisCatalog(redis, opts.prefix ?? 'missive:catalog:')
  }

  #poolKey = (name: string): string => `${this.#p}pool:${name}`
  #placedKey = (pool: string): string => `${this.#p}placed:${pool}`

  /** Runs `fn`, turning connection failures into a retryable 503. */
  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw unavailable('The catalog is closed.')
    try {
      return await fn()
    } catch (err) {
      if (err instanceof MissiveError) throw err
      throw unavailable('The catalog is unreachable. Please try again in a few seconds.', 1, err)
    }
  }

  getPlacement(ref: QueueRef): Promise<string | null> {
    return this.#run(() => this.#redis.hget(this.#k.placements, member(ref)))
  }

  place(ref: QueueRef, pool: string): Promise<string> {
    return this.#run(() => this.#redis.catalogPlace(this.#k.placements, this.#placedKey(pool), member(ref), pool))
  }

  async removePlacement(ref: QueueRef): Promise<void> {
    await this.#run(() => this.#redis.catalogRemovePlacement(this.#k.placements, this.#k.version, member(ref), this.#p, REMOVALS_KEPT))
  }

  countPlacements(pool: string): Promise<number> {
    return this.#run(() => this.#redis.zcard(this.#placedKey(pool)))
  }

  async listPlacements(pool: string, opts: { limit: number; after?: QueueRef }): Promise<QueueRef[]> {
    const from = opts.after === undefined ? '-' : `(${member(opts.after)}`
    const members = await this.#run(() => this.#redis.zrangebylex(this.#placedKey(pool), from, '+', 'LIMIT', 0, opts.limit))
    return members.map(fromMember)
  }

  async putPool(pool: Pool): Promise<void> {
    const key = this.#poolKey(pool.name)
    const fields: Record<string, string> = { uri: pool.uri, weight: String(pool.weight), options: JSON.stringify(pool.options ?? {}) }
    if (pool.flavor !== null) fields.flavor = pool.flavor
    await this.#run(() => this.#redis.multi().del(key).hset(key, fields).zadd(this.#k.pools, 0, pool.name).incr(this.#k.version).exec())
  }

  async getPool(name: string): Promise<Pool | null> {
    const h = await this.#run(() => this.#redis.hgetall(this.#poolKey(name)))
    return toPool(name, h)
  }

  async listPools(): Promise<Pool[]> {
    return this.#run(async () => {
      const names = await this.#redis.zrange(this.#k.pools, 0, -1)
      if (names.length === 0) return []
      const pipe = this.#redis.pipeline()
      for (const n of names) pipe.hgetall(this.#poolKey(n))
      const replies = (await pipe.exec()) ?? []
      const pools: Pool[] = []
      names.forEach((n, i) => {
        const [err, h] = replies[i] ?? [null, null]
        if (err) throw err
        const p = toPool(n, h as Record<string, string>)
        if (p !== null) pools.push(p)
      })
      return pools
    })
  }

  async deletePool(name: string): Promise<void> {
    const n = await this.#run(() =>
      this.#redis.catalogDeletePool(this.#k.pools, this.#poolKey(name), this.#placedKey(name), this.#k.version, name),
    )
    if (n === -1) throw new MissiveError('conflict', `Pool ${name} still holds queues; move or delete them first.`)
  }

  async putFlavor(name: string, pools: string[]): Promise<void> {
    const missing = await this.#run(() =>
      this.#redis.catalogPutFlavor(this.#k.flavors, this.#k.pools, this.#k.version, this.#p, name, ...pools),
    )
    if (missing !== '' && missing !== null) throw new MissiveError('not_found', `Pool ${missing} does not exist`)
  }

  async getFlavor(name: string): Promise<Flavor | null> {
    return this.#run(async () => {
      if ((await this.#redis.zscore(this.#k.flavors, name)) === null) return null
      const pools = await this.listPools()
      return { name, pools: pools.filter((p) => p.flavor === name).map((p) => p.name) }
    })
  }

  async listFlavors(): Promise<Flavor[]> {
    return this.#run(async () => {
      const [names, pools] = await Promise.all([this.#redis.zrange(this.#k.flavors, 0, -1), this.listPools()])
      return names.map((name) => ({ name, pools: pools.filter((p) => p.flavor === name).map((p) => p.name) }))
    })
  }

  async deleteFlavor(name: string): Promise<void> {
    await this.#run(() => this.#redis.catalogDeleteFlavor(this.#k.flavors, this.#k.pools, this.#k.version, this.#p, name))
  }

  async version(): Promise<number> {
    const v = await this.#run(() => this.#redis.get(this.#k.version))
    return v === null ? 0 : Number(v)
  }

  async removalsSince(after: number): Promise<PlacementRemoval[]> {
    const entries = await this.#run(() => this.#redis.zrangebyscore(`${this.#p}removals`, `(${after}`, '+inf'))
    return entries.map((e) => {
      const [version, project, queue] = e.split('\0')
      return { version: Number(version), ref: { project: project!, queue: queue! } }
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    try {
      await this.#redis.quit()
    } catch {
      this.#redis.disconnect()
    }
  }
}

function toPool(name: string, h: Record<string, string> | null): Pool | null {
  if (h === null || h.uri === undefined) return null
  return {
    name,
    uri: h.uri,
    weight: Number(h.weight),
    flavor: h.flavor ?? null,
    options: JSON.parse(h.options ?? '{}') as Record<string, unknown>,
  }
}
