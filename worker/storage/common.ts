/**
 * What every storage driver shares: reading reserved metadata, ages, and the words a client reads
 * when a store fails. One place, so the drivers cannot drift apart on them.
 */
import { unavailable, type MissiveError } from '../../shared/errors.js'
import { POST_CHUNK, POST_CHUNK_BYTES, type DriverOperation, type Metadata, type NewMessage } from '../../shared/storage/contract.js'

/** Whole seconds between `from` and `now`, never negative (a clock may step back). */
export const ageOf = (from: number, now: number): number => Math.max(0, Math.floor((now - from) / 1000))

/** A reserved metadata value if it is a finite number. */
export function metaNumber(meta: Metadata, key: string): number | undefined {
  const v = meta[key]
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}

/** A reserved metadata value if it is a positive number (Zaqar tests these for truthiness). */
export function metaPositive(meta: Metadata, key: string): number | undefined {
  const v = metaNumber(meta, key)
  return v !== undefined && v > 0 ? v : undefined
}

const QUEUE_NAME_RE = /^[a-zA-Z0-9_.-]{1,64}$/

/** True for a name the transport accepts as a queue name (API.md §2 step 7). */
export const isQueueName = (s: unknown): s is string => typeof s === 'string' && QUEUE_NAME_RE.test(s)

/** What the client reads when the store fails, per operation (Zaqar's wording where it has one). */
const FAILURE: Record<DriverOperation, string> = {
  ping: 'The message store is not available.',
  createQueue: 'Queue could not be created.',
  getQueue: 'Queue metadata could not be retrieved.',
  setQueueMetadata: 'Queue metadata could not be updated.',
  deleteQueue: 'Queue could not be deleted.',
  listQueues: 'Queues could not be listed.',
  stats: 'Queue stats could not be read.',
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
}

/** The 503 for a store that cannot serve `op` now; `cause` keeps the store's own error. */
export const storeUnavailable = (op: DriverOperation, cause: unknown): MissiveError =>
  unavailable(`${FAILURE[op]} Please try again in a few seconds.`, 1, cause)

/** Bytes of message bodies (UTF-16 length: close enough for a work budget). */
export function bodyBytes(messages: NewMessage[]): number {
  let n = 0
  for (const m of messages) n += m.body.length
  return n
}

/** [from, to) ranges of at most POST_CHUNK messages and POST_CHUNK_BYTES (one message at least). */
export function chunksOf(messages: NewMessage[]): [number, number][] {
  const out: [number, number][] = []
  let from = 0
  let bytes = 0
  for (let i = 0; i < messages.length; i++) {
    const size = messages[i].body.length
    if (i > from && (i - from >= POST_CHUNK || bytes + size > POST_CHUNK_BYTES)) {
      out.push([from, i])
      from = i
      bytes = 0
    }
    bytes += size
  }
  out.push([from, messages.length])
  return out
}
