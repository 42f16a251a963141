/**
 * Wakes this proxy's long-polling requests on a Redis pool's queues when a post lands through any
 * proxy: one subscriber connection per Redis pool, on the channel the Redis driver publishes to
 * after each post (shared/storage/posted.ts). SQLite pools need none: one process (a worker, or
 * the proxy itself) owns the file, and every post to it passes through this proxy, which wakes
 * its waiters itself (proxy/long-poll.ts).
 *
 * The connection retries forever in the background and resubscribes on reconnect (ioredis's
 * `autoResubscribe`); announcements published while it is down are lost, which delays the
 * affected waiters to the end of their wait (their last try), never loses a message.
 *
 * A Sentinel pool: subscribed on the master, which ioredis asks the Sentinels for at every
 * reconnection, and moved at the Sentinels' `+switch-master` as the pool's own connection is
 * (shared/sentinel-switch.ts), so a master cut off rather than dead does not keep the
 * subscription.
 *
 * A Redis Cluster pool: one subscriber through ioredis's Cluster client, on one node of the
 * cluster (plain PUBLISH reaches every node over the cluster bus, whichever node the driver
 * published on); when that node goes, ioredis subscribes on another.
 */
import { Cluster, Redis } from 'ioredis'
import type { Logger } from '../shared/log.js'
import type { QueueRef } from '../shared/storage/contract.js'
import { closeRedis, openRedis } from '../shared/redis.js'
import { parsePosted, postedChannel } from '../shared/storage/posted.js'
import { redisAddress, redisWhere, type RedisPoolOptions } from '../shared/storage/redis-uri.js'
import type { LongPoll } from './long-poll.js'

export class RedisWakeups {
  readonly #redis: Redis | Cluster
  readonly #ready: Promise<void>

  /**
   * `onPosted`: also told the ids of each post (WebSocket push to this proxy's subscribers of
   * posts made through other proxies, proxy/websocket-push.ts).
   */
  constructor(
    pool: Pick<RedisPoolOptions, 'host' | 'port' | 'db' | 'username' | 'password' | 'connectTimeoutMs' | 'sentinels' | 'master' | 'sentinelPassword' | 'cluster'>,
    longPoll: LongPoll,
    log: Logger,
    onPosted?: (ref: QueueRef, ids: string[]) => void,
  ) {
    const retryStrategy = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000)
    this.#redis =
      pool.cluster !== undefined
        ? new Cluster(pool.cluster, {
            clusterRetryStrategy: retryStrategy,
            redisOptions: { username: pool.username, password: pool.password, connectTimeout: pool.connectTimeoutMs, maxRetriesPerRequest: null },
          })
        : openRedis({
            // A Sentinel pool: subscribe on its master, as the driver publishes there; openRedis
            // reconnects and follows failovers as for the pool's own connection.
            ...(pool.sentinels === undefined
              ? redisAddress(pool)
              : { sentinels: pool.sentinels, name: pool.master, ...(pool.sentinelPassword !== undefined && { sentinelPassword: pool.sentinelPassword }) }),
            username: pool.username,
            password: pool.password,
            connectTimeout: pool.connectTimeoutMs,
            retryStrategy,
            // A subscriber: nothing to resend, and SUBSCRIBE is queued until the first connect.
            maxRetriesPerRequest: null,
          })
    let warned = false
    this.#redis.on('error', (err: Error) => {
      if (!warned) log.warn({ redis: redisWhere(pool), err: err.message }, 'long-poll wake-ups: Redis subscriber error')
      warned = true
    })
    this.#redis.on('ready', () => (warned = false))
    const channel = postedChannel(pool.db)
    this.#redis.on('message', (ch: string, line: string) => {
      if (ch !== channel) return
      const posted = parsePosted(line)
      if (posted === undefined) return
      longPoll.notify(posted.ref, posted.count)
      if (posted.ids.length > 0) onPosted?.(posted.ref, posted.ids)
    })
    this.#ready = this.#redis.subscribe(channel).then(
      () => undefined,
      () => undefined,
    )
  }

  /** Resolves once subscribed (or the first attempt failed; it goes on retrying). */
  ready(): Promise<void> {
    return this.#ready
  }

  close(): void {
    if (this.#redis instanceof Cluster) this.#redis.disconnect()
    else void closeRedis(this.#redis, true)
  }
}
