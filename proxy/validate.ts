/**
 * Validation: one function per operation, limits from config, Zaqar's exact messages. Each
 * returns the validated values or throws a 400 `MissiveError`.
 */
import type { Limits } from '../shared/config.js'
import { badRequest, invalidBody, MissiveError } from '../shared/errors.js'
import { isQueueName } from '../shared/storage/queue-policy.js'
import type { Metadata, NewMessage } from '../shared/storage/contract.js'
import { intField, isObject, toJson } from './json.js'

const isInt = (v: unknown): v is number => (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'boolean'

function rangeCheck(value: number, min: number, max: number, message: string): void {
  if (value < min || value > max) throw badRequest(message)
}

/** `limit` of a listing (queues, messages, bulk ids). */
export function pageLimit(limit: number, max: number): number {
  rangeCheck(limit, 1, max, `Limit must be at least 1 and may not be greater than ${max}.`)
  return limit
}

/**
 * Queue metadata (PUT body or PATCH result): reserved keys validated (zaqar/transport/wsgi/v2_0/queues.py), numbers
 * normalised to plain JSON numbers (metadata is configuration, not payload).
 */
export function queueMetadata(doc: unknown, limits: Limits): Metadata {
  if (!isObject(doc)) throw invalidBody('Document type not supported.')
  const meta = JSON.parse(toJson(doc)) as Metadata
  const intKey = (key: string, min: number, max: number, message: string): void => {
    if (!Object.hasOwn(meta, key) || meta[key] === null) return
    const raw = doc[key]
    if (!isInt(raw)) throw badRequest(`${key} must be integer.`)
    rangeCheck(Number(raw), min, max, message)
  }
  intKey(
    '_default_message_ttl',
    60,
    limits.max_message_ttl,
    `_default_message_ttl can not exceed ${limits.max_message_ttl} seconds, and must be at least 60 seconds long.`,
  )
  intKey(
    '_max_messages_post_size',
    1,
    limits.max_messages_post_size,
    `_max_messages_post_size can not exceed ${limits.max_messages_post_size},  and must be at least greater than 0.`,
  )
  intKey(
    '_default_message_delay',
    0,
    limits.max_message_delay,
    `_default_message_delay can not exceed ${limits.max_message_delay} seconds, and must be at least 0 seconds long.`,
  )
  intKey(
    '_dead_letter_queue_messages_ttl',
    60,
    limits.max_message_ttl,
    `_dead_letter_queue_messages_ttl can not exceed ${limits.max_message_ttl} seconds, and must be at least 60 seconds long.`,
  )
  intKey('_max_claim_count', -Infinity, Infinity, '')
  if (Object.hasOwn(meta, '_enable_encrypt_messages')) {
    const v = meta._enable_encrypt_messages
    if (typeof v !== 'boolean') throw badRequest('_enable_encrypt_messages must be boolean.')
    // Zaqar's scheme (zaqar/transport/encryptor.py: a default key of "AES256", unauthenticated
    // AES-CBC, non-string bodies pickled and unpickled on read, claims and pops not decrypted) is
    // not something to copy; refusing is honest until encryption at rest is designed properly
    // (docs/api.md, "differs from Zaqar").
    if (v) {
      throw badRequest(
        '_enable_encrypt_messages is not supported by this server: message bodies are not encrypted at rest, so a queue cannot promise it. Leave it false or unset.',
      )
    }
  }
  if (Object.hasOwn(meta, '_dead_letter_queue') && meta._dead_letter_queue !== null) {
    const dlq = meta._dead_letter_queue
    if (!isQueueName(dlq)) {
      throw badRequest('_dead_letter_queue must be a valid queue name.')
    }
  }
  return meta
}

/** Message POST body → messages to store (zaqar/transport/wsgi/v2_0/messages.py). */
export function messagePost(doc: unknown, limits: Limits): NewMessage[] {
  if (!isObject(doc) || !Object.hasOwn(doc, 'messages')) throw badRequest('No messages were found in the request body.')
  const list = doc.messages
  if (!Array.isArray(list)) throw invalidBody('Document type not supported.')
  if (list.length === 0) throw badRequest('No messages to enqueu.')
  const out: NewMessage[] = new Array(list.length)
  for (let i = 0; i < list.length; i++) {
    const m: unknown = list[i]
    if (!isObject(m)) throw invalidBody('Document type not supported.')
    if (!Object.hasOwn(m, 'body')) throw invalidBody('Missing "body" field.')
    const ttl = intField(m, 'ttl')
    const delay = intField(m, 'delay')
    if (ttl !== undefined) {
      rangeCheck(
        ttl,
        60,
        limits.max_message_ttl,
        `The TTL for a message may not exceed ${limits.max_message_ttl} seconds, and must be at least 60 seconds long.`,
      )
    }
    if (delay !== undefined) {
      rangeCheck(
        delay,
        0,
        limits.max_message_delay,
        `The Delay for a message may not exceed ${limits.max_message_delay} seconds, and must be at least 0 seconds long.`,
      )
    }
    const msg: NewMessage = { body: toJson(m.body) }
    if (ttl !== undefined) msg.ttl = ttl
    if (delay !== undefined) msg.delay = delay
    out[i] = msg
  }
  return out
}

/** Claim POST body (`null` when absent) → ttl and grace (zaqar/transport/wsgi/v2_0/claims.py): both range-checked (Zaqar's `claim_creation`). */
export function claimBody(doc: unknown, limits: Limits): { ttl: number; grace: number } {
  const { ttl, grace } = claimFields(doc, limits)
  rangeCheck(
    grace,
    60,
    limits.max_claim_grace,
    `The grace for a claim may not exceed ${limits.max_claim_grace} seconds, and must be at least 60 seconds long.`,
  )
  return { ttl, grace }
}

/**
 * Claim PATCH body → ttl and grace (zaqar/transport/wsgi/v2_0/claims.py). Zaqar's `claim_updating` validates only `ttl`
 * and accepts any integer grace; so do we, but the grace applied is clamped to
 * 0..`max_claim_grace`, so a renew can neither keep a message alive without bound nor expire it
 * before its claim (docs/api.md).
 */
export function claimRenewBody(doc: unknown, limits: Limits): { ttl: number; grace: number } {
  const { ttl, grace } = claimFields(doc, limits)
  return { ttl, grace: Math.min(Math.max(grace, 0), limits.max_claim_grace) }
}

/** `ttl` (range-checked) and `grace` (type-checked) of a claim body, with Zaqar's defaults. */
function claimFields(doc: unknown, limits: Limits): { ttl: number; grace: number } {
  if (doc !== null && !isObject(doc)) throw invalidBody('Document type not supported.')
  const ttl = (doc && intField(doc, 'ttl')) ?? limits.default_claim_ttl
  const grace = (doc && intField(doc, 'grace')) ?? limits.default_claim_grace
  rangeCheck(
    ttl,
    60,
    limits.max_claim_ttl,
    `The TTL for a claim may not exceed ${limits.max_claim_ttl} seconds, and must be at least 60 seconds long.`,
  )
  return { ttl, grace }
}

/** `limit` of a claim POST and `pop`. */
export function claimLimit(limit: number, limits: Limits, what: 'Limit' | 'Pop value'): number {
  const max = limits.max_messages_per_claim_or_pop
  rangeCheck(limit, 1, max, `${what} must be at least 1 and may not be greater than ${max}.`)
  return limit
}

/** `ids` of a bulk get or delete. */
export function idList(ids: string[], limits: Limits): string[] {
  const max = limits.max_messages_per_page
  if (ids.length < 1 || ids.length > max) {
    throw badRequest(`ids parameter should have at least 1 and not greater than ${max} values.`)
  }
  return ids
}

/** A Content-Length over `max` → the route's 400. */
export function bodySize(length: number | null, max: number, error: () => MissiveError): void {
  if (length !== null && length > max) throw error()
}
