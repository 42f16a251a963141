/**
 * Subscriptions (docs/notifications.md): who is told about a queue's messages. They live in the
 * catalog, not in the pool that holds the queue's messages, so a live migration (which moves a
 * queue's messages between pools) leaves them where they are, and every proxy sees the same set.
 * Shapes follow Zaqar's storage (zaqar/storage/redis/subscriptions.py): unique by project + queue +
 * subscriber URI, a TTL from creation (or from the last PATCH of `ttl`), a `confirmed` flag.
 */
import type { QueueRef } from '../shared/storage/contract.js'

/** A stored subscription. */
export interface Subscription {
  /** A UUIDv7 (shared/ids.ts): ids sort in creation order, so listings page by id. */
  id: string
  project: string
  /** The queue it watches (Zaqar's `source`). */
  queue: string
  /** `http(s)://…` or `mailto:…`. */
  subscriber: string
  /** Seconds, as given. */
  ttl: number
  /** When it stops existing, ms since the epoch (creation or last TTL change + ttl). */
  expires: number
  options: Record<string, unknown>
  confirmed: boolean
  /** The notifier's delivery cursor (proxy/notify/notifier.ts), opaque here; null until it writes one. */
  cursor: string | null
  /** Creation time, ms (a PATCH of `ttl` does not change it): delivery starts with messages from then on. */
  created: number
}

export interface NewSubscription extends QueueRef {
  subscriber: string
  ttl: number
  options: Record<string, unknown>
}

/** Fields a PATCH may change (Zaqar's `subscription_patching`). */
export interface SubscriptionPatch {
  subscriber?: string
  ttl?: number
  options?: Record<string, unknown>
}

/** What `createSubscription` did: a new id, or the live subscription of the same subscriber. */
export interface CreatedSubscription {
  id: string
  created: boolean
  /** The existing subscription's flag when `created` is false (Zaqar answers 409 only when confirmed). */
  confirmed: boolean
}

/** `updateSubscription`'s outcome. */
export type SubscriptionUpdate = 'updated' | 'not_found' | 'duplicate'
