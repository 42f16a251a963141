/** Messages: post, list, bulk get, get, bulk delete, pop, delete (zaqar/transport/wsgi/v2_0/messages.py). */
import { badRequest, MissiveError } from '../../shared/errors.js'
import { empty, json, type Reply } from '../transport.js'
import { claimLimit, idList, messagePost, pageLimit } from '../validate.js'
import { isObject } from '../json.js'
import { waitSeconds } from '../long-poll.js'
import { requiredBody } from './body.js'
import { messageJson, messagesJson, NEEDS_ESCAPE_RE, pyList, queueHref, queueRef, type ApiRequest } from './context.js'

/** An idempotency key: 1 to 255 visible ASCII characters (docs/api.md, "Safe retries"). */
const IDEMPOTENCY_KEY_RE = /^[\x21-\x7e]{1,255}$/

export async function postMessages(req: ApiRequest): Promise<Reply> {
  const key = req.idempotencyKey
  if (key !== undefined && !IDEMPOTENCY_KEY_RE.test(key)) {
    throw badRequest('The Idempotency-Key header must be 1 to 255 visible ASCII characters.')
  }
  const doc = requiredBody(req)
  // Counted before the messages are checked one by one: that check is what costs (~1.5 µs each).
  const most = req.config.limits.max_messages_per_post
  if (most > 0 && isObject(doc) && Array.isArray(doc.messages) && doc.messages.length > most) {
    throw badRequest(`No more than ${most} messages may be posted at once.`)
  }
  const messages = messagePost(doc, req.config.limits)
  // Messages per second (docs/limits.md): counted once the post is known to be valid. It answers
  // the queue's quota of messages, which the store checks inside its atomic post.
  const postBytes = req.contentLength ?? req.body!.length
  const maxMessages = req.limiter === undefined ? 0 : await req.limiter.messages(req.project, messages.length, postBytes)
  const ref = queueRef(req)
  const ids = await req.storage.postMessages(ref, messages, {
    clientId: req.clientId,
    defaultTtl: req.config.limits.default_message_ttl,
    postBytes,
    queuePolicy: req.profile.queueLimits,
    maxMessages,
    ...(key !== undefined && { idempotencyKey: key, idempotencyWindow: req.config.limits.idempotency_window }),
  })
  // Long-polling consumers of this queue may now find something (proxy/long-poll.ts).
  req.longPoll?.notify(ref, ids.length)
  // And WebSocket subscribers of the queue get each message (proxy/websocket-push.ts).
  req.pushes?.posted(ref, ids, messages)
  // And stored subscriptions, off the request path (proxy/notify/notifier.ts).
  req.notifier?.posted(ref)
  const base = `${queueHref(req)}/messages`
  const list = ids.join(',')
  const location: [string, string][] = [['location', `${base}?ids=${list}`]]
  // The hrefs as JSON.stringify writes them, without its scan of every character: nothing in a
  // queue name or an id needs escaping (checked, else JSON.stringify does it). ~1 µs less for 10.
  if (NEEDS_ESCAPE_RE.test(base) || NEEDS_ESCAPE_RE.test(list)) return json(201, { resources: ids.map((id) => `${base}/${id}`) }, location)
  return { status: 201, body: ids.length === 0 ? '{"resources":[]}' : `{"resources":["${base}/${ids.join(`","${base}/`)}"]}`, headers: location }
}

export async function listMessages(req: ApiRequest): Promise<Reply> {
  const q = req.query
  const limits = req.config.limits
  const ids = q.list('ids')
  const ref = queueRef(req)
  const base = queueHref(req)
  // Checked first, so a bad value is refused whatever else the request asks (bulk gets do not wait).
  const wait = q.has('wait') ? waitSeconds(q.int('wait', 0), req.config.longPollMaxWait) : 0
  if (ids !== undefined) {
    idList(ids, limits)
    const found = await req.storage.getMessages(ref, ids)
    if (found.length === 0) {
      throw new MissiveError('not_found', `No messages with IDs: ${pyList(ids)} found in the queue ${ref.queue} for project ${req.project}.`)
    }
    return { status: 200, body: `{"messages":${messagesJson(found, base)}}` }
  }
  const limit = pageLimit(q.int('limit', 10), limits.max_messages_per_page)
  const echo = q.bool('echo', false)
  const includeClaimed = q.bool('include_claimed', false)
  const withDelayed = req.profile.includeDelayedParam
  const includeDelayed = withDelayed ? (q.has('include_delayed') ? q.bool('include_delayed', false) : undefined) : true
  const marker = q.get('marker')
  const opts = {
    limit,
    clientId: req.clientId,
    echo,
    includeClaimed,
    ...(includeDelayed !== undefined && { includeDelayed }),
    ...(marker !== undefined && { marker }),
  }
  const page =
    wait > 0 && req.longPoll !== undefined
      ? await req.longPoll.run(
          ref,
          { seconds: wait, consumes: false, hook: req.abort, listen: (ms) => req.storage.listen(ref, ms) },
          () => req.storage.listMessages(ref, opts),
          (p) => p.items.length > 0,
        )
      : await req.storage.listMessages(ref, opts)
  let links = '[]'
  if (page.next !== undefined) {
    const bools = withDelayed ? ['echo', 'include_claimed', 'include_delayed'] : ['echo', 'include_claimed']
    const href = q.nextLink(
      `${base}/messages`,
      page.next,
      (k) => (bools.includes(k) ? 'bool' : k === 'limit' ? 'string' : undefined),
      withDelayed && page.includeDelayed ? [['include_delayed', 'true']] : [],
    )
    links = JSON.stringify([{ rel: 'next', href }])
  }
  return { status: 200, body: `{"messages":${messagesJson(page.items, base)},"links":${links}}` }
}

export async function getMessage(req: ApiRequest): Promise<Reply> {
  const ref = queueRef(req)
  const id = req.params.messageId!
  const m = await req.storage.getMessage(ref, id)
  if (m === null) throw new MissiveError('not_found', `Message ${id} does not exist in queue ${ref.queue} for project ${req.project}`)
  return { status: 200, body: messageJson(m, queueHref(req)) }
}

export async function deleteMessages(req: ApiRequest): Promise<Reply> {
  const q = req.query
  const limits = req.config.limits
  const ids = q.list('ids')
  const pop = q.has('pop') ? q.int('pop', 0) : undefined
  if (ids !== undefined && pop !== undefined) throw badRequest('pop and id params cannot be present together in the delete request.')
  if (ids === undefined && pop === undefined) {
    throw badRequest('The request should have either "ids" or "pop" parameter in the request, to be able to delete.')
  }
  const ref = queueRef(req)
  const storage = req.storage
  if (pop !== undefined) {
    const popped = await storage.popMessages(ref, claimLimit(pop, limits, 'Pop value'))
    const items = popped.map(
      (m) =>
        `{"id":${JSON.stringify(m.id)},"age":${m.age},"ttl":${m.ttl},"body":${m.body},"claim_id":${JSON.stringify(m.claimId)},"claim_count":${m.claimCount}}`,
    )
    return { status: 200, body: `{"messages":[${items.join(',')}]}` }
  }
  idList(ids!, limits)
  const claimIds = q.list('claim_ids')
  if (limits.message_delete_with_claim_id && claimIds === undefined) {
    throw badRequest('The request should have both "ids" and "claim_ids" parameter in the request when message_delete_with_claim_id is True.')
  }
  await storage.deleteMessages(ref, ids!, limits.message_delete_with_claim_id ? claimIds : undefined)
  return empty(204)
}

export async function deleteMessage(req: ApiRequest): Promise<Reply> {
  const ref = queueRef(req)
  const claimId = req.query.get('claim_id')
  await req.storage.deleteMessage(ref, req.params.messageId!, claimId)
  return empty(204)
}
