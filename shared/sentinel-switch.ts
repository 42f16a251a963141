/**
 * Following a Sentinel failover at once (docs/ha.md, "Failover behaviour"), in place of ioredis's
 * `failoverDetector`.
 *
 * ioredis asks the Sentinels for the master at every (re)connection, so a killed master is
 * followed as soon as a reconnection asks after the switch. A master that is not dead but cut off
 * (a network black hole, SIGSTOP) would hold the connection until its command timeout, so the
 * Sentinels' `+switch-master` announcement is what should move it. ioredis's own detector does
 * that, but two ways wrong:
 * - It disconnects on every `+switch-master`, whichever master it names and wherever the
 *   connection is now. Each Sentinel announces the switch when it learns it, the lagging ones
 *   seconds after the first (they hear of it through hello messages, every 2 s), so a connection
 *   that had already moved to the new master was dropped once more per Sentinel, failing the
 *   requests in flight and tripping the pool's breaker again (seen as a flaky failover test).
 * - The detector of the connection to the dead master stays subscribed while the client
 *   reconnects. When the announcement comes during a reconnection's question to a Sentinel, its
 *   disconnect makes that attempt reject, and ioredis (5.11, also 6.1) then ends the client for
 *   good: every later command fails and the pool stays down until the process restarts
 *   (tests/ha/sentinel-switch.test.ts makes that race certain).
 * Here an announcement for this master moves a connection only when it is established and is not
 * already at the new address; a reconnection in progress is left alone, as it asks the Sentinels
 * anyway.
 */
import { Redis, type SentinelAddress } from 'ioredis'

export interface SwitchFollowerOptions {
  sentinels: Partial<SentinelAddress>[]
  /** The master's name in the Sentinels' configuration. */
  name: string
  sentinelUsername?: string | undefined
  sentinelPassword?: string | undefined
  connectTimeout?: number | undefined
}

/** One subscription to `+switch-master` per Sentinel, for one connection. */
export class SwitchFollower {
  readonly #redis: Redis
  readonly #name: string
  readonly #subscribers: Redis[]

  constructor(redis: Redis, opts: SwitchFollowerOptions) {
    this.#redis = redis
    this.#name = opts.name
    this.#subscribers = opts.sentinels.map((s) => {
      const sub = new Redis({
        host: s.host ?? '127.0.0.1',
        port: s.port ?? 26379,
        username: opts.sentinelUsername,
        password: opts.sentinelPassword,
        connectTimeout: opts.connectTimeout,
        // A Sentinel down or restarting is tried again for as long as the connection lives;
        // ioredis subscribes again on reconnection.
        retryStrategy: (times) => Math.min(100 * times, 2000),
        maxRetriesPerRequest: null,
        enableReadyCheck: false,
      })
      // A Sentinel that cannot be reached is one voice fewer: the others announce the switch too.
      sub.on('error', () => undefined)
      sub.on('message', (_channel: string, message: string) => this.#heard(message))
      sub.subscribe('+switch-master').catch(() => undefined)
      return sub
    })
  }

  /** `<name> <old ip> <old port> <new ip> <new port>` (the Sentinel documentation's format). */
  #heard(message: string): void {
    const [name, , , host, port] = message.split(' ')
    if (name !== this.#name || host === undefined || port === undefined) return
    const status = this.#redis.status
    if (status !== 'ready' && status !== 'connect') return
    const stream = this.#redis.stream
    // Sentinels announce the address they were given or discovered, as ioredis connects to it;
    // an IPv4 peer may read as IPv4-mapped IPv6. A hostname announced (Sentinel's
    // announce-hostnames) never matches: the connection is moved, as a reconnection costs little.
    const at = stream?.remoteAddress?.replace(/^::ffff:/, '')
    if (at === host && stream?.remotePort === Number(port)) return
    this.#redis.disconnect(true)
  }

  close(): void {
    for (const sub of this.#subscribers) sub.disconnect()
  }
}
