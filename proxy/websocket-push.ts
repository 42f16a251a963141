/**
 * Push (docs/websocket.md, "Push"): a WebSocket connection that made `subscription_create`
 * without a `subscriber` receives each message posted to that queue, as Zaqar's WebSocket
 * notifications do (zaqar/notification/notifier.py, zaqar/transport/websocket/factory.py): one
 * frame per message, `{"body", "ttl", "queue_name", "Message_Type": "Notification", "id"}`, in
 * the encoding of the socket's last subscription request.
 *
 * Messages are pushed by the proxy that serves the post (proxy/api/messages.ts), right after the
 * store stored them. Back-pressure: a socket whose unsent data passes `wsMaxBackpressure` is
 * closed (proxy/websocket.ts `sendFrame`), so a slow reader never makes the proxy buffer without
 * bound; its messages stay in the queue for claims.
 */
import { randomUUID } from 'node:crypto'
import { MissiveError } from '../shared/errors.js'
import type { DataDriver, NewMessage, QueueRef } from '../shared/storage/contract.js'
import { jsonToMsgpack } from './msgpack.js'
import { routingKey } from './placement-cache.js'

/** What the hub needs of a socket (proxy/websocket.ts fills it in). */
export interface PushSocket {
  /** Names the socket in `subscriber` URLs. */
  readonly id: string
  closed: boolean
  /** Pushes are sent as MessagePack (binary frames). */
  binary: boolean
  /**
   * Sends one frame; false when the socket is gone or was closed for being too slow. Not `send`:
   * uWS keeps user data on the socket object itself, whose `send` it would shadow.
   */
  push: (frame: string | Uint8Array, binary: boolean) => boolean
}

/** How long a push subscription's queue is marked for (`DataDriver.listen`), ms. */
export const PUSH_MARK_MS = 60_000
/** How often the marks of every queue with push subscriptions here are renewed, ms. */
export const PUSH_MARK_EVERY_MS = 20_000

interface Subscription {
  readonly id: string
  readonly socket: PushSocket
  readonly ref: QueueRef
  readonly ttl: number
  readonly options: Record<string, unknown>
  readonly created: number
  /** created + ttl (ms): from then on the subscription is gone (Zaqar's subscription TTL). */
  readonly expires: number
}

/**
 * Posts seen lately, by their first message id: whichever of the two ways a post reaches this
 * proxy comes first (its own post path, `posted`, or the Redis pool's announcement, `remote`)
 * pushes it, and the other does not push it again.
 */
const RECENT = 4096
/** Posts from other proxies waiting for their messages to be read; beyond, they are not pushed. */
const MAX_REMOTE_PENDING = 256

export class SocketSubscriptions {
  /**
   * `pending`: an announcement is reading the post's messages; `pushed`: the post is pushed (or
   * is being pushed) and must not be pushed again. The announcement can arrive before the post's
   * own answer from the worker (a pub/sub message beats the RPC reply), so both ways check.
   */
  readonly #recent = new Map<string, 'pending' | 'pushed'>()
  readonly #recentOrder: string[] = []
  #remoteChain: Promise<void> = Promise.resolve()
  #remotePending = 0
  /**
   * Reads the messages of posts made elsewhere (`remote`), and marks the queues subscribed to
   * (`listen`), so that a Redis pool announces their posts; absent: those are not pushed.
   */
  storage: Pick<DataDriver, 'getMessages' | 'listen'> | undefined
  #marking: NodeJS.Timeout | undefined
  /** The first mark of each queue subscribed to here, until it took hold (`listening`). */
  readonly #firstMarks = new Map<string, Promise<void>>()

  /** By queue (routing key), then subscription id. */
  readonly #byQueue = new Map<string, Map<string, Subscription>>()
  /** Each socket's subscriptions, to drop them all when it closes. */
  readonly #bySocket = new Map<PushSocket, Set<{ key: string; id: string }>>()

  constructor(readonly maxBackpressure: number) {}

  /** Subscriptions held now. */
  get size(): number {
    let n = 0
    for (const m of this.#byQueue.values()) n += m.size
    return n
  }

  /** Subscribes `socket` to `ref`; null when it already is (Zaqar's 409). Throws 429 beyond `max` per socket. */
  subscribe(ref: QueueRef, socket: PushSocket, opts: { ttl: number; options: Record<string, unknown> }, max: number, binary = socket.binary): string | null {
    const key = routingKey(ref.project, ref.queue)
    const now = Date.now()
    this.#expire(key, now)
    let subs = this.#byQueue.get(key)
    if (subs !== undefined) for (const s of subs.values()) if (s.socket === socket) return null
    const mine = this.#bySocket.get(socket) ?? new Set()
    if (mine.size >= max) throw tooMany(max)
    const sub: Subscription = { id: randomUUID(), socket, ref, ttl: opts.ttl, options: opts.options, created: now, expires: now + opts.ttl * 1000 }
    if (subs === undefined) {
      this.#byQueue.set(key, (subs = new Map()))
      // Posts made through other proxies are announced from the moment this mark takes hold (a
      // round trip to the store); those made before are not pushed, and stay in the queue.
      this.#mark(ref)
    }
    subs.set(sub.id, sub)
    mine.add({ key, id: sub.id })
    this.#bySocket.set(socket, mine)
    socket.binary = binary
    return sub.id
  }

  /**
   * Resolves once the store announces the posts made to `ref` through other proxies (its first
   * mark took hold, or failed: then the renewals retry): subscription_create answers after it.
   */
  listening(ref: QueueRef): Promise<void> {
    return this.#firstMarks.get(routingKey(ref.project, ref.queue)) ?? Promise.resolve()
  }

  /** Marks `ref` in its store (`DataDriver.listen`), and renews every mark while subscriptions last. */
  #mark(ref: QueueRef): void {
    if (this.storage === undefined) return
    const key = routingKey(ref.project, ref.queue)
    const first = this.#listen(ref)
    this.#firstMarks.set(key, first)
    void first.then(() => {
      if (this.#firstMarks.get(key) === first) this.#firstMarks.delete(key)
    })
    this.#marking ??= setInterval(() => {
      if (this.#byQueue.size === 0) {
        clearInterval(this.#marking)
        this.#marking = undefined
        return
      }
      // Each queue once: the first of its subscriptions names it.
      for (const subs of this.#byQueue.values()) {
        const first = subs.values().next().value
        if (first !== undefined) void this.#listen(first.ref)
      }
    }, PUSH_MARK_EVERY_MS).unref()
  }

  /** One mark of `ref` for PUSH_MARK_MS; a failed one costs pushes from other proxies until the next, never messages. */
  #listen(ref: QueueRef): Promise<void> {
    return this.storage === undefined ? Promise.resolve() : this.storage.listen(ref, PUSH_MARK_MS).catch(() => undefined)
  }

  /**
   * The queue's placement was removed (deleted, or moved by a migration; `PoolSet.onRemoval`):
   * its mark named a pool that may no longer hold it. Subscribed here, it is marked again at once
   * where it lives now, not at the next renewal.
   */
  placementRemoved(ref: QueueRef): void {
    if (this.#byQueue.has(routingKey(ref.project, ref.queue))) void this.#listen(ref)
  }

  unsubscribe(ref: QueueRef, socket: PushSocket, id: string): void {
    const key = routingKey(ref.project, ref.queue)
    const sub = this.#byQueue.get(key)?.get(id)
    if (sub === undefined || sub.socket !== socket) return
    this.#drop(key, sub)
  }

  /** Removes one subscription from its queue and from its socket's list. */
  #drop(key: string, sub: Subscription): void {
    this.#remove(key, sub.id)
    const mine = this.#bySocket.get(sub.socket)
    if (mine !== undefined) for (const e of mine) if (e.id === sub.id) mine.delete(e)
  }

  /** Everything of a closed socket. */
  dropSocket(socket: PushSocket): void {
    const mine = this.#bySocket.get(socket)
    if (mine === undefined) return
    this.#bySocket.delete(socket)
    for (const { key, id } of mine) this.#remove(key, id)
  }

  list(ref: QueueRef, socket: PushSocket, path: string): unknown[] {
    const key = routingKey(ref.project, ref.queue)
    this.#expire(key, Date.now())
    const subs = this.#byQueue.get(key)
    return subs === undefined ? [] : [...subs.values()].filter((s) => s.socket === socket).map((s) => view(s, path))
  }

  get(ref: QueueRef, socket: PushSocket, id: string, path: string): unknown {
    const key = routingKey(ref.project, ref.queue)
    this.#expire(key, Date.now())
    const s = this.#byQueue.get(key)?.get(id)
    return s === undefined || s.socket !== socket ? undefined : view(s, path)
  }

  /**
   * Drops the subscriptions of queue `key` whose TTL has run out. Lazily, where subscriptions are
   * read (subscribe, list, get, push): no timer per subscription, and a socket's limit counts
   * only live ones.
   */
  #expire(key: string, now: number): void {
    const subs = this.#byQueue.get(key)
    if (subs === undefined) return
    for (const s of subs.values()) if (s.expires <= now) this.#drop(key, s)
  }

  /**
   * Messages were stored on `ref` (ids in post order): push each to every socket subscribed at
   * the end of this turn. One comparison when no socket subscribes anywhere (the post hot path).
   */
  posted(ref: QueueRef, ids: readonly string[], messages: readonly NewMessage[]): void {
    if (this.#byQueue.size === 0) return
    const subs = this.#byQueue.get(routingKey(ref.project, ref.queue))
    if (subs === undefined) return
    // Pushed already by the pool's announcement, which came first: not again.
    if (this.#recent.get(ids[0]!) === 'pushed') return
    this.#remember(ids[0]!, 'pushed')
    // After this turn: a socket that posted gets the answer to its post first, then the push
    // (python-zaqarclient reads the frame after its request as the answer).
    setImmediate(() => this.#push(subs, ref, ids, messages))
  }

  #push(subs: Map<string, Subscription>, ref: QueueRef, ids: readonly string[], messages: readonly NewMessage[]): void {
    this.#expire(routingKey(ref.project, ref.queue), Date.now())
    const queue = JSON.stringify(ref.queue)
    for (let i = 0; i < ids.length; i++) {
      const m = messages[i]!
      // The body is spliced in as stored: exact numbers stay exact.
      const text = `{"body":${m.body},${m.ttl === undefined ? '' : `"ttl":${m.ttl},`}"queue_name":${queue},"Message_Type":"Notification","id":${JSON.stringify(ids[i])}}`
      let packed: Uint8Array | undefined
      for (const s of subs.values()) {
        if (s.socket.closed) continue
        if (s.socket.binary) s.socket.push((packed ??= jsonToMsgpack(text)), true)
        else s.socket.push(text, false)
      }
    }
  }

  /**
   * A post made through another proxy, announced by its Redis pool (proxy/long-poll-redis.ts):
   * its messages are read back and pushed like local ones, in announcement order. The echo of a
   * post this proxy served (already pushed) is skipped. Bounded: beyond MAX_REMOTE_PENDING posts
   * waiting to be read, announcements are not pushed (the messages stay in the queue).
   */
  remote(ref: QueueRef, ids: readonly string[]): void {
    if (this.#byQueue.size === 0 || ids.length === 0 || this.storage === undefined) return
    const subs = this.#byQueue.get(routingKey(ref.project, ref.queue))
    const first = ids[0]!
    if (subs === undefined || this.#recent.has(first) || this.#remotePending >= MAX_REMOTE_PENDING) return
    this.#remember(first, 'pending')
    const storage = this.storage
    this.#remotePending++
    this.#remoteChain = this.#remoteChain
      .then(() => storage.getMessages(ref, [...ids]))
      .then((found) => {
        // This proxy's own post path pushed it while the messages were read.
        if (this.#recent.get(first) === 'pushed') return
        this.#remember(first, 'pushed')
        const byId = new Map(found.map((m) => [m.id, m]))
        const present = ids.filter((id) => byId.has(id))
        this.#push(
          subs,
          ref,
          present,
          present.map((id) => ({ body: byId.get(id)!.body, ttl: byId.get(id)!.ttl })),
        )
      })
      .catch(() => undefined)
      .finally(() => this.#remotePending--)
  }

  #remember(id: string, state: 'pending' | 'pushed'): void {
    if (!this.#recent.has(id)) this.#recentOrder.push(id)
    this.#recent.set(id, state)
    if (this.#recentOrder.length > RECENT) this.#recent.delete(this.#recentOrder.shift()!)
  }

  #remove(key: string, id: string): void {
    const subs = this.#byQueue.get(key)
    if (subs === undefined) return
    subs.delete(id)
    if (subs.size === 0) this.#byQueue.delete(key)
  }
}

const tooMany = (max: number): MissiveError =>
  new MissiveError('too_many_requests', `No more than ${max} subscriptions per WebSocket connection.`)

/** A subscription as Zaqar lists it (the `_basic_subscription` of zaqar/storage/mongodb/subscriptions.py). */
function view(s: Subscription, path: string): unknown {
  return {
    id: s.id,
    source: s.ref.queue,
    subscriber: `ws:${path}/${s.socket.id}`,
    ttl: s.ttl,
    age: Math.floor((Date.now() - s.created) / 1000),
    options: s.options,
  }
}
