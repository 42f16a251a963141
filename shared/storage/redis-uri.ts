/**
 * Redis pool URIs: `redis://[[user]:password@]host[:port][/db][?options]`; Sentinel pools
 * `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/<master-name>[/db][?options]`
 * (the Sentinels' addresses, port 26379 by default, and the master's name as they know it;
 * docs/ha.md); and Zaqar's own form
 * verbatim (zaqar/storage/redis/driver.py `ConnectionURI`): `redis://[password@]host[:port][/path]
 * [?dbid=N&socket_timeout=S]`, where a user-info without `:` is the password and a path that is
 * not a database number is ignored (Zaqar ignores every path on TCP).
 *
 * | option            | values                 | default                  | meaning                                    |
 * |-------------------|------------------------|--------------------------|--------------------------------------------|
 * | `durability`      | `durable` \| `fast`    | the config's durability  | what a 201 promises (see docs/redis.md)    |
 * | `wait`            | integer ≥ 0            | 0                        | replicas that must ack each write (WAIT)   |
 * | `wait_timeout`    | ms > 0                 | 1000                     | how long WAIT may block                    |
 * | `verify`          | a boolean              | true                     | check the server's persistence at connect  |
 * | `command_timeout` | ms > 0                 | 10000                    | a command without a reply fails after this |
 * | `connect_timeout` | ms > 0                 | 5000                     | first connection attempt                   |
 * | `auto_pipelining` | a boolean              | false                    | ioredis auto-pipelining                    |
 * | `gc_interval`     | ms ≥ 0 (0 = off)       | 1000                     | period of the background collector         |
 * | `dbid`            | integer ≥ 0            | the path's number, or 0  | database number (Zaqar's option; wins over the path) |
 * | `socket_timeout`  | seconds > 0 (decimal)  | —                        | Zaqar's option: command and connect timeout, unless those are given |
 *
 * | `sentinel_password` | text                 | —                        | Sentinel pools: the Sentinels' own password (AUTH) |
 *
 * Zaqar's Sentinel form is read too: `redis://[password@]host[:port][,host[:port]…][/path]
 * ?master=<name>[&…]` (the hosts are Sentinels, port 26379 by default). So is its Unix-socket
 * form, `redis:[password@]/path/to/socket[?options]` (or `redis:///path/to/socket`): the path is
 * absolute and taken as written, the password is what precedes an `@` (as Zaqar reads it), and
 * the database is `dbid` (every option above applies).
 *
 * Redis Cluster pools: `redis+cluster://[[user]:password@]host[:port][,host[:port]…][?options]`,
 * any nodes of the cluster (port 6379 by default; ioredis discovers the others), every option
 * above but `dbid` (a cluster has database 0 only) and `sentinel_password` (docs/ha.md).
 */
import { BOOL_SPELLINGS, boolText, intTextMin, parseText } from '../config-text.js'
import { MissiveError } from '../errors.js'

export type Durability = 'durable' | 'fast'

/** One Sentinel's address. */
export interface SentinelAddress {
  host: string
  port: number
}

export interface RedisPoolOptions {
  /** The server (for a Sentinel pool: the first Sentinel, for messages only; '' with `path`). */
  host: string
  port: number
  /** A Unix socket to reach the server through, instead of `host:port` (Zaqar's `redis:/path`). */
  path?: string
  /** Sentinel pools: the Sentinels to ask for the master (ioredis follows failovers). */
  sentinels?: SentinelAddress[]
  /** Sentinel pools: the master's name in the Sentinels' configuration. */
  master?: string
  /** Sentinel pools: the Sentinels' own password, when they require one. */
  sentinelPassword?: string
  /** Redis Cluster pools: the nodes to discover the cluster from (ioredis's Cluster client). */
  cluster?: SentinelAddress[]
  db: number
  username?: string
  password?: string
  durability: Durability
  wait: number
  waitTimeoutMs: number
  verify: boolean
  commandTimeoutMs: number
  connectTimeoutMs: number
  autoPipelining: boolean
  gcIntervalMs: number
}

const bad = (msg: string): MissiveError => new MissiveError('bad_request', msg)

// Option values follow the one rule for settings written as text (shared/config-text.ts).
function intOption(name: string, raw: string, min: number): number {
  const r = parseText(intTextMin(min), raw)
  if (!r.ok) throw bad(`Redis pool option ${name} must be an integer ≥ ${min}, got "${raw}".`)
  return r.value
}

function boolOption(name: string, raw: string): boolean {
  const r = parseText(boolText, raw)
  if (!r.ok) throw bad(`Redis pool option ${name} must be a boolean (${BOOL_SPELLINGS}), got "${raw}".`)
  return r.value
}

const SENTINEL_PORT = 26379

/** `host[:port]`, `[v6]:port`, … separated by commas; ports default to `defaultPort`. */
function parseHosts(list: string, defaultPort: number): SentinelAddress[] {
  const out: SentinelAddress[] = []
  for (const item of list.split(',')) {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d*))?$/.exec(item.trim())
    if (m === null) throw bad(`Malformed host "${item}" in the Redis pool URI; expected host[:port][,host[:port]…].`)
    const port = m[3] === undefined || m[3] === '' ? defaultPort : Number(m[3])
    if (!(port >= 1 && port <= 65535)) throw bad(`Invalid port in "${item}" in the Redis pool URI.`)
    out.push({ host: decodeURIComponent(m[1] ?? m[2]!), port })
  }
  return out
}

/** The user-info of a URI: `user:password`, `:password`, or Zaqar's `password` alone. */
function userInfo(info: string | undefined, opts: RedisPoolOptions): void {
  if (info === undefined || info === '') return
  const colon = info.indexOf(':')
  if (colon < 0) {
    opts.password = decodeURIComponent(info)
    return
  }
  const user = info.slice(0, colon)
  const password = info.slice(colon + 1)
  if (user !== '') opts.username = decodeURIComponent(user)
  if (password !== '') opts.password = decodeURIComponent(password)
}

/** The defaults every Redis pool starts from. */
function defaults(host: string, port: number, durability: Durability): RedisPoolOptions {
  return {
    host,
    port,
    db: 0,
    durability,
    wait: 0,
    waitTimeoutMs: 1000,
    verify: true,
    commandTimeoutMs: 10_000,
    connectTimeoutMs: 5000,
    autoPipelining: false,
    gcIntervalMs: 1000,
  }
}

/**
 * `redis+sentinel://[userinfo@]hosts/<master>[/db][?options]`, or (`zaqar`) Zaqar's
 * `redis://[password@]hosts[/path]?master=<name>[&options]`.
 */
function parseSentinelUri(uri: string, defaultDurability: Durability, zaqar: boolean): RedisPoolOptions {
  const m = /^[a-z+]+:\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(uri)
  if (m === null) throw bad('Malformed Redis Sentinel pool URI; expected redis+sentinel://host:port[,host:port…]/<master-name>[/db][?options].')
  if (m[2] === '') throw bad('The Redis Sentinel pool URI names no Sentinel.')
  const sentinels = parseHosts(m[2]!, SENTINEL_PORT)
  const opts = defaults(sentinels[0]!.host, sentinels[0]!.port, defaultDurability)
  opts.sentinels = sentinels
  userInfo(m[1], opts)
  const path = (m[3] ?? '').split('/').filter((p) => p !== '')
  if (!zaqar) {
    if (path.length === 0 || path.length > 2) throw bad('The Redis Sentinel pool URI must name the master: redis+sentinel://host:port[,host:port…]/<master-name>[/db].')
    opts.master = decodeURIComponent(path[0]!)
    if (path.length === 2) {
      if (!/^\d+$/.test(path[1]!)) throw bad(`The database in a Redis Sentinel pool URI is a number, got "${path[1]}".`)
      opts.db = Number(path[1])
    }
  }
  applyOptions(opts, new URLSearchParams(m[4] ?? ''), true)
  if (opts.master === undefined || opts.master === '') throw bad('The Redis Sentinel pool URI names no master (?master=).')
  return opts
}

/** `redis+cluster://[userinfo@]host[:port][,host[:port]…][?options]`. */
function parseClusterUri(uri: string, defaultDurability: Durability): RedisPoolOptions {
  const m = /^[a-z+]+:\/\/(?:([^@/?#]*)@)?([^/?#]*)\/?(?:\?([^#]*))?$/i.exec(uri)
  if (m === null) throw bad('Malformed Redis Cluster pool URI; expected redis+cluster://host:port[,host:port…][?options] (no path: a cluster has database 0 only).')
  if (m[2] === '') throw bad('The Redis Cluster pool URI names no node.')
  const nodes = parseHosts(m[2]!, 6379)
  const opts = defaults(nodes[0]!.host, nodes[0]!.port, defaultDurability)
  opts.cluster = nodes
  userInfo(m[1], opts)
  const params = new URLSearchParams(m[3] ?? '')
  if (params.has('dbid')) throw bad('A Redis Cluster has database 0 only: the pool URI takes no dbid.')
  applyOptions(opts, params, false)
  return opts
}

/**
 * `redis:[password@]/path[?options]` or `redis:///path[?options]` (zaqar/storage/redis/driver.py
 * `ConnectionURI`, STRATEGY_UNIX): a server on a Unix socket.
 */
function parseUnixUri(uri: string, defaultDurability: Durability): RedisPoolOptions {
  const parts = unixSocketParts(uri)
  if (parts === undefined) throw bad('A Redis pool over a Unix socket names the socket by its absolute path: redis:/path/to/redis.sock[?options].')
  const opts = defaults('', 0, defaultDurability)
  opts.path = parts.path
  if (parts.password !== undefined) opts.password = parts.password
  if (parts.params.has('master')) throw bad('A Redis Sentinel pool names its Sentinels by host: redis+sentinel://host:port[,host:port…]/<master-name>.')
  applyOptions(opts, parts.params, false)
  return opts
}

/**
 * The parts of Zaqar's Unix-socket form, `redis:[password@]/path[?query]` (an empty authority,
 * `redis:///path`, too), as Zaqar reads them: the password is what precedes an `@`, the path is
 * taken as written. Undefined when the path is not absolute. Pools and the Redis catalog both
 * read it (catalog/stores/redis.ts).
 */
export function unixSocketParts(uri: string): { path: string; password?: string; params: URLSearchParams } | undefined {
  let rest = uri.slice('redis:'.length)
  if (rest.startsWith('//')) rest = rest.slice(2)
  const q = rest.indexOf('?')
  let path = q < 0 ? rest : rest.slice(0, q)
  const at = path.indexOf('@')
  const password = at > 0 ? path.slice(0, at) : undefined
  if (at >= 0) path = path.slice(at + 1)
  if (!path.startsWith('/') || path.length < 2) return undefined
  const params = new URLSearchParams(q < 0 ? '' : rest.slice(q + 1))
  return password === undefined ? { path, params } : { path, password, params }
}

/** Where a Redis server is, for messages: `host:port`, or `unix:` and the socket's path. */
export const redisWhere = (o: { host?: string | undefined; port?: number | undefined; path?: string | undefined }): string =>
  o.path === undefined ? `${o.host}:${o.port}` : `unix:${o.path}`

/** How ioredis reaches a pool's (non-Sentinel, non-Cluster) server. */
export const redisAddress = (o: Pick<RedisPoolOptions, 'host' | 'port' | 'path'>): { path: string } | { host: string; port: number } =>
  o.path === undefined ? { host: o.host, port: o.port } : { path: o.path }

/** True for the URI schemes this module understands (supported or not yet). */
export const isRedisUri = (uri: string): boolean => /^redis(\+sentinel|\+cluster|s)?:/i.test(uri)

/**
 * Parses a Redis pool URI. Throws `bad_request` with a clear message for unsupported schemes
 * (TLS) and for unknown or malformed options.
 */
export function parseRedisUri(uri: string, defaultDurability: Durability): RedisPoolOptions {
  const scheme = /^([a-z+]+):\/\//i.exec(uri)?.[1]?.toLowerCase()
  if (scheme === 'redis+sentinel') return parseSentinelUri(uri, defaultDurability, false)
  if (scheme === 'redis+cluster') return parseClusterUri(uri, defaultDurability)
  if (scheme === 'rediss') throw bad('TLS Redis pools (rediss://) are not yet supported; use redis://host:port.')
  // Zaqar's Unix-socket form: no authority (`redis:/path`, `redis:pw@/path`) or an empty one.
  if (/^redis:(?!\/\/)/i.test(uri) || /^redis:\/\/\//i.test(uri)) return parseUnixUri(uri, defaultDurability)
  if (scheme !== 'redis') throw bad(`Not a Redis pool URI: "${uri.slice(0, 16)}…".`)
  // Checked before parsing: Zaqar's Sentinel URIs list several hosts, which URL cannot parse.
  if (/[?&]master=/.test(uri)) return parseSentinelUri(uri, defaultDurability, true)
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    throw bad('Malformed Redis pool URI; expected redis://[:password@]host:port[/db][?options].')
  }
  if (url.hostname === '') throw bad('The Redis pool URI names no host.')
  // A number is the database (Missive's form); anything else is ignored, as Zaqar ignores it.
  const path = url.pathname.replace(/^\//, '')
  const pathDb = /^\d+$/.test(path) ? Number(path) : 0
  const opts: RedisPoolOptions = {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 6379 : Number(url.port),
    db: pathDb,
    durability: defaultDurability,
    wait: 0,
    waitTimeoutMs: 1000,
    verify: true,
    commandTimeoutMs: 10_000,
    connectTimeoutMs: 5000,
    autoPipelining: false,
    gcIntervalMs: 1000,
  }
  if (url.username !== '') opts.username = decodeURIComponent(url.username)
  if (url.password !== '') opts.password = decodeURIComponent(url.password)
  else if (opts.username !== undefined && !/^[^@]*:/.test(url.href.slice(url.protocol.length + 2))) {
    // `redis://secret@host`: Zaqar reads the whole user-info as the password.
    opts.password = opts.username
    delete opts.username
  }
  applyOptions(opts, url.searchParams, false)
  return opts
}

/** Applies a pool URI's query options to `opts` (`sentinel`: Sentinel-only options allowed). */
function applyOptions(opts: RedisPoolOptions, params: URLSearchParams, sentinel: boolean): void {
  let socketTimeoutMs: number | undefined
  const explicit = new Set<string>()
  for (const [name, value] of params) {
    explicit.add(name)
    switch (name) {
      case 'dbid':
        opts.db = intOption(name, value, 0)
        break
      case 'socket_timeout': {
        const s = Number(value)
        if (!/^\d*\.?\d+$/.test(value) || !(s > 0)) throw bad(`Redis pool option socket_timeout must be a number of seconds > 0, got "${value}".`)
        socketTimeoutMs = Math.max(1, Math.ceil(s * 1000))
        break
      }
      case 'master':
        // Zaqar's Sentinel form names the master here.
        if (!sentinel) throw bad('Redis pool option master is for Sentinel pools.')
        opts.master = value
        break
      case 'sentinel_password':
        if (!sentinel) throw bad('Redis pool option sentinel_password is for Sentinel pools (redis+sentinel://).')
        opts.sentinelPassword = value
        break
      case 'durability':
        if (value !== 'durable' && value !== 'fast') throw bad(`Redis pool option durability must be durable or fast, got "${value}".`)
        opts.durability = value
        break
      case 'wait':
        opts.wait = intOption(name, value, 0)
        break
      case 'wait_timeout':
        opts.waitTimeoutMs = intOption(name, value, 1)
        break
      case 'verify':
        opts.verify = boolOption(name, value)
        break
      case 'command_timeout':
        opts.commandTimeoutMs = intOption(name, value, 1)
        break
      case 'connect_timeout':
        opts.connectTimeoutMs = intOption(name, value, 1)
        break
      case 'auto_pipelining':
        opts.autoPipelining = boolOption(name, value)
        break
      case 'gc_interval':
        opts.gcIntervalMs = intOption(name, value, 0)
        break
      default:
        throw bad(
          `Unknown Redis pool option "${name}" (known: durability, wait, wait_timeout, verify, command_timeout, connect_timeout, auto_pipelining, gc_interval, dbid, socket_timeout${sentinel ? ', sentinel_password' : ''}).`,
        )
    }
  }
  if (socketTimeoutMs !== undefined) {
    // redis-py's socket_timeout bounds every command, and the connect when no connect timeout is set.
    if (!explicit.has('command_timeout')) opts.commandTimeoutMs = socketTimeoutMs
    if (!explicit.has('connect_timeout')) opts.connectTimeoutMs = socketTimeoutMs
  }
}
