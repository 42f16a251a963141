/**
 * The storage contract (`DataDriver`): what every message store implements — SQLite (embedded
 * default), Redis, MongoDB — and what the proxy's RPC client implements remotely. The TSDoc here
 * is the spec; `tests/contract/` checks it against every implementation.
 *
 * Conventions, for every method:
 * - Every call is scoped by `QueueRef.project`. An id (message or claim) from another project or
 *   another queue is *not found*: it is never read, changed or deleted.
 * - Times are milliseconds since the epoch from the driver's injected clock; durations on the
 *   contract (`ttl`, `grace`, `delay`, `age`) are whole seconds, as on the wire.
 * - A message body travels as its JSON text (`body`): the proxy parses and validates it once,
 *   the store keeps the text, readers splice it into responses. Bodies are never re-parsed.
 * - Expired messages and expired claims are never returned, whatever garbage collection has or
 *   has not yet removed: expiry is exact at read time.
 * - Queues are lazy: writing a message creates its queue; reading a missing queue is empty.
 * - Errors are the typed storage errors of shared/storage/errors.ts (`QueueNotFound`,
 *   `ClaimNotFound`, `MessageClaimed`, `ClaimNotHeld`, `ClaimGone`, `PostTooLarge`, `QueueFull`), facts
 *   without wording; a store that cannot serve throws `StoreUnavailable` (→ 503 with
 *   Retry-After). The transport words them (proxy/storage-errors.ts). Anything else is a bug.
 * - A queue a migration has fenced (`moved` on its old pool, `importing` on its new one:
 *   shared/storage/migration.ts) refuses every operation below with `QueueMoved`, having done
 *   nothing; `listQueues` is project-wide and not fenced. The migration operations throw
 *   `FenceConflict` when the fence is not the one they name.
 * - What a queue's reserved metadata means (default TTL and delay, post-size limit,
 *   dead-lettering) is decided in one place, shared/storage/queue-policy.ts.
 */

import type { MigrationOperations } from './migration.js'

/** The identity of a queue: every storage call names one explicitly. */
export interface QueueRef {
  project: string
  queue: string
}

/** Queue metadata: a JSON object. Keys starting with `_` are reserved (zaqar/transport/wsgi/v2_0/queues.py). */
export type Metadata = Record<string, unknown>

/**
 * A listing page. `next` is the opaque marker that continues after the last item examined.
 * Zaqar gives every non-empty page a next link (docs/api.md); a message listing also gives one to
 * an empty page cut short by its scan budget (`LIST_SCAN_BUDGET`) before the queue ended, so
 * `next` is absent only on an empty page at the end. Clients follow next links until a page
 * has none (python-zaqarclient does, through empty pages); every link moves strictly forward,
 * so the walk ends.
 */
export interface Page<T> {
  items: T[]
  next?: string
}

export interface QueueEntry {
  name: string
  /** Stored metadata, present only when asked for (`detailed`). Defaults are not filled in. */
  metadata?: Metadata
}

export interface ListQueuesOptions {
  /** Return queues whose name sorts strictly after this (byte order). */
  marker?: string
  limit: number
  detailed?: boolean
  /** Substring match on the queue name (literal, not a pattern). */
  name?: string
  /** Exact matches on metadata keys. */
  filters?: Record<string, string | number | boolean>
  /** Also count every queue of the project (ignoring filters and paging). */
  withCount?: boolean
}

export interface QueueListing extends Page<QueueEntry> {
  /** Present iff `withCount` was asked for. */
  count?: number
}

/** A message as readers see it (the wire form minus the href, which the transport builds). */
export interface Message {
  id: string
  /** Current TTL in seconds (a claim can raise it: zaqar/transport/wsgi/v2_0/claims.py). */
  ttl: number
  /** Whole seconds since the message was created. */
  age: number
  /** Creation time, ms. */
  created: number
  /** The body as JSON text. */
  body: string
  /** The id of the *active* claim holding the message, if any. Expired claims are not reported. */
  claimId?: string
  /** How many times the message has been claimed. */
  claimCount: number
}

/** A message to post, already validated by the transport. */
export interface NewMessage {
  /** JSON text of the body. */
  body: string
  /** Seconds; when absent the queue policy's default TTL applies, else `PostOptions.defaultTtl`. */
  ttl?: number
  /** Seconds; honoured only when the queue policy has a default delay (queue-policy.ts, `postSettings`). */
  delay?: number
}

export interface PostOptions {
  /** The poster's Client-ID (canonical form), for echo filtering. */
  clientId: string
  /** Seconds: the TTL of a message without one, where the queue policy sets none. */
  defaultTtl: number
  /**
   * The size of the post in bytes, as the queue's post-size limit measures it (Zaqar: the
   * request's content length). A post larger than the limit throws `PostTooLarge` and stores
   * nothing — after the queue has been created lazily, as Zaqar does.
   */
  postBytes: number
  /**
   * Whether the queue's policy (its default TTL and delay, and its post-size limit) applies to
   * this post. False: the server's `defaultTtl` alone, delays ignored, no size limit — how
   * clients of API v1.1, which predates per-queue settings, post.
   */
  queuePolicy: boolean
  /**
   * The producer's idempotency key (docs/api.md, "Safe retries"). When a post with the same key
   * to the same queue committed less than `idempotencyWindow` seconds ago, nothing is stored and
   * that post's ids are returned, whatever the messages. The key is stored atomically with the
   * post it answers for, so a post is either stored with its key or not at all.
   */
  idempotencyKey?: string
  /** Seconds the key is remembered after its post committed; used only with `idempotencyKey`. */
  idempotencyWindow?: number  /**
   * The queue's quota (docs/limits.md, "Quotas"): the most unexpired messages (delayed and
   * claimed ones included) it may hold once the post is stored. A post that would exceed it
   * throws `QueueFull` and stores nothing (a queue it created lazily stays, as with
   * `PostTooLarge`); an idempotent replay is answered as always. Checked inside the store's
   * atomic post, so concurrent posts never overshoot it. Absent or 0: no quota.
   */
  maxMessages?: number
}

/**
 * Bounded work per request (issue 11): a post of more messages than this (or of more than
 * `POST_CHUNK_BYTES` of bodies) is written in chunks of at most this size, each one bounded
 * store call, and made visible all at once when its last chunk commits (docs/redis.md, "Large
 * posts"). Readers never see part of a post; other posts to the same queue wait for it.
 */
export const POST_CHUNK = 128
/** See `POST_CHUNK`. */
export const POST_CHUNK_BYTES = 256 * 1024

/**
 * Bounded work per request (issue 11): the most stored messages one `listMessages` call
 * examines (filtered-out ones included) before it returns what it found, or `limit` when that is
 * larger. A listing over a queue of 100k delayed or claimed messages costs at most this many
 * entries and answers a short (possibly empty) page with a next marker.
 */
export const LIST_SCAN_BUDGET = 256

export interface ListMessagesOptions {
  /** Opaque marker from a previous page's `next`. An unknown marker yields an empty page. */
  marker?: string
  limit: number
  /** The caller's Client-ID; with `echo` false, messages it posted are skipped. */
  clientId: string
  echo: boolean
  includeClaimed: boolean
  /**
   * Whether delayed (not yet visible) messages are asked for; `undefined`: not asked. The
   * queue's policy decides what is listed (queue-policy.ts, `includeDelayed`).
   */
  includeDelayed?: boolean
}

export interface MessageListing extends Page<Message> {
  /**
   * Whether this page's filter included delayed messages: the request's `includeDelayed` as the
   * queue's policy resolved it. Continuing from `next` with the same value lists the same way.
   */
  includeDelayed: boolean
}

/** A popped message: deleted by the pop, so it carries its (temporary) claim instead of an href. */
export interface PoppedMessage {
  id: string
  ttl: number
  age: number
  body: string
  claimId: string
  claimCount: number
}

export interface ClaimOptions {
  /** Claim lifetime, seconds. */
  ttl: number
  /** Extra life given to messages that would expire before the claim (zaqar/transport/wsgi/v2_0/claims.py). */
  grace: number
  /** At most this many messages. */
  limit: number
  /**
   * The dead-letter queue the caller has checked lives on this same pool (the proxy reads the
   * catalog placement; '' when it knows none). Absent: the queue's DLQ is taken to be here (one
   * pool, or a direct caller) and due messages move to it atomically. Present: only a DLQ of this
   * name is filled here; messages due for any other DLQ stay in the queue, unclaimed and not
   * claimable, and the claim names them in `deadLetter` so the caller can move them across pools
   * (docs/pools.md, "Dead-letter queues across pools").
   */
  deadLetter?: string
}

/** Messages a claim left in the queue because their dead-letter queue is not known to be local. */
export interface DeadLetterDue {
  /** The queue's `_dead_letter_queue`. */
  queue: string
  /** Ids of messages already claimed `_max_claim_count` times (a bounded number per claim). */
  ids: string[]
  /** The queue's `_dead_letter_queue_messages_ttl`, when set. */
  ttl?: number
}

export interface Claim {
  id: string
  /** Seconds since the claim was created or last renewed. */
  age: number
  ttl: number
  /** The claim's messages that still exist, oldest first. */
  messages: Message[]
  /**
   * Only from `createClaim` with `ClaimOptions.deadLetter` set: messages due for a dead-letter
   * queue other than that one. A claim that took no message but found such messages is returned
   * with `id` '' and no messages rather than as `null`.
   */
  deadLetter?: DeadLetterDue
}

export interface QueueStats {
  /** Messages not expired (delayed ones included). */
  total: number
  /** Messages under an active claim. */
  claimed: number
  /** total − claimed */
  free: number
  /**
   * Of the free messages, those not visible yet (their `delay` has not run out): they count in
   * `free` but no claim can take them. Absent when the store does not count them.
   */
  delayed?: number
  /** Present iff total > 0. */
  oldest?: { id: string; age: number; created: number }
  newest?: { id: string; age: number; created: number }
}

/**
 * The message store. See the module comment for the rules every method follows. The migration
 * operations (shared/storage/migration.ts) are part of it: a store's fence refuses or journals
 * the client operations above while one of its queues moves between pools.
 */
export interface DataDriver extends MigrationOperations {
  /** A short name for logs and metrics: `sqlite`, `redis`, `rpc`. */
  readonly kind: string

  /**
   * Messages this driver moved to a dead-letter queue inside its store (claim-time
   * dead-lettering, `ClaimOptions.deadLetter`) since it opened: a monotonic count for metrics
   * (`missive_messages_dead_lettered_total`). Absent on drivers that do not move messages
   * themselves (the RPC client: its worker counts).
   */
  readonly deadLettered?: number

  /** Resolves when the store answers; throws `StoreUnavailable` when it does not. */
  ping(): Promise<void>

  /** Releases connections and timers. Idempotent. */
  close(): Promise<void>

  // --- queues -----------------------------------------------------------------------------

  /**
   * Creates the queue with `metadata` if it does not exist. Returns true if it was created,
   * false if it already existed — in which case its metadata is left untouched (zaqar/transport/wsgi/v2_0/queues.py).
   * Atomic: two racing creates yield exactly one `true`.
   */
  createQueue(ref: QueueRef, metadata: Metadata): Promise<boolean>

  /** The stored metadata (no defaults filled in), or `null` when the queue does not exist. */
  getQueue(ref: QueueRef): Promise<Metadata | null>

  /** Replaces the metadata of an existing queue. Throws `QueueNotFound` when it does not exist. */
  setQueueMetadata(ref: QueueRef, metadata: Metadata): Promise<void>

  /** Deletes the queue with all its messages and claims. Missing queue: no-op. */
  deleteQueue(ref: QueueRef): Promise<void>

  /** The project's queues sorted by name (byte order), one page. */
  listQueues(project: string, opts: ListQueuesOptions): Promise<QueueListing>

  /** Counts and oldest/newest. A missing queue has all zeros. */
  stats(ref: QueueRef): Promise<QueueStats>

  /**
   * Bytes the queue's messages take in the store, for the byte quota per project
   * (docs/limits.md, "Stored bytes per project"): asked by the proxies' background backlog scan
   * only, never by a request. What a store counts is its own: SQLite the unexpired messages'
   * bodies (JSON text, UTF-8 bytes), Redis the memory of the queue's message hash, indexes and
   * claims (`MEMORY USAGE`, sampled; expired messages count until collected). At least the
   * bodies' bytes. Bounded work like `stats`: a store holds no other request behind it for
   * long. A missing or empty queue: 0.
   */
  storedBytes(ref: QueueRef): Promise<number>

  /** Deletes every message and claim of the queue (claimed and delayed ones too); keeps the queue. */
  purge(ref: QueueRef): Promise<void>

  // --- messages ---------------------------------------------------------------------------

  /**
   * Appends the messages in order, creating the queue if needed, all or nothing — a post larger
   * than `POST_CHUNK` is written in bounded chunks and becomes visible at once. Returns their
   * ids in request order (with `idempotencyKey`, possibly those of an earlier post). Per queue, messages are ordered by the moment their post committed
   * (FIFO): a message is never listed or claimed before one posted earlier to the same queue,
   * except where delay says so.
   */
  postMessages(ref: QueueRef, messages: NewMessage[], opts: PostOptions): Promise<string[]>

  /** One page of messages, oldest first, filtered as the options say (zaqar/transport/wsgi/v2_0/messages.py). Scans past
   *  filtered messages until the page is full, the queue is exhausted, or `LIST_SCAN_BUDGET`
   *  entries were examined: a page may then be short or empty, with a `next` marker that
   *  resumes the scan where it stopped. */
  listMessages(ref: QueueRef, opts: ListMessagesOptions): Promise<MessageListing>

  /** The message, claimed, delayed or not; `null` when missing or expired. */
  getMessage(ref: QueueRef, id: string): Promise<Message | null>

  /** The messages among `ids` that exist, in queue order; unknown/malformed ids are skipped. */
  getMessages(ref: QueueRef, ids: string[]): Promise<Message[]>

  /**
   * Deletes one message under the claim rules of Zaqar (queue-policy.ts, `deleteVerdict`):
   * - missing message → no-op;
   * - not actively claimed and no `claimId` → deleted;
   * - actively claimed and no `claimId`, or another active claim's id → `MessageClaimed`;
   * - `claimId` given but the message is not actively claimed → `ClaimNotHeld`;
   * - message actively claimed, `claimId` not an active claim of this queue (unknown,
   *   malformed, expired) → `ClaimGone`;
   * - `claimId` matches the active claim → deleted.
   */
  deleteMessage(ref: QueueRef, id: string, claimId?: string): Promise<void>

  /**
   * Deletes the messages among `ids`, claimed or not (zaqar/transport/wsgi/v2_0/messages.py). With `claimIds`, every
   * existing message must be held by an active claim in that list, else nothing is deleted and
   * `MessageClaimed` (without a message id) is thrown. Atomic.
   */
  deleteMessages(ref: QueueRef, ids: string[], claimIds?: string[]): Promise<void>

  /** Atomically claims and deletes up to `limit` visible, unclaimed messages, oldest first. */
  popMessages(ref: QueueRef, limit: number): Promise<PoppedMessage[]>

  // --- claims -----------------------------------------------------------------------------

  /**
   * Claims up to `limit` messages that are visible (not delayed), not expired and not under an
   * active claim, oldest first; `null` when none could be claimed (→ 204). Echo does not apply.
   * Each claimed message: claim id set, claim count incremented, and if it would expire before
   * `now + ttl` its TTL becomes `ttl + grace` from now. Concurrent claims never share a message.
   * Dead-lettering: when the queue's policy has a `DeadLetterPolicy` (queue-policy.ts), a
   * message already claimed `maxClaims` times is moved (unclaimed, TTL reset to the policy's
   * `ttl` or kept) to the DLQ in the same project instead of being claimed.
   */
  createClaim(ref: QueueRef, opts: ClaimOptions): Promise<Claim | null>

  /** The active claim, or `null` if missing, expired or of another queue/project. */
  getClaim(ref: QueueRef, claimId: string): Promise<Claim | null>

  /**
   * Resets the claim to expire at `now + ttl` and extends messages that would expire before it
   * to `ttl + grace` from now. Throws `ClaimNotFound` when the claim is missing or expired.
   */
  renewClaim(ref: QueueRef, claimId: string, opts: { ttl: number; grace: number }): Promise<void>

  /** Releases the claim: its messages become claimable at once, claim counts kept. Missing: no-op. */
  releaseClaim(ref: QueueRef, claimId: string): Promise<void>

  // --- listeners ----------------------------------------------------------------------------

  /**
   * A proxy holds a listener on the queue (a parked long-poll request, a WebSocket push
   * subscription) for up to `ms` from now: posts to the queue until then must reach every proxy
   * (docs/redis.md, "Announcements"). Idempotent; a later call extends, never shortens. A store
   * whose posts all pass through the proxy that serves them (SQLite) has nothing to do. Marking
   * a queue that does not exist yet creates nothing a client can see (no queue, no listing).
   */
  listen(ref: QueueRef, ms: number): Promise<void>
}

