/**
 * Subscriptions, v2 (zaqar/transport/wsgi/v2_0/subscriptions.py; docs/notifications.md): create,
 * list, get, patch, delete and confirm. Stored in the catalog (catalog/subscription-record.ts),
 * validated as zaqar/transport/validation.py does, with its messages.
 */
import type { Limits } from '../../shared/config.js'
import { badRequest, MissiveError, notFound } from '../../shared/errors.js'
import type { Subscription, SubscriptionPatch } from '../../catalog/contract.js'
import { isObject, toJson } from '../json.js'
import { subscriptionSecret } from '../notify/deliver.js'
import { validateRetryPolicy } from '../notify/retry-policy.js'
import { AllowList, refusedAtCreation } from '../notify/ssrf.js'
import { empty, json, type Reply } from '../transport.js'
import { pageLimit } from '../validate.js'
import { optionalBody } from './body.js'
import { pyList, queueRef, type ApiRequest } from './context.js'

/** Zaqar's `MIN_SUBSCRIPTION_TTL`. */
export const MIN_SUBSCRIPTION_TTL = 60
/** The last moment Python's datetime can hold: Zaqar refuses a TTL reaching past it. */
const DATETIME_MAX = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

const DUPLICATE = 'Such subscription already exists.Subscriptions are unique by project + queue + subscriber URI.'
const PATCH_DUPLICATE = 'Such subscription already exists. Subscriptions are unique by project + queue + subscriber URI.'

const missing = (id: string): MissiveError => notFound(`Subscription ${id} does not exist`)

/** A subscription as Zaqar shows it (`to_basic` of zaqar/storage/redis/models.py). */
export function subscriptionView(s: Subscription, now: number): Record<string, unknown> {
  return {
    id: s.id,
    source: s.queue,
    subscriber: s.subscriber,
    ttl: s.ttl,
    age: Math.max(0, Math.floor((now - (s.expires - s.ttl * 1000)) / 1000)),
    options: s.options,
    confirmed: s.confirmed,
  }
}

/** The URI scheme of a subscriber (`urlparse(…).scheme`), or '' when it has none. */
export function schemeOf(subscriber: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(subscriber)
  return m === null ? '' : m[1]!.toLowerCase()
}

/**
 * Zaqar's `subscription_patching` (creation adds the `subscriber` check first): the fields that
 * were given, validated. Differences, each a 400 where Zaqar would store something unusable or
 * answer 503: an empty or non-string subscriber, a `ttl` of 0.
 */
function validateFields(doc: Record<string, unknown>, limits: Limits, now: number, allowHosts: readonly string[]): SubscriptionPatch {
  const out: SubscriptionPatch = {}
  const subscriber = doc.subscriber
  if (subscriber !== undefined && subscriber !== null) {
    if (typeof subscriber !== 'string' || !limits.subscriber_types.includes(schemeOf(subscriber) as 'http') || !wellFormed(subscriber)) {
      throw badRequest(`The subscriber type of subscription must be supported in the list ${pyList(limits.subscriber_types)}.`)
    }
    if (refusedAtCreation(subscriber, allowList(allowHosts))) {
      throw badRequest('The subscriber\'s address is not allowed: loopback, private and link-local addresses are refused (notification.allow_hosts).')
    }
    out.subscriber = subscriber
  }
  const options = doc.options
  if (options !== undefined && options !== null) {
    const empty = options === false || options === 0 || options === ''
    if (!empty && !isObject(options)) throw badRequest('Options must be a dict.')
    out.options = isObject(options) ? (JSON.parse(toJson(options)) as Record<string, unknown>) : {}
    validateRetryPolicy(out.options)
  }
  const ttl = doc.ttl
  if (ttl !== undefined && ttl !== null) {
    let n: number
    if (typeof ttl === 'boolean') n = ttl ? 1 : 0
    else if (typeof ttl === 'number' && Number.isInteger(ttl)) n = ttl
    else if (typeof ttl === 'bigint') n = ttl > 0n ? Infinity : -Infinity
    else throw badRequest('TTL must be an integer.')
    if (n < MIN_SUBSCRIPTION_TTL) throw badRequest(`The TTL for a subscription must be at least ${MIN_SUBSCRIPTION_TTL} seconds long.`)
    if (now + n * 1000 > DATETIME_MAX) {
      throw badRequest('The TTL seconds for a subscription plus current time must be less than 9999-12-31 23:59:59.999999.')
    }
    out.ttl = n
  }
  return out
}

/** The allow-list of a config, built once per config (the array is the key). */
const allowLists = new WeakMap<readonly string[], AllowList>()
function allowList(hosts: readonly string[]): AllowList {
  let a = allowLists.get(hosts)
  if (a === undefined) allowLists.set(hosts, (a = new AllowList(hosts)))
  return a
}

/** An http(s) subscriber must be a URL with a host; a mailto one must name an address. */
function wellFormed(subscriber: string): boolean {
  if (subscriber.length > 2048) return false
  if (schemeOf(subscriber) === 'mailto') return /^mailto:[^@\s]+@[^@\s]+$/i.test(subscriber.split('?')[0]!)
  try {
    return new URL(subscriber).hostname !== ''
  } catch {
    return false
  }
}

function documentOf(req: ApiRequest): Record<string, unknown> {
  const doc = optionalBody(req)
  if (doc === null) return {}
  if (!isObject(doc)) throw badRequest('Subscriptions must be a dict.')
  return doc
}

export async function createSubscription(req: ApiRequest): Promise<Reply> {
  const doc = documentOf(req)
  if (!Object.hasOwn(doc, 'subscriber')) throw badRequest('Missing parameter subscriber in body.')
  const now = Date.now()
  const limits = req.config.limits
  const fields = validateFields(doc, limits, now, req.config.notification.allow_hosts)
  if (fields.subscriber === undefined) {
    throw badRequest(`The subscriber type of subscription must be supported in the list ${pyList(limits.subscriber_types)}.`)
  }
  const ref = queueRef(req)
  // Zaqar creates the queue a subscription names when it does not exist yet.
  await req.storage.createQueue(ref, {})
  const made = await req.control.catalog.createSubscription(
    { ...ref, subscriber: fields.subscriber, ttl: fields.ttl ?? limits.default_subscription_ttl, options: fields.options ?? {} },
    now,
  )
  req.notifier?.subscribed(ref)
  const location: [string, string][] = [['location', req.path]]
  // A confirmed duplicate is a conflict; an unconfirmed one answers its id again (Zaqar re-sends
  // the confirmation request then).
  if (!made.created && made.confirmed) return json(409, new MissiveError('conflict', DUPLICATE).toBody(), location)
  await sendConfirmation(req, made.id, false)
  // The secret its webhook requests are signed with (docs/notifications.md, "Signatures"), when signing is on.
  const key = req.config.notification.signing_key ?? req.config.signed_url.secret_key
  return json(201, key === undefined ? { subscription_id: made.id } : { subscription_id: made.id, signing_secret: subscriptionSecret(key, made.id) }, location)
}

export async function listSubscriptions(req: ApiRequest): Promise<Reply> {
  const q = req.query
  const limitGiven = q.has('limit')
  const limit = pageLimit(q.int('limit', 10), req.config.limits.max_subscriptions_per_page)
  const marker = q.get('marker')
  const now = Date.now()
  const subs = await req.control.catalog.listSubscriptions(queueRef(req), { limit, after: marker, now })
  const links: { rel: string; href: string }[] = []
  if (subs.length > 0) {
    // falcon's to_query_str over Zaqar's kwargs: marker (when sent), limit (when sent), then the new marker.
    const next = subs[subs.length - 1]!.id
    const params: [string, string][] = []
    if (marker !== undefined) params.push(['marker', next])
    if (limitGiven) params.push(['limit', String(limit)])
    if (marker === undefined) params.push(['marker', next])
    links.push({ rel: 'next', href: `${req.path}?${params.map(([k, v]) => `${k}=${v}`).join('&')}` })
  }
  return json(200, { subscriptions: subs.map((s) => subscriptionView(s, now)), links })
}

export async function getSubscription(req: ApiRequest): Promise<Reply> {
  const id = req.params.subscription!
  const now = Date.now()
  const s = await req.control.catalog.getSubscription(queueRef(req), id, now)
  if (s === null) throw missing(id)
  return json(200, subscriptionView(s, now))
}

export async function patchSubscription(req: ApiRequest): Promise<Reply> {
  const id = req.params.subscription!
  const doc = documentOf(req)
  if (Object.keys(doc).length === 0) throw badRequest('No subscription to create.')
  const now = Date.now()
  const patch = validateFields(doc, req.config.limits, now, req.config.notification.allow_hosts)
  if (patch.subscriber === undefined && patch.ttl === undefined && patch.options === undefined) {
    // Zaqar's update asserts it was given a field, and answers this when it was not.
    throw new MissiveError('bad_request', `Subscription ${id} could not be updated.`, { title: 'Unable to update subscription' })
  }
  const r = await req.control.catalog.updateSubscription(queueRef(req), id, patch, now)
  if (r === 'not_found') throw missing(id)
  if (r === 'duplicate') throw new MissiveError('conflict', PATCH_DUPLICATE)
  return empty(204, [['location', req.path]])
}

export async function deleteSubscription(req: ApiRequest): Promise<Reply> {
  await req.control.catalog.deleteSubscription(queueRef(req), req.params.subscription!)
  return empty(204)
}

export async function confirmSubscription(req: ApiRequest): Promise<Reply> {
  const id = req.params.subscription!
  const doc = documentOf(req)
  if (typeof doc.confirmed !== 'boolean') throw badRequest("The 'confirmed' should be boolean.")
  const ok = await req.control.catalog.confirmSubscription(queueRef(req), id, doc.confirmed, Date.now())
  if (!ok) throw missing(id)
  if (!doc.confirmed) await sendConfirmation(req, id, true)
  return empty(204, [['location', req.path]])
}

/** With `require_confirmation`: Zaqar's confirmation (or unsubscribe) request to the subscriber (proxy/notify/notifier.ts). */
async function sendConfirmation(req: ApiRequest, id: string, unsubscribed: boolean): Promise<void> {
  if (!req.config.notification.require_confirmation || req.notifier === undefined) return
  const sub = await req.control.catalog.getSubscription(queueRef(req), id, Date.now())
  if (sub !== null) req.notifier.sendConfirmation(sub, unsubscribed, req.profile.prefix.slice(1))
}
