/**
 * Topics, v2 (zaqar/transport/wsgi/v2_0/topic.py, topic_stats.py, topic_purge.py;
 * docs/notifications.md, "Topics"). A topic is a queue in a namespace of its own
 * (proxy/topic-space.ts): `queueRef` and `queueHref` (context.ts) resolve a `{topic}` route to it,
 * so create, delete, stats, purge, messages and subscriptions are the queue handlers, and this
 * module holds only what Zaqar's topic resources do differently: the listing's key and hrefs, and
 * GET/PATCH filling in three reserved defaults where a queue fills in seven.
 */
import type { Limits } from '../../shared/config.js'
import { MissiveError } from '../../shared/errors.js'
import type { Metadata } from '../../shared/storage/contract.js'
import { topicProject } from '../topic-space.js'
import { json, type Reply } from '../transport.js'
import { pageLimit, queueMetadata } from '../validate.js'
import { queueRef, type ApiRequest } from './context.js'
import { applyPatch, patchRequestOps } from './queues.js'

/** Zaqar's `_get_reserved_metadata` for topics: shown with their defaults whenever the stored value is falsy. */
function withTopicDefaults(meta: Metadata, limits: Limits): Metadata {
  const out: Metadata = { ...meta }
  if (!out._max_messages_post_size) out._max_messages_post_size = limits.max_messages_post_size
  if (!out._default_message_ttl) out._default_message_ttl = limits.default_message_ttl
  if (!out._default_message_delay) out._default_message_delay = 0
  return out
}

/** Zaqar's words for a topic that is not there (zaqar/storage/errors.py, `TopicDoesNotExist`). */
const TOPIC_RESERVED = new Set(['_max_messages_post_size', '_default_message_ttl', '_default_message_delay'])

const missingTopic = (req: ApiRequest): MissiveError =>
  new MissiveError('not_found', `Topic ${req.params.topic!} does not exist for project ${req.project}`)

/** GET /v2/topics/<t>: the metadata with the reserved defaults; a topic that does not exist reads as empty (Zaqar's `get`). */
export async function getTopic(req: ApiRequest): Promise<Reply> {
  const meta = (await req.storage.getQueue(queueRef(req))) ?? {}
  return json(200, withTopicDefaults(meta, req.config.limits))
}

/** PATCH /v2/topics/<t>: JSON Patch of the metadata, as for queues; the answer shows the topic defaults. */
export async function patchTopic(req: ApiRequest): Promise<Reply> {
  const limits = req.config.limits
  const ops = patchRequestOps(req)
  const ref = queueRef(req)
  const stored = await req.storage.getQueue(ref)
  if (stored === null) throw missingTopic(req)
  // A topic's reserved keys are the three whose defaults its GET shows (zaqar/transport/wsgi/v2_0/topic.py).
  const validated = queueMetadata(applyPatch(stored, ops, (key) => TOPIC_RESERVED.has(key)), limits)
  await req.storage.checkFlavorChange(ref, stored, validated)
  await req.storage.setQueueMetadata(ref, validated)
  return json(200, withTopicDefaults(validated, limits))
}

const TOPIC_LIST_PARAMS = new Set(['marker', 'limit', 'detailed', 'name'])

/** GET /v2/topics: the project's topics, paged by name (Zaqar's `CollectionResource.on_get`: `marker`, `limit`, `detailed`, `name`, other parameters filter on metadata). */
export async function listTopics(req: ApiRequest): Promise<Reply> {
  const limits = req.config.limits
  const q = req.query
  const limit = pageLimit(q.int('limit', 10), limits.max_queues_per_page)
  const detailed = q.bool('detailed', false)
  const filters: Record<string, string | number> = {}
  for (const [k, v] of q.entries) if (!TOPIC_LIST_PARAMS.has(k)) filters[k] = /^-?\d+$/.test(v) ? Number(v) : v
  const name = q.get('name')
  const marker = q.get('marker')
  const listing = await req.storage.listQueues(topicProject(req.project), {
    limit,
    detailed,
    withCount: false,
    ...(name !== undefined && { name }),
    ...(marker !== undefined && { marker }),
    ...(Object.keys(filters).length > 0 && { filters }),
  })
  const base = `${req.profile.prefix}/topics`
  const topics = listing.items.map((e) => {
    const item: Record<string, unknown> = { name: e.name, href: `${base}/${e.name}` }
    if (detailed) item.metadata = withTopicDefaults(e.metadata ?? {}, limits)
    return item
  })
  const links = listing.next === undefined ? [] : [{ rel: 'next', href: q.nextLink(base, listing.next, (k) => (k === 'detailed' ? 'bool' : 'string')) }]
  return json(200, { topics, links })
}
