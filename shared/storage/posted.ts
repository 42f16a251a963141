/**
 * The store-side wake-up for long-polling consumers (docs/api.md, "Long polling"): after a post
 * (or a claim release) on a Redis pool, the Redis driver publishes one line on the pool's channel;
 * every proxy serving that pool subscribes and wakes its waiters on that queue
 * (proxy/long-poll-redis.ts). Shared here because the publisher (worker) and the subscriber
 * (proxy) must agree on both.
 */
import type { QueueRef } from './contract.js'

/**
 * The channel of a Redis pool's database. Redis pub/sub ignores `SELECT`: two pools on one server
 * (different `db`) must not wake each other's queues, so the database is part of the name.
 */
export const postedChannel = (db: number): string => `missive:posted:${db}`

/**
 * `<count> <queue> <ids> <project>`: `ids` the posted message ids, comma-separated (`-`: none),
 * for WebSocket push subscribers on other proxies (proxy/websocket-push.ts). Queue names and ids
 * hold no space (zaqar/transport/validation.py's `^[a-zA-Z0-9_-]{1,64}$`), so the project — any
 * text — is simply the rest of the line. `count` 0 means "unknown, wake every waiter" (a
 * released claim).
 */
export const postedMessage = (ref: QueueRef, count: number, ids: readonly string[] = []): string =>
  `${count} ${ref.queue} ${ids.length === 0 ? '-' : ids.join(',')} ${ref.project}`

/** Parses `postedMessage`'s line; undefined for anything else on the channel. */
export function parsePosted(line: string): { ref: QueueRef; count: number; ids: string[] } | undefined {
  const a = line.indexOf(' ')
  const b = a < 0 ? -1 : line.indexOf(' ', a + 1)
  const c = b < 0 ? -1 : line.indexOf(' ', b + 1)
  if (c < 0) return undefined
  const count = Number(line.slice(0, a))
  if (!Number.isSafeInteger(count) || count < 0) return undefined
  const ids = line.slice(b + 1, c)
  return { ref: { queue: line.slice(a + 1, b), project: line.slice(c + 1) }, count, ids: ids === '-' ? [] : ids.split(',') }
}
