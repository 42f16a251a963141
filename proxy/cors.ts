/**
 * CORS, as Zaqar ships it: oslo.middleware's CORS middleware (oslo_middleware/cors.py) with
 * Zaqar's defaults (zaqar/transport/middleware/cors.py), configured by `cors` (docs/auth.md, "CORS").
 * - A request with an allowed `Origin` gets `Vary: Origin`, `Access-Control-Allow-Origin` (the
 *   origin, or `*` when only the wildcard allows it), `Access-Control-Allow-Credentials: true`
 *   (unless turned off) and `Access-Control-Expose-Headers`.
 * - A preflight (`OPTIONS`) is answered 200 before authentication and routing; it carries the
 *   CORS headers only when its origin, `Access-Control-Request-Method` and every
 *   `Access-Control-Request-Headers` entry are allowed (oslo's section 6.2 checks, in its order).
 * With no allowed origin (the default) nothing changes: no header is added, OPTIONS is a 405.
 */
import type { Config } from '../shared/config.js'

/** oslo's simple headers: always allowed in a preflight. */
const SIMPLE_HEADERS = ['Accept', 'Accept-Language', 'Content-Type', 'Cache-Control', 'Content-Language', 'Expires', 'Last-Modified', 'Pragma']

export interface CorsRequest {
  origin: string | undefined
  requestMethod: string | undefined
  requestHeaders: string | undefined
}

export class Cors {
  readonly #origins: Set<string>
  readonly #wildcard: boolean
  readonly #credentials: boolean
  readonly #expose: string
  readonly #maxAge: string
  readonly #methods: Set<string>
  readonly #headers: Set<string>

  constructor(c: Config['cors']) {
    this.#origins = new Set(c.allowedOrigins)
    this.#wildcard = this.#origins.has('*')
    this.#credentials = c.allowCredentials
    this.#expose = c.exposeHeaders.join(',')
    this.#maxAge = c.maxAge > 0 ? String(c.maxAge) : ''
    this.#methods = new Set(c.allowMethods)
    this.#headers = new Set([...c.allowHeaders, ...SIMPLE_HEADERS].map((h) => h.toUpperCase()))
  }

  /** A `Cors` when `cors.allowedOrigins` names any origin, else undefined (CORS off). */
  static from(config: Config): Cors | undefined {
    return config.cors.allowedOrigins.length === 0 ? undefined : new Cors(config.cors)
  }

  /** The origin to announce: the request's own, `*` when only the wildcard allows it, or undefined. */
  #allowed(origin: string | undefined): string | undefined {
    if (origin === undefined) return undefined
    if (this.#origins.has(origin)) return origin
    return this.#wildcard ? '*' : undefined
  }

  /** Headers for an actual (non-preflight) request's reply; empty when the origin is not allowed. */
  responseHeaders(origin: string | undefined): [string, string][] {
    const allowed = this.#allowed(origin)
    if (allowed === undefined) return []
    const h: [string, string][] = [
      ['vary', 'Origin'],
      ['access-control-allow-origin', allowed],
    ]
    if (this.#credentials) h.push(['access-control-allow-credentials', 'true'])
    if (this.#expose !== '') h.push(['access-control-expose-headers', this.#expose])
    return h
  }

  /** The headers of a preflight's 200 (none when any check fails, as oslo). */
  preflightHeaders(r: CorsRequest): [string, string][] {
    const allowed = this.#allowed(r.origin)
    if (allowed === undefined || r.requestMethod === undefined) return []
    if (!this.#methods.has(r.requestMethod)) return []
    const requested = (r.requestHeaders ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
    for (const h of requested) if (!this.#headers.has(h.toUpperCase())) return []
    const h: [string, string][] = [
      ['vary', 'Origin'],
      ['access-control-allow-origin', allowed],
    ]
    if (this.#credentials) h.push(['access-control-allow-credentials', 'true'])
    if (this.#maxAge !== '') h.push(['access-control-max-age', this.#maxAge])
    h.push(['access-control-allow-methods', r.requestMethod])
    if (requested.length > 0) h.push(['access-control-allow-headers', requested.join(',')])
    return h
  }
}
