/** Queues: create, get, patch (JSON Patch), delete, list, stats, purge (zaqar/transport/wsgi/v2_0/queues.py). */
import { invalidBody, MissiveError, badRequest } from '../../shared/errors.js'
import type { Limits } from '../../shared/config.js'
import type { Metadata } from '../../shared/storage/contract.js'
import { isObject } from '../json.js'
import { empty, json, type Reply } from '../transport.js'
import { pageLimit, queueMetadata } from '../validate.js'
import { optionalBody, requiredBody } from './body.js'
import { isoSeconds, queueHref, queueRef, type ApiRequest } from './context.js'
import { isMsgpackType } from '../msgpack.js'

/** Reserved keys shown with their defaults on GET (v2), whenever the stored value is falsy. */
function withDefaults(meta: Metadata, limits: Limits): Metadata {
  const defaults: Metadata = {
    _max_messages_post_size: limits.max_messages_post_size,
    _default_message_ttl: limits.default_message_ttl,
    _default_message_delay: 0,
    _dead_letter_queue: null,
    _dead_letter_queue_messages_ttl: null,
    _max_claim_count: null,
    _enable_encrypt_messages: false,
  }
  const out: Metadata = { ...meta }
  for (const [k, v] of Object.entries(defaults)) if (!out[k]) out[k] = v
  return out
}

export async function createQueue(req: ApiRequest): Promise<Reply> {
  const doc = optionalBody(req)
  const meta = doc === null ? {} : queueMetadata(doc, req.config.limits)
  const ref = queueRef(req)
  // A new queue is placed among its `_flavor`'s pools (unknown flavor: 400); an existing one stays put.
  const created = await req.storage.createQueue(ref, meta)
  return empty(created ? 201 : 204, [['location', queueHref(req)]])
}

export async function getQueue(req: ApiRequest): Promise<Reply> {
  const ref = queueRef(req)
  const meta = (await req.storage.getQueue(ref)) ?? {}
  return json(200, req.profile.queueDefaults ? withDefaults(meta, req.config.limits) : meta)
}

export async function deleteQueue(req: ApiRequest): Promise<Reply> {
  const ref = queueRef(req)
  await req.storage.deleteQueue(ref)
  return empty(204)
}

/** The media type of a metadata PATCH (queues and topics). */
export const PATCH_TYPE = 'application/openstack-messaging-v2.0-json-patch'

export interface PatchOp {
  op: 'add' | 'remove' | 'replace'
  key: string
  value?: unknown
}

/** Validates a JSON Patch document (zaqar/transport/wsgi/v2_0/queues.py) into metadata operations. */
export function patchOps(doc: unknown): PatchOp[] {
  if (!Array.isArray(doc)) throw invalidBody('Request body must be a JSON array of operations.')
  return doc.map((raw: unknown): PatchOp => {
    if (!isObject(raw)) throw invalidBody('Operations must be JSON objects.')
    const op = raw.op
    if (op !== 'add' && op !== 'remove' && op !== 'replace') {
      throw invalidBody(`Invalid operation: "${String(op)}". Valid operations are add, remove, replace.`)
    }
    if (typeof raw.path !== 'string') throw invalidBody(`Operation "${op}" requires a member named "path".`)
    if (op !== 'remove' && !Object.hasOwn(raw, 'value')) throw invalidBody(`Operation "${op}" requires a member named "value".`)
    const path = raw.path
    const bad = (): MissiveError => invalidBody(`Unable to find '${path}' in JSON Schema change`)
    if (!path.startsWith('/') || path.endsWith('/')) throw bad()
    const segments = path
      .slice(1)
      .split('/')
      .map((s) => s.trim())
    if (segments.length !== 2 || segments.some((s) => s === '' || /~(?![01])/.test(s))) throw bad()
    // Zaqar lets `remove` skip the root check ([QUIRK]); we require /metadata for every op.
    if (segments[0]!.toLowerCase() !== 'metadata') throw bad()
    const key = segments[1]!.replaceAll('~1', '/').replaceAll('~0', '~')
    return { op, key, value: raw.value }
  })
}

/**
 * The operations of a PATCH request: JSON Patch (`application/openstack-messaging-v2.0-json-patch`),
 * or the same document as MessagePack (proxy/msgpack.ts); 415 for another type, 400 for no body.
 */
export function patchRequestOps(req: ApiRequest): PatchOp[] {
  if (req.contentType !== PATCH_TYPE && !isMsgpackType(req.contentType)) {
    throw new MissiveError('unsupported_media_type', `Accepted media type for PATCH: {'Accept-Patch': '${PATCH_TYPE}'}.`, {
      title: 'Unsupported media type',
    })
  }
  if (req.body === null || req.body.length === 0) throw invalidBody('PATCH body could not be empty for update.')
  return patchOps(requiredBody(req))
}

/**
 * `stored` with `ops` applied, as Zaqar applies them: replacing or removing a key that is not
 * there is 409, except for keys `reserved` says Zaqar treats as always present (their defaults).
 */
export function applyPatch(stored: Metadata, ops: PatchOp[], reserved: (key: string) => boolean): Metadata {
  const meta: Metadata = { ...stored }
  for (const { op, key, value } of ops) {
    if (op === 'add') meta[key] = value
    else if (op === 'replace') {
      if (!Object.hasOwn(meta, key) && !reserved(key)) throw new MissiveError('conflict', `Can't replace non-existent object ${key}.`)
      meta[key] = value
    } else if (Object.hasOwn(meta, key)) delete meta[key]
    else if (!reserved(key)) throw new MissiveError('conflict', `Can't remove non-existent object ${key}.`)
  }
  return meta
}

export async function patchQueue(req: ApiRequest): Promise<Reply> {
  const limits = req.config.limits
  const ops = patchRequestOps(req)
  const ref = queueRef(req)
  const storage = req.storage
  const stored = await storage.getQueue(ref)
  if (stored === null) throw new MissiveError('not_found', `Queue ${ref.queue} does not exist for project ${ref.project}`)
  const validated = queueMetadata(applyPatch(stored, ops, (key) => key.startsWith('_')), limits)
  // Setting `_flavor` to a flavor without the queue's pool: 400 or 409 (see `checkFlavorChange`).
  await storage.checkFlavorChange(ref, stored, validated)
  await storage.setQueueMetadata(ref, validated)
  return json(200, withDefaults(validated, limits))
}

const QUEUE_LIST_PARAMS = new Set(['marker', 'limit', 'detailed', 'name', 'with_count'])

export async function listQueues(req: ApiRequest): Promise<Reply> {
  const limits = req.config.limits
  const q = req.query
  const limit = pageLimit(q.int('limit', 10), limits.max_queues_per_page)
  const detailed = q.bool('detailed', false)
  const withCount = q.bool('with_count', false)
  const filters: Record<string, string | number> = {}
  for (const [k, v] of q.entries) if (!QUEUE_LIST_PARAMS.has(k)) filters[k] = /^-?\d+$/.test(v) ? Number(v) : v
  const name = q.get('name')
  const marker = q.get('marker')
  // Every pool's queues, merged by name (the pooled driver fans out).
  const listing = await req.storage.listQueues(req.project, {
    limit,
    detailed,
    withCount,
    ...(name !== undefined && { name }),
    ...(marker !== undefined && { marker }),
    ...(Object.keys(filters).length > 0 && { filters }),
  })
  const base = `${req.profile.prefix}/queues`
  const queues = listing.items.map((e) => {
    const item: Record<string, unknown> = { name: e.name, href: `${base}/${e.name}` }
    if (detailed) item.metadata = req.profile.queueDefaults ? withDefaults(e.metadata ?? {}, limits) : (e.metadata ?? {})
    return item
  })
  const links =
    listing.next === undefined
      ? []
      : [{ rel: 'next', href: q.nextLink(base, listing.next, (k) => (k === 'detailed' || k === 'with_count' ? 'bool' : 'string')) }]
  const body: Record<string, unknown> = { queues, links }
  if (withCount && listing.count) body.count = listing.count
  return json(200, body)
}

export async function queueStats(req: ApiRequest): Promise<Reply> {
  const ref = queueRef(req)
  const s = await req.storage.stats(ref)
  const base = queueHref(req)
  const messages: Record<string, unknown> = { claimed: s.claimed, free: s.free, total: s.total }
  for (const which of ['oldest', 'newest'] as const) {
    const m = s[which]
    if (m) messages[which] = { href: `${base}/messages/${m.id}`, age: m.age, created: isoSeconds(m.created) }
  }
  return json(200, { messages })
}

const PURGEABLE = ['messages', 'subscriptions']

export async function purgeQueue(req: ApiRequest): Promise<Reply> {
  const doc = optionalBody(req)
  if (doc !== null) {
    if (!isObject(doc) || !Object.hasOwn(doc, 'resource_types')) throw badRequest('Post body must contain key "resource_types".')
    const types = doc.resource_types
    if (!Array.isArray(types) || !types.every((t) => typeof t === 'string' && PURGEABLE.includes(t))) {
      throw badRequest(`Resource types must be a sub set of ['messages', 'subscriptions'].`)
    }
    const ref = queueRef(req)
    if (types.includes('messages')) await req.storage.purge(ref)
    if (types.includes('subscriptions')) await purgeSubscriptions(req)
    return empty(204)
  }
  // No body: both, as Zaqar.
  await req.storage.purge(queueRef(req))
  await purgeSubscriptions(req)
  return empty(204)
}

/**
 * Deletes every subscription of the queue (docs/notifications.md). Zaqar deletes only its first
 * listing page (10); Missive deletes them all, a page at a time.
 */
async function purgeSubscriptions(req: ApiRequest): Promise<void> {
  const ref = queueRef(req)
  const catalog = req.control.catalog
  for (;;) {
    const page = await catalog.listSubscriptions(ref, { limit: 100, now: Date.now() })
    for (const s of page) await catalog.deleteSubscription(ref, s.id)
    if (page.length < 100) return
  }
}
