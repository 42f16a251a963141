/**
 * GET /v2/admin/queues (Missive, admin token): every queue of every project, for operators, paged.
 * Read from the catalog's placements (every queue is placed when it is created, on whichever pool
 * it lands), so listing costs one catalog read per page and touches no message store.
 *
 * Order: by pool name, then (project, queue) in byte order. `marker` is opaque (the last item's
 * pool, project and queue, base64url JSON); `pool=<name>` lists one pool only. A full page has a
 * `next` link; a short page is the last.
 */
import { MissiveError, notFound } from '../../shared/errors.js'
import { BACKLOG, TOP_MAX } from '../backlog.js'
import type { QueueRef } from '../../shared/storage/contract.js'
import { json, type Reply } from '../transport.js'
import { pageLimit } from '../validate.js'
import type { ApiRequest } from './context.js'
import { requireAdmin } from './system.js'

/** Default and largest page size: one catalog read of at most this many placements. */
export const ADMIN_QUEUES_DEFAULT_LIMIT = 100
export const ADMIN_QUEUES_MAX_LIMIT = 1000

/** A listed queue. */
export interface AdminQueueEntry {
  pool: string
  project: string
  name: string
}

const invalidMarker = (): MissiveError => new MissiveError('invalid_parameter', 'The "marker" parameter is invalid. Send back a marker this API returned.')

/** The marker for the item after which the next page starts. */
export const encodeMarker = (e: AdminQueueEntry): string => Buffer.from(JSON.stringify([e.pool, e.project, e.name])).toString('base64url')

function decodeMarker(raw: string): { pool: string; after: QueueRef } {
  let v: unknown
  try {
    v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))
  } catch {
    throw invalidMarker()
  }
  if (!Array.isArray(v) || v.length !== 3 || !v.every((s) => typeof s === 'string')) throw invalidMarker()
  const [pool, project, queue] = v as [string, string, string]
  return { pool, after: { project, queue } }
}

/** GET /v2/admin/queues?pool=&limit=&marker= */
export async function listAllQueues(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const q = req.query
  const limit = pageLimit(q.int('limit', ADMIN_QUEUES_DEFAULT_LIMIT), ADMIN_QUEUES_MAX_LIMIT)
  const only = q.get('pool')
  const rawMarker = q.get('marker')
  const marker = rawMarker === undefined ? undefined : decodeMarker(rawMarker)
  const catalog = req.control.catalog
  let pools = (await catalog.listPools()).map((p) => p.name)
  if (only !== undefined) {
    if (!pools.includes(only)) throw notFound(`Pool ${only} does not exist`)
    pools = [only]
  }
  const items: AdminQueueEntry[] = []
  for (const pool of pools) {
    if (items.length >= limit) break
    if (marker !== undefined && pool < marker.pool) continue
    const after = marker !== undefined && pool === marker.pool ? marker.after : undefined
    const refs = await catalog.listPlacements(pool, after === undefined ? { limit: limit - items.length } : { limit: limit - items.length, after })
    for (const r of refs) items.push({ pool, project: r.project, name: r.queue })
  }
  const links =
    items.length === limit ? [{ rel: 'next', href: q.nextLink(req.path, encodeMarker(items[items.length - 1]!), (k) => (k === 'limit' || k === 'pool' ? 'string' : undefined)) }] : []
  return json(200, { queues: items, links })
}

/**
 * GET /v2/admin/queues/top?by=backlog|age&limit= (Missive, admin token): the queues with the
 * most free messages (`backlog`, the default) or the oldest message (`age`), for drill-down from
 * the per-pool gauges. From the background backlog scan (proxy/backlog.ts): `as_of` is when its
 * last pass ended (null before the first), so the answer costs nothing whatever the queue count.
 */
export async function topQueues(req: ApiRequest): Promise<Reply> {
  requireAdmin(req)
  const q = req.query
  const by = q.get('by') ?? 'backlog'
  if (by !== 'backlog' && by !== 'age') throw new MissiveError('invalid_parameter', 'The "by" parameter is invalid. The value must be backlog or age.')
  const limit = pageLimit(q.int('limit', 10), TOP_MAX)
  const scanner = BACKLOG.get(req.control)
  if (scanner === undefined) throw new MissiveError('unavailable', 'The backlog scan is not running in this process.', { retryAfter: 1 })
  const { queues, at } = scanner.top(by, limit)
  return json(200, { by, queues, as_of: at === undefined ? null : new Date(at).toISOString() })
}
