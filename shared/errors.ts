/**
 * The one error vocabulary of Missive. Every layer throws `MissiveError`; the transport maps it
 * to HTTP once (proxy/transport.ts). Codes are stable strings that cross the RPC boundary, so a
 * worker's error arrives in the proxy as the same code with the same status and title.
 */

/** Stable error codes with their HTTP status and the Zaqar title used on the wire. */
export const ERRORS = {
  bad_request: { status: 400, title: 'Invalid API request' },
  invalid_body: { status: 400, title: 'Invalid request body' },
  invalid_parameter: { status: 400, title: 'Invalid parameter' },
  invalid_queue_name: { status: 400, title: 'Invalid queue identification' },
  missing_header: { status: 400, title: 'Missing header value' },
  bad_client_id: { status: 400, title: 'Wrong UUID value' },
  missing_project: { status: 400, title: 'Project-Id Missing' },
  empty_project: { status: 400, title: 'Empty project header not allowed' },
  invalid_content_type: { status: 400, title: 'Invalid Content-Type' },
  /** Single-message delete: a claim id was given but does not match (400 in Zaqar). */
  claim_invalid: { status: 400, title: 'Unable to delete' },
  /** Single-message delete: message is claimed and the caller holds no valid claim. */
  message_claimed: { status: 403, title: 'Unable to delete' },
  /** No credential, or one that proves nothing (docs/auth.md). */
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Not authorized' },
  not_found: { status: 404, title: 'Not found' },
  route_not_found: { status: 404, title: '404 Not Found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  not_acceptable: { status: 406, title: 'Unacceptable' },
  conflict: { status: 409, title: 'Resource conflict' },
  payload_too_large: { status: 413, title: 'Request entity too large' },
  uri_too_long: { status: 414, title: 'URI too long' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  header_too_large: { status: 431, title: 'Request header fields too large' },
  /** A project over its rate limit (docs/limits.md), or too many long polls waiting (docs/api.md, "Long polling"). */
  too_many_requests: { status: 429, title: 'Too many requests' },
  /** A project over a quota: queues per project, messages per queue (docs/limits.md, "Quotas"). */
  quota_exceeded: { status: 403, title: 'Quota exceeded' },
  internal: { status: 500, title: 'Internal server error' },
  unavailable: { status: 503, title: 'Service temporarily unavailable' },
} as const satisfies Record<string, { status: number; title: string }>

export type ErrorCode = keyof typeof ERRORS

/** An error with a stable code. `description` is what the client reads; keep secrets out of it. */
export class MissiveError extends Error {
  readonly code: ErrorCode
  readonly description: string | undefined
  /** Overrides the code's default title (Zaqar reuses codes with other titles in places). */
  readonly title: string
  /** Seconds the client should wait before retrying (503, 429). */
  readonly retryAfter: number | undefined

  constructor(
    code: ErrorCode,
    description?: string,
    opts: { title?: string; retryAfter?: number; cause?: unknown } = {},
  ) {
    super(description ?? ERRORS[code].title, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'MissiveError'
    this.code = code
    this.description = description
    this.title = opts.title ?? ERRORS[code].title
    this.retryAfter = opts.retryAfter
  }

  get status(): number {
    return ERRORS[this.code].status
  }

  /** The JSON error body: `{"title","description"}`, description omitted when absent. */
  toBody(): { title: string; description?: string } {
    return this.description === undefined ? { title: this.title } : { title: this.title, description: this.description }
  }

  /** A plain form that crosses the RPC boundary. */
  toWire(): WireError {
    return { code: this.code, description: this.description, title: this.title, retryAfter: this.retryAfter }
  }

  static fromWire(w: WireError): MissiveError {
    const code: ErrorCode = w.code in ERRORS ? (w.code as ErrorCode) : 'internal'
    return new MissiveError(code, w.description ?? undefined, { title: w.title ?? undefined, retryAfter: w.retryAfter ?? undefined })
  }
}

export interface WireError {
  code: string
  description?: string | undefined
  title?: string | undefined
  retryAfter?: number | undefined
  /** A typed storage error's kind and facts (shared/storage/errors.ts, `errorFromWire`). */
  kind?: string | undefined
  data?: Record<string, unknown> | undefined
}

/** Shorthands for the errors thrown most. */
export const badRequest = (description: string): MissiveError => new MissiveError('bad_request', description)
export const invalidBody = (description: string): MissiveError => new MissiveError('invalid_body', description)
export const notFound = (description: string): MissiveError => new MissiveError('not_found', description)
export const unavailable = (description: string, retryAfter = 1, cause?: unknown): MissiveError =>
  new MissiveError('unavailable', description, { retryAfter, cause })
