/**
 * The words a client reads when a store refuses an operation: each typed storage error
 * (shared/storage/errors.ts) becomes an HTTP status with Zaqar's title and description, worded as
 * Zaqar's transport words them (zaqar/transport/wsgi/v2_0/messages.py for deletes,
 * zaqar/transport/validation.py for the post size, zaqar/transport/wsgi/errors.py for 503s).
 * Stores carry facts only; this is the one place they become sentences.
 */
import { ERRORS } from '../shared/errors.js'
import type { DriverOperation } from '../shared/storage/operations.js'
import type { AnyStorageError, StorageError } from '../shared/storage/errors.js'
import { isTopicRef, tenantOf } from './topic-space.js'

/** A storage error as the client sees it. */
export interface StorageErrorHttp {
  status: number
  title: string
  description: string
}

/** Single-message deletes, as Zaqar's v2 messages resource words them. */
export const DELETE_DESCRIPTIONS = {
  claimed: 'This message is claimed; it cannot be deleted without a valid claim ID.',
  notClaimed: 'A claim was specified, but the message is not currently claimed.',
  claimGone: 'The specified claim does not exist or has expired.',
} as const

/** What the client reads when the store fails during an operation (Zaqar's wording where it has one). */
const FAILURE: Record<DriverOperation, string> = {
  ping: 'The message store is not available.',
  createQueue: 'Queue could not be created.',
  getQueue: 'Queue metadata could not be retrieved.',
  setQueueMetadata: 'Queue metadata could not be updated.',
  deleteQueue: 'Queue could not be deleted.',
  listQueues: 'Queues could not be listed.',
  stats: 'Queue stats could not be read.',
  storedBytes: 'Queue stats could not be read.',
  listen: 'The message store is not available.',
  purge: 'Queue could not be purged.',
  postMessages: 'Messages could not be enqueued.',
  listMessages: 'Messages could not be listed.',
  getMessage: 'Message could not be retrieved.',
  getMessages: 'Messages could not be retrieved.',
  deleteMessage: 'Unable to delete message.',
  deleteMessages: 'Messages could not be deleted.',
  popMessages: 'Messages could not be popped.',
  createClaim: 'Claim could not be created.',
  getClaim: 'Claim could not be queried.',
  renewClaim: 'Claim could not be updated.',
  releaseClaim: 'Claim could not be deleted.',
  fenceQueue: 'Queue could not be fenced.',
  getFence: 'Queue fence could not be read.',
  readForMigration: 'Messages could not be read for migration.',
  readJournal: 'Migration journal could not be read.',
  ackJournal: 'Migration journal could not be acknowledged.',
  importMessages: 'Messages could not be imported.',
  countForMigration: 'Messages could not be counted.',
  dropQueueData: 'Queue data could not be dropped.',
}

/** Zaqar's words for a post over a size limit, the queue's or the server's (zaqar/transport/validation.py). */
export const postTooLargeText = (max: number): string => `Message collection size is too large. Max size ${max}`

/** What a client reads when a post would put a queue over its quota of messages. */
export const queueFullText = (queue: string, max: number): string =>
  `Queue ${queue} may hold at most ${max} messages (this project's quota); consume some, or ask for a larger quota.`

const QUOTA = ERRORS.quota_exceeded.title
const NOT_FOUND = ERRORS.not_found.title
const INVALID = ERRORS.bad_request.title
const UNAVAILABLE = ERRORS.unavailable.title
const UNABLE_TO_DELETE = ERRORS.message_claimed.title

/** The status, title and description for `err`. */
export function storageErrorHttp(err: StorageError): StorageErrorHttp {
  // Narrowed on `kind`: a kind without wording here fails the build.
  const e = err as AnyStorageError
  switch (e.kind) {
    case 'queue_not_found':
      // A topic is a queue in a namespace of its own (proxy/topic-space.ts): named as Zaqar names it, with the tenant's project.
      return { status: 404, title: NOT_FOUND, description: `${isTopicRef(e.ref) ? 'Topic' : 'Queue'} ${e.ref.queue} does not exist for project ${tenantOf(e.ref)}` }
    case 'claim_not_found':
      return {
        status: 404,
        title: NOT_FOUND,
        description: `Claim ${e.claimId} does not exist in queue ${e.ref.queue} for project ${tenantOf(e.ref)}`,
      }
    case 'message_claimed':
      return { status: 403, title: UNABLE_TO_DELETE, description: DELETE_DESCRIPTIONS.claimed }
    case 'claim_not_held':
      return { status: 400, title: UNABLE_TO_DELETE, description: DELETE_DESCRIPTIONS.notClaimed }
    case 'claim_gone':
      return { status: 400, title: UNABLE_TO_DELETE, description: DELETE_DESCRIPTIONS.claimGone }
    case 'post_too_large':
      return { status: 400, title: INVALID, description: postTooLargeText(e.maxPostBytes) }
    case 'queue_full':
      // Zaqar has no quotas; 403 as OpenStack compute answers a quota (docs/limits.md, "Quotas").
      return { status: 403, title: QUOTA, description: queueFullText(e.ref.queue, e.maxMessages) }
    case 'bad_store_config':
      return { status: 400, title: INVALID, description: e.problem }
    case 'queue_moved':
      // Reaches a client only when the proxy's wait for a migration's switch ran out.
      return {
        status: 503,
        title: UNAVAILABLE,
        description: `Queue ${e.ref.queue} is being moved to another pool. Please try again in a few seconds.`,
      }
    case 'fence_conflict':
      return { status: 409, title: ERRORS.conflict.title, description: `Queue ${e.ref.queue} is already being moved.` }
    case 'store_unavailable':
      switch (e.reason) {
        case 'closed':
          return { status: 503, title: UNAVAILABLE, description: 'The message store is closed.' }
        case 'interrupted':
          return {
            status: 503,
            title: UNAVAILABLE,
            description:
              'The messages could not be enqueued: the post was interrupted (the queue was purged or deleted, or the post stalled). Nothing was stored; retry.',
          }
        case 'busy':
          return {
            status: 503,
            title: UNAVAILABLE,
            description: 'The messages could not be enqueued: a large post to the queue is still being stored. Nothing was stored; retry.',
          }
        case 'unreachable':
          return {
            status: 503,
            title: UNAVAILABLE,
            description: `${FAILURE[e.operation ?? 'ping']} Please try again in a few seconds.`,
          }
      }
  }
}
