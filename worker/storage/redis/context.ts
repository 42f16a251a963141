/**
 * What the per-resource parts of the Redis driver share: the connection, the scripts, the clock,
 * the write acknowledgement (WAIT) and the conversions from script replies to contract objects.
 */
import type { Redis } from 'ioredis'
import type { Clock } from '../../../shared/clock.js'
import type { Message, QueueRef } from '../../../shared/storage/contract.js'
import { QueueMoved } from '../../../shared/storage/errors.js'
import type { QueueFence } from '../../../shared/storage/migration.js'
import type { QueuePolicy } from '../../../shared/storage/queue-policy.js'
import { ageOf } from '../common.js'

export { ageOf } from '../common.js'
import type { Scripts } from './scripts.js'

export interface Ctx {
  readonly redis: Redis
  readonly scripts: Scripts
  readonly clock: Clock
  /**
   * Resolves once `write` (a script call just issued on `redis`) is as durable as the pool
   * promises: with `wait=n` a WAIT follows it on the same connection, and too few replica acks
   * fail it with `unavailable`. Must be called in the same tick as the write is issued. `key`: a
   * key the write touched (on a Cluster pool WAIT goes to that key's master); default: the first
   * key of the script issued last (`Scripts.lastKey`).
   */
  acked<T>(write: Promise<T>, key?: string): Promise<T>
  /** A Redis Cluster pool: dead-lettering moves messages between slots in steps (claims.ts). */
  readonly cluster: boolean
  /** Adds the queue to its project's catalogue and to the collector's round-robin. */
  catalogue(ref: QueueRef): Promise<void>
}

/**
 * How many reply fields a message takes in a script's reply (lua/lib.lua, `put_view`): id, body,
 * ttl (text), created, claim id or '', claim count, one after the other, not nested.
 */
const VIEW_FIELDS = 6


/**
 * Throws `QueueMoved` when a client script answered MOVED (lua/lib.lua, `fence_check`): the
 * queue is fenced by a migration and the script did nothing. One array test on the hot path.
 */
export function checkFence(ref: QueueRef, reply: unknown): void {
  if (Array.isArray(reply) && reply[0] === 'MOVED') {
    throw new QueueMoved(ref, { state: reply[1] as QueueFence['state'], token: String(reply[2]), to: String(reply[3]) })
  }
}

/** The messages of a script's reply from index `from` on (VIEW_FIELDS each), as readers see them. */
export function readViews(r: readonly unknown[], from: number, now: number): Message[] {
  const out: Message[] = []
  for (let i = from; i + VIEW_FIELDS <= r.length; i += VIEW_FIELDS) {
    const created = Number(r[i + 3])
    const m: Message = { id: String(r[i]), ttl: Number(r[i + 2]), age: ageOf(created, now), created, body: String(r[i + 1]), claimCount: Number(r[i + 5]) }
    const claimId = String(r[i + 4])
    if (claimId !== '') m.claimId = claimId
    out.push(m)
  }
  return out
}



/**
 * A queue's policy (shared/storage/queue-policy.ts) as the queue record stores it for the
 * scripts, resolved when metadata is written, in the order the queue scripts take them:
 * maxpost, ttl, delay, dlq, dlqmax, dlqttl ('' when absent). The scripts read these fields in
 * the same atomic call that posts, lists or claims (see queue-policy.ts for what they decide).
 */
export function policyFields(policy: QueuePolicy): string[] {
  const s = (v: number | string | undefined): string => (v === undefined ? '' : String(v))
  const dl = policy.deadLetter
  return [
    s(policy.maxPostBytes),
    s(policy.defaultTtl),
    s(policy.defaultDelay),
    dl === undefined ? '' : dl.queue,
    dl === undefined ? '' : String(dl.maxClaims),
    s(dl?.ttl),
  ]
}
