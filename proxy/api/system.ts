/** Versions, home documents, ping and health (zaqar/transport/wsgi/v2_0/ping.py, health.py). */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import { MissiveError } from '../../shared/errors.js'
import { empty, json, type Reply } from '../transport.js'
import type { DataDriver } from '../../shared/storage/contract.js'
import type { ApiRequest, Profile } from './context.js'
import { messageVolume } from './pools.js'
import { PROBE_PROJECT } from '../../worker/storage/metered.js'
import { breakerOf, type CircuitBreaker } from '../circuit-breaker.js'

const JSON_TYPES = { 'application/json': {} }

const VERSIONS = {
  versions: [
    ['1', 'DEPRECATED', '2014-9-11T17:47:05Z', 'v1'],
    ['1.1', 'DEPRECATED', '2016-7-29T02:22:47Z', 'v1_1'],
    ['2', 'CURRENT', '2014-9-24T04:06:47Z', 'v2'],
  ].map(([id, status, updated, media]) => ({
    id,
    status,
    updated,
    'media-types': [{ base: 'application/json', type: `application/vnd.openstack.messaging-${media}+json` }],
    links: [{ href: `/v${id}/`, rel: 'self' }],
  })),
}

const versionsBody = JSON.stringify(VERSIONS)

/** GET / : the static version list, 300 (needs no headers at all). */
export const versions = (): Reply => ({ status: 300, body: versionsBody })

type Rel = [rel: string, template: string, vars: Record<string, string>, allow: string[], post?: boolean, v2only?: boolean]

function homeDocument(profile: Profile, admin: boolean): string {
  const q = { queue_name: 'param/queue_name' }
  const qm = { ...q, message_id: 'param/message_id' }
  const qc = { ...q, claim_id: 'param/claim_id' }
  const rels: Rel[] = [
    ['queues', '/queues{?marker,limit,detailed}', { marker: 'param/marker', limit: 'param/queue_limit', detailed: 'param/detailed' }, ['GET']],
    ['queue', '/queues/{queue_name}', q, profile.name === 'v2' ? ['GET', 'PUT', 'DELETE', 'PATCH'] : ['PUT', 'DELETE']],
    ['queue_stats', '/queues/{queue_name}/stats', q, ['GET']],
    ['queue_purge', '/queues/{queue_name}/purge', q, ['POST'], true, true],
    [
      'messages',
      '/queues/{queue_name}/messages{?marker,limit,echo,include_claimed}',
      { ...q, marker: 'param/marker', limit: 'param/messages_limit', echo: 'param/echo', include_claimed: 'param/include_claimed' },
      ['GET'],
    ],
    ['post_messages', '/queues/{queue_name}/messages', q, ['POST'], true],
    ['messages_delete', '/queues/{queue_name}/messages{?ids,pop}', { ...q, ids: 'param/ids', pop: 'param/pop' }, ['DELETE']],
    ['message_delete', '/queues/{queue_name}/messages/{message_id}{?claim}', { ...qm, claim: 'param/claim_id' }, ['DELETE']],
    ['message_get', '/queues/{queue_name}/messages/{message_id}', qm, ['GET'], false, true],
    ['claim', '/queues/{queue_name}/claims/{claim_id}', qc, ['GET']],
    ['post_claim', '/queues/{queue_name}/claims{?limit}', { ...q, limit: 'param/claim_limit' }, ['POST'], true],
    ['patch_claim', '/queues/{queue_name}/claims/{claim_id}', qc, ['PATCH'], true],
    ['delete_claim', '/queues/{queue_name}/claims/{claim_id}', qc, ['DELETE']],
    ['ping', '/ping', {}, ['GET']],
  ]
  // Zaqar lists the admin resources (v2 and v1.1 alike) only in admin mode: here, when an admin
  // token is configured.
  if (admin) {
    const page = { detailed: 'param/detailed', limit: 'param/pool_limit', marker: 'param/marker' }
    rels.push(
      ['pools', '/pools{?detailed,limit,marker}', page, ['GET']],
      ['pool', '/pools/{pool_name}', { pool_name: 'param/pool_name' }, ['GET', 'PUT', 'PATCH', 'DELETE']],
      ['flavors', '/flavors{?detailed,limit,marker}', { ...page, limit: 'param/flavor_limit' }, ['GET']],
      ['flavor', '/flavors/{flavor_name}', { flavor_name: 'param/flavor_name' }, ['GET', 'PUT', 'PATCH', 'DELETE']],
    )
  }
  const resources: Record<string, unknown> = {}
  for (const [rel, template, vars, allow, post, v2only] of rels) {
    if (v2only && profile.name !== 'v2') continue
    const hints: Record<string, unknown> = { allow, formats: JSON_TYPES }
    if (post) hints['accept-post'] = ['application/json']
    resources[`rel/${rel}`] = { 'href-template': `${profile.prefix}${template}`, 'href-vars': vars, hints }
  }
  if (admin) resources['rel/health'] = { href: `${profile.prefix}/health`, hints: { allow: ['GET'], formats: JSON_TYPES } }
  return JSON.stringify({ resources })
}

const homeCache = new Map<string, string>()

/** GET /v2/ : the JSON-Home document. */
export function home(req: ApiRequest): Reply {
  const admin = req.config.adminToken !== undefined && req.config.adminToken !== ''
  const key = `${req.profile.name}:${admin}`
  let body = homeCache.get(key)
  if (body === undefined) {
    body = homeDocument(req.profile, admin)
    homeCache.set(key, body)
  }
  return { status: 200, body, contentType: 'application/json-home', headers: [['cache-control', 'max-age=86400']] }
}

/**
 * GET and HEAD /v2/ping (the same answer, as Zaqar's `on_head = on_get`): whether **this node**
 * can serve (docs/ha.md, "What a load balancer should probe"). 204 as soon as one pool answers a
 * ping through to its store on every one of its workers; 503 + Retry-After when no pool does. One
 * pool down is not the node down: every node shares the pools, so taking nodes out of a load
 * balancer for it would only move the same 503s elsewhere; it is an alert (`MissivePoolDown`).
 * Bounded: a pool whose breaker is open fails its ping at once, a stalled one within
 * `poolStallMs`, a hung worker once taken for hung (`workerHungAfterMs`, proxy/rpc-client.ts).
 */
export async function ping(req: ApiRequest): Promise<Reply> {
  const pings: Promise<unknown>[] = []
  for (const ws of req.control.pools.values()) {
    if (ws.length === 1) pings.push(ws[0]!.ping())
    else if (ws.length > 1) pings.push(Promise.all(ws.map((w) => w.ping())))
  }
  try {
    await Promise.any(pings)
    return empty(204)
  } catch {
    return empty(503, [['retry-after', '1']])
  }
}

/**
 * GET /v2/health (admin): Zaqar's pooled form (zaqar/storage/pooling.py `_health`) —
 * `catalog_reachable`, then per pool `storage_reachable` (the store answers a ping),
 * `operation_status` (a real probe: Zaqar's steps in Zaqar's order, each timed) and
 * `message_volume` (`claimed`, `free`, `total`, summed as pool stats sums them); with
 * `?detailed=true`, Missive's failure-isolation facts too (`poolFacts`). 503 when no pool answers
 * at all — except the detailed report, which answers 200 with every pool's state then too.
 */
export async function health(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  // Zaqar's keys exactly, unless asked for Missive's failure-isolation facts too.
  const detailed = req.query.bool('detailed', false)
  const body: Record<string, unknown> = { catalog_reachable: await req.control.catalogReachable() }
  let anyReachable = false
  for (const [pool, workers] of req.control.pools) {
    const driver = workers[0]!
    const storage_reachable = await driver.ping().then(
      () => true,
      () => false,
    )
    anyReachable ||= storage_reachable
    const operation_status = await probe(req, driver)
    const { claimed, free, total } = await messageVolume(req, pool, storage_reachable)
    body[pool] = { storage_reachable, operation_status, message_volume: { free, claimed, total }, ...(detailed && poolFacts(workers)) }
  }
  // The detailed report is read when it matters most: every pool down still answers it (200).
  if (!anyReachable && !detailed) throw new MissiveError('unavailable', 'Health status could not be read.', { retryAfter: 1 })
  return json(200, body)
}

/**
 * What the pool's circuit breakers know (docs/ha.md, "Health"): `breaker` (`open` when any of
 * its workers fails calls at once; then `breaker_reason` says why), the store's `role`, online `replicas` and `replication_lag`
 * (seconds, the slowest replica; null when unknown or none), `failovers` seen since this proxy
 * started and `last_failover` (ISO time or null). Nothing for a pool served without breakers.
 */
function poolFacts(workers: readonly DataDriver[]): Record<string, unknown> {
  const bs = workers.map(breakerOf).filter((b): b is CircuitBreaker => b !== undefined)
  if (bs.length === 0) return {}
  const facts = bs.find((b) => b.info !== null)?.info ?? null
  const last = Math.max(...bs.map((b) => b.lastFailover ?? -1))
  return {
    breaker: bs.some((b) => b.isOpen) ? 'open' : 'closed',
    // Why it is open (the last reason any of its workers' breakers gave), for the operator.
    ...(bs.some((b) => b.isOpen) && { breaker_reason: bs.find((b) => b.isOpen)!.reason }),
    role: facts?.role ?? null,
    replicas: facts?.replicas ?? null,
    replication_lag: facts?.lagSeconds ?? null,
    failovers: Math.max(...bs.map((b) => b.failovers)),
    last_failover: last < 0 ? null : new Date(last).toISOString(),
  }
}

interface StepStatus {
  succeeded: boolean
  seconds: number
  ref: string | null
}

/**
 * Zaqar's probe (zaqar/storage/base.py `_get_operation_status`) on one store, in a fresh project
 * and queue: create the queue; post 100 messages (ttl 600); claim (ttl 60, grace 300); list; delete
 * each claimed message with its claim; release the claim; bulk-delete every posted message;
 * delete the queue. A step that fails gets a `ref` (logged with the error); later steps run as
 * in Zaqar (a failed create skips the rest, a failed post skips the claim steps).
 */
async function probe(req: ApiRequest, driver: DataDriver): Promise<Record<string, StepStatus>> {
  // A project tenants cannot name: the probe's messages are not tenant traffic in /metrics.
  const ref = { project: PROBE_PROJECT, queue: randomUUID() }
  const client = randomUUID()
  const status: Record<string, StepStatus> = {}
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<[boolean, T | undefined]> => {
    const t0 = performance.now()
    try {
      const result = await fn()
      status[name] = { succeeded: true, seconds: (performance.now() - t0) / 1000, ref: null }
      return [true, result]
    } catch (err) {
      const id = randomUUID()
      req.log.warn({ requestId: req.requestId, ref: id, err }, `health probe ${name} failed`)
      status[name] = { succeeded: false, seconds: (performance.now() - t0) / 1000, ref: id }
      return [false, undefined]
    }
  }
  const [created] = await step('create_queue', () => driver.createQueue(ref, {}))
  if (!created) return status
  const msgs = Array.from({ length: 100 }, (_, i) => ({ body: `{"event":"p_${i}"}`, ttl: 600 }))
  const [, ids] = await step('post_messages', () =>
    driver.postMessages(ref, msgs, { clientId: client, defaultTtl: 600, postBytes: 0, queuePolicy: false }),
  )
  if (ids !== undefined && ids.length > 0) {
    const [, claim] = await step('claim_messages', () => driver.createClaim(ref, { ttl: 60, grace: 300, limit: 10 }))
    await step('list_messages', () => driver.listMessages(ref, { limit: 10, clientId: client, echo: true, includeClaimed: true }))
    if (claim) {
      for (const m of claim.messages) {
        const [ok] = await step('delete_messages', () => driver.deleteMessage(ref, m.id, claim.id))
        if (!ok) break
      }
      await step('delete_claim', () => driver.releaseClaim(ref, claim.id))
    }
  }
  await step('bulk_delete_messages', () => driver.deleteMessages(ref, ids ?? []))
  await step('delete_queue', () => driver.deleteQueue(ref))
  return status
}

/** Admin calls need the configured admin token; X-Roles from a client is never trusted. */
export function requireAdmin(req: ApiRequest): void {
  // A credential with Zaqar's `role:admin` (proxy/auth/policy.ts); else the operator's token.
  if (req.identity.admin) return
  const token = req.config.adminToken
  if (token === undefined || token === '' || !sameSecret(req.authToken, token)) {
    throw new MissiveError('forbidden', 'You are not authorized to complete this action.')
  }
}

/** Constant-time comparison of two secrets (hashed first, so lengths leak nothing either). */
function sameSecret(a: string, b: string): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(h(a), h(b))
}
