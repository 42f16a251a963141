/**
 * MessagePack over HTTP (docs/api.md, "MessagePack"): request bodies sent as
 * `Content-Type: application/x-msgpack` and replies for `Accept: application/x-msgpack`.
 *
 * The API stays JSON inside: a MessagePack body is decoded to the very values the JSON parser
 * would give (proxy/json.ts) and then goes through the same validation and limits; a reply is
 * built as JSON text by the handlers and re-encoded here. What JSON cannot hold is refused with
 * a 400: binary and extension values, non-string map keys, NaN and infinities, integers beyond
 * int64, nesting deeper than the JSON limit, bytes after the value.
 */
import { Decoder, Encoder } from '@msgpack/msgpack'
import { parse as losslessParse } from 'lossless-json'
import { invalidBody } from '../shared/errors.js'
import { MAX_JSON_DEPTH } from '../shared/json-depth.js'
import type { Reply } from './transport.js'

/** The media type Missive answers with; requests may also say `application/msgpack` or `application/vnd.msgpack`. */
export const MSGPACK_TYPE = 'application/x-msgpack'

const MSGPACK_TYPES = new Set([MSGPACK_TYPE, 'application/msgpack', 'application/vnd.msgpack'])

/** True when `range` (a media type without parameters, lower-case) names MessagePack. */
export const isMsgpackRange = (range: string): boolean => MSGPACK_TYPES.has(range)

/** True when a Content-Type header names MessagePack (parameters ignored). */
export function isMsgpackType(contentType: string): boolean {
  // Most requests are JSON: one native scan decides, nothing allocated.
  if (!contentType.includes('msgpack')) return false
  return MSGPACK_TYPES.has(contentType.split(';')[0]!.trim().toLowerCase())
}

const NOT_PARSED = 'Request body could not be parsed.'
const INT64_MAX = 2n ** 63n - 1n
const SAFE = 2n ** 53n

function noNumberKeys(key: unknown): string {
  if (typeof key !== 'string') throw invalidBody('MessagePack map keys must be strings.')
  return key
}

/**
 * Decodes a MessagePack request body to a JSON document (an object or an array), exactly as
 * `parseJson` would have parsed its JSON form; any failure is a 400 "Invalid request body".
 */
export function parseMsgpack(bytes: Uint8Array): unknown {
  // No container can have more entries than the body has bytes: a header announcing 2^32 items
  // in a few bytes is refused before anything is allocated for it.
  const decoder = new Decoder({ useBigInt64: true, maxArrayLength: bytes.length, maxMapLength: bytes.length, mapKeyConverter: noNumberKeys })
  let doc: unknown
  try {
    doc = decoder.decode(bytes)
  } catch (err) {
    if (err instanceof Error && err.name === 'MissiveError') throw err
    throw invalidBody(NOT_PARSED)
  }
  if (doc === null || typeof doc !== 'object' || !(Array.isArray(doc) || Object.getPrototypeOf(doc) === Object.prototype)) {
    throw invalidBody(NOT_PARSED)
  }
  return asJson(doc, 1)
}

/** Checks a decoded value against what JSON can hold, turning 64-bit integers into JSON's forms. */
function asJson(v: unknown, depth: number): unknown {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v
    case 'number':
      if (!Number.isFinite(v)) throw invalidBody('MessagePack NaN and infinities have no JSON form.')
      return v
    case 'bigint':
      if (v > INT64_MAX) throw invalidBody('JSON contains integer that is too large.')
      // As the JSON parser: exact integers beyond 2^53 stay bigint (proxy/json.ts).
      return v >= -SAFE && v <= SAFE ? Number(v) : v
    case 'object': {
      if (v === null) return v
      if (depth > MAX_JSON_DEPTH) throw invalidBody(`JSON nesting is deeper than ${MAX_JSON_DEPTH} levels.`)
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) v[i] = asJson(v[i], depth + 1)
        return v
      }
      // Binary (Uint8Array), timestamps (Date) and other extensions (ExtData) have no JSON form.
      if (Object.getPrototypeOf(v) !== Object.prototype) throw invalidBody('MessagePack binary and extension values have no JSON form.')
      const o = v as Record<string, unknown>
      for (const k of Object.keys(o)) o[k] = asJson(o[k], depth + 1)
      return o
    }
    default:
      throw invalidBody(NOT_PARSED)
  }
}

const encoder = new Encoder({ useBigInt64: true })

/** JSON text (a reply body) as MessagePack: exact integers as int64, other numbers as float64. */
export function jsonToMsgpack(text: string): Uint8Array {
  // The reply's exact numbers (a body's big integers, `1.10`) parse as bigint / LosslessNumber.
  const value = losslessParse(text, null, {
    parseNumber: (s: string) => {
      if (!/^-?\d+$/.test(s)) return Number(s)
      const big = BigInt(s)
      return big >= -SAFE && big <= SAFE ? Number(s) : big
    },
  })
  return encoder.encode(value)
}

/** A handler's JSON reply re-encoded for a client that asked for MessagePack; other replies as they are. */
export function msgpackReply(reply: Reply): Reply {
  if (reply.body === undefined || reply.contentType !== undefined) return reply
  return { ...reply, bytes: jsonToMsgpack(reply.body), contentType: MSGPACK_TYPE }
}
