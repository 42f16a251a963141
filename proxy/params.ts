/**
 * Query-string parameters the Zaqar way (zaqar/common/transport/wsgi/helpers.py): blank values count as absent, booleans take
 * Python's spellings, lists are comma-separated, repeated, or both (falcon's `get_param_as_list`
 * with Zaqar's `auto_parse_qs_csv`: `ids=a,b&ids=c` is `[a, b, c]`). Order is kept, because next
 * links repeat the client's parameters in the order it sent them.
 */
import { MissiveError } from '../shared/errors.js'

export class Query {
  /** Non-blank parameters in the order sent; a repeated name keeps its last value (falcon's `get_param`). */
  readonly entries: [string, string][]
  /** Every value of each name sent more than once, in order; undefined when none was (the usual case). */
  readonly #repeated: Map<string, string[]> | undefined

  constructor(raw: string) {
    if (raw === '') {
      // Most requests: nothing to parse, nothing to allocate.
      this.entries = []
      this.#repeated = undefined
      return
    }
    const seen: Seen = { values: new Map(), repeated: undefined }
    if (!parseSimple(raw, seen)) {
      for (const [k, v] of new URLSearchParams(raw)) if (v !== '') add(seen, k, v)
    }
    this.entries = [...seen.values]
    this.#repeated = seen.repeated
  }

  get(name: string): string | undefined {
    for (const [k, v] of this.entries) if (k === name) return v
    return undefined
  }

  has(name: string): boolean {
    return this.get(name) !== undefined
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.get(name)
    if (v === undefined) return fallback
    const b = parseBool(v)
    if (b === undefined) throw invalidParam(name, 'boolean')
    return b
  }

  int(name: string, fallback: number): number {
    const v = this.get(name)
    if (v === undefined) return fallback
    if (!/^\s*[+-]?\d+\s*$/.test(v)) throw invalidParam(name, 'integer')
    return Number(v)
  }

  /** Every value of `name`, each split on commas, blanks dropped; undefined when none is left. */
  list(name: string): string[] | undefined {
    const all = this.#repeated?.get(name)
    if (all === undefined) {
      const v = this.get(name)
      return v === undefined ? undefined : splitList(v)
    }
    const items: string[] = []
    for (const v of all) {
      const part = splitList(v)
      if (part !== undefined) items.push(...part)
    }
    return items.length > 0 ? items : undefined
  }

  /**
   * The next-page href: the recognised parameters the client sent, in its order (booleans as
   * true/false), then `extra` ones it did not send, with `marker` set in place or appended last.
   */
  nextLink(path: string, marker: string, kind: (name: string) => ParamKind | undefined, extra: [string, string][] = []): string {
    const out: [string, string][] = []
    for (const [k, v] of this.entries) {
      const t = k === 'marker' ? 'string' : kind(k)
      if (t === undefined) continue
      const forced = extra.find(([e]) => e === k)
      out.push([k, k === 'marker' ? marker : forced ? forced[1] : t === 'bool' ? String(parseBool(v)) : v])
    }
    for (const [k, v] of extra) if (!out.some(([o]) => o === k)) out.push([k, v])
    if (!out.some(([o]) => o === 'marker')) out.push(['marker', marker])
    return `${path}?${out.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`
  }
}

function splitList(v: string): string[] | undefined {
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '')
  return items.length > 0 ? items : undefined
}

/** The parse in progress: last value per name, and every value of names seen twice. */
interface Seen {
  values: Map<string, string>
  repeated: Map<string, string[]> | undefined
}

function add(seen: Seen, k: string, v: string): void {
  const prev = seen.values.get(k)
  if (prev !== undefined) {
    // Only a repeated name pays for the list.
    seen.repeated ??= new Map()
    const all = seen.repeated.get(k)
    if (all === undefined) seen.repeated.set(k, [prev, v])
    else all.push(v)
  }
  seen.values.set(k, v)
}

/** A `%` that does not escape an ASCII byte (`%00` … `%7F`). */
const NON_ASCII_ESCAPE_RE = /%(?![0-7][0-9A-Fa-f])/

// Not yet in TypeScript's ES2022 lib; in Node since 20.
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed()

/**
 * URLSearchParams' parsing for the common query (a bulk delete's ids: 3.5× faster): a
 * well-formed string (URLSearchParams' UTF-8 round trip is then the identity) whose `%`s, if any,
 * escape ASCII bytes. Returns false, having added nothing, for anything else: the caller then
 * lets URLSearchParams do it, so the results are the same for every input.
 */
function parseSimple(raw: string, seen: Seen): boolean {
  // includes() and isWellFormed() are native scans; the regex only runs when there is a `%`.
  if (raw.includes('%') && NON_ASCII_ESCAPE_RE.test(raw)) return false
  if (!isWellFormed(raw)) return false
  for (const part of raw.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const v = eq < 0 ? '' : formDecode(part.slice(eq + 1))
    if (v !== '') add(seen, formDecode(eq < 0 ? part : part.slice(0, eq)), v)
  }
  return true
}

/** `+` is a space, then %-escapes (all of ASCII bytes here: decodeURIComponent cannot throw). */
function formDecode(s: string): string {
  if (s.includes('+')) s = s.replaceAll('+', ' ')
  return s.includes('%') ? decodeURIComponent(s) : s
}

export type ParamKind = 'bool' | 'string'

const TRUE = new Set(['true', 'True', 't', 'yes', 'y', '1', 'on'])
const FALSE = new Set(['false', 'False', 'f', 'no', 'n', '0', 'off'])

export function parseBool(v: string): boolean | undefined {
  return TRUE.has(v) ? true : FALSE.has(v) ? false : undefined
}

function invalidParam(name: string, type: 'boolean' | 'integer'): MissiveError {
  const what = type === 'boolean' ? 'a boolean' : 'an integer'
  return new MissiveError('invalid_parameter', `The "${name}" parameter is invalid. The value must be ${what}.`)
}
