/** Reading a request's JSON body under the route's rules (zaqar/common/transport/wsgi/helpers.py, JSON parsing rules). */
import { invalidBody } from '../../shared/errors.js'
import { parseJson } from '../json.js'
import type { ApiRequest } from './context.js'

/** The parsed body; a missing Content-Length is "Request body can not be empty". */
export function requiredBody(req: ApiRequest): unknown {
  if (req.body === null) throw invalidBody('Request body can not be empty')
  return parseJson(req.body)
}

/** The parsed body, or null when the request has none (no or zero Content-Length). */
export function optionalBody(req: ApiRequest): unknown {
  if (req.body === null || req.body.length === 0) return null
  return parseJson(req.body)
}
