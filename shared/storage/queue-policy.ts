/**
 * Zaqar's queue rules, written once: what a queue's reserved metadata (docs/api.md, "Queue
 * metadata") means for its messages, and the pure decisions every store makes the same way.
 * Stores derive a `QueuePolicy` from metadata here and apply the resolved values; none reads a
 * reserved key itself.
 *
 * Where each rule runs:
 * - SQLite (worker/storage/sqlite/) calls these functions inside its transactions; its claim
 *   and renewal UPDATEs repeat `claimExtends` as a SQL CASE, so one statement extends every
 *   message of a claim (worker/storage/sqlite/claims.ts). It remembers each queue's policy while
 *   the queue's metadata text is unchanged, so posts and claims do not parse metadata.
 * - Redis (worker/storage/redis/) derives the policy here when metadata is written and stores
 *   the resolved values in the queue record (redis/context.ts, `policyFields`); its Lua scripts read those
 *   values in the same atomic call that posts, lists or claims, so a concurrent metadata change
 *   is seen entirely or not at all, with no extra round trip. What the scripts therefore still
 *   decide themselves, mirroring the functions named here: applying the post settings and the
 *   size limit (`postSettings`, `exceedsPostSize`: lib.lua `post_settings`), the effective
 *   include_delayed (`includeDelayed`: listMessages.lua), the dead-letter test per message
 *   (`isDeadLetterDue`: claimMessages.lua), the single-delete verdict (`deleteVerdict`:
 *   deleteMessages.lua, which must look at the message and its claim atomically with the delete)
 *   and whether a claim extends a message (`claimExtends`: claimMessages.lua, renewClaim.lua,
 *   which receive the extended TTL `claimExtendedTtl` resolved by the driver). The contract
 *   suite (tests/contract/) runs the same cases over both stores.
 */
import type { Metadata, NewMessage } from './contract.js'

/** The reserved metadata keys that shape a queue's messages (zaqar/storage/*: the same names). */
export const RESERVED = {
  maxPostSize: '_max_messages_post_size',
  defaultTtl: '_default_message_ttl',
  defaultDelay: '_default_message_delay',
  deadLetterQueue: '_dead_letter_queue',
  deadLetterTtl: '_dead_letter_queue_messages_ttl',
  maxClaimCount: '_max_claim_count',
} as const

const QUEUE_NAME_RE = /^[a-zA-Z0-9_.-]{1,64}$/

/** True for a valid queue name (zaqar/transport/validation.py, `QUEUE_NAME_REGEX`, 64 characters at most). */
export const isQueueName = (s: unknown): s is string => typeof s === 'string' && QUEUE_NAME_RE.test(s)

/** A reserved value if it is a finite number. */
function metaNumber(meta: Metadata, key: string): number | undefined {
  const v = meta[key]
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}

/**
 * A reserved value if it is a positive number. Zaqar tests sizes, TTLs and the default delay for
 * truthiness (`if queue_max_msg_size:`): missing, 0, or not a number means "not set". A negative
 * number, truthy in Python, is also "not set" here: the transport refuses to store one for the
 * TTL and delay, and a negative size limit could only refuse every post.
 */
function metaPositive(meta: Metadata, key: string): number | undefined {
  const v = metaNumber(meta, key)
  return v !== undefined && v > 0 ? v : undefined
}

/** Where and when a queue's messages are dead-lettered (zaqar/storage/redis/claims.py, `claim`). */
export interface DeadLetterPolicy {
  /** The dead-letter queue, in the same project. */
  queue: string
  /** A message already claimed this many times goes to `queue` instead of being claimed again. */
  maxClaims: number
  /** Seconds: the moved message's new TTL (`_dead_letter_queue_messages_ttl`); absent: it keeps its own. */
  ttl?: number
}

/** What a queue's reserved metadata says, resolved. `undefined` everywhere means "server defaults". */
export interface QueuePolicy {
  /** Seconds: the TTL of a message posted without one (`_default_message_ttl`), when set. */
  readonly defaultTtl: number | undefined
  /**
   * Seconds: the delay of a message posted without one (`_default_message_delay`). Set only when
   * positive, and only then are per-message delays honoured (zaqar/storage/redis/messages.py).
   */
  readonly defaultDelay: number | undefined
  /** Bytes: the largest post the queue accepts (`_max_messages_post_size`), when set. */
  readonly maxPostBytes: number | undefined
  /** The dead-letter rule, when the queue has a complete one. */
  readonly deadLetter: DeadLetterPolicy | undefined
}

/** The policy of a queue with no reserved metadata. Shared: never mutated. */
export const NO_POLICY: QueuePolicy = Object.freeze({ defaultTtl: undefined, defaultDelay: undefined, maxPostBytes: undefined, deadLetter: undefined })

/**
 * The policy of queue `queue` with metadata `meta`. Dead-lettering needs `_max_claim_count`
 * present as a number (Zaqar tests the key's presence, so 0 dead-letters every message at its
 * next claim) and `_dead_letter_queue` a valid queue name other than the queue itself (a queue
 * dead-lettering into itself would only churn).
 */
export function queuePolicy(queue: string, meta: Metadata): QueuePolicy {
  const defaultTtl = metaPositive(meta, RESERVED.defaultTtl)
  const defaultDelay = metaPositive(meta, RESERVED.defaultDelay)
  const maxPostBytes = metaPositive(meta, RESERVED.maxPostSize)
  const maxClaims = metaNumber(meta, RESERVED.maxClaimCount)
  const dlq = meta[RESERVED.deadLetterQueue]
  let deadLetter: DeadLetterPolicy | undefined
  if (maxClaims !== undefined && isQueueName(dlq) && dlq !== queue) {
    deadLetter = { queue: dlq, maxClaims }
    const ttl = metaPositive(meta, RESERVED.deadLetterTtl)
    if (ttl !== undefined) deadLetter.ttl = ttl
  }
  if (defaultTtl === undefined && defaultDelay === undefined && maxPostBytes === undefined && deadLetter === undefined) return NO_POLICY
  return { defaultTtl, defaultDelay, maxPostBytes, deadLetter }
}

// --- posting ---------------------------------------------------------------------------------

/** How one post's messages get their TTL and delay. */
export interface PostSettings {
  /** Seconds, for a message without its own TTL. */
  readonly defaultTtl: number
  /** Whether a message's own delay is honoured. */
  readonly honourDelay: boolean
  /** Seconds, for a message without its own delay, when delays are honoured. */
  readonly defaultDelay: number
}

/**
 * The settings of a post: the queue's policy when it applies (`PostOptions.queuePolicy`), else
 * the server's default TTL with delays ignored (API v1.1 predates per-queue settings).
 */
export function postSettings(policy: QueuePolicy, applies: boolean, serverTtl: number): PostSettings {
  if (!applies) return { defaultTtl: serverTtl, honourDelay: false, defaultDelay: 0 }
  return { defaultTtl: policy.defaultTtl ?? serverTtl, honourDelay: policy.defaultDelay !== undefined, defaultDelay: policy.defaultDelay ?? 0 }
}

/** A posted message's TTL, seconds. */
export const messageTtl = (m: NewMessage, s: PostSettings): number => m.ttl ?? s.defaultTtl

/** A posted message's delay, seconds (0: visible at once). */
export const messageDelay = (m: NewMessage, s: PostSettings): number => (s.honourDelay ? (m.delay ?? s.defaultDelay) : 0)

/**
 * Whether a post of `bytes` exceeds the queue's limit, when the policy applies. Checked after
 * the queue was created lazily: a refused post still creates its queue, as in Zaqar.
 */
export const exceedsPostSize = (policy: QueuePolicy, applies: boolean, bytes: number): boolean =>
  applies && policy.maxPostBytes !== undefined && bytes > policy.maxPostBytes

// --- listing ---------------------------------------------------------------------------------

/**
 * Whether a listing shows delayed messages: always on a queue without a default delay (Zaqar
 * forces it there, whatever the client asked); else only when asked (`undefined`: not asked).
 */
export const includeDelayed = (policy: QueuePolicy, asked: boolean | undefined): boolean => policy.defaultDelay === undefined || asked === true

const MARKER_RE = /^(0|[1-9][0-9]{0,15})$/

/**
 * Listing markers, in both stores: the decimal sequence number of the last message a page
 * examined (SQLite's rowid, Redis's per-queue counter, seeded from the clock). A string that is
 * not one names no message: the page after it is empty.
 */
export const isMarker = (s: string): boolean => MARKER_RE.test(s)

/** The sequence number a marker stands for, or undefined when it is not a marker. */
export const parseMarker = (s: string): number | undefined => (MARKER_RE.test(s) ? Number(s) : undefined)

/** The marker of sequence number `seq`. */
export const markerOf = (seq: number): string => String(seq)

// --- claims ----------------------------------------------------------------------------------

/** Whether a message already claimed `claimCount` times goes to the dead-letter queue rather than being claimed. */
export const isDeadLetterDue = (dl: DeadLetterPolicy, claimCount: number): boolean => claimCount >= dl.maxClaims

/** The TTL, seconds, that a claim of `ttl` with `grace` gives a message it extends. */
export const claimExtendedTtl = (ttl: number, grace: number): number => ttl + grace

/**
 * Whether a claim (or renewal) expiring at `claimExpires` extends a message expiring at
 * `messageExpires` (ms): a claimed message must outlive its claim, so one that would expire
 * first gets `claimExtendedTtl` from now.
 */
export const claimExtends = (messageExpires: number, claimExpires: number): boolean => messageExpires < claimExpires

// --- single delete ---------------------------------------------------------------------------

/**
 * The outcome of deleting one message (zaqar/storage/redis/messages.py, `delete`):
 * `delete`; `claimed` (held by a claim the caller does not hold); `not_held` (a claim id was
 * given but the message is not claimed); `claim_gone` (the claim id names no active claim).
 */
export type DeleteVerdict = 'delete' | 'claimed' | 'not_held' | 'claim_gone'

/**
 * Whether `deleteVerdict` needs to know if `claimId` is another active claim of the queue: only
 * when the message is actively claimed by a claim other than the one named. Stores look it up
 * only then.
 */
export const deleteNeedsClaimLookup = (active: boolean, holder: string | null, claimId: string | undefined): boolean =>
  active && claimId !== undefined && claimId !== holder

/**
 * The single-delete rules: `active` whether the message is under an active claim, `holder` that
 * claim's id, `claimId` the one the caller gave, `otherActive` (asked only when
 * `deleteNeedsClaimLookup`) whether `claimId` is another active claim of the same queue.
 */
export function deleteVerdict(active: boolean, holder: string | null, claimId: string | undefined, otherActive: boolean): DeleteVerdict {
  if (claimId === undefined) return active ? 'claimed' : 'delete'
  if (!active) return 'not_held'
  if (claimId === holder) return 'delete'
  return otherActive ? 'claimed' : 'claim_gone'
}
