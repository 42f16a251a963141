/**
 * The RPC wire's msgpack decoder: one frame's message, read straight out of the received bytes.
 *
 * @msgpack/msgpack's `Decoder` costs ~1.2 µs for the reply to a post (`{id, r: [id]}`) and
 * ~2 µs for a post of one message: it sets up a state stack and checks per value that a plain
 * recursive reader does not need. This reader gives **the same values** as the library's decoder
 * configured as the wire configures it (tests/rpc/msgpack-reader.test.ts decodes the same bytes
 * with both): maps as plain objects (string or number keys; a `__proto__` key refused, as the
 * library refuses it), 64-bit integers as numbers, bin as a view of the received bytes, strings
 * as the library decodes them (valid UTF-8 natively; anything else — invalid bytes, or the
 * three-byte lone surrogates the library's encoder writes — by the library's own rules), and
 * extensions through the wire's extension codec. Bytes that do not decode (truncated, an unused
 * type byte, bytes left after the value) throw, as they do in the library.
 *
 * Unlike the library's iterative decoder, this one recurses: nesting is refused beyond
 * `maxDepth`, at least what the encoder may write (shared/json-depth.ts), so a frame can never
 * exhaust the stack.
 */
import type { ExtensionCodec } from '@msgpack/msgpack'

/** Strings up to this many bytes are looked up in a cache when ASCII (a native call costs more). */
const SHORT_STRING = 16

/** Slots of the short-string cache (a power of two). */
const SHORT_CACHE_SLOTS = 1024

/** The library decodes strings of up to this many bytes with its JavaScript loop, longer ones with `TextDecoder`. */
const LIBRARY_TEXT_DECODER_THRESHOLD = 200

const textDecoder = new TextDecoder()

/** Reads one msgpack value that fills `bytes[start, end)` exactly. */
export class MsgpackReader {
  readonly #codec: ExtensionCodec
  readonly #maxDepth: number
  #b: Buffer = Buffer.alloc(0)
  #pos = 0
  #end = 0
  /** Short ASCII strings by a hash of their bytes (each slot holds the last one seen). */
  readonly #short: (string | undefined)[] = new Array<string | undefined>(SHORT_CACHE_SLOTS)

  constructor(opts: { extensionCodec: ExtensionCodec; maxDepth: number }) {
    this.#codec = opts.extensionCodec
    this.#maxDepth = opts.maxDepth
  }

  decode(bytes: Buffer, start = 0, end = bytes.length): unknown {
    this.#b = bytes
    this.#pos = start
    this.#end = end
    const value = this.#value(0)
    if (this.#pos !== end) throw new RangeError(`Extra ${end - this.#pos} of ${end - start} byte(s) found at buffer[${this.#pos}]`)
    return value
  }

  /** Moves past `n` bytes and returns where they start; throws when the frame has fewer. */
  #take(n: number): number {
    const p = this.#pos
    if (p + n > this.#end) throw new RangeError('Insufficient data')
    this.#pos = p + n
    return p
  }

  #value(depth: number): unknown {
    if (depth > this.#maxDepth) throw new RangeError(`Too deep: more than ${this.#maxDepth} levels`)
    const b = this.#b
    const t = b[this.#take(1)]!
    if (t < 0x80) return t
    if (t < 0x90) return this.#map(t - 0x80, depth)
    if (t < 0xa0) return this.#array(t - 0x90, depth)
    if (t < 0xc0) return this.#string(t - 0xa0)
    if (t >= 0xe0) return t - 0x100
    switch (t) {
      case 0xc0:
        return null
      case 0xc2:
        return false
      case 0xc3:
        return true
      case 0xc4:
        return this.#binary(b[this.#take(1)]!)
      case 0xc5:
        return this.#binary(b.readUInt16BE(this.#take(2)))
      case 0xc6:
        return this.#binary(b.readUInt32BE(this.#take(4)))
      case 0xc7:
        return this.#ext(b[this.#take(1)]!)
      case 0xc8:
        return this.#ext(b.readUInt16BE(this.#take(2)))
      case 0xc9:
        return this.#ext(b.readUInt32BE(this.#take(4)))
      case 0xca:
        return b.readFloatBE(this.#take(4))
      case 0xcb:
        return b.readDoubleBE(this.#take(8))
      case 0xcc:
        return b[this.#take(1)]!
      case 0xcd:
        return b.readUInt16BE(this.#take(2))
      case 0xce:
        return b.readUInt32BE(this.#take(4))
      case 0xcf: {
        const p = this.#take(8)
        return b.readUInt32BE(p) * 0x100000000 + b.readUInt32BE(p + 4)
      }
      case 0xd0:
        return b.readInt8(this.#take(1))
      case 0xd1:
        return b.readInt16BE(this.#take(2))
      case 0xd2:
        return b.readInt32BE(this.#take(4))
      case 0xd3: {
        const p = this.#take(8)
        return b.readInt32BE(p) * 0x100000000 + b.readUInt32BE(p + 4)
      }
      case 0xd4:
        return this.#ext(1)
      case 0xd5:
        return this.#ext(2)
      case 0xd6:
        return this.#ext(4)
      case 0xd7:
        return this.#ext(8)
      case 0xd8:
        return this.#ext(16)
      case 0xd9:
        return this.#string(b[this.#take(1)]!)
      case 0xda:
        return this.#string(b.readUInt16BE(this.#take(2)))
      case 0xdb:
        return this.#string(b.readUInt32BE(this.#take(4)))
      case 0xdc:
        return this.#array(b.readUInt16BE(this.#take(2)), depth)
      case 0xdd:
        return this.#array(b.readUInt32BE(this.#take(4)), depth)
      case 0xde:
        return this.#map(b.readUInt16BE(this.#take(2)), depth)
      case 0xdf:
        return this.#map(b.readUInt32BE(this.#take(4)), depth)
      default:
        throw new RangeError(`Unrecognized type byte: 0x${t.toString(16)}`)
    }
  }

  #array(n: number, depth: number): unknown[] {
    // Every element takes at least one byte: a count beyond the frame is refused before allocating.
    if (n > this.#end - this.#pos) throw new RangeError('Insufficient data')
    const out = new Array<unknown>(n)
    for (let i = 0; i < n; i++) out[i] = this.#value(depth + 1)
    return out
  }

  #map(n: number, depth: number): Record<string, unknown> {
    if (2 * n > this.#end - this.#pos) throw new RangeError('Insufficient data')
    const out: Record<string, unknown> = {}
    for (let i = 0; i < n; i++) {
      const t = this.#b[this.#pos]
      // Keys: strings (nearly always fixstr) or numbers, as the library accepts.
      const key = t !== undefined && t >= 0xa0 && t < 0xc0 ? this.#string(this.#b[this.#take(1)]! - 0xa0) : this.#value(depth + 1)
      if (typeof key !== 'string' && typeof key !== 'number') throw new RangeError(`The type of key must be string or number but ${typeof key}`)
      if (key === '__proto__') throw new RangeError('The key __proto__ is not allowed')
      out[key] = this.#value(depth + 1)
    }
    return out
  }

  #string(n: number): string {
    const b = this.#b
    const p = this.#take(n)
    if (n > SHORT_STRING) return this.#nonAscii(p, n)
    // Keys and short values repeat from frame to frame: look them up by their bytes rather than
    // make a string each time (a native call costs ~70 ns, a lookup ~25).
    let h = n
    for (let i = p; i < p + n; i++) {
      const c = b[i]!
      if (c >= 0x80) return this.#nonAscii(p, n)
      h = (Math.imul(h, 31) + c) | 0
    }
    const slot = h & (SHORT_CACHE_SLOTS - 1)
    const cached = this.#short[slot]
    if (cached !== undefined && cached.length === n) {
      let i = 0
      while (i < n && cached.charCodeAt(i) === b[p + i]) i++
      if (i === n) return cached
    }
    const s = b.toString('latin1', p, p + n)
    this.#short[slot] = s
    return s
  }

  /** Native UTF-8; the library's own rules whenever that is not plain valid UTF-8. */
  #nonAscii(p: number, n: number): string {
    const s = this.#b.toString('utf8', p, p + n)
    if (!s.includes('\uFFFD')) return s
    return n > LIBRARY_TEXT_DECODER_THRESHOLD ? textDecoder.decode(this.#b.subarray(p, p + n)) : utf8DecodeJs(this.#b, p, p + n)
  }

  #binary(n: number): Buffer {
    const p = this.#take(n)
    return this.#b.subarray(p, p + n)
  }

  #ext(n: number): unknown {
    const type = this.#b.readInt8(this.#take(1))
    const p = this.#take(n)
    return this.#codec.decode(this.#b.subarray(p, p + n), type, undefined)
  }
}

/** The library's JavaScript UTF-8 decoding (utf8DecodeJs): three-byte surrogates restored, other bad bytes as they fall. */
function utf8DecodeJs(bytes: Buffer, start: number, end: number): string {
  let offset = start
  const units: number[] = []
  let result = ''
  while (offset < end) {
    const byte1 = bytes[offset++]!
    if ((byte1 & 0x80) === 0) {
      units.push(byte1)
    } else if ((byte1 & 0xe0) === 0xc0) {
      const byte2 = bytes[offset++]! & 0x3f
      units.push(((byte1 & 0x1f) << 6) | byte2)
    } else if ((byte1 & 0xf0) === 0xe0) {
      const byte2 = bytes[offset++]! & 0x3f
      const byte3 = bytes[offset++]! & 0x3f
      units.push(((byte1 & 0x1f) << 12) | (byte2 << 6) | byte3)
    } else if ((byte1 & 0xf8) === 0xf0) {
      const byte2 = bytes[offset++]! & 0x3f
      const byte3 = bytes[offset++]! & 0x3f
      const byte4 = bytes[offset++]! & 0x3f
      let unit = ((byte1 & 0x07) << 0x12) | (byte2 << 0x0c) | (byte3 << 0x06) | byte4
      if (unit > 0xffff) {
        unit -= 0x10000
        units.push(((unit >>> 10) & 0x3ff) | 0xd800)
        unit = 0xdc00 | (unit & 0x3ff)
      }
      units.push(unit)
    } else {
      units.push(byte1)
    }
    if (units.length >= 0x1000) {
      result += String.fromCharCode(...units)
      units.length = 0
    }
  }
  if (units.length > 0) result += String.fromCharCode(...units)
  return result
}
