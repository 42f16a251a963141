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
 *
 * CLUSTERDOWN is retried here (`MissiveCluster`), not by ioredis. While one master is failed and
 * not yet replaced, every master of a cluster with `cluster-require-full-coverage yes` (Redis's
 * default) refuses every command with CLUSTERDOWN, its own slots' included. ioredis's own retry
 * (`retryDelayOnClusterDown`) resends the command to a *random* master, not to the slot's: one
 * time in three that is the dead master, whose connection is not ready, and ioredis then rejects
 * the command with "Connection is closed" — a healthy master's queue refused for the failed
 * master's sake (docs/ha.md "What happens on a cluster failover"). Resent to its slot's master,
 * the command waits the window out there instead.
 *
 * The long-poll wake-ups (PUBLISH, keyless) go to the master of the queue they announce
 * (`publishByQueue`), not to the random master ioredis picks for a command without a key: that
 * lost a sixth of the wake-ups of the healthy masters' queues while a master was down
 * (tests/ha/cluster-healthy-shards.test.ts).
 */
import { Cluster, Command, type Redis } from 'ioredis'
import { unavailable } from '../../../shared/errors.js'
import type { RedisPoolOptions } from '../../../shared/storage/redis-uri.js'

/** How often the slot map is read again without a redirection asking for it (ms). */
const SLOTS_REFRESH_MS = 1000

/** How long a command refused with CLUSTERDOWN waits before it is sent again (ms). */
const CLUSTER_DOWN_RETRY_MS = 100
/**
 * How many times it is sent again: a command is refused for good (503) after about 2 s of a
 * cluster that stays down. A master's failover leaves the cluster down from the moment the
 * master is marked failed to its replica's promotion: 0.5-1 s plus the election.
 */
const CLUSTER_DOWN_RETRIES = 20

/** What ioredis keeps private but documents in its source: one connection per node. */
interface ConnectionPool {
  getInstanceByKey(key: string): Redis | undefined
}

/** Connects to the cluster (every master's slots known); `unavailable` when no node answers. */
export async function connectCluster(opts: RedisPoolOptions): Promise<Cluster> {
  const nodes = opts.cluster ?? [{ host: opts.host, port: opts.port }]
  const cluster = new MissiveCluster(nodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    // Never on a Cluster (`auto_pipelining` is ignored): ioredis's auto-pipelining groups a
    // defined command (every queue script) by its first argument, the key count, not by its first
    // key, so concurrent scripts of queues on different masters share one pipeline, which ioredis
    // then refuses whole ("All keys in the pipeline should belong to the same slots allocation group").
    enableAutoPipelining: false,
    scaleReads: 'master',
    // Never resend a command whose outcome is unknown (see the module comment).
    retryDelayOnFailover: 0,
    // Pipelines only: MissiveCluster resends a single command refused with CLUSTERDOWN itself.
    retryDelayOnClusterDown: CLUSTER_DOWN_RETRY_MS,
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

/** Commands whose rejection `MissiveCluster` already watches (a resent command is not wrapped twice). */
const WATCHED = new WeakSet<Command>()

/**
 * ioredis's Cluster client, but a command refused with CLUSTERDOWN (Redis ran nothing) is sent
 * again after `CLUSTER_DOWN_RETRY_MS` the ordinary way — to the master that owns its slot —
 * instead of by ioredis to a random master (the module comment says why), at most
 * `CLUSTER_DOWN_RETRIES` times.
 */
class MissiveCluster extends Cluster {
  override sendCommand(command: Command, stream?: Parameters<Cluster['sendCommand']>[1], node?: unknown): unknown {
    // `node` set: a pipeline's command (`pipeline()`). A pipeline refused with CLUSTERDOWN is
    // resent whole by ioredis to its slot's node already (`retryDelayOnClusterDown`).
    if (node !== undefined || WATCHED.has(command)) return super.sendCommand(command, stream, node)
    WATCHED.add(command)
    const settle = command.reject
    const sent = super.sendCommand(command, stream, node)
    // ioredis has now wrapped `reject` in its redirection handling (MOVED, ASK, TRYAGAIN, and
    // CLUSTERDOWN to a random master); a reply comes later, so CLUSTERDOWN is caught here first.
    // Every other error goes on to ioredis's handling; the resent command keeps this wrapper.
    const redirect = command.reject
    let tries = 0
    command.reject = (err: Error) => {
      if (!err.message.startsWith('CLUSTERDOWN')) return redirect.call(command, err)
      if (++tries > CLUSTER_DOWN_RETRIES || this.status !== 'ready') return settle.call(command, err)
      setTimeout(() => {
        if (this.status === 'ready') super.sendCommand(command)
        else settle.call(command, err)
      }, CLUSTER_DOWN_RETRY_MS)
    }
    return sent
  }
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

/**
 * PUBLISHes each of `lines` (a queue's key and its announcement) on the master that owns the
 * queue's slot: it has just served the queue's post, so it is up — a keyless PUBLISH goes to some
 * other node, which may be a master that has just died (its connection not yet seen closed) and
 * loses the wake-up. Any node relays a PUBLISH to the whole cluster. One write per master.
 */
export function publishByQueue(cluster: Cluster, channel: string, lines: Iterable<readonly [key: string, message: string]>): void {
  let byNode: Map<Redis, string[]> | undefined
  for (const [key, message] of lines) {
    const node = masterFor(cluster, key)?.node
    if (node === undefined || node.status !== 'ready') {
      cluster.publish(channel, message).catch(() => undefined)
      continue
    }
    byNode ??= new Map()
    const list = byNode.get(node)
    if (list === undefined) byNode.set(node, [message])
    else list.push(message)
  }
  if (byNode === undefined) return
  for (const [node, messages] of byNode) {
    if (messages.length === 1) {
      node.publish(channel, messages[0]!).catch(() => undefined)
      continue
    }
    const pipe = node.pipeline()
    for (const message of messages) pipe.publish(channel, message)
    pipe.exec().catch(() => undefined)
  }
}

/** The masters serving slots now (one connection each). */
export function masters(cluster: Cluster): Redis[] {
  return cluster.nodes('master')
}
