/**
 * Redis pool URIs: `redis://[[user]:password@]host[:port][/db][?options]`, and Zaqar's own form
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
 * `redis+sentinel://`, `redis+cluster://` and Zaqar's Sentinel form (`?master=`) are recognised
 * and refused until HA lands; so is Zaqar's Unix-socket form (`redis:/path/to/socket`).
 */
import { BOOL_SPELLINGS, boolText, intTextMin, parseText } from '../config-text.js'
import { MissiveError } from '../errors.js'

export type Durability = 'durable' | 'fast'

export interface RedisPoolOptions {
  host: string
  port: number
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

/** True for the URI schemes this module understands (supported or not yet). */
export const isRedisUri = (uri: string): boolean => /^redis(\+sentinel|\+cluster|s)?:\/\//i.test(uri)

/**
 * Parses a Redis pool URI. Throws `bad_request` with a clear message for unsupported schemes
 * (Sentinel, Cluster, TLS) and for unknown or malformed options.
 */
export function parseRedisUri(uri: string, defaultDurability: Durability): RedisPoolOptions {
  const scheme = /^([a-z+]+):\/\//i.exec(uri)?.[1]?.toLowerCase()
  if (scheme === 'redis+sentinel' || scheme === 'redis+cluster') {
    throw bad(`Redis ${scheme === 'redis+sentinel' ? 'Sentinel' : 'Cluster'} pools (${scheme}://) are not yet supported; use redis://host:port.`)
  }
  if (scheme === 'rediss') throw bad('TLS Redis pools (rediss://) are not yet supported; use redis://host:port.')
  if (scheme !== 'redis') {
    if (/^redis:\/?[^/]/i.test(uri)) throw bad('Redis pools over a Unix socket (redis:/path) are not supported; use redis://host:port.')
    throw bad(`Not a Redis pool URI: "${uri.slice(0, 16)}…".`)
  }
  // Checked before parsing: Zaqar's Sentinel URIs list several hosts, which URL cannot parse.
  if (/[?&]master=/.test(uri)) throw bad('Redis Sentinel pools (?master=) are not yet supported; use redis://host:port.')
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    throw bad('Malformed Redis pool URI; expected redis://[:password@]host:port[/db][?options].')
  }
  if (url.hostname === '') {
    if (url.pathname.length > 1) throw bad('Redis pools over a Unix socket (redis:///path) are not supported; use redis://host:port.')
    throw bad('The Redis pool URI names no host.')
  }
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
  let socketTimeoutMs: number | undefined
  const explicit = new Set<string>()
  for (const [name, value] of url.searchParams) {
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
        throw bad('Redis Sentinel pools (?master=) are not yet supported; use redis://host:port.')
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
          `Unknown Redis pool option "${name}" (known: durability, wait, wait_timeout, verify, command_timeout, connect_timeout, auto_pipelining, gc_interval, dbid, socket_timeout).`,
        )
    }
  }
  if (socketTimeoutMs !== undefined) {
    // redis-py's socket_timeout bounds every command, and the connect when no connect timeout is set.
    if (!explicit.has('command_timeout')) opts.commandTimeoutMs = socketTimeoutMs
    if (!explicit.has('connect_timeout')) opts.connectTimeoutMs = socketTimeoutMs
  }
  return opts
}
