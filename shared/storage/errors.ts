/**
 * What a store reports when an operation cannot do what was asked: typed errors that carry the
 * facts (which queue, which message, which limit), never the words a client reads. The HTTP
 * transport chooses those words, Zaqar's where it has them (proxy/storage-errors.ts), so a store
 * written for another front end throws the same errors.
 *
 * Each is a `MissiveError` whose `code` is the coarse class every layer already understands
 * (`not_found`, `message_claimed`, `claim_invalid`, `bad_request`, `unavailable`); `kind` names
 * the precise case. They cross the RPC boundary as `{code, kind, data}` (`toWire` /
 * `errorFromWire`) and arrive as the same class with the same data; a store's own error kept as
 * `cause` stays in the process that caught it.
 */
import { MissiveError, type ErrorCode, type WireError } from '../errors.js'
import type { QueueRef } from './contract.js'
import type { QueueFence } from './migration.js'
import { DRIVER_OPERATIONS, type DriverOperation } from './operations.js'

/** Every kind of storage error, as it travels in `WireError.kind`. */
export type StorageErrorKind =
  | 'queue_not_found'
  | 'claim_not_found'
  | 'message_claimed'
  | 'claim_not_held'
  | 'claim_gone'
  | 'post_too_large'
  | 'queue_full'
  | 'store_unavailable'
  | 'bad_store_config'
  | 'queue_moved'
  | 'fence_conflict'

/** The base of every typed storage error. `description` is always undefined: the transport words it. */
export abstract class StorageError extends MissiveError {
  abstract readonly kind: StorageErrorKind

  constructor(code: ErrorCode, message: string, opts: { retryAfter?: number; cause?: unknown } = {}) {
    super(code, undefined, opts)
    // For logs: the facts, not a client's sentence.
    this.message = message
  }

  /** The error's facts, as they cross the RPC boundary. Plain values only; never the cause. */
  abstract data(): Record<string, unknown>

  override toWire(): WireError {
    return { code: this.code, kind: this.kind, data: this.data(), retryAfter: this.retryAfter }
  }
}

const refText = (ref: QueueRef): string => `${ref.project}/${ref.queue}`

/** The queue does not exist (an operation that does not create queues lazily). */
export class QueueNotFound extends StorageError {
  readonly kind = 'queue_not_found'
  constructor(readonly ref: QueueRef) {
    super('not_found', `queue ${refText(ref)} not found`)
    this.name = 'QueueNotFound'
  }
  data() {
    return { ref: this.ref }
  }
}

/** The claim named by a claim operation (renew) is missing, expired, or of another queue. */
export class ClaimNotFound extends StorageError {
  readonly kind = 'claim_not_found'
  constructor(
    readonly ref: QueueRef,
    readonly claimId: string,
  ) {
    super('not_found', `claim ${claimId} not found in ${refText(ref)}`)
    this.name = 'ClaimNotFound'
  }
  data() {
    return { ref: this.ref, claimId: this.claimId }
  }
}

/**
 * A delete needs a claim the caller does not hold: the message is under an active claim and no
 * claim id, or another active claim's id, was given. `messageId` is absent for a bulk delete.
 */
export class MessageClaimed extends StorageError {
  readonly kind = 'message_claimed'
  constructor(
    readonly ref: QueueRef,
    readonly messageId?: string,
  ) {
    super('message_claimed', `message ${messageId ?? '(bulk)'} of ${refText(ref)} is claimed`)
    this.name = 'MessageClaimed'
  }
  data() {
    return this.messageId === undefined ? { ref: this.ref } : { ref: this.ref, messageId: this.messageId }
  }
}

/** A single delete named a claim, but the message is not under an active claim. */
export class ClaimNotHeld extends StorageError {
  readonly kind = 'claim_not_held'
  constructor(
    readonly ref: QueueRef,
    readonly messageId: string,
    readonly claimId: string,
  ) {
    super('claim_invalid', `message ${messageId} of ${refText(ref)} is not claimed (claim ${claimId} given)`)
    this.name = 'ClaimNotHeld'
  }
  data() {
    return { ref: this.ref, messageId: this.messageId, claimId: this.claimId }
  }
}

/** A single delete of a claimed message named a claim that is unknown, malformed or expired. */
export class ClaimGone extends StorageError {
  readonly kind = 'claim_gone'
  constructor(
    readonly ref: QueueRef,
    readonly messageId: string,
    readonly claimId: string,
  ) {
    super('claim_invalid', `claim ${claimId} given for message ${messageId} of ${refText(ref)} is gone`)
    this.name = 'ClaimGone'
  }
  data() {
    return { ref: this.ref, messageId: this.messageId, claimId: this.claimId }
  }
}

/** The post is larger than the queue's post-size limit (queue-policy.ts, `maxPostBytes`). Nothing was stored. */
export class PostTooLarge extends StorageError {
  readonly kind = 'post_too_large'
  constructor(
    readonly ref: QueueRef,
    readonly maxPostBytes: number,
  ) {
    super('bad_request', `Max size ${maxPostBytes} exceeded by a post to ${refText(ref)}`)
    this.name = 'PostTooLarge'
  }
  data() {
    return { ref: this.ref, maxPostBytes: this.maxPostBytes }
  }
}

/** The post would put the queue over its quota of messages (`PostOptions.maxMessages`). Nothing was stored. */
export class QueueFull extends StorageError {
  readonly kind = 'queue_full'
  constructor(
    readonly ref: QueueRef,
    readonly maxMessages: number,
  ) {
    super('quota_exceeded', `quota of ${maxMessages} messages exceeded by a post to ${refText(ref)}`)
    this.name = 'QueueFull'
  }
  data() {
    return { ref: this.ref, maxMessages: this.maxMessages }
  }
}

/**
 * Why a store cannot serve now:
 * - `unreachable`: the store failed or could not be reached during `operation` (`cause` says how);
 * - `closed`: the driver was closed;
 * - `interrupted`: a post written in chunks lost its stage (the queue was purged or deleted, or
 *   the post stalled); nothing was stored;
 * - `busy`: another large post held the queue for longer than a post waits; nothing was stored.
 * Retrying later may succeed (`retryAfter` seconds).
 */
export type UnavailableReason = 'unreachable' | 'closed' | 'interrupted' | 'busy'

export class StoreUnavailable extends StorageError {
  readonly kind = 'store_unavailable'
  constructor(
    readonly reason: UnavailableReason,
    readonly operation?: DriverOperation,
    cause?: unknown,
  ) {
    super('unavailable', `store ${reason}${operation === undefined ? '' : ` during ${operation}`}`, { retryAfter: 1, cause })
    this.name = 'StoreUnavailable'
  }
  data() {
    return this.operation === undefined ? { reason: this.reason } : { reason: this.reason, operation: this.operation }
  }
}

/**
 * The store cannot be used as configured (e.g. a Redis server whose persistence cannot keep the
 * pool's durability promise). `problem` is for the operator who configures pools: it names
 * settings and files, not anything a tenant sent.
 */
export class BadStoreConfig extends StorageError {
  readonly kind = 'bad_store_config'
  constructor(readonly problem: string) {
    super('bad_request', problem)
    this.name = 'BadStoreConfig'
  }
  data() {
    return { problem: this.problem }
  }
}

const isFence = (v: unknown): v is QueueFence =>
  typeof v === 'object' &&
  v !== null &&
  isString((v as QueueFence).token) &&
  isString((v as QueueFence).to) &&
  ['journal', 'moved', 'importing'].includes((v as QueueFence).state)

/**
 * The queue is fenced in this store by a migration (shared/storage/migration.ts): it has moved,
 * or is moving, to pool `fence.to`. Nothing was done. The proxy reads the catalog's placement
 * afresh and retries there; a client sees it only as a 503 with Retry-After when the switch
 * outlasts the proxy's wait.
 */
export class QueueMoved extends StorageError {
  readonly kind = 'queue_moved'
  constructor(
    readonly ref: QueueRef,
    readonly fence: QueueFence,
  ) {
    super('unavailable', `queue ${refText(ref)} is fenced (${fence.state}, migration ${fence.token} to ${fence.to})`, { retryAfter: 1 })
    this.name = 'QueueMoved'
  }
  data() {
    return { ref: this.ref, fence: this.fence }
  }
}

/** A migration operation named a fence token the queue does not hold; `current` is what it holds. */
export class FenceConflict extends StorageError {
  readonly kind = 'fence_conflict'
  constructor(
    readonly ref: QueueRef,
    readonly current: QueueFence | null,
  ) {
    super('conflict', `queue ${refText(ref)} holds fence ${current === null ? 'none' : current.token}`)
    this.name = 'FenceConflict'
  }
  data() {
    return { ref: this.ref, current: this.current }
  }
}

/** Every concrete storage error: `kind` tells them apart. */
export type AnyStorageError =
  | QueueNotFound
  | ClaimNotFound
  | MessageClaimed
  | ClaimNotHeld
  | ClaimGone
  | PostTooLarge
  | QueueFull
  | StoreUnavailable
  | BadStoreConfig
  | QueueMoved
  | FenceConflict

// --- decoding ----------------------------------------------------------------------------------

const OPERATIONS: ReadonlySet<string> = new Set(DRIVER_OPERATIONS)
const REASONS: ReadonlySet<string> = new Set<UnavailableReason>(['unreachable', 'closed', 'interrupted', 'busy'])

const isString = (v: unknown): v is string => typeof v === 'string'
const isRef = (v: unknown): v is QueueRef =>
  typeof v === 'object' && v !== null && isString((v as QueueRef).project) && isString((v as QueueRef).queue)

/** The typed error a wire form describes, or undefined when it is not one (or is malformed). */
function storageErrorOf(kind: string, d: Record<string, unknown>): StorageError | undefined {
  const ref = isRef(d.ref) ? { project: d.ref.project, queue: d.ref.queue } : undefined
  switch (kind) {
    case 'queue_not_found':
      return ref && new QueueNotFound(ref)
    case 'claim_not_found':
      return ref && isString(d.claimId) ? new ClaimNotFound(ref, d.claimId) : undefined
    case 'message_claimed':
      return ref && (d.messageId === undefined || d.messageId === null || isString(d.messageId))
        ? new MessageClaimed(ref, d.messageId ?? undefined)
        : undefined
    case 'claim_not_held':
      return ref && isString(d.messageId) && isString(d.claimId) ? new ClaimNotHeld(ref, d.messageId, d.claimId) : undefined
    case 'claim_gone':
      return ref && isString(d.messageId) && isString(d.claimId) ? new ClaimGone(ref, d.messageId, d.claimId) : undefined
    case 'post_too_large':
      return ref && typeof d.maxPostBytes === 'number' ? new PostTooLarge(ref, d.maxPostBytes) : undefined
    case 'queue_full':
      return ref && typeof d.maxMessages === 'number' ? new QueueFull(ref, d.maxMessages) : undefined
    case 'store_unavailable': {
      if (!isString(d.reason) || !REASONS.has(d.reason)) return undefined
      const op = d.operation
      if (op !== undefined && op !== null && !(isString(op) && OPERATIONS.has(op))) return undefined
      return new StoreUnavailable(d.reason as UnavailableReason, (op ?? undefined) as DriverOperation | undefined)
    }
    case 'bad_store_config':
      return isString(d.problem) ? new BadStoreConfig(d.problem) : undefined
    case 'queue_moved':
      return ref && isFence(d.fence) ? new QueueMoved(ref, { token: d.fence.token, to: d.fence.to, state: d.fence.state }) : undefined
    case 'fence_conflict':
      return ref && (d.current === null || isFence(d.current))
        ? new FenceConflict(ref, d.current === null ? null : { token: d.current.token, to: d.current.to, state: d.current.state })
        : undefined
    default:
      return undefined
  }
}

/**
 * The error a wire form stands for: a typed storage error when it carries a known `kind` with
 * well-formed data, else a plain `MissiveError` (`MissiveError.fromWire`).
 */
export function errorFromWire(w: WireError): MissiveError {
  if (w.kind !== undefined && w.kind !== null && typeof w.data === 'object' && w.data !== null) {
    const typed = storageErrorOf(w.kind, w.data)
    if (typed !== undefined) return typed
  }
  return MissiveError.fromWire(w)
}
