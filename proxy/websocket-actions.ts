/**
 * Zaqar's WebSocket actions (zaqar/api/v2/endpoints.py, zaqar/api/v2/request.py) as HTTP calls of
 * our one route table, and our HTTP replies in the bodies Zaqar's WebSocket endpoints answer
 * with. Only the shapes are translated here: every action runs the HTTP handler of its route,
 * with its validation and limits (docs/websocket.md).
 */
import { parse as losslessParse, LosslessNumber } from 'lossless-json'
import { toJson } from './json.js'

/** An HTTP call an action stands for (path relative to `/v2/`). */
export interface HttpCall {
  method: string
  path: string
  query: string
  /** The JSON document sent as the request body; undefined: no body. */
  body?: unknown
}

/** What the frame's body holds, checked per action (Zaqar's schema: `Schema validation failed.`). */
export type FrameBody = Record<string, unknown>

/** Reshapes a successful reply's parsed JSON body (undefined when there was none) into Zaqar's. */
type Shape = (reply: unknown, body: FrameBody) => unknown

interface Action {
  /** Body fields that must be present and strings. */
  strings: readonly string[]
  toHttp(body: FrameBody): HttpCall
  shape: Shape
}

const enc = encodeURIComponent
const q = (body: FrameBody): string => enc(body.queue_name as string)

/** The body fields Zaqar reads as query parameters (zaqar/common/api/utils.py `get_headers`), plus our `wait`. */
function query(body: FrameBody, names: readonly string[]): string {
  const parts: string[] = []
  for (const name of names) {
    const v = body[name]
    if (v === undefined || v === null) continue
    // Odd values (maps, nested lists, int64) become text the route's own check refuses with a 400.
    const text = Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? toJson(x) : String(x))).join(',') : typeof v === 'object' ? toJson(v) : String(v)
    parts.push(`${name}=${enc(text)}`)
  }
  return parts.join('&')
}

/** A message as Zaqar's WebSocket API shows it (zaqar/common/api/utils.py `format_message`). */
function formatMessage(m: unknown): unknown {
  const msg = m as { id: string; href?: string; ttl: number; age: number; body: unknown; checksum?: string }
  const claim = msg.href === undefined ? null : (/[?&]claim_id=([^&]+)/.exec(msg.href)?.[1] ?? null)
  return { id: msg.id, claim_id: claim, ttl: msg.ttl, age: msg.age, body: msg.body, ...(msg.checksum !== undefined && { checksum: msg.checksum }) }
}

const messages = (reply: unknown): unknown[] => ((reply as { messages?: unknown[] } | undefined)?.messages ?? []).map(formatMessage)
const asIs: Shape = (reply) => reply ?? {}
const emptyBody: Shape = () => ({})
const pick = (fields: Record<string, unknown>, names: readonly string[]): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const n of names) if (fields[n] !== undefined) out[n] = fields[n]
  return out
}

export const ACTIONS: Record<string, Action> = {
  queue_list: {
    strings: [],
    toHttp: (b) => ({ method: 'GET', path: 'queues', query: query(b, ['marker', 'limit', 'detailed']) }),
    shape: (r) => ({ queues: (r as { queues?: unknown[] } | undefined)?.queues ?? [] }),
  },
  queue_create: {
    strings: ['queue_name'],
    toHttp: (b) => ({ method: 'PUT', path: `queues/${q(b)}`, query: '', body: b.metadata ?? {} }),
    shape: (_r, b) => `Queue ${b.queue_name as string} created.`,
  },
  queue_delete: { strings: ['queue_name'], toHttp: (b) => ({ method: 'DELETE', path: `queues/${q(b)}`, query: '' }), shape: emptyBody },
  queue_get: { strings: ['queue_name'], toHttp: (b) => ({ method: 'GET', path: `queues/${q(b)}`, query: '' }), shape: asIs },
  queue_get_stats: { strings: ['queue_name'], toHttp: (b) => ({ method: 'GET', path: `queues/${q(b)}/stats`, query: '' }), shape: asIs },
  queue_purge: {
    strings: ['queue_name'],
    // No `resource_types`: no body at all (HTTP's "purge everything").
    toHttp: (b) => ({ method: 'POST', path: `queues/${q(b)}/purge`, query: '', ...(b.resource_types !== undefined && { body: pick(b, ['resource_types']) }) }),
    shape: emptyBody,
  },
  message_list: {
    strings: ['queue_name'],
    toHttp: (b) => ({ method: 'GET', path: `queues/${q(b)}/messages`, query: query(b, ['marker', 'limit', 'echo', 'include_claimed', 'include_delayed', 'wait']) }),
    shape: (r) => ({ messages: messages(r) }),
  },
  message_get: {
    strings: ['queue_name', 'message_id'],
    toHttp: (b) => ({ method: 'GET', path: `queues/${q(b)}/messages/${enc(b.message_id as string)}`, query: '' }),
    // Zaqar's key is `messages` for the single message too.
    shape: (r) => ({ messages: formatMessage(r) }),
  },
  message_get_many: {
    strings: ['queue_name'],
    toHttp: (b) => ({ method: 'GET', path: `queues/${q(b)}/messages`, query: `ids=${enc(idsOf(b.message_ids))}` }),
    shape: (r) => ({ messages: messages(r) }),
  },
  message_post: {
    strings: ['queue_name'],
    toHttp: (b) => ({ method: 'POST', path: `queues/${q(b)}/messages`, query: '', body: pick(b, ['messages']) }),
    shape: (r) => ({ message_ids: ((r as { resources?: string[] } | undefined)?.resources ?? []).map((href) => href.slice(href.lastIndexOf('/') + 1)) }),
  },
  message_delete: {
    strings: ['queue_name', 'message_id'],
    toHttp: (b) => ({ method: 'DELETE', path: `queues/${q(b)}/messages/${enc(b.message_id as string)}`, query: query(b, ['claim_id']) }),
    shape: emptyBody,
  },
  message_delete_many: {
    strings: ['queue_name'],
    toHttp: (b) => ({
      method: 'DELETE',
      path: `queues/${q(b)}/messages`,
      query: [b.message_ids === undefined ? '' : `ids=${enc(idsOf(b.message_ids))}`, query(b, ['claim_ids', 'pop'])].filter((s) => s !== '').join('&'),
    }),
    shape: (r) => (r === undefined ? {} : { messages: (r as { messages: unknown[] }).messages }),
  },
  claim_create: {
    strings: ['queue_name'],
    toHttp: (b) => ({ method: 'POST', path: `queues/${q(b)}/claims`, query: query(b, ['limit', 'wait']), body: pick(b, ['ttl', 'grace']) }),
    shape: (r, _b) => {
      if (r === undefined) return { claim_id: null }
      return { claim_id: claimOf(messages(r)), messages: messages(r) }
    },
  },
  claim_get: {
    strings: ['queue_name', 'claim_id'],
    toHttp: (b) => ({ method: 'GET', path: `queues/${q(b)}/claims/${enc(b.claim_id as string)}`, query: '' }),
    shape: (r) => {
      const c = r as { age: number; ttl: number }
      return { age: c.age, ttl: c.ttl, messages: messages(r) }
    },
  },
  claim_update: {
    strings: ['queue_name', 'claim_id'],
    toHttp: (b) => ({ method: 'PATCH', path: `queues/${q(b)}/claims/${enc(b.claim_id as string)}`, query: '', body: pick(b, ['ttl', 'grace']) }),
    shape: (_r, b) => `Claim ${b.claim_id as string} updated.`,
  },
  claim_delete: {
    strings: ['queue_name', 'claim_id'],
    toHttp: (b) => ({ method: 'DELETE', path: `queues/${q(b)}/claims/${enc(b.claim_id as string)}`, query: '' }),
    shape: (_r, b) => `Claim ${b.claim_id as string} deleted.`,
  },
}

/**
 * Stored (webhook and mail) subscriptions over the WebSocket API: the same HTTP routes as
 * `/v2/queues/<q>/subscriptions` (docs/notifications.md). proxy/websocket.ts uses them for a
 * `subscription_create` naming a `subscriber`, and for a get or delete of an id the socket does
 * not hold; everything else of `subscription_*` is the socket's own push subscriptions.
 */
export const STORED_SUBSCRIPTION_ACTIONS: Record<'subscription_create' | 'subscription_get' | 'subscription_delete', Action> = {
  subscription_create: {
    strings: ['queue_name', 'subscriber'],
    toHttp: (b) => ({ method: 'POST', path: `queues/${q(b)}/subscriptions`, query: '', body: pick(b, ['subscriber', 'ttl', 'options']) }),
    shape: (r, b) => ({ ...(r as Record<string, unknown>), message: `Subscription ${b.queue_name as string} created.` }),
  },
  subscription_get: {
    strings: ['queue_name', 'subscription_id'],
    toHttp: (b) => ({ method: 'GET', path: `queues/${q(b)}/subscriptions/${enc(b.subscription_id as string)}`, query: '' }),
    shape: asIs,
  },
  subscription_delete: {
    strings: ['queue_name', 'subscription_id'],
    toHttp: (b) => ({ method: 'DELETE', path: `queues/${q(b)}/subscriptions/${enc(b.subscription_id as string)}`, query: '' }),
    shape: (_r, b) => `Subscription ${b.subscription_id as string} removed.`,
  },
}

function idsOf(v: unknown): string {
  return Array.isArray(v) ? v.map(String).join(',') : String(v ?? '')
}

function claimOf(ms: unknown[]): string | null {
  return (ms[0] as { claim_id?: string | null } | undefined)?.claim_id ?? null
}

/** Parses a reply's JSON text keeping every number exact (big integers, `1.10`) for re-serialising. */
export function parseReply(text: string): unknown {
  return losslessParse(text, null, {
    parseNumber: (s: string) => (/^-?\d{1,15}$/.test(s) ? Number(s) : new LosslessNumber(s)),
  })
}

/** JSON text of a frame, exact numbers kept (request bodies may hold bigint, replies LosslessNumber). */
export const frameJson = (frame: unknown): string => toJson(frame)
