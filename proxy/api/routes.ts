/**
 * The one route table. Paths are relative to the version prefix; `{name}` segments are
 * parameters. v1.1 serves the same handlers under its profile (API.md §13), minus the routes
 * marked v2-only.
 */
import type { Limits } from '../../shared/config.js'
import { badRequest, invalidBody, MissiveError } from '../../shared/errors.js'
import * as claims from './claims.js'
import type { Handler, Params, Profile } from './context.js'
import * as flavors from './flavors.js'
import * as messages from './messages.js'
import * as pools from './pools.js'
import * as queues from './queues.js'
import * as system from './system.js'

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
  {
    method: 'POST',
    path: 'queues/{queue}/messages',
    handler: messages.postMessages,
    v1_1: true,
    maxBody: (l) => [l.max_messages_post_size, () => badRequest(`Message collection size is too large. Max size ${l.max_messages_post_size}`)],
  },
  { method: 'GET', path: 'queues/{queue}/messages', handler: messages.listMessages, v1_1: true },
  { method: 'DELETE', path: 'queues/{queue}/messages', handler: messages.deleteMessages, v1_1: true },
  { method: 'GET', path: 'queues/{queue}/messages/{messageId}', handler: messages.getMessage, v1_1: true },
  { method: 'DELETE', path: 'queues/{queue}/messages/{messageId}', handler: messages.deleteMessage, v1_1: true },
  { method: 'POST', path: 'queues/{queue}/claims', handler: claims.createClaim, v1_1: true },
  { method: 'GET', path: 'queues/{queue}/claims/{claimId}', handler: claims.getClaim, v1_1: true },
  { method: 'PATCH', path: 'queues/{queue}/claims/{claimId}', handler: claims.renewClaim, v1_1: true },
  { method: 'DELETE', path: 'queues/{queue}/claims/{claimId}', handler: claims.releaseClaim, v1_1: true },
  // Admin (v2 only; every handler calls requireAdmin). Params are `pool`/`flavor`, never `queue`,
  // so the queue-name check does not apply to them.
  { method: 'GET', path: 'pools', handler: pools.listPools, v1_1: false },
  { method: 'PUT', path: 'pools/{pool}', handler: pools.putPool, v1_1: false },
  { method: 'GET', path: 'pools/{pool}', handler: pools.getPool, v1_1: false },
  { method: 'PATCH', path: 'pools/{pool}', handler: pools.patchPool, v1_1: false },
  { method: 'DELETE', path: 'pools/{pool}', handler: pools.deletePool, v1_1: false },
  { method: 'GET', path: 'flavors', handler: flavors.listFlavors, v1_1: false },
  { method: 'PUT', path: 'flavors/{flavor}', handler: flavors.putFlavor, v1_1: false },
  { method: 'GET', path: 'flavors/{flavor}', handler: flavors.getFlavor, v1_1: false },
  { method: 'PATCH', path: 'flavors/{flavor}', handler: flavors.patchFlavor, v1_1: false },
  { method: 'DELETE', path: 'flavors/{flavor}', handler: flavors.deleteFlavor, v1_1: false },
  { method: 'GET', path: 'admin/pools/{pool}/stats', handler: pools.poolStats, v1_1: false },
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
  routes: Route[]
}

/** Routes grouped by path, per profile, for matching by segments. */
function compile(profile: Profile): Compiled[] {
  const byPath = new Map<string, Compiled>()
  for (const r of ROUTES) {
    if (profile.name !== 'v2' && !r.v1_1) continue
    let c = byPath.get(r.path)
    if (c === undefined) {
      c = { segments: r.path === '' ? [] : r.path.split('/'), routes: [] }
      byPath.set(r.path, c)
    }
    c.routes.push(r)
  }
  return [...byPath.values()]
}

export class RouteTable {
  readonly #profiles: [Profile, Compiled[]][]

  constructor(enableV1_1: boolean) {
    this.#profiles = PROFILES.filter((p) => enableV1_1 || p.name === 'v2').map((p) => [p, compile(p)])
  }

  /** Matches a request path (percent-decoded per segment) and method. */
  match(method: string, path: string): Match {
    for (const [profile, compiled] of this.#profiles) {
      if (path !== profile.prefix && !path.startsWith(`${profile.prefix}/`)) continue
      let rest = path.slice(profile.prefix.length + 1)
      if (rest.endsWith('/')) rest = rest.slice(0, -1)
      const segments = rest === '' ? [] : rest.split('/')
      for (const c of compiled) {
        const params = matchSegments(c.segments, segments)
        if (params === null) continue
        const route = c.routes.find((r) => r.method === method)
        if (route === undefined) return { kind: 'method', allow: c.routes.map((r) => r.method) }
        return { kind: 'route', route, profile, params }
      }
      return { kind: 'none' }
    }
    return { kind: 'none' }
  }
}

function matchSegments(pattern: string[], segments: string[]): Params | null {
  if (pattern.length !== segments.length) return null
  const params: Record<string, string> = {}
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!
    const s = segments[i]!
    if (p.startsWith('{')) {
      if (s === '') return null
      let v: string
      try {
        v = decodeURIComponent(s)
      } catch {
        v = s // left encoded; the queue-name check refuses it with a clear 400
      }
      params[p.slice(1, -1)] = v
    } else if (p !== s) return null
  }
  return params
}
