/**
 * `POST /v2/queues/<q>/share` (zaqar/transport/wsgi/v2_0/urls.py): signs a URL for the queue's
 * messages, subscriptions or claims (proxy/auth/signed-url.ts; docs/notifications.md,
 * "Pre-signed URLs").
 */
import { badRequest } from '../../shared/errors.js'
import { isObject } from '../json.js'
import { createSignedUrl } from '../auth/signed-url.js'
import { json, type Reply } from '../transport.js'
import { requiredBody } from './body.js'
import { queueHref, type ApiRequest } from './context.js'

const KNOWN_KEYS = new Set(['methods', 'expires', 'paths'])
const VALID_PATHS = new Set(['messages', 'subscriptions', 'claims'])

/** Python's repr of a set of strings, for Zaqar's messages. */
const pySet = (items: string[]): string => `{${items.map((s) => `'${s.replaceAll("'", "\\'")}'`).join(', ')}}`

export function shareQueue(req: ApiRequest): Reply {
  const doc = requiredBody(req)
  if (!isObject(doc)) throw badRequest('Document type not supported.')
  const unknown = Object.keys(doc).filter((k) => !KNOWN_KEYS.has(k))
  if (unknown.length > 0) throw badRequest(`Unknown keys: ${pySet(unknown)}`)
  const key = req.config.signed_url.secret_key
  if (key === undefined) throw badRequest("The `key` can't be None")
  const base = queueHref(req)
  let paths: string[]
  const asked = doc.paths
  if (asked === undefined || asked === null || (Array.isArray(asked) && asked.length === 0) || asked === '') {
    paths = [`${base}/messages`]
  } else {
    if (!Array.isArray(asked) || !asked.every((p): p is string => typeof p === 'string')) throw badRequest('`paths` must be a non-empty list')
    const invalid = [...new Set(asked)].filter((p) => !VALID_PATHS.has(p))
    if (invalid.length > 0) throw badRequest(`Invalid paths: ${pySet(invalid)}`)
    paths = asked.map((p) => `${base}/${p}`)
  }
  return json(200, createSignedUrl(key, paths, req.project, { expires: doc.expires, methods: doc.methods }, Date.now()))
}
