/**
 * The notifier (docs/notifications.md, "Delivery"): delivers each message of a queue to each of
 * its subscriptions, off the request path, at least once.
 *
 * Durability without an outbox: the messages themselves are the record. Each subscription keeps a
 * cursor in the catalog — the listing marker after the last message it was given, the pool that
 * marker belongs to, and the creation time of the last message given — and the notifier moves it
 * only after a page's messages were delivered (or dead-lettered). A notifier killed at any point
 * restarts from the last cursor written, so a message is delivered again rather than never. A
 * live migration changes the queue's pool: the cursor then restarts on the new pool from the last
 * message's creation time (again: repeats, never gaps).
 *
 * No polling: a post on this proxy marks its queue (`posted`), and start-up walks every queue that
 * has subscriptions once. Each subscription is served by its own loop, one message at a time, in
 * order: a slow or dead subscriber holds only its own loop (timeouts bound each attempt, and a
 * retry's wait holds no slot). Attempts in flight across all subscribers are capped
 * (`notification.max_concurrent`). Memory: one page per busy subscription.
 */
import { Counter, type Registry } from 'prom-client'
import type { CatalogStore, Subscription } from '../../catalog/contract.js'
import type { Config } from '../../shared/config.js'
import type { Logger } from '../../shared/log.js'
import type { Message, Metadata, MessageListing, ListMessagesOptions, QueueRef } from '../../shared/storage/contract.js'
import { extraHeaders, postWebhook, sendMail, signBody, subscriptionSecret, SIGNATURE_HEADER, type Attempt } from './deliver.js'
import { effectivePolicy, retryDelays } from './schedule.js'
import { createSignedUrl, formatExpires } from '../auth/signed-url.js'
import { AllowList } from './ssrf.js'
import { isTopicRef, tenantOf } from '../topic-space.js'

/** What the notifier reads of the message store. */
export interface NotifierStorage {
  getQueue(ref: QueueRef): Promise<Metadata | null>
  listMessages(ref: QueueRef, opts: ListMessagesOptions): Promise<MessageListing>
}

export interface NotifierDeps {
  catalog: CatalogStore
  storage: NotifierStorage
  config: Config
  log: Logger
  /** Where the delivery counters register (the proxy's /metrics). */
  registry?: Registry | undefined
  /** Waits before a retry (tests record the schedule instead of waiting). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
  /** The clock NONE_TRUST_MS is counted on, ms (tests move it instead of waiting). */
  clock?: () => number
}

/** A subscription's cursor as stored (JSON in the catalog). */
interface Cursor {
  /** Listing marker after the last message handed over; absent: from the queue's start. */
  m?: string
  /** The pool `m` belongs to. */
  p?: string
  /** Messages created before this (ms) are not for this subscription. */
  s: number
}

const PAGE = 20
/**
 * How stale the notifier's knowledge of which queues have no subscriptions may be, ms. A queue
 * found without subscriptions is remembered, so a post to it costs one map lookup, not a catalog
 * read; the memory is trusted while a read of the catalog's subscription counter
 * (`CatalogStore.subscriptionsVersion`), begun at most this long ago, found no subscription
 * created anywhere, and dropped when one was. A subscription made on this proxy clears its queue
 * at once (`subscribed`); one made on another proxy is seen within this long, and the messages
 * posted meanwhile are delivered with the next post's round (the cursor starts at the
 * subscription's creation). Before, each entry lived this long, so with many queues nearly every
 * post paid for a catalog read (docs/benchmarks.md, T7).
 */
const NONE_TRUST_MS = 1000
/** The most queues remembered without subscriptions (the oldest goes first). */
const NONE_MAX = 100_000
/** The Client-ID the notifier lists with (echo on, so it filters nothing). */
const CLIENT_ID = '00000000-0000-4000-8000-00000000b0b0'

const defaultSleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('closed'))
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(timer), reject(new Error('closed'))), { once: true })
  })

const keyOf = (ref: QueueRef): string => `${ref.project}\u0000${ref.queue}`

/** A loop that runs `fn` until nobody asked for another round while it ran. */
class Loop {
  #running = false
  #again = false
  constructor(readonly fn: () => Promise<void>, readonly onIdle: () => void) {}
  kick(): void {
    if (this.#running) {
      this.#again = true
      return
    }
    this.#running = true
    void this.#run()
  }
  async #run(): Promise<void> {
    do {
      this.#again = false
      await this.fn()
    } while (this.#again)
    this.#running = false
    this.onIdle()
  }
}

/** A counting semaphore for attempts in flight. */
class Slots {
  #free: number
  readonly #waiting: (() => void)[] = []
  constructor(n: number) {
    this.#free = n
  }
  async take(): Promise<void> {
    if (this.#free > 0) {
      this.#free--
      return
    }
    await new Promise<void>((r) => this.#waiting.push(r))
  }
  give(): void {
    const next = this.#waiting.shift()
    if (next !== undefined) next()
    else this.#free++
  }
}

export class Notifier {
  readonly #d: NotifierDeps
  readonly #queues = new Map<string, Loop>()
  readonly #subs = new Map<string, Loop>()
  /** Queues found without subscriptions (keyOf), oldest first; see NONE_TRUST_MS. */
  readonly #none = new Set<string>()
  /** The catalog's subscription counter as last read; undefined before the first read. */
  #subsVersion: number | undefined
  /** When the last read of it that kept #none began (ms); #none is trusted until NONE_TRUST_MS after. */
  #verifiedAt = 0
  /** Bumped whenever #none is dropped: a listing begun before may not add to it after. */
  #noneGen = 0
  #verifying = false
  readonly #slots: Slots
  readonly #closing = new AbortController()
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>
  readonly #clock: () => number
  readonly #allow: AllowList
  readonly #counter: Counter<'result'>
  /** Totals since start (tests and the log read them). */
  readonly totals = { delivered: 0, failedAttempts: 0, deadLettered: 0 }

  constructor(deps: NotifierDeps) {
    this.#d = deps
    this.#slots = new Slots(deps.config.notification.max_concurrent)
    this.#sleep = deps.sleep ?? defaultSleep
    this.#clock = deps.clock ?? Date.now
    this.#allow = new AllowList(deps.config.notification.allow_hosts)
    this.#counter = new Counter({
      name: 'missive_notify_deliveries_total',
      help: 'Notification delivery outcomes: delivered, failed_attempt (retried), dead_lettered (given up after the retry policy).',
      labelNames: ['result'],
      registers: deps.registry === undefined ? [] : [deps.registry],
    })
  }

  /** Messages were posted to `ref` on this proxy: deliver them (returns at once; one map lookup). */
  posted(ref: QueueRef): void {
    if (this.#closing.signal.aborted) return
    const key = keyOf(ref)
    if (this.#none.has(key)) {
      if (this.#clock() - this.#verifiedAt <= NONE_TRUST_MS) return
      // Not verified lately: check the counter for the posts to come, and list for this one.
      this.#verify()
    }
    let loop = this.#queues.get(key)
    if (loop === undefined) {
      const r = { project: ref.project, queue: ref.queue }
      loop = new Loop(
        () => this.#queue(r),
        () => this.#queues.delete(key),
      )
      this.#queues.set(key, loop)
    }
    loop.kick()
  }

  /** Reads the catalog's subscription counter (one read at a time), dropping #none when it moved. */
  #verify(): void {
    if (this.#verifying) return
    this.#verifying = true
    const began = this.#clock()
    this.#d.catalog.subscriptionsVersion().then(
      (v) => {
        this.#verifying = false
        if (v !== this.#subsVersion) {
          this.#subsVersion = v
          this.#none.clear()
          this.#noneGen++
        }
        this.#verifiedAt = began
      },
      (err: unknown) => {
        // #none stays untrusted, so posts list their queue's subscriptions as if it were empty.
        this.#verifying = false
        this.#d.log.warn({ err }, 'notifier: cannot read the subscription counter (posts list subscriptions meanwhile)')
      },
    )
  }

  /** A subscription was made (or changed) on this proxy: the queue is worth asking about again. */
  subscribed(ref: QueueRef): void {
    this.#none.delete(keyOf(ref))
    // A listing of the queue in flight may have missed the subscription: it records nothing.
    this.#noneGen++
  }

  /** Walks every queue with subscriptions once: what a restart (or a crash) left undelivered goes out. */
  async start(): Promise<void> {
    let after: QueueRef | undefined
    for (;;) {
      const page = await this.#d.catalog.listSubscribedQueues({ limit: 100, after })
      for (const ref of page) this.posted(ref)
      if (page.length < 100) return
      after = page[page.length - 1]
    }
  }

  /** Stops: loops end at their next step, waits are cut short. Undelivered messages stay for the next start. */
  close(): void {
    this.#closing.abort()
  }

  /** Kicks the loop of each subscription of the queue that should be notified. */
  async #queue(ref: QueueRef): Promise<void> {
    const now = Date.now()
    const gen = this.#noneGen
    if (this.#subsVersion === undefined) this.#verify()
    let after: string | undefined
    try {
      for (;;) {
        const subs = await this.#d.catalog.listSubscriptions(ref, { limit: 100, after, now })
        if (after === undefined && subs.length === 0) {
          // A counter read that dropped #none since this listing began may have seen a
          // subscription this listing did not: then it is not remembered.
          if (gen !== this.#noneGen) return
          const key = keyOf(ref)
          this.#none.delete(key)
          this.#none.add(key)
          if (this.#none.size > NONE_MAX) this.#none.delete(this.#none.values().next().value!)
          return
        }
        for (const s of subs) if (this.#eligible(s)) this.#kickSubscription(ref, s.id)
        if (subs.length < 100) return
        after = subs[subs.length - 1]!.id
      }
    } catch (err) {
      this.#d.log.warn({ err, ...logRef(ref) }, 'notifier: cannot list subscriptions (retried on the next post or start)')
    }
  }

  #eligible(s: Subscription): boolean {
    if (this.#d.config.notification.require_confirmation && !s.confirmed) return false
    return /^(https?|mailto):/i.test(s.subscriber)
  }

  #kickSubscription(ref: QueueRef, id: string): void {
    let loop = this.#subs.get(id)
    if (loop === undefined) {
      loop = new Loop(
        () => this.#drain(ref, id),
        () => this.#subs.delete(id),
      )
      this.#subs.set(id, loop)
    }
    loop.kick()
  }

  /** Delivers what lies after the subscription's cursor, page by page, moving the cursor after each page. */
  async #drain(ref: QueueRef, id: string): Promise<void> {
    const { catalog, storage, log } = this.#d
    try {
      let policyOf: Metadata | null | undefined
      while (!this.#closing.signal.aborted) {
        const sub = await catalog.getSubscription(ref, id, Date.now())
        if (sub === null || !this.#eligible(sub)) return
        const pool = (await catalog.getPlacement(ref)) ?? ''
        const cur = parseCursor(sub)
        if (cur.p !== undefined && cur.p !== pool) {
          // The queue moved to another pool: its markers mean nothing there. Restart from the
          // creation time of the last message handed over (repeats, never gaps).
          delete cur.m
        }
        const page = await storage.listMessages(ref, {
          ...(cur.m !== undefined && { marker: cur.m }),
          limit: PAGE,
          clientId: CLIENT_ID,
          echo: true,
          includeClaimed: true,
          includeDelayed: true,
        })
        if (page.items.length > 0) policyOf ??= await storage.getQueue(ref)
        for (const m of page.items) {
          if (m.created < cur.s) continue
          if (this.#closing.signal.aborted) return
          await this.#deliver(sub, m, effectivePolicy(sub.options._retry_policy, policyOf?._retry_policy))
          cur.s = Math.max(cur.s, m.created)
        }
        if (page.next === undefined) {
          if (cur.p !== pool) await catalog.setSubscriptionCursor(ref, id, JSON.stringify({ ...cur, p: pool }))
          return
        }
        cur.m = page.next
        cur.p = pool
        await catalog.setSubscriptionCursor(ref, id, JSON.stringify(cur))
      }
    } catch (err) {
      if (this.#closing.signal.aborted) return
      log.warn({ err, ...logRef(ref), subscription: id }, 'notifier: delivery loop stopped (resumes on the next post or start)')
    }
  }

  /**
   * Zaqar's confirmation request (zaqar/notification/notifier.py, `send_confirm_notification`),
   * sent when `require_confirmation` is on and a subscription is created (or created again while
   * unconfirmed), or unconfirmed: a pre-signed URL (proxy/auth/signed-url.ts) for
   * `PUT …/subscriptions/<id>/confirm`, valid for the subscription's TTL. Fire and forget, with
   * the subscription's retry policy, as in Zaqar; without `signed_url.secret_key` nothing is sent.
   */
  sendConfirmation(sub: Subscription, unsubscribed: boolean, version: string): void {
    const key = this.#d.config.signed_url.secret_key
    if (!this.#d.config.notification.require_confirmation || this.#closing.signal.aborted) return
    if (key === undefined) {
      this.#d.log.error({ subscription: sub.id }, "notifier: can't send the confirmation request: signed_url.secret_key is not set")
      return
    }
    // A topic's subscription is confirmed on the topic's route, for the tenant's project (proxy/topic-space.ts).
    const topic = isTopicRef(sub)
    const kind = topic ? 'topic' : 'queue'
    const path = `/${version}/${kind}s/${sub.queue}/subscriptions/${sub.id}/confirm`
    const url = createSignedUrl(key, [path], tenantOf(sub), { methods: ['PUT'], expires: formatExpires(Date.now() + sub.ttl * 1000) }, Date.now())
    const body = JSON.stringify({
      Message_Type: unsubscribed ? 'UnsubscribeConfirmation' : 'SubscriptionConfirmation',
      Message: unsubscribed
        ? `You have unsubscribed successfully to the ${kind}: ${sub.queue}, you can resubscribe it by using confirmed=True.`
        : `You have chosen to subscribe to the ${kind}: ${sub.queue}`,
      'URL-Signature': url.signature,
      'URL-Methods': url.methods[0],
      'URL-Paths': url.paths[0],
      'X-Project-ID': url.project,
      'URL-Expires': url.expires,
      SubscribeBody: { confirmed: true },
      UnsubscribeBody: { confirmed: false },
    })
    void this.#deliverBody(sub, body, effectivePolicy(sub.options._retry_policy, undefined), 'confirmation')
  }

  /** One message to one subscriber: attempts per the retry policy, then the dead letter. */
  #deliver(sub: Subscription, m: Message, policy: Record<string, unknown>): Promise<void> {
    return this.#deliverBody(sub, notificationBody(sub, m), policy, m.id)
  }

  async #deliverBody(sub: Subscription, body: string, policy: Record<string, unknown>, what: string): Promise<void> {
    const delays = retryDelays(policy)
    let last: Attempt = { ok: false, error: 'not attempted' }
    for (let i = 0; i <= delays.length; i++) {
      if (i > 0) {
        this.totals.failedAttempts++
        this.#counter.inc({ result: 'failed_attempt' })
        try {
          await this.#sleep(delays[i - 1]! * 1000, this.#closing.signal)
        } catch {
          return // closing: the cursor was not moved, the next start delivers it
        }
      }
      await this.#slots.take()
      try {
        last = await this.#attempt(sub, body)
      } finally {
        this.#slots.give()
      }
      if (last.ok) {
        this.totals.delivered++
        this.#counter.inc({ result: 'delivered' })
        return
      }
      if (last.permanent === true) break
    }
    this.totals.deadLettered++
    this.#counter.inc({ result: 'dead_lettered' })
    // The dead letter: a warning log line carrying everything needed to replay it by hand.
    this.#d.log.warn(
      { deadLetter: true, ...logRef(sub), subscription: sub.id, subscriber: sub.subscriber, message: what, error: last.error },
      'notifier: delivery dead-lettered after its retry policy',
    )
  }

  #attempt(sub: Subscription, body: string): Promise<Attempt> {
    const n = this.#d.config.notification
    if (/^mailto:/i.test(sub.subscriber)) return sendMail(n.smtp_command, sub.subscriber, sub.options, body, n.timeout_ms)
    const headers: Record<string, string> = { 'Content-Type': 'application/json', ...extraHeaders(sub.options) }
    const key = n.signing_key ?? this.#d.config.signed_url.secret_key
    if (key !== undefined) headers[SIGNATURE_HEADER] = signBody(subscriptionSecret(key, sub.id), body)
    return postWebhook(sub.subscriber, body, headers, n.timeout_ms, this.#allow)
  }
}

/** A queue's or topic's names for a log line: the tenant's project, and `queue` or `topic`. */
const logRef = (ref: QueueRef): { project: string; queue?: string; topic?: string } =>
  isTopicRef(ref) ? { project: tenantOf(ref), topic: ref.queue } : { project: ref.project, queue: ref.queue }

function parseCursor(sub: Subscription): Cursor {
  if (sub.cursor !== null) {
    try {
      const c = JSON.parse(sub.cursor) as Cursor
      if (typeof c.s === 'number') return c
    } catch {
      // a cursor this code did not write: start over from the subscription's creation
    }
  }
  return { s: sub.created }
}

/**
 * The webhook body, as Zaqar's notifier and webhook task build it (zaqar/notification/notifier.py,
 * zaqar/notification/tasks/webhook.py): the message's `body` and `ttl`, plus `Message_Type` and
 * `queue_name` — and the message `id` (Missive's: delivery is at least once, receivers dedupe on
 * it). `options.post_data` is a template whose `"$zaqar_message$"` is replaced by that JSON.
 */
export function notificationBody(sub: Subscription, m: Message): string {
  // A topic's message also names the topic (Missive's: a receiver subscribed to a queue and a topic
  // of the same name can tell them apart); `queue_name` holds its name too, as Zaqar sends it.
  const topic = isTopicRef(sub) ? `,"topic_name":${JSON.stringify(sub.queue)}` : ''
  const json = `{"body":${m.body},"ttl":${m.ttl},"id":${JSON.stringify(m.id)},"Message_Type":"Notification","queue_name":${JSON.stringify(sub.queue)}${topic}}`
  const template = sub.options.post_data
  return typeof template === 'string' ? template.replaceAll('"$zaqar_message$"', json) : json
}
