/**
 * Request-body JSON: parsed once in the proxy, exactly.
 *
 * Python's json (what Zaqar uses) keeps integers of any size exactly and tells `60` from
 * `60.0`; `JSON.parse` does neither. A message queue must hand bodies back exactly as they came,
 * so a body holding a float or an integer beyond 2^53 takes the exact path (lossless-json: big
 * integers as `bigint`, other non-integers as `LosslessNumber`, which re-serialise to the very
 * same text). The common body — only small integers — takes `JSON.parse`, about 5× faster. A
 * one-pass scan of the text outside string literals decides which path applies.
 */
import { isLosslessNumber, LosslessNumber, parse as losslessParse, stringify as losslessStringify } from 'lossless-json'
import { invalidBody, MissiveError } from '../shared/errors.js'
import { MAX_JSON_DEPTH } from '../shared/json-depth.js'

const decoder = new TextDecoder('utf-8', { fatal: true })

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

const NOT_PARSED = 'Request body could not be parsed.'
const TOO_LARGE = 'JSON contains integer that is too large.'

/**
 * Deeper documents are refused: recursion over them (ours, the parser's, the RPC encoder's) must
 * stay bounded. One limit for the whole path (shared/json-depth.ts).
 */
export const MAX_DEPTH = MAX_JSON_DEPTH

/**
 * True when the text holds a number token that JSON.parse would not keep exactly. Also refuses
 * nesting deeper than MAX_DEPTH.
 */
function needsExactPath(text: string): boolean {
  const n = text.length
  let i = 0
  let depth = 0
  let exact = false
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 0x5b || c === 0x7b /* [ { */) {
      if (++depth > MAX_DEPTH) throw invalidBody(`JSON nesting is deeper than ${MAX_DEPTH} levels.`)
      i++
    } else if (c === 0x5d || c === 0x7d /* ] } */) {
      depth--
      i++
    } else if (c === 0x22 /* " */) {
      // Skip the string: jump from quote to quote with indexOf (a native scan; message bodies are
      // mostly string text) until one is not escaped, i.e. follows an even run of backslashes.
      let q = text.indexOf('"', i + 1)
      while (q !== -1) {
        let k = q - 1
        while (text.charCodeAt(k) === 0x5c /* \ */) k--
        if ((q - 1 - k) % 2 === 0) break
        q = text.indexOf('"', q + 1)
      }
      i = q === -1 ? n : q + 1
    } else if ((c >= 0x30 && c <= 0x39) || c === 0x2d /* - */) {
      let digits = 0
      while (i < n) {
        const d = text.charCodeAt(i)
        if (d >= 0x30 && d <= 0x39) digits++
        else if (d === 0x2e || d === 0x65 || d === 0x45 /* . e E */) exact = true
        else if (d !== 0x2d && d !== 0x2b) break
        i++
      }
      if (digits > 15) exact = true
    } else i++
  }
  return exact
}

function parseNumber(text: string): number | bigint | LosslessNumber {
  if (/^-?\d+$/.test(text)) {
    const big = BigInt(text)
    if (big < INT64_MIN || big > INT64_MAX) throw new MissiveError('invalid_body', TOO_LARGE)
    return big >= -(2n ** 53n) && big <= 2n ** 53n ? Number(text) : big
  }
  return new LosslessNumber(text)
}

/** Decodes UTF-8 (strictly) and parses JSON. Any failure is a 400 "Invalid request body". */
export function parseJson(bytes: Uint8Array): unknown {
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    throw invalidBody(NOT_PARSED)
  }
  let doc: unknown
  try {
    doc = needsExactPath(text)
      ? losslessParse(text, null, {
          parseNumber,
          // Python keeps the last of duplicate keys; so does JSON.parse. Keep the two paths alike.
          onDuplicateKey: ({ newValue }) => newValue,
        })
      : JSON.parse(text)
  } catch (err) {
    if (err instanceof MissiveError) throw err
    throw invalidBody(NOT_PARSED)
  }
  if (doc === null || typeof doc !== 'object') throw invalidBody(NOT_PARSED)
  return doc
}

/** Serialises a parsed value back to JSON text, keeping exact numbers exact. */
export function toJson(value: unknown): string {
  // JSON.stringify is exact for everything JSON.parse produced; the exact path's values need
  // lossless-json's stringify (bigint and LosslessNumber).
  return hasExactNumbers(value) ? (losslessStringify(value) as string) : JSON.stringify(value)
}

function hasExactNumbers(v: unknown): boolean {
  if (typeof v === 'bigint' || isLosslessNumber(v)) return true
  if (v === null || typeof v !== 'object') return false
  if (Array.isArray(v)) return v.some(hasExactNumbers)
  for (const k in v) if (hasExactNumbers((v as Record<string, unknown>)[k])) return true
  return false
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !isLosslessNumber(v)
}

/**
 * Reads an optional integer field the way Zaqar's `sanitize` does: JSON `true`/`false` count
 * as 1/0 (Python's bool is an int), floats such as `60.0` are refused. Returns `undefined` when
 * the field is absent. Huge integers come back as ±Infinity so range checks reject them.
 */
export function intField(doc: Record<string, unknown>, name: string): number | undefined {
  if (!Object.hasOwn(doc, name)) return undefined
  const v = doc[name]
  if (typeof v === 'number' && Number.isInteger(v)) return v
  if (typeof v === 'bigint') return v > 0n ? Infinity : -Infinity
  if (typeof v === 'boolean') return v ? 1 : 0
  throw invalidBody(`The value of the "${name}" field must be a int.`)
}
