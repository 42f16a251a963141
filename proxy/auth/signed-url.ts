/**
 * Pre-signed URLs (docs/notifications.md, "Pre-signed URLs"): Zaqar's algorithm
 * (zaqar/common/urls.py), so a URL Zaqar signs with the same `signed_url.secret_key` is accepted
 * here and the other way round. The signature is the hex HMAC-SHA256, keyed with the secret, of
 * `<paths sorted, comma-joined>\n<methods sorted, comma-joined>\n<project>\n<expires>` — where
 * `\n` is the two characters backslash and n (Zaqar formats a raw string), and `expires` is
 * `YYYY-MM-DDTHH:MM:SS` in UTC.
 *
 * A request carrying `URL-Signature` is checked before anything else (as Zaqar's
 * `verify_pre_signed_url` hook runs first): a valid signature is the request's credential, bound to
 * the signed project, for the signed methods on the signed paths (and what lies under them) until
 * `URL-Expires`; anything else is 403.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { MissiveError } from '../../shared/errors.js'
import { identityOf, type Identity } from './identity.js'

/** The signed document Zaqar's `create_signed_url` returns. */
export interface SignedUrl {
  paths: string[]
  methods: string[]
  project: string
  expires: string
  signature: string
}

/** `2016-01-01T00:00:00`, as Zaqar's `_DATE_FORMAT` prints a UTC time. */
export const formatExpires = (ms: number): string => new Date(ms).toISOString().slice(0, 19)

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?$/

/** Parses an ISO 8601 time as oslo's `parse_isotime` does for the forms it meets (UTC when no zone); NaN when it is none. */
export function parseExpires(text: string): number {
  const m = ISO.exec(text)
  if (m === null) return NaN
  const [, y, mo, d, h, mi, s, frac, zone] = m
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000))
  if (Number.isNaN(ms) || new Date(ms).getUTCDate() !== Number(d)) return NaN
  if (zone !== undefined && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1
    const digits = zone.slice(1).replace(':', '')
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000
  }
  return ms
}

/** The hex signature of normalised (sorted) paths and methods. */
export function signature(key: string, paths: readonly string[], methods: readonly string[], project: string, expires: string): string {
  const body = `${[...paths].sort().join(',')}\\n${[...methods].sort().join(',')}\\n${project}\\n${expires}`
  return createHmac('sha256', key).update(body, 'utf8').digest('hex')
}

/** Zaqar's `create_signed_url`: throws a 400 with its messages for bad input. */
export function createSignedUrl(key: string, paths: string[], project: string, opts: { expires?: unknown; methods?: unknown }, now: number): SignedUrl {
  const methods = opts.methods === undefined || opts.methods === null ? ['GET'] : opts.methods
  if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string')) throw bad('`methods` should be a list')
  let expiresMs: number
  if (opts.expires === undefined || opts.expires === null) {
    expiresMs = now + 86_400_000
  } else {
    const e = opts.expires
    if (typeof e === 'number' || (typeof e === 'string' && /^\s*[+-]?\d+\s*$/.test(e))) {
      throw bad(`\`expires\` should be date format, for example 2016-01-01T00:00:00, not integer value: ${String(e).trim()}`)
    }
    expiresMs = typeof e === 'string' ? parseExpires(e) : NaN
    if (Number.isNaN(expiresMs)) throw bad(`Unable to parse date string '${String(e)}'`)
  }
  // Whole seconds: what the signed text carries.
  expiresMs = Math.floor(expiresMs / 1000) * 1000
  if (expiresMs <= now) throw bad('`expires` is lower than the current time')
  const expires = formatExpires(expiresMs)
  const sortedPaths = [...paths].sort()
  const sortedMethods = [...(methods as string[])].sort()
  return { paths: sortedPaths, methods: sortedMethods, project, expires, signature: signature(key, sortedPaths, sortedMethods, project, expires) }
}

const bad = (d: string): MissiveError => new MissiveError('bad_request', d)

/** The headers of a signed request, as sent. */
export interface SignedHeaders {
  signature: string
  expires: string | undefined
  methods: string | undefined
  paths: string | undefined
}

const refused = (): MissiveError => new MissiveError('forbidden', 'The pre-signed URL does not allow this request, or has expired.')

/**
 * Checks a signed request; returns the identity it proves (the signed project, no roles) or throws
 * 403. `key` undefined (no secret configured): every signed request is refused.
 */
export function verifySignedRequest(key: string | undefined, h: SignedHeaders, method: string, path: string, project: string | undefined, now: number): Identity {
  if (key === undefined || project === undefined || h.expires === undefined) throw refused()
  const methods = (h.methods ?? '').split(',')
  const paths = (h.paths ?? '').split(',')
  if (!methods.includes(method)) throw refused()
  // Zaqar searches each path in the request path as a regular expression; Missive matches the
  // path itself or what lies under it, so a signed queue never covers another queue's paths.
  if (!paths.some((p) => p !== '' && (path === p || path.startsWith(`${p}/`)))) throw refused()
  const expiresMs = parseExpires(h.expires)
  if (Number.isNaN(expiresMs) || Math.floor(expiresMs / 1000) * 1000 <= now) throw refused()
  const expected = Buffer.from(signature(key, paths, methods, project, formatExpires(Math.floor(expiresMs / 1000) * 1000)), 'utf8')
  const given = Buffer.from(h.signature, 'utf8')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw refused()
  return identityOf(project, [])
}
