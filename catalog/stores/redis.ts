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
 * | `P mig:<id>`     | HASH   | a migration's fields (`Migration` names; a null field is absent)|
 * | `P migs`         | ZSET   | every migration id, score 0 (id order = creation order)         |
 * | `P migs:<state>` | ZSET   | the ids in that state, score 0                                  |
 * | `P active`       | HASH   | member → its active migration's id                              |
 * | `P last`         | HASH   | member → its latest migration's id                              |
 * | `P activeFrom:<pool>`, `P activeTo:<pool>` | SET | active migration ids leaving / entering a pool |
 *
 * Subscriptions: catalog/stores/redis-subscriptions.ts (`P sub:<id>`, `P subs:…`, `P subu:…`, `P subq`, `P subv`).
 *
 * Migration leases use the server's clock (`TIME`), so proxies on several hosts agree on expiry
 * whatever their own clocks say.
 *
 * Every write is one Lua script or one MULTI, so a reader never sees half a change, and
 * placement is insert-if-absent (HGET then HSET inside one script) across every process sharing
 * the server. Proxies learn about changes by polling `version` (one GET per second each).
 */
import type { Redis } from 'ioredis'
import { MissiveError, unavailable } from '../../shared/errors.js'
import { closeRedis, connectRedis } from '../../shared/redis.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import { redisAddress, unixSocketParts } from '../../shared/storage/redis-uri.js'
import { REMOVALS_KEPT, type CatalogStore, type Flavor, type PlacementRemoval, type Pool } from '../contract.js'
import {
  migrationErrors as errs,
  newMigrationId,
  NEXT,
  PATCH_FIELDS,
  type Migration,
  type MigrationPatch,
  type MigrationState,
  type NewMigration,
} from '../migration-record.js'
import type { CreatedSubscription, NewSubscription, Subscription, SubscriptionPatch, SubscriptionUpdate } from '../subscription-record.js'
import { RedisSubscriptions } from './redis-subscriptions.js'

/** Returns the pool the queue lives on: the existing placement, or ARGV[2] now written. */
const PLACE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then return cur end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return ARGV[2]
`

/**
 * `placeWithin`: PLACE, unless the queue is unplaced and its project already has ARGV[5] placed
 * queues (then false, nothing written). The project's queues are counted in every pool's placed
 * set (members `<project>\0<queue>`: one ZLEXCOUNT range each).
 * KEYS: placements, the chosen pool's placed set, pools. ARGV: member, pool, prefix, project, max.
 */
const PLACE_WITHIN = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then return cur end
local lo, hi = '[' .. ARGV[4] .. '\\0', '(' .. ARGV[4] .. '\\1'
local n = 0
for _, name in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  n = n + redis.call('ZLEXCOUNT', ARGV[3] .. 'placed:' .. name, lo, hi)
end
if n >= tonumber(ARGV[5]) then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return ARGV[2]
`

/**
 * Lua helpers for migration scripts (P: the prefix). `setState` moves a migration between state
 * sets and, when it ends, out of the active indexes and its lease.
 */
const MIGRATION_LIB = `
local FINAL = { done = true, cancelled = true, failed = true }
local NEXT = { ${Object.entries(NEXT)
  .map(([k, v]) => `${k} = { ${v.map((s) => `${s} = true`).join(', ')} }`)
  .join(', ')} }
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function setState(P, id, key, old, new)
  if old == new then return end
  redis.call('ZREM', P .. 'migs:' .. old, id)
  redis.call('ZADD', P .. 'migs:' .. new, 0, id)
  redis.call('HSET', key, 'state', new)
  if FINAL[new] then
    local f = redis.call('HMGET', key, 'project', 'queue', 'from', 'to')
    local member = f[1] .. '\\0' .. f[2]
    if redis.call('HGET', P .. 'active', member) == id then redis.call('HDEL', P .. 'active', member) end
    redis.call('SREM', P .. 'activeFrom:' .. f[3], id)
    redis.call('SREM', P .. 'activeTo:' .. f[4], id)
    redis.call('HDEL', key, 'leaseOwner')
    redis.call('HSET', key, 'leaseExpires', 0)
  end
end
-- ARGV[i] = number of fields to set, then that many name/value pairs, then the count and names to clear.
local function patch(key, i)
  local n = tonumber(ARGV[i])
  for j = 0, n - 1 do redis.call('HSET', key, ARGV[i + 1 + 2 * j], ARGV[i + 2 + 2 * j]) end
  i = i + 1 + 2 * n
  local m = tonumber(ARGV[i])
  for j = 1, m do redis.call('HDEL', key, ARGV[i + j]) end
end
`

/**
 * ARGV: prefix, id, member, from, to, max active from (-1: none), project, queue, rate, origin,
 * created. Returns {'ok'} or {reason, detail}.
 */
const CREATE_MIGRATION = `
local P, id, member, from, to = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if from == to then return { 'same_pool' } end
if redis.call('EXISTS', P .. 'pool:' .. from) == 0 then return { 'unknown_pool', from } end
if redis.call('EXISTS', P .. 'pool:' .. to) == 0 then return { 'unknown_pool', to } end
local placed = redis.call('HGET', P .. 'placements', member)
if placed ~= from then return { 'not_placed', placed or '' } end
local act = redis.call('HGET', P .. 'active', member)
if act then return { 'active', act } end
local lim = tonumber(ARGV[6])
if lim >= 0 and redis.call('SCARD', P .. 'activeFrom:' .. from) >= lim then return { 'busy' } end
redis.call('HSET', P .. 'mig:' .. id, 'project', ARGV[7], 'queue', ARGV[8], 'from', from, 'to', to, 'rate', ARGV[9],
  'origin', ARGV[10], 'state', 'copying', 'cursor', 0, 'copied', 0, 'bytes', 0, 'journalApplied', 0,
  'created', ARGV[11], 'leaseExpires', 0)
redis.call('ZADD', P .. 'migs', 0, id)
redis.call('ZADD', P .. 'migs:copying', 0, id)
redis.call('HSET', P .. 'active', member, id)
redis.call('HSET', P .. 'last', member, id)
redis.call('SADD', P .. 'activeFrom:' .. from, id)
redis.call('SADD', P .. 'activeTo:' .. to, id)
return { 'ok' }
`

/** ARGV: prefix, owner, ttl ms, ids to skip… Returns the leased migration's id, or false. */
const ACQUIRE_MIGRATION = `${MIGRATION_LIB}
local P, owner, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local skip = {}
for i = 4, #ARGV do skip[ARGV[i]] = true end
local ids = redis.call('HVALS', P .. 'active')
table.sort(ids)
local now = nowMs()
for _, id in ipairs(ids) do
  if not skip[id] then
    local key = P .. 'mig:' .. id
    local f = redis.call('HMGET', key, 'leaseOwner', 'leaseExpires')
    if (not f[1]) or f[1] == owner or tonumber(f[2] or '0') <= now then
      redis.call('HSET', key, 'leaseOwner', owner, 'leaseExpires', now + ttl)
      return id
    end
  end
end
return false
`

/** ARGV: prefix, id, owner, ttl ms. Returns 'ok', 'not_found' or 'lease_lost'. */
const RENEW_MIGRATION = `${MIGRATION_LIB}
local key = ARGV[1] .. 'mig:' .. ARGV[2]
local f = redis.call('HMGET', key, 'state', 'leaseOwner')
if not f[1] then return 'not_found' end
if f[2] ~= ARGV[3] or FINAL[f[1]] then return 'lease_lost' end
redis.call('HSET', key, 'leaseExpires', nowMs() + tonumber(ARGV[4]))
return 'ok'
`

/** ARGV: prefix, id, owner. */
const RELEASE_MIGRATION = `
local key = ARGV[1] .. 'mig:' .. ARGV[2]
if redis.call('HGET', key, 'leaseOwner') == ARGV[3] then
  redis.call('HDEL', key, 'leaseOwner')
  redis.call('HSET', key, 'leaseExpires', 0)
end
return 0
`

/**
 * ARGV: prefix, id, owner, new state ('' to keep), then the patch (see \`patch\`). Returns
 * {'ok'} or {reason, detail}.
 */
const UPDATE_MIGRATION = `${MIGRATION_LIB}
local P, id = ARGV[1], ARGV[2]
local key = P .. 'mig:' .. id
local f = redis.call('HMGET', key, 'state', 'leaseOwner')
if not f[1] then return { 'not_found' } end
if f[2] ~= ARGV[3] then return { 'lease_lost' } end
local new = ARGV[4]
if new == '' then new = f[1] end
if new ~= f[1] and not NEXT[f[1]][new] then return { 'bad_transition', f[1], new } end
patch(key, 5)
setState(P, id, key, f[1], new)
return { 'ok' }
`

/**
 * ARGV: prefix, id, owner, removals kept, then the patch. The switch: placement from → to,
 * version bump with a removal entry, state switching → cleaning. Returns {'ok'} or {reason, …}.
 */
const FINISH_SWITCH = `${MIGRATION_LIB}
local P, id = ARGV[1], ARGV[2]
local key = P .. 'mig:' .. id
local f = redis.call('HMGET', key, 'state', 'leaseOwner', 'project', 'queue', 'from', 'to')
if not f[1] then return { 'not_found' } end
if f[2] ~= ARGV[3] then return { 'lease_lost' } end
if f[1] == 'cleaning' then return { 'ok' } end
if f[1] ~= 'switching' then return { 'bad_transition', f[1], 'cleaning' } end
local member = f[3] .. '\\0' .. f[4]
local placed = redis.call('HGET', P .. 'placements', member)
if placed ~= f[5] then return { 'not_placed', placed or '' } end
redis.call('HSET', P .. 'placements', member, f[6])
redis.call('ZREM', P .. 'placed:' .. f[5], member)
redis.call('ZADD', P .. 'placed:' .. f[6], 0, member)
local v = redis.call('INCR', P .. 'version')
local log = P .. 'removals'
redis.call('ZADD', log, v, v .. '\\0' .. member)
redis.call('ZREMRANGEBYSCORE', log, '-inf', v - tonumber(ARGV[4]))
patch(key, 5)
setState(P, id, key, f[1], 'cleaning')
return { 'ok' }
`

/** ARGV: prefix, id. Returns {'ok'} or {reason, state}. */
const CANCEL_MIGRATION = `${MIGRATION_LIB}
local P, id = ARGV[1], ARGV[2]
local key = P .. 'mig:' .. id
local state = redis.call('HGET', key, 'state')
if not state then return { 'not_found' } end
if state == 'copying' then
  setState(P, id, key, state, 'cancelling')
  redis.call('HDEL', key, 'error')
  return { 'ok' }
end
if state == 'cancelling' or state == 'cancelled' then return { 'ok' } end
return { 'too_late', state }
`

/**
 * KEYS: placements, version. ARGV: member, prefix, removals kept. Returns 1 when a placement was
 * removed; the removal is remembered with the version it made (`removalsSince`). A copying
 * migration of the queue goes to cancelling (the queue is gone).
 */
const REMOVE_PLACEMENT = `${MIGRATION_LIB}
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local act = redis.call('HGET', ARGV[2] .. 'active', ARGV[1])
if act and redis.call('HGET', ARGV[2] .. 'mig:' .. act, 'state') == 'copying' then
  setState(ARGV[2], act, ARGV[2] .. 'mig:' .. act, 'copying', 'cancelling')
  redis.call('HDEL', ARGV[2] .. 'mig:' .. act, 'error')
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', ARGV[2] .. 'placed:' .. cur, ARGV[1])
local v = redis.call('INCR', KEYS[2])
local log = ARGV[2] .. 'removals'
redis.call('ZADD', log, v, v .. '\\0' .. ARGV[1])
redis.call('ZREMRANGEBYSCORE', log, '-inf', v - tonumber(ARGV[3]))
return 1
`

/**
 * KEYS: pools, pool hash, placed set, version, active migrations to the pool. ARGV: name.
 * Returns -1 when queues remain or are moving onto it.
 */
const DELETE_POOL = `
if redis.call('ZCARD', KEYS[3]) > 0 or redis.call('SCARD', KEYS[5]) > 0 then return -1 end
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
  catalogPlaceWithin(placements: string, placed: string, pools: string, member: string, pool: string, prefix: string, project: string, max: number): Promise<string | null>
  catalogRemovePlacement(placements: string, version: string, member: string, prefix: string, kept: number): Promise<number>
  catalogDeletePool(pools: string, pool: string, placed: string, version: string, activeTo: string, name: string): Promise<number>
  catalogCreateMigration(...argv: (string | number)[]): Promise<string[]>
  catalogAcquireMigration(...argv: (string | number)[]): Promise<string | null>
  catalogRenewMigration(...argv: (string | number)[]): Promise<string>
  catalogReleaseMigration(...argv: (string | number)[]): Promise<number>
  catalogUpdateMigration(...argv: (string | number)[]): Promise<string[]>
  catalogFinishSwitch(...argv: (string | number)[]): Promise<string[]>
  catalogCancelMigration(...argv: (string | number)[]): Promise<string[]>
  catalogPutFlavor(flavors: string, pools: string, version: string, prefix: string, name: string, ...poolNames: string[]): Promise<string>
  catalogDeleteFlavor(flavors: string, pools: string, version: string, prefix: string, name: string): Promise<number>
}

export interface RedisCatalogOptions {
  host: string
  port: number
  /** A server on a Unix socket, instead of `host:port` (`redis:[password@]/path`). */
  path?: string
  /** A Sentinel-watched catalog: the Sentinels, the master's name, their own password. */
  sentinels?: { host: string; port: number }[]
  master?: string
  sentinelPassword?: string
  /**
   * Replicas that must acknowledge each catalog operation (WAIT) before it answers. Default 1
   * for a Sentinel catalog (a placement acknowledged just before a failover must survive it), 0
   * otherwise.
   */
  wait?: number
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
/**
 * A connection to the Redis catalog `opts` names, as the catalog and what lives beside it (API
 * keys, rate limits: proxy/auth/, proxy/limits/) open it. Fails fast while disconnected: a proxy
 * answers 503 and keeps its cached placements.
 */
export function connectCatalogRedis(opts: RedisCatalogOptions): Promise<Redis> {
  const timeout = opts.timeoutMs ?? 5000
  const opened = { now: false }
  const where =
    opts.sentinels === undefined
      ? redisAddress(opts)
      : {
          // As a Sentinel pool (worker/storage/redis/driver.ts): the master asked of the Sentinels
          // at every (re)connection, +switch-master followed at once (connectRedis), READONLY (the
          // old master back as a replica) reconnects; no Sentinel answering at start is an error,
          // not a wait.
          sentinels: opts.sentinels,
          name: opts.master,
          role: 'master' as const,
          ...(opts.sentinelPassword !== undefined && { sentinelPassword: opts.sentinelPassword }),
          sentinelCommandTimeout: timeout,
          sentinelRetryStrategy: (times: number) => (opened.now ? Math.min(50 * 2 ** Math.min(times, 5), 1000) : null),
          reconnectOnError: (err: Error) => (/^READONLY\b/.test(err.message) ? 1 : false),
        }
  return connectRedis(
    {
      ...where,
      db: opts.db ?? 0,
      username: opts.username,
      password: opts.password,
      commandTimeout: timeout,
      connectTimeout: timeout,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    },
    opts.sentinels === undefined ? 'the Redis catalog' : `the Redis catalog's master "${opts.master}"`,
  ).then((redis) => {
    opened.now = true
    return redis
  })
}

export function parseRedisCatalogUri(uri: string): RedisCatalogOptions {
  if (/^redis\+sentinel:/i.test(uri)) return parseSentinelCatalogUri(uri)
  if (/^redis:(?!\/\/)/i.test(uri)) return parseUnixCatalogUri(uri)
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
    else if (k === 'wait' && /^\d+$/.test(v)) opts.wait = Number(v)
    else throw new Error(`Redis catalog URI: unknown or invalid option "${k}"`)
  }
  return opts
}

/**
 * `redis:[password@]/path/to/redis.sock[?dbid=N&prefix=…&timeout=ms&wait=n]`: the catalog on a
 * server's Unix socket, written as Zaqar writes its Unix-socket pools (the password before the
 * path; the database as `dbid`, the path being the socket's).
 */
function parseUnixCatalogUri(uri: string): RedisCatalogOptions {
  const parts = unixSocketParts(uri)
  if (parts === undefined) throw new Error('Redis catalog URI: a Unix socket is named by its absolute path (redis:/path/to/redis.sock)')
  const opts: RedisCatalogOptions = { host: '', port: 0, path: parts.path }
  if (parts.password !== undefined) opts.password = parts.password
  for (const [k, v] of parts.params) {
    if (k === 'prefix') opts.prefix = v
    else if (k === 'timeout' && /^\d+$/.test(v) && Number(v) > 0) opts.timeoutMs = Number(v)
    else if (k === 'wait' && /^\d+$/.test(v)) opts.wait = Number(v)
    else if (k === 'dbid' && /^\d+$/.test(v)) opts.db = Number(v)
    else throw new Error(`Redis catalog URI: unknown or invalid option "${k}"`)
  }
  return opts
}

/**
 * `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/<master>[/db][?prefix=…&timeout=ms
 * &wait=n&sentinel_password=…]`: the catalog on a Redis master watched by Sentinels (port 26379 by
 * default), followed across failovers (docs/ha.md, "Many nodes, one catalog").
 */
function parseSentinelCatalogUri(uri: string): RedisCatalogOptions {
  const m = /^[a-z+]+:\/\/(?:([^@/?#]*)@)?([^/?#]+)\/([^/?#]+)(?:\/(\d+))?\/?(?:\?([^#]*))?$/i.exec(uri)
  if (m === null) throw new Error('malformed Redis Sentinel catalog URI (expected redis+sentinel://host:port[,host:port…]/<master-name>[/db])')
  const sentinels = m[2]!.split(',').map((item) => {
    const h = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(item.trim())
    const port = h?.[3] === undefined ? 26379 : Number(h[3])
    if (h === null || !(port >= 1 && port <= 65535)) throw new Error(`Redis Sentinel catalog URI: malformed Sentinel "${item}"`)
    return { host: h[1] ?? h[2]!, port }
  })
  const opts: RedisCatalogOptions = { host: sentinels[0]!.host, port: sentinels[0]!.port, sentinels, master: decodeURIComponent(m[3]!), wait: 1 }
  if (m[4] !== undefined) opts.db = Number(m[4])
  const info = m[1]
  if (info !== undefined && info !== '') {
    const colon = info.indexOf(':')
    if (colon < 0) opts.password = decodeURIComponent(info)
    else {
      if (colon > 0) opts.username = decodeURIComponent(info.slice(0, colon))
      if (colon < info.length - 1) opts.password = decodeURIComponent(info.slice(colon + 1))
    }
  }
  for (const [k, v] of new URLSearchParams(m[5] ?? '')) {
    if (k === 'prefix') opts.prefix = v
    else if (k === 'timeout' && /^\d+$/.test(v) && Number(v) > 0) opts.timeoutMs = Number(v)
    else if (k === 'wait' && /^\d+$/.test(v)) opts.wait = Number(v)
    else if (k === 'sentinel_password') opts.sentinelPassword = v
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
  readonly #subs: RedisSubscriptions
  #closed = false
  /** Replicas each operation waits for (WAIT), and for how long (ms: half the command timeout, so WAIT answers first). */
  readonly #wait: number
  readonly #waitMs: number

  private constructor(redis: Redis, prefix: string, wait = 0, waitMs = 1000) {
    this.#wait = wait
    this.#waitMs = waitMs
    redis.defineCommand('catalogPlace', { numberOfKeys: 2, lua: PLACE })
    redis.defineCommand('catalogPlaceWithin', { numberOfKeys: 3, lua: PLACE_WITHIN })
    redis.defineCommand('catalogRemovePlacement', { numberOfKeys: 2, lua: REMOVE_PLACEMENT })
    redis.defineCommand('catalogDeletePool', { numberOfKeys: 5, lua: DELETE_POOL })
    redis.defineCommand('catalogCreateMigration', { numberOfKeys: 0, lua: CREATE_MIGRATION })
    redis.defineCommand('catalogAcquireMigration', { numberOfKeys: 0, lua: ACQUIRE_MIGRATION })
    redis.defineCommand('catalogRenewMigration', { numberOfKeys: 0, lua: RENEW_MIGRATION })
    redis.defineCommand('catalogReleaseMigration', { numberOfKeys: 0, lua: RELEASE_MIGRATION })
    redis.defineCommand('catalogUpdateMigration', { numberOfKeys: 0, lua: UPDATE_MIGRATION })
    redis.defineCommand('catalogFinishSwitch', { numberOfKeys: 0, lua: FINISH_SWITCH })
    redis.defineCommand('catalogCancelMigration', { numberOfKeys: 0, lua: CANCEL_MIGRATION })
    redis.defineCommand('catalogPutFlavor', { numberOfKeys: 3, lua: PUT_FLAVOR })
    redis.defineCommand('catalogDeleteFlavor', { numberOfKeys: 3, lua: DELETE_FLAVOR })
    this.#redis = redis as Scripted
    this.#p = prefix
    this.#k = { version: `${prefix}version`, pools: `${prefix}pools`, flavors: `${prefix}flavors`, placements: `${prefix}placements` }
    this.#subs = new RedisSubscriptions(redis, prefix, (fn) => this.#run(fn))
  }

  /** Connects; throws `unavailable` when the server does not answer within the timeout. */
  static async open(opts: RedisCatalogOptions): Promise<RedisCatalog> {
    return new RedisCatalog(await connectCatalogRedis(opts), opts.prefix ?? 'missive:catalog:', opts.wait ?? 0, Math.max(1, Math.floor((opts.timeoutMs ?? 5000) / 2)))
  }

  #poolKey = (name: string): string => `${this.#p}pool:${name}`
  #placedKey = (pool: string): string => `${this.#p}placed:${pool}`

  /** Runs `fn`, turning connection failures into a retryable 503. */
  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw unavailable('The catalog is closed.')
    try {
      const result = await fn()
      // A replicated catalog (wait=n): every operation's writes reach n replicas before it
      // answers. WAIT covers every earlier write of this connection, so it follows any operation
      // (after a read it returns at once): simpler than telling reads from writes, and catalog
      // operations are rare (placements are cached by each proxy).
      if (this.#wait > 0) {
        const got = await this.#redis.wait(this.#wait, this.#waitMs)
        if (got < this.#wait) throw unavailable(`The catalog's write reached ${got} of ${this.#wait} replicas. Please try again in a few seconds.`, 1)
      }
      return result
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

  placeWithin(ref: QueueRef, pool: string, maxQueues: number): Promise<string | null> {
    return this.#run(() =>
      this.#redis.catalogPlaceWithin(this.#k.placements, this.#placedKey(pool), this.#k.pools, member(ref), pool, this.#p, ref.project, maxQueues),
    )
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
      this.#redis.catalogDeletePool(this.#k.pools, this.#poolKey(name), this.#placedKey(name), this.#k.version, `${this.#p}activeTo:${name}`, name),
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

  async #readMigration(id: string): Promise<Migration | null> {
    return toMigration(id, await this.#run(() => this.#redis.hgetall(`${this.#p}mig:${id}`)))
  }

  /** The migration after a script said 'ok', or the script's refusal as a `MigrationError`. */
  async #after(id: string, reply: string[], m?: NewMigration): Promise<Migration> {
    const [status, a, b] = reply
    switch (status) {
      case 'ok': {
        const got = await this.#readMigration(id)
        if (got === null) throw errs.notFound(id)
        return got
      }
      case 'not_found':
        throw errs.notFound(id)
      case 'lease_lost':
        throw errs.leaseLost(id)
      case 'bad_transition':
        throw errs.badTransition(id, a!, b!)
      case 'too_late':
        throw errs.tooLate(id, a!)
      case 'same_pool':
        throw errs.samePool(m!)
      case 'unknown_pool':
        throw errs.unknownPool(a!)
      case 'active':
        throw errs.active(m!, a!)
      case 'not_placed': {
        const mig = m ?? (await this.#readMigration(id))!
        throw errs.notPlaced(mig, a === '' || a === undefined ? null : a)
      }
      default:
        throw new MissiveError('internal', `unexpected catalog reply ${status}`)
    }
  }

  async createMigration(m: NewMigration, opts: { maxActiveFrom?: number } = {}): Promise<Migration> {
    const now = Date.now()
    const id = newMigrationId(now)
    const reply = await this.#run(() =>
      this.#redis.catalogCreateMigration(this.#p, id, member(m), m.from, m.to, opts.maxActiveFrom ?? -1, m.project, m.queue, m.rate, m.origin, now),
    )
    if (reply[0] === 'busy') throw errs.busy(m.from, opts.maxActiveFrom!)
    return this.#after(id, reply, m)
  }

  getMigration(id: string): Promise<Migration | null> {
    return this.#readMigration(id)
  }

  async listMigrations(opts: { limit: number; after?: string; state?: MigrationState }): Promise<Migration[]> {
    const key = opts.state === undefined ? `${this.#p}migs` : `${this.#p}migs:${opts.state}`
    const from = opts.after === undefined ? '-' : `(${opts.after}`
    return this.#run(async () => {
      const ids = await this.#redis.zrangebylex(key, from, '+', 'LIMIT', 0, opts.limit)
      if (ids.length === 0) return []
      const pipe = this.#redis.pipeline()
      for (const id of ids) pipe.hgetall(`${this.#p}mig:${id}`)
      const replies = (await pipe.exec()) ?? []
      const out: Migration[] = []
      ids.forEach((id, i) => {
        const [err, h] = replies[i] ?? [null, null]
        if (err) throw err
        const m = toMigration(id, h as Record<string, string>)
        if (m !== null) out.push(m)
      })
      return out
    })
  }

  async activeMigration(ref: QueueRef): Promise<Migration | null> {
    const id = await this.#run(() => this.#redis.hget(`${this.#p}active`, member(ref)))
    return id === null ? null : this.#readMigration(id)
  }

  async lastMigration(ref: QueueRef): Promise<Migration | null> {
    const id = await this.#run(() => this.#redis.hget(`${this.#p}last`, member(ref)))
    return id === null ? null : this.#readMigration(id)
  }

  countActiveFrom(pool: string): Promise<number> {
    return this.#run(() => this.#redis.scard(`${this.#p}activeFrom:${pool}`))
  }

  async acquireMigration(owner: string, ttlMs: number, skip: readonly string[] = []): Promise<Migration | null> {
    const id = await this.#run(() => this.#redis.catalogAcquireMigration(this.#p, owner, Math.ceil(ttlMs), ...skip))
    return id === null ? null : this.#readMigration(id)
  }

  async renewMigration(id: string, owner: string, ttlMs: number): Promise<void> {
    const r = await this.#run(() => this.#redis.catalogRenewMigration(this.#p, id, owner, Math.ceil(ttlMs)))
    if (r === 'not_found') throw errs.notFound(id)
    if (r !== 'ok') throw errs.leaseLost(id)
  }

  async releaseMigration(id: string, owner: string): Promise<void> {
    await this.#run(() => this.#redis.catalogReleaseMigration(this.#p, id, owner))
  }

  async updateMigration(id: string, owner: string, patch: MigrationPatch): Promise<Migration> {
    const reply = await this.#run(() => this.#redis.catalogUpdateMigration(this.#p, id, owner, patch.state ?? '', ...patchArgs(patch)))
    return this.#after(id, reply)
  }

  async finishSwitch(id: string, owner: string, patch: MigrationPatch = {}): Promise<Migration> {
    const reply = await this.#run(() => this.#redis.catalogFinishSwitch(this.#p, id, owner, REMOVALS_KEPT, ...patchArgs(patch)))
    return this.#after(id, reply)
  }

  async cancelMigration(id: string): Promise<Migration> {
    const reply = await this.#run(() => this.#redis.catalogCancelMigration(this.#p, id))
    return this.#after(id, reply)
  }

  createSubscription(s: NewSubscription, now: number): Promise<CreatedSubscription> {
    return this.#subs.create(s, now)
  }

  subscriptionsVersion(): Promise<number> {
    return this.#subs.version()
  }

  getSubscription(ref: QueueRef, id: string, now: number): Promise<Subscription | null> {
    return this.#subs.get(ref, id, now)
  }

  listSubscriptions(ref: QueueRef, opts: { limit: number; after?: string | undefined; now: number }): Promise<Subscription[]> {
    return this.#subs.list(ref, opts)
  }

  updateSubscription(ref: QueueRef, id: string, patch: SubscriptionPatch, now: number): Promise<SubscriptionUpdate> {
    return this.#subs.update(ref, id, patch, now)
  }

  confirmSubscription(ref: QueueRef, id: string, confirmed: boolean, now: number): Promise<boolean> {
    return this.#subs.confirm(ref, id, confirmed, now)
  }

  deleteSubscription(ref: QueueRef, id: string): Promise<void> {
    return this.#subs.delete(ref, id)
  }

  setSubscriptionCursor(ref: QueueRef, id: string, cursor: string): Promise<void> {
    return this.#subs.setCursor(ref, id, cursor)
  }

  listSubscribedQueues(opts: { limit: number; after?: QueueRef | undefined }): Promise<QueueRef[]> {
    return this.#subs.queues(opts)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await closeRedis(this.#redis)
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

/** A patch as script arguments: the count and name/value pairs to set, then the count and names to clear (nulls). */
function patchArgs(patch: MigrationPatch): (string | number)[] {
  const set: (string | number)[] = []
  const clear: string[] = []
  for (const f of PATCH_FIELDS) {
    if (f === 'state') continue // scripts set it, checking the transition
    const v = patch[f]
    if (v === undefined) continue
    if (v === null) clear.push(f)
    else set.push(f, v)
  }
  return [set.length / 2, ...set, clear.length, ...clear]
}

const num = (v: string | undefined): number | null => (v === undefined ? null : Number(v))

function toMigration(id: string, h: Record<string, string> | null): Migration | null {
  if (h === null || h.state === undefined) return null
  return {
    id,
    project: h.project!,
    queue: h.queue!,
    from: h.from!,
    to: h.to!,
    rate: Number(h.rate),
    origin: h.origin ?? '',
    state: h.state as MigrationState,
    cursor: Number(h.cursor ?? 0),
    copied: Number(h.copied ?? 0),
    bytes: Number(h.bytes ?? 0),
    journalApplied: Number(h.journalApplied ?? 0),
    sourceCount: num(h.sourceCount),
    error: h.error ?? null,
    created: Number(h.created),
    started: num(h.started),
    switchedAt: num(h.switchedAt),
    finished: num(h.finished),
    pauseMs: num(h.pauseMs),
    leaseOwner: h.leaseOwner ?? null,
    leaseExpires: Number(h.leaseExpires ?? 0),
  }
}
