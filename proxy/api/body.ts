/** Reading a request's JSON body under the route's rules (zaqar/common/transport/wsgi/helpers.py, JSON parsing rules). */
import { invalidBody } from '../../shared/errors.js'
import { parseJson } from '../json.js'
import { isMsgpackType, parseMsgpack } from '../msgpack.js'
import type { ApiRequest } from './context.js'

/** JSON, or MessagePack when the Content-Type says so (proxy/msgpack.ts): the same document either way. */
const parse = (req: ApiRequest, body: Uint8Array): unknown => (isMsgpackType(req.contentType) ? parseMsgpack(body) : parseJson(body))

/** The parsed body; a missing Content-Length is "Request body can not be empty". */
export function requiredBody(req: ApiRequest): unknown {
  if (req.body === null) throw invalidBody('Request body can not be empty')
  return parse(req, req.body)
}

/** The parsed body, or null when the request has none (no or zero Content-Length). */
export function optionalBody(req: ApiRequest): unknown {
  if (req.body === null || req.body.length === 0) return null
  return parse(req, req.body)
}
