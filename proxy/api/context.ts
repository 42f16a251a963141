/** What a handler sees of a request, and the shared pieces of response building. */
import type { Config } from '../../shared/config.js'
import type { Authenticator, Identity } from '../auth/index.js'
import type { RateLimiter } from '../limits/index.js'
import type { Logger } from '../../shared/log.js'
import type { Message, QueueRef } from '../../shared/storage/contract.js'
import type { Query } from '../params.js'
import type { AbortHook, LongPoll } from '../long-poll.js'
import type { SocketSubscriptions } from '../websocket-push.js'
import type { Notifier } from '../notify/notifier.js'
import type { ControlPlane } from '../pool-set.js'
import type { PooledStorage } from '../pooled-driver.js'
import type { Reply } from '../transport.js'
import { topicProject } from '../topic-space.js'

/** The API version being served: v2, or the v1.1 deltas of zaqar/transport/wsgi/v1_1/ over the same handlers. */
export interface Profile {
  name: 'v2' | 'v1.1'
  prefix: string
  /** GET queue fills in reserved defaults (v1.1 returns what is stored). */
  queueDefaults: boolean
  /** Posts honour the queue's `_default_message_ttl`, `_max_messages_post_size`, delay. */
  queueLimits: boolean
  /** Listing takes `include_delayed` (v1.1 always shows delayed messages). */
  includeDelayedParam: boolean
  /** Admin policy checks apply (v1.1 has none). */
  policy: boolean
}

/** Route parameters by name (`{queue}` in a route path → `queue`). */
export interface Params {
  queue?: string
  messageId?: string
  claimId?: string
  /** Admin routes: a pool or flavor name (not subject to the queue-name check). */
  pool?: string
  flavor?: string
  /** A live migration's id (admin). */
  migration?: string
  /** Admin routes: an API key's id (proxy/auth/admin-api.ts). */
  key?: string
  /** A topic's name (proxy/api/topics.ts): the route serves the topic, stored as proxy/topic-space.ts says. */
  topic?: string
  /** A subscription's id (proxy/api/subscriptions.ts). */
  subscription?: string
  /** Admin routes: the project whose rate limits are read or set (proxy/limits/admin-api.ts). */
  tenant?: string
}

export interface ApiRequest {
  method: string
  /** The path as sent; hrefs are relative paths built from it (docs/api.md). */
  path: string
  query: Query
  params: Params
  profile: Profile
  project: string
  /** Canonical Client-ID. */
  clientId: string
  requestId: string
  authToken: string
  /** Who the credential proves (proxy/auth/); `ANONYMOUS` under strategy `none`. */
  identity: Identity
  /** The proxy's authenticator (the keys admin API reads its store). */
  auth: Authenticator
  /** Per-project rate limits; absent when `rateLimits.enabled` is off. */
  limiter?: RateLimiter | undefined
  /** The `Idempotency-Key` header as sent (docs/api.md, "Safe retries"); undefined when absent. */
  idempotencyKey?: string | undefined
  contentType: string
  /** Content-Length header; null when absent. */
  contentLength: number | null
  /** The raw body; null when the request had no Content-Length. */
  body: Uint8Array | null
  config: Config
  /** The message store: every pool behind one driver (proxy/pooled-driver.ts). */
  storage: PooledStorage
  /** The catalog and the pools' workers, for the admin API only (pools, flavors, health). */
  control: ControlPlane
  log: Logger
  /** Parked long-polling requests of this proxy (proxy/long-poll.ts); absent: `wait` is ignored. */
  longPoll?: LongPoll
  /** Tells a parked request that its client went away. */
  abort?: AbortHook
  /** WebSocket push subscriptions (proxy/websocket-push.ts); absent: no WebSocket API. */
  pushes?: SocketSubscriptions | undefined
  /** Delivery to stored subscriptions (proxy/notify/notifier.ts); absent: nothing is delivered from here. */
  notifier?: Notifier | undefined
}

export type Handler = (req: ApiRequest) => Promise<Reply> | Reply

/**
 * The queue a routed request names (the route table guarantees the parameter). On a topic route
 * (`{topic}`), the queue that stores the topic, in its own namespace (proxy/topic-space.ts): the
 * queue, message and subscription handlers then serve topics unchanged.
 */
export const queueRef = (req: ApiRequest): QueueRef =>
  req.params.topic === undefined ? { project: req.project, queue: req.params.queue! } : { project: topicProject(req.project), queue: req.params.topic }

/** `/v2/queues/<q>` (or `/v2/topics/<t>`): the base of every href of a queue (or topic). */
export const queueHref = (req: ApiRequest): string =>
  req.params.topic === undefined ? `${req.profile.prefix}/queues/${req.params.queue!}` : `${req.profile.prefix}/topics/${req.params.topic}`

/** A message's wire form (zaqar/transport/wsgi/v2_0/messages.py), body spliced in as stored. */
export function messageJson(m: Message, base: string): string {
  const href = m.claimId === undefined ? `${base}/messages/${m.id}` : `${base}/messages/${m.id}?claim_id=${m.claimId}`
  return `{"id":${JSON.stringify(m.id)},"href":${JSON.stringify(href)},"ttl":${m.ttl},"age":${m.age},"body":${m.body}}`
}

/**
 * Characters JSON.stringify would escape in a string: where none is found, a string is written
 * between quotes as it is, exactly as JSON.stringify writes it, without its scan.
 */
export const NEEDS_ESCAPE_RE = /["\\\u0000-\u001f\ud800-\udfff]/

export function messagesJson(ms: Message[], base: string): string {
  // Ids and claim ids are UUIDs and queue names [A-Za-z0-9_-]: one check over them all (they
  // come from the store) lets every message be a template (~40 % less for a claim of 10).
  let ids = base
  for (let i = 0; i < ms.length; i++) ids += ms[i]!.claimId === undefined ? ms[i]!.id : ms[i]!.id + ms[i]!.claimId!
  if (NEEDS_ESCAPE_RE.test(ids)) return `[${ms.map((m) => messageJson(m, base)).join(',')}]`
  let out = '['
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!
    const href = m.claimId === undefined ? `${base}/messages/${m.id}` : `${base}/messages/${m.id}?claim_id=${m.claimId}`
    out += `${i === 0 ? '' : ','}{"id":"${m.id}","href":"${href}","ttl":${m.ttl},"age":${m.age},"body":${m.body}}`
  }
  return `${out}]`
}

/** ISO time with `Z` and no fractional seconds, as Zaqar prints it. */
export const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')

/** Python's repr of a list of strings, used verbatim in one Zaqar error message. */
export const pyList = (items: string[]): string => `[${items.map((s) => `'${s.replaceAll("'", "\\'")}'`).join(', ')}]`
