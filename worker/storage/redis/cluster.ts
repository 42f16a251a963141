/**
 * Redis Cluster pools (`redis+cluster://`, docs/ha.md "Redis Cluster pools"): the connection
 * through ioredis's Cluster client, and what the driver needs of it beyond the commands — the
 * master that owns a key's slot (for WAIT after a write), and every master (for the persistence
 * check, script loading, health and the failover counter).
 *
 * Every queue script touches one queue's keys, which share the queue's hash tag (keys.ts), so
 * each runs on the one master that owns the slot; ioredis follows MOVED and ASK and refreshes
 * its slot map on them and every `SLOTS_REFRESH_MS`. A command is never resent after its outcome
 * became unknown: `retryDelayOnFailover: 0` turns ioredis's "resend on a closed connection" off
 * (the caller gets 503 and retries, as on a standalone pool). Commands that Redis refused before
 * running them (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) are still retried: nothing ran.
 */
import { Cluster, Command, type Redis } from 'ioredis'
import { unavailable } from '../../../shared/errors.js'
import type { RedisPoolOptions } from '../../../shared/storage/redis-uri.js'

/** How often the slot map is read again without a redirection asking for it (ms). */
const SLOTS_REFRESH_MS = 1000

/** What ioredis keeps private but documents in its source: one connection per node. */
interface ConnectionPool {
  getInstanceByKey(key: string): Redis | undefined
}

/** Connects to the cluster (every master's slots known); `unavailable` when no node answers. */
export async function connectCluster(opts: RedisPoolOptions): Promise<Cluster> {
  const nodes = opts.cluster ?? [{ host: opts.host, port: opts.port }]
  const cluster = new Cluster(nodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: opts.autoPipelining,
    scaleReads: 'master',
    // Never resend a command whose outcome is unknown (see the module comment).
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshInterval: SLOTS_REFRESH_MS,
    slotsRefreshTimeout: opts.connectTimeoutMs,
    clusterRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    redisOptions: {
      username: opts.username,
      password: opts.password,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: opts.commandTimeoutMs,
      connectTimeout: opts.connectTimeoutMs,
    },
  })
  let lastError: unknown
  cluster.on('error', (err) => {
    lastError = err
  })
  try {
    await cluster.connect()
  } catch (err) {
    cluster.disconnect()
    const where = nodes.map((n) => `${n.host}:${n.port}`).join(',')
    throw unavailable(`Cannot reach the Redis Cluster at ${where}: ${(err as Error)?.message ?? String(lastError)}`, 1, err)
  }
  return cluster
}

/** The slot of `key`, as ioredis computes it (hash tag included). */
export const slotOf = (key: string): number => new Command('exists', [key]).getSlot()!

/** The connection to the master that owns `key`'s slot as the client knows it now, and that master's address. */
export function masterFor(cluster: Cluster, key: string): { node: Redis; at: string } | undefined {
  const at = cluster.slots[slotOf(key)]?.[0]
  if (at === undefined) return undefined
  const node = (cluster as unknown as { connectionPool: ConnectionPool }).connectionPool.getInstanceByKey(at)
  return node === undefined ? undefined : { node, at }
}

/** The masters serving slots now (one connection each). */
export function masters(cluster: Cluster): Redis[] {
  return cluster.nodes('master')
}
