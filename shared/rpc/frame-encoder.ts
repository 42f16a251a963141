/**
 * The RPC wire's msgpack encoder: appends whole frames (length prefix and message) to one
 * buffer, writing each value in place.
 *
 * @msgpack/msgpack's `Encoder` costs ~1.3 µs for the envelope of a post (`{id, op, args}` with
 * the queue, the options and an empty message list: ~15 small values), then the frame is copied
 * once behind its length prefix and the batch once more by `Buffer.concat`. This writer encodes
 * the same values to **the same bytes** (tests/rpc/frame-encoder.test.ts compares them with the
 * library's over every kind of value): `undefined` map values dropped and array ones written as
 * nil (the library's `ignoreUndefined`), safe integers in the smallest int format, other numbers
 * as float64, strings of up to `LIBRARY_TEXT_ENCODER_THRESHOLD` code units as the library's
 * JavaScript path writes them (a lone surrogate as three bytes, which its decoder restores),
 * longer ones as `TextEncoder` does (a lone surrogate as U+FFFD), ArrayBuffer views as bin. The
 * rare values the library turns into extensions (an object with an own `__proto__` key, a
 * `Date`, an `ExtData`) are encoded by the library itself and copied in. What the library
 * refuses (bigint, functions, symbols, nesting deeper than `maxDepth`) is refused here too.
 *
 * Frames go into a slab (`SLAB_BYTES`); `take()` hands out the frames appended since the last
 * take as one view, and later frames are written after them, never over them: a socket may
 * still hold a view it was given until its write completes.
 */
import { Encoder, ExtData } from '@msgpack/msgpack'

/** Strings up to this many UTF-16 code units take the library's JavaScript path there (`TEXT_ENCODER_THRESHOLD`). */
export const LIBRARY_TEXT_ENCODER_THRESHOLD = 50

/** Strings up to this many code units are written by a JavaScript loop (a native call costs more). */
const SHORT_STRING = 16

/** One allocation serves many turns' batches (a post of 10 is ~2.3 KB). */
const SLAB_BYTES = 64 * 1024

/** A message over the frame limit (nothing of it was appended). */
export class FrameTooLarge extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'FrameTooLarge'
  }
}

/** Appends msgpack frames to a buffer; see the module comment. */
export class FrameEncoder {
  readonly #maxDepth: number
  /** Encodes the values that become extensions (same options and codec as the wire's). */
  readonly #library: Encoder
  #buf: Buffer = Buffer.allocUnsafe(0)
  /** Where the frames not yet taken begin. */
  #start = 0
  #pos = 0

  constructor(opts: { maxDepth: number; library: Encoder }) {
    this.#maxDepth = opts.maxDepth
    this.#library = opts.library
  }

  /** Bytes appended since the last `take`. */
  get pending(): number {
    return this.#pos - this.#start
  }

  /**
   * Appends one frame: a 4-byte big-endian length, then `value` in msgpack. Returns the length
   * of the message. On any failure (a value the encoder refuses, a message over `maxBytes`)
   * nothing is appended and the error is thrown.
   */
  append(value: unknown, maxBytes: number): number {
    // Offsets relative to `#start`: a slab change moves the pending frames to offset 0.
    const frame = this.#pos - this.#start
    this.#ensure(4)
    this.#pos += 4
    try {
      this.#value(value, 0)
    } catch (err) {
      this.#pos = this.#start + frame
      throw err
    }
    const at = this.#start + frame
    const length = this.#pos - at - 4
    if (length > maxBytes) {
      this.#pos = at
      throw new FrameTooLarge(`RPC frame of ${length} bytes exceeds the ${maxBytes}-byte limit`)
    }
    this.#buf.writeUInt32BE(length, at)
    return length
  }

  /** The frames appended since the last take, as one view that is never written again. */
  take(): Buffer {
    const out = this.#buf.subarray(this.#start, this.#pos)
    this.#start = this.#pos
    return out
  }

  /** Room for `n` more bytes; a new slab (with the pending frames copied over) when needed. */
  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return
    const pending = this.#pos - this.#start
    const slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, 2 * (pending + n)))
    this.#buf.copy(slab, 0, this.#start, this.#pos)
    this.#buf = slab
    this.#start = 0
    this.#pos = pending
  }

  #value(v: unknown, depth: number): void {
    if (depth > this.#maxDepth) throw new Error(`Too deep objects in depth ${depth}`)
    switch (typeof v) {
      case 'string':
        return this.#string(v)
      case 'number':
        return this.#number(v)
      case 'boolean':
        this.#ensure(1)
        this.#buf[this.#pos++] = v ? 0xc3 : 0xc2
        return
      case 'undefined':
        this.#ensure(1)
        this.#buf[this.#pos++] = 0xc0
        return
      case 'object':
        if (v === null) {
          this.#ensure(1)
          this.#buf[this.#pos++] = 0xc0
          return
        }
        if (Array.isArray(v)) return this.#array(v, depth)
        // In the library's order: its extensions first, then binary, then maps.
        if (Object.hasOwn(v, '__proto__') || v instanceof Date || v instanceof ExtData) return this.#bytes(this.#library.encode(v))
        if (ArrayBuffer.isView(v)) return this.#binary(v)
        return this.#map(v as Record<string, unknown>, depth)
      default:
        // bigint, function, symbol: what the library refuses (without `useBigInt64`).
        throw new Error(`Unrecognized object: ${Object.prototype.toString.apply(v)}`)
    }
  }

  #array(a: unknown[], depth: number): void {
    const n = a.length
    this.#ensure(5)
    const b = this.#buf
    if (n < 16) b[this.#pos++] = 0x90 + n
    else if (n < 0x10000) {
      b[this.#pos] = 0xdc
      b.writeUInt16BE(n, this.#pos + 1)
      this.#pos += 3
    } else {
      b[this.#pos] = 0xdd
      b.writeUInt32BE(n, this.#pos + 1)
      this.#pos += 5
    }
    for (let i = 0; i < n; i++) this.#value(a[i], depth + 1)
  }

  #map(o: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(o)
    let n = 0
    for (let i = 0; i < keys.length; i++) if (o[keys[i]!] !== undefined) n++
    this.#ensure(5)
    const b = this.#buf
    if (n < 16) b[this.#pos++] = 0x80 + n
    else if (n < 0x10000) {
      b[this.#pos] = 0xde
      b.writeUInt16BE(n, this.#pos + 1)
      this.#pos += 3
    } else {
      b[this.#pos] = 0xdf
      b.writeUInt32BE(n, this.#pos + 1)
      this.#pos += 5
    }
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!
      const value = o[k]
      if (value === undefined) continue
      this.#string(k)
      this.#value(value, depth + 1)
    }
  }

  #binary(view: ArrayBufferView): void {
    const n = view.byteLength
    if (n >= 0x100000000) throw new Error(`Too large binary: ${n}`)
    this.#ensure(5 + n)
    const b = this.#buf
    if (n < 0x100) {
      b[this.#pos] = 0xc4
      b[this.#pos + 1] = n
      this.#pos += 2
    } else if (n < 0x10000) {
      b[this.#pos] = 0xc5
      b.writeUInt16BE(n, this.#pos + 1)
      this.#pos += 3
    } else {
      b[this.#pos] = 0xc6
      b.writeUInt32BE(n, this.#pos + 1)
      this.#pos += 5
    }
    b.set(new Uint8Array(view.buffer, view.byteOffset, n), this.#pos)
    this.#pos += n
  }

  /** Bytes the library encoded (an extension), copied in. */
  #bytes(bytes: Uint8Array): void {
    this.#ensure(bytes.length)
    this.#buf.set(bytes, this.#pos)
    this.#pos += bytes.length
  }

  #number(x: number): void {
    this.#ensure(9)
    const b = this.#buf
    const p = this.#pos
    if (!Number.isSafeInteger(x)) {
      b[p] = 0xcb
      b.writeDoubleBE(x, p + 1)
      this.#pos = p + 9
    } else if (x >= 0) {
      if (x < 0x80) {
        b[p] = x
        this.#pos = p + 1
      } else if (x < 0x100) {
        b[p] = 0xcc
        b[p + 1] = x
        this.#pos = p + 2
      } else if (x < 0x10000) {
        b[p] = 0xcd
        b.writeUInt16BE(x, p + 1)
        this.#pos = p + 3
      } else if (x < 0x100000000) {
        b[p] = 0xce
        b.writeUInt32BE(x, p + 1)
        this.#pos = p + 5
      } else {
        b[p] = 0xcf
        b.writeUInt32BE(Math.floor(x / 0x100000000), p + 1)
        b.writeUInt32BE(x >>> 0, p + 5)
        this.#pos = p + 9
      }
    } else if (x >= -0x20) {
      b[p] = 0xe0 | (x + 0x20)
      this.#pos = p + 1
    } else if (x >= -0x80) {
      b[p] = 0xd0
      b.writeInt8(x, p + 1)
      this.#pos = p + 2
    } else if (x >= -0x8000) {
      b[p] = 0xd1
      b.writeInt16BE(x, p + 1)
      this.#pos = p + 3
    } else if (x >= -0x80000000) {
      b[p] = 0xd2
      b.writeInt32BE(x, p + 1)
      this.#pos = p + 5
    } else {
      // The library's int64 of a safe integer: high word (signed), low word.
      b[p] = 0xd3
      b.writeInt32BE(Math.floor(x / 0x100000000), p + 1)
      b.writeUInt32BE(x >>> 0, p + 5)
      this.#pos = p + 9
    }
  }

  #string(s: string): void {
    const n = s.length
    if (n <= SHORT_STRING) {
      // Keys and small values: a JavaScript pass that stops at the first non-ASCII code unit.
      this.#ensure(1 + n)
      const b = this.#buf
      let p = this.#pos + 1
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        b[p++] = c
      }
      if (i === n) {
        b[this.#pos] = 0xa0 + n
        this.#pos = p
        return
      }
    } else {
      // One native count decides: as many bytes as code units is ASCII, written natively
      // (latin1 writes each code unit as one byte: for ASCII, the UTF-8 bytes).
      const bytes = Buffer.byteLength(s, 'utf8')
      if (bytes === n || n > LIBRARY_TEXT_ENCODER_THRESHOLD) {
        this.#ensure(5 + bytes)
        this.#header(bytes)
        this.#pos += bytes === n ? this.#buf.write(s, this.#pos, bytes, 'latin1') : this.#buf.write(s, this.#pos, bytes, 'utf8')
        return
      }
    }
    // Short and not ASCII: the library's JavaScript path, lone surrogates as three bytes.
    const bytes = utf8Count(s)
    this.#ensure(5 + bytes)
    this.#header(bytes)
    this.#pos = utf8EncodeJs(s, this.#buf, this.#pos)
  }

  #header(bytes: number): void {
    const b = this.#buf
    const p = this.#pos
    if (bytes < 32) {
      b[p] = 0xa0 + bytes
      this.#pos = p + 1
    } else if (bytes < 0x100) {
      b[p] = 0xd9
      b[p + 1] = bytes
      this.#pos = p + 2
    } else if (bytes < 0x10000) {
      b[p] = 0xda
      b.writeUInt16BE(bytes, p + 1)
      this.#pos = p + 3
    } else if (bytes < 0x100000000) {
      b[p] = 0xdb
      b.writeUInt32BE(bytes, p + 1)
      this.#pos = p + 5
    } else {
      throw new Error(`Too long string: ${bytes} bytes in UTF-8`)
    }
  }
}

/** UTF-8 bytes of `s` as the library counts them (a lone surrogate: three). */
function utf8Count(s: string): number {
  const n = s.length
  let bytes = 0
  for (let i = 0; i < n; ) {
    let c = s.charCodeAt(i++)
    if (c < 0x80) bytes++
    else if (c < 0x800) bytes += 2
    else {
      if (c >= 0xd800 && c <= 0xdbff && i < n && (s.charCodeAt(i) & 0xfc00) === 0xdc00) {
        i++
        c = 0x10000
      }
      bytes += c < 0x10000 ? 3 : 4
    }
  }
  return bytes
}

/** Writes `s` as the library's JavaScript path does (a lone surrogate as three bytes); returns the end offset. */
function utf8EncodeJs(s: string, out: Buffer, at: number): number {
  const n = s.length
  let o = at
  for (let i = 0; i < n; ) {
    let c = s.charCodeAt(i++)
    if (c < 0x80) {
      out[o++] = c
      continue
    }
    if (c < 0x800) out[o++] = ((c >> 6) & 0x1f) | 0xc0
    else {
      if (c >= 0xd800 && c <= 0xdbff && i < n) {
        const extra = s.charCodeAt(i)
        if ((extra & 0xfc00) === 0xdc00) {
          i++
          c = ((c & 0x3ff) << 10) + (extra & 0x3ff) + 0x10000
        }
      }
      if (c < 0x10000) {
        out[o++] = ((c >> 12) & 0x0f) | 0xe0
        out[o++] = ((c >> 6) & 0x3f) | 0x80
      } else {
        out[o++] = ((c >> 18) & 0x07) | 0xf0
        out[o++] = ((c >> 12) & 0x3f) | 0x80
        out[o++] = ((c >> 6) & 0x3f) | 0x80
      }
    }
    out[o++] = (c & 0x3f) | 0x80
  }
  return o
}
