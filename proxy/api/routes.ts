/**
 * The one route table. Paths are relative to the version prefix; `{name}` segments are
 * parameters. v1.1 serves the same handlers under its profile (zaqar/transport/wsgi/v1_1/), minus the routes
 * marked v2-only.
 */
import type { Limits } from '../../shared/config.js'
import { badRequest, invalidBody, MissiveError } from '../../shared/errors.js'
import { listAllQueues, topQueues } from './admin-queues.js'
import * as claims from './claims.js'
import type { Handler, Params, Profile } from './context.js'
import * as flavors from './flavors.js'
import * as messages from './messages.js'
import * as migrations from './migrations.js'
import * as pools from './pools.js'
import * as queues from './queues.js'
import { shareQueue } from './share.js'
import * as subscriptions from './subscriptions.js'
import * as system from './system.js'
import * as topics from './topics.js'
import * as keys from '../auth/admin-api.js'
import * as rateLimits from '../limits/admin-api.js'
import { postTooLargeText } from '../storage-errors.js'

export interface Route {
  method: string
  path: string
  handler: Handler
  /** Served under v1.1 as well. */
  v1_1: boolean
  /** Largest accepted Content-Length and the error for a larger one, when the route has a rule. */
  maxBody?: (limits: Limits) => [number, () => MissiveError]
}

const metadataCap = (invalid: (d: string) => MissiveError) => (l: Limits): [number, () => MissiveError] => [
  l.max_queue_metadata,
  () => invalid(`Queue metadata is too large. Max size: ${l.max_queue_metadata}`),
]

/** A subscription is stored in the catalog: its document is held to the queue metadata cap (Missive's; Zaqar has none). */
const subscriptionCap = (l: Limits): [number, () => MissiveError] => [
  l.max_queue_metadata,
  () => badRequest(`Subscription is too large. Max size: ${l.max_queue_metadata}`),
]

const postCap = (l: Limits): [number, () => MissiveError] => [
  l.max_messages_post_size,
  () => badRequest(postTooLargeText(l.max_messages_post_size)),
]

export const ROUTES: Route[] = [
  { method: 'GET', path: '', handler: system.home, v1_1: true },
  { method: 'GET', path: 'ping', handler: system.ping, v1_1: true },
  { method: 'HEAD', path: 'ping', handler: system.ping, v1_1: true },
  { method: 'GET', path: 'health', handler: system.health, v1_1: true },
  { method: 'GET', path: 'queues', handler: queues.listQueues, v1_1: true },
  { method: 'PUT', path: 'queues/{queue}', handler: queues.createQueue, v1_1: true, maxBody: metadataCap(badRequest) },
  { method: 'GET', path: 'queues/{queue}', handler: queues.getQueue, v1_1: true },
  { method: 'PATCH', path: 'queues/{queue}', handler: queues.patchQueue, v1_1: false, maxBody: metadataCap(invalidBody) },
  { method: 'DELETE', path: 'queues/{queue}', handler: queues.deleteQueue, v1_1: true },
  { method: 'GET', path: 'queues/{queue}/stats', handler: queues.queueStats, v1_1: true },
  { method: 'POST', path: 'queues/{queue}/purge', handler: queues.purgeQueue, v1_1: false },
  { method: 'POST', path: 'queues/{queue}/messages', handler: messages.postMessages, v1_1: true, maxBody: postCap },
  { method: 'GET', path: 'queues/{queue}/messages', handler: messages.listMessages, v1_1: true },
  { method: 'DELETE', path: 'queues/{queue}/messages', handler: messages.deleteMessages, v1_1: true },
  { method: 'GET', path: 'queues/{queue}/messages/{messageId}', handler: messages.getMessage, v1_1: true },
  { method: 'DELETE', path: 'queues/{queue}/messages/{messageId}', handler: messages.deleteMessage, v1_1: true },
  { method: 'POST', path: 'queues/{queue}/claims', handler: claims.createClaim, v1_1: true },
  { method: 'GET', path: 'queues/{queue}/claims/{claimId}', handler: claims.getClaim, v1_1: true },
  { method: 'PATCH', path: 'queues/{queue}/claims/{claimId}', handler: claims.renewClaim, v1_1: true },
  { method: 'DELETE', path: 'queues/{queue}/claims/{claimId}', handler: claims.releaseClaim, v1_1: true },
  // Pre-signed URLs (docs/notifications.md): v2 only, as in Zaqar.
  { method: 'POST', path: 'queues/{queue}/share', handler: shareQueue, v1_1: false },
  // Subscriptions (docs/notifications.md): v2 only, as in Zaqar.
  { method: 'POST', path: 'queues/{queue}/subscriptions', handler: subscriptions.createSubscription, v1_1: false, maxBody: subscriptionCap },
  { method: 'GET', path: 'queues/{queue}/subscriptions', handler: subscriptions.listSubscriptions, v1_1: false },
  { method: 'GET', path: 'queues/{queue}/subscriptions/{subscription}', handler: subscriptions.getSubscription, v1_1: false },
  { method: 'PATCH', path: 'queues/{queue}/subscriptions/{subscription}', handler: subscriptions.patchSubscription, v1_1: false, maxBody: subscriptionCap },
  { method: 'DELETE', path: 'queues/{queue}/subscriptions/{subscription}', handler: subscriptions.deleteSubscription, v1_1: false },
  { method: 'PUT', path: 'queues/{queue}/subscriptions/{subscription}/confirm', handler: subscriptions.confirmSubscription, v1_1: false },
  // Topics (docs/notifications.md, "Topics"): v2 only, as in Zaqar. A `{topic}` route serves the
  // topic's own queue (proxy/topic-space.ts), so most handlers are the queue ones.
  { method: 'GET', path: 'topics', handler: topics.listTopics, v1_1: false },
  { method: 'PUT', path: 'topics/{topic}', handler: queues.createQueue, v1_1: false, maxBody: metadataCap(badRequest) },
  { method: 'GET', path: 'topics/{topic}', handler: topics.getTopic, v1_1: false },
  { method: 'PATCH', path: 'topics/{topic}', handler: topics.patchTopic, v1_1: false, maxBody: metadataCap(invalidBody) },
  { method: 'DELETE', path: 'topics/{topic}', handler: queues.deleteQueue, v1_1: false },
  { method: 'GET', path: 'topics/{topic}/stats', handler: queues.queueStats, v1_1: false },
  { method: 'POST', path: 'topics/{topic}/purge', handler: queues.purgeQueue, v1_1: false },
  { method: 'POST', path: 'topics/{topic}/messages', handler: messages.postMessages, v1_1: false, maxBody: postCap },
  { method: 'GET', path: 'topics/{topic}/messages', handler: messages.listMessages, v1_1: false },
  { method: 'DELETE', path: 'topics/{topic}/messages', handler: messages.deleteMessages, v1_1: false },
  { method: 'GET', path: 'topics/{topic}/messages/{messageId}', handler: messages.getMessage, v1_1: false },
  { method: 'DELETE', path: 'topics/{topic}/messages/{messageId}', handler: messages.deleteMessage, v1_1: false },
  { method: 'POST', path: 'topics/{topic}/subscriptions', handler: subscriptions.createSubscription, v1_1: false, maxBody: subscriptionCap },
  { method: 'GET', path: 'topics/{topic}/subscriptions', handler: subscriptions.listSubscriptions, v1_1: false },
  { method: 'GET', path: 'topics/{topic}/subscriptions/{subscription}', handler: subscriptions.getSubscription, v1_1: false },
  { method: 'PATCH', path: 'topics/{topic}/subscriptions/{subscription}', handler: subscriptions.patchSubscription, v1_1: false, maxBody: subscriptionCap },
  { method: 'DELETE', path: 'topics/{topic}/subscriptions/{subscription}', handler: subscriptions.deleteSubscription, v1_1: false },
  { method: 'PUT', path: 'topics/{topic}/subscriptions/{subscription}/confirm', handler: subscriptions.confirmSubscription, v1_1: false },
  // Admin (every handler calls requireAdmin). v1.1 serves pools and flavors too, in its shapes
  // (the handlers adapt on `profile`); the per-pool stats are Missive's and v2 only. Params are `pool`/`flavor`, never `queue`,
  // so the queue-name check does not apply to them.
  { method: 'GET', path: 'pools', handler: pools.listPools, v1_1: true },
  { method: 'PUT', path: 'pools/{pool}', handler: pools.putPool, v1_1: true },
  { method: 'GET', path: 'pools/{pool}', handler: pools.getPool, v1_1: true },
  { method: 'PATCH', path: 'pools/{pool}', handler: pools.patchPool, v1_1: true },
  { method: 'DELETE', path: 'pools/{pool}', handler: pools.deletePool, v1_1: true },
  { method: 'GET', path: 'flavors', handler: flavors.listFlavors, v1_1: true },
  { method: 'PUT', path: 'flavors/{flavor}', handler: flavors.putFlavor, v1_1: true },
  { method: 'GET', path: 'flavors/{flavor}', handler: flavors.getFlavor, v1_1: true },
  { method: 'PATCH', path: 'flavors/{flavor}', handler: flavors.patchFlavor, v1_1: true },
  { method: 'DELETE', path: 'flavors/{flavor}', handler: flavors.deleteFlavor, v1_1: true },
  { method: 'GET', path: 'admin/pools/{pool}/stats', handler: pools.poolStats, v1_1: false },
  { method: 'GET', path: 'admin/queues', handler: listAllQueues, v1_1: false },
  { method: 'GET', path: 'admin/queues/top', handler: topQueues, v1_1: false },
  // Live migrations, drains, rebalancing (docs/migration.md): v2 only.
  { method: 'POST', path: 'admin/migrations', handler: migrations.createMigration, v1_1: false },
  { method: 'GET', path: 'admin/migrations', handler: migrations.listMigrations, v1_1: false },
  { method: 'GET', path: 'admin/migrations/{migration}', handler: migrations.getMigration, v1_1: false },
  { method: 'DELETE', path: 'admin/migrations/{migration}', handler: migrations.cancelMigration, v1_1: false },
  { method: 'POST', path: 'admin/pools/{pool}/drain', handler: migrations.startDrain, v1_1: false },
  { method: 'GET', path: 'admin/pools/{pool}/drain', handler: migrations.getDrain, v1_1: false },
  { method: 'DELETE', path: 'admin/pools/{pool}/drain', handler: migrations.stopDrain, v1_1: false },
  { method: 'POST', path: 'admin/rebalance', handler: migrations.rebalance, v1_1: false },
  // API keys (proxy/auth/admin-api.ts; docs/auth.md).
  { method: 'GET', path: 'admin/keys', handler: keys.listKeys, v1_1: false },
  { method: 'POST', path: 'admin/keys', handler: keys.createKey, v1_1: false },
  { method: 'GET', path: 'admin/keys/{key}', handler: keys.getKey, v1_1: false },
  { method: 'DELETE', path: 'admin/keys/{key}', handler: keys.deleteKey, v1_1: false },
  // Per-project rate limits (proxy/limits/admin-api.ts; docs/limits.md).
  { method: 'GET', path: 'admin/limits/{tenant}', handler: rateLimits.getLimits, v1_1: false },
  { method: 'PUT', path: 'admin/limits/{tenant}', handler: rateLimits.putLimits, v1_1: false },
  { method: 'DELETE', path: 'admin/limits/{tenant}', handler: rateLimits.deleteLimits, v1_1: false },
]

export const PROFILES: Profile[] = [
  { name: 'v2', prefix: '/v2', queueDefaults: true, queueLimits: true, includeDelayedParam: true, policy: true },
  { name: 'v1.1', prefix: '/v1.1', queueDefaults: false, queueLimits: false, includeDelayedParam: false, policy: false },
]

export type Match =
  | { kind: 'route'; route: Route; profile: Profile; params: Params }
  | { kind: 'method'; allow: string[] }
  | { kind: 'none' }

interface Compiled {
  segments: string[]
  /** Per segment: the parameter name for `{name}`, else null (a literal to compare). */
  names: (keyof Params | null)[]
  routes: Route[]
}

/** Routes grouped by path, per profile, for matching by segments. */
function compile(profile: Profile): Compiled[] {
  const byPath = new Map<string, Compiled>()
  for (const r of ROUTES) {
    if (profile.name !== 'v2' && !r.v1_1) continue
    let c = byPath.get(r.path)
    if (c === undefined) {
      const segments = r.path === '' ? [] : r.path.split('/')
      const names = segments.map((p) => (p.startsWith('{') ? (p.slice(1, -1) as keyof Params) : null))
      c = { segments, names, routes: [] }
      byPath.set(r.path, c)
    }
    c.routes.push(r)
  }
  return [...byPath.values()]
}

/** A profile's compiled paths indexed by segment count (table order kept within each). */
interface ProfileTable {
  profile: Profile
  /** `${prefix}/`, precomputed: matching runs on every request. */
  prefixSlash: string
  bySegments: Compiled[][]
}

export class RouteTable {
  readonly #profiles: ProfileTable[]

  constructor(enableV1_1: boolean) {
    this.#profiles = PROFILES.filter((p) => enableV1_1 || p.name === 'v2').map((profile) => {
      const bySegments: Compiled[][] = []
      for (const c of compile(profile)) (bySegments[c.segments.length] ??= []).push(c)
      return { profile, prefixSlash: `${profile.prefix}/`, bySegments }
    })
  }

  /** Matches a request path (percent-decoded per segment) and method. */
  match(method: string, path: string): Match {
    for (const { profile, prefixSlash, bySegments } of this.#profiles) {
      if (path !== profile.prefix && !path.startsWith(prefixSlash)) continue
      let rest = path.slice(prefixSlash.length)
      if (rest.endsWith('/')) rest = rest.slice(0, -1)
      const segments = rest === '' ? [] : rest.split('/')
      const candidates = bySegments[segments.length]
      if (candidates === undefined) return { kind: 'none' }
      for (const c of candidates) {
        if (!literalsMatch(c.segments, c.names, segments)) continue
        const route = c.routes.find((r) => r.method === method)
        if (route === undefined) return { kind: 'method', allow: c.routes.map((r) => r.method) }
        return { kind: 'route', route, profile, params: paramsOf(c.names, segments) }
      }
      return { kind: 'none' }
    }
    return { kind: 'none' }
  }
}

/** True when every literal segment is equal and every parameter segment non-empty (same lengths). */
function literalsMatch(pattern: string[], names: (keyof Params | null)[], segments: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (names[i] === null ? pattern[i] !== segments[i] : segments[i] === '') return false
  }
  return true
}

/** The parameters of a matched path, percent-decoded; only built once the path has matched. */
function paramsOf(names: (keyof Params | null)[], segments: string[]): Params {
  const params: Params = {}
  for (let i = 0; i < names.length; i++) {
    const name = names[i]
    if (name === null || name === undefined) continue
    const s = segments[i]!
    // Nearly every segment has nothing to decode: decodeURIComponent would return it as it is.
    if (!s.includes('%')) {
      params[name] = s
      continue
    }
    let v: string
    try {
      v = decodeURIComponent(s)
    } catch {
      v = s // left encoded; the queue-name check refuses it with a clear 400
    }
    params[name] = v
  }
  return params
}
