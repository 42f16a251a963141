/**
 * The transport's one choke point for what every request shares: the checks of zaqar/common/transport/wsgi/helpers.py in
 * Zaqar's order, request ids, and the mapping of errors to HTTP (done here and nowhere else).
 */
import { randomUUID } from 'node:crypto'
import type { Limits } from '../shared/config.js'
import { ERRORS, MissiveError } from '../shared/errors.js'
import type { Logger } from '../shared/log.js'
import { isId } from '../shared/ids.js'
import { isQueueName } from '../shared/storage/queue-policy.js'
import { StorageError } from '../shared/storage/errors.js'
import { isMsgpackRange } from './msgpack.js'
import { storageErrorHttp } from './storage-errors.js'

/** What a handler returns; the app writes it. `body` is JSON text. */
export interface Reply {
  status: number
  body?: string
  /** Names lower-case, as Zaqar (falcon) writes them: clients compare them case-sensitively. */
  headers?: [string, string][]
  /** Content-Type when it is not application/json. */
  contentType?: string
  /** Written instead of `body` when set: `body` re-encoded as MessagePack (proxy/msgpack.ts). */
  bytes?: Uint8Array
}

export const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  204: '204 No Content',
  300: '300 Multiple Choices',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  406: '406 Not Acceptable',
  409: '409 Conflict',
  413: '413 Payload Too Large',
  414: '414 URI Too Long',
  415: '415 Unsupported Media Type',
  429: '429 Too Many Requests',
  431: '431 Request Header Fields Too Large',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
}

export const json = (status: number, value: unknown, headers?: [string, string][]): Reply => ({
  status,
  body: JSON.stringify(value),
  headers,
})

export const empty = (status: number, headers?: [string, string][]): Reply => ({ status, headers })

/** Maps any thrown value to a reply. Unknown errors are logged with the request id: a 500. */
export function errorReply(err: unknown, log: Logger, requestId: string): Reply {
  if (err instanceof MissiveError) {
    const headers: [string, string][] = []
    if (err.retryAfter !== undefined) headers.push(['retry-after', String(Math.max(1, Math.ceil(err.retryAfter)))])
    if (err.status >= 500) log.warn({ requestId, code: err.code, err: err.cause ?? err.message }, 'request failed')
    // A store's typed error is worded here, as Zaqar words it (storage-errors.ts).
    if (err instanceof StorageError) {
      const http = storageErrorHttp(err)
      return { status: http.status, body: JSON.stringify({ title: http.title, description: http.description }), headers }
    }
    return { status: err.status, body: JSON.stringify(err.toBody()), headers }
  }
  log.error({ requestId, err }, 'unhandled error')
  return {
    status: 500,
    body: JSON.stringify({ title: ERRORS.internal.title, description: `Unexpected error; request id ${requestId}.` }),
  }
}

// Zaqar's request ids are `req-<uuid4>`; accept that shape (any case) from clients, nothing else,
// so a client cannot inject arbitrary text into our logs.
const REQUEST_ID_RE = /^req-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

/** The client's `X-Openstack-Request-Id` when well-formed, else a new one. */
export function requestIdFrom(header: string): string {
  return header !== '' && REQUEST_ID_RE.test(header) ? header : `req-${randomUUID()}`
}

/** Step 2: a form-encoded body is refused (the only content type Zaqar checks). */
export function checkContentType(contentType: string, hasBody: boolean): void {
  if (hasBody && contentType.trim().toLowerCase() === 'application/x-www-form-urlencoded') {
    throw new MissiveError(
      'invalid_content_type',
      'Endpoint does not accept `application/x-www-form-urlencoded` content; currently supported media type is `application/json`; specify proper client-side media type with the "Content-Type" header.',
    )
  }
}

/**
 * Step 3: the client must accept application/json (a missing Accept header does) or MessagePack
 * (docs/api.md, "MessagePack"). Returns true when MessagePack is preferred (a higher q than any
 * range JSON matches; JSON wins ties).
 */
export function checkAccept(accept: string): boolean {
  // What clients send (python-zaqarclient, through requests: */*): no parsing, nothing allocated.
  if (accept === '' || accept === 'application/json' || accept === '*/*') return false
  let json = -1
  let msgpack = -1
  for (const part of accept.split(',')) {
    const [range, ...params] = part.split(';').map((s) => s.trim().toLowerCase())
    const qParam = params.find((p) => p.startsWith('q='))
    const q = qParam === undefined ? 1 : Number(qParam.slice(2))
    if (q === 0) continue
    const weight = Number.isNaN(q) ? 1 : q
    if (range === '*/*' || range === 'application/*' || range === 'application/json') json = Math.max(json, weight)
    else if (range !== undefined && isMsgpackRange(range)) msgpack = Math.max(msgpack, weight)
  }
  if (json < 0 && msgpack < 0) {
    throw new MissiveError('not_acceptable', 'Endpoint only serves `application/json`; specify client-side media type support with the "Accept" header.', {
      title: 'Media type not acceptable',
    })
  }
  return msgpack > json
}

const HEX32_RE = /^[0-9a-f]{32}$/

/**
 * Step 4: Client-ID. Returns the canonical lowercase hyphenated form (strict mode) used for echo
 * comparisons, or the value as sent (off mode). Python's `uuid.UUID` accepts braces, `urn:uuid:`
 * and hyphens anywhere; we accept the same.
 */
export function checkClientId(value: string | undefined, limits: Limits): string {
  if (value === undefined) throw new MissiveError('missing_header', 'The "Client-ID" header is required.')
  if (limits.client_id_uuid_safe === 'off') {
    if (value.length < limits.min_length_client_id || value.length > limits.max_length_client_id) {
      throw new MissiveError('bad_client_id', undefined, {
        title: `Length of client id must be at least ${limits.min_length_client_id} and no greater than ${limits.max_length_client_id}.`,
      })
    }
    return value
  }
  // Nearly every client sends the canonical form already: return it as is (the general path
  // below allocates a string per step).
  if (isId(value)) return value
  let hex = value.trim().toLowerCase()
  if (hex.startsWith('urn:')) hex = hex.slice(4)
  if (hex.startsWith('uuid:')) hex = hex.slice(5)
  hex = hex.replace(/^\{/, '').replace(/\}$/, '').replaceAll('-', '')
  if (!HEX32_RE.test(hex)) throw new MissiveError('bad_client_id', 'Malformed hexadecimal UUID.')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** Step 5: X-Project-ID is required on versioned paths and may not be empty. */
export function checkProject(value: string | undefined): string {
  if (value === undefined) throw new MissiveError('missing_project', 'The header X-PROJECT-ID was missing')
  if (value === '') {
    throw new MissiveError('empty_project', 'X-PROJECT-ID cannot be an empty string. Specify the right header X-PROJECT-ID and retry.')
  }
  // HTTP forbids control characters in a header (RFC 9110 §5.5) and a WebSocket frame must not
  // smuggle one in: topics are stored under projects that start with one (proxy/topic-space.ts).
  if (CONTROL_RE.test(value)) throw new MissiveError('bad_request', 'X-PROJECT-ID may not contain control characters.')
  return value
}

const CONTROL_RE = /[\u0000-\u0008\u000a-\u001f\u007f]/

/** Step 7: queue name and project id on routes that name a queue. */
export function checkQueueIdentity(queue: string, project: string): void {
  if (!isQueueName(queue) || project.length > 256) {
    throw new MissiveError('invalid_queue_name', 'The format of the submitted queue name or project id is not valid.')
  }
}

/** Step 7 for topics: the topic name and project id on routes that name a topic (zaqar/common/transport/wsgi/helpers.py). */
export function checkTopicIdentity(topic: string, project: string): void {
  if (!isQueueName(topic) || project.length > 256) {
    throw new MissiveError('bad_request', 'The format of the submitted topic name or project id is not valid.', { title: 'Invalid topic identification' })
  }
}
