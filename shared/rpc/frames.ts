/**
 * The proxy ↔ worker wire: length-prefixed msgpack frames over a Unix socket.
 *
 * A frame is a 4-byte big-endian unsigned length followed by that many bytes of msgpack. Each
 * frame holds one message: a request `{id, op, args}`, an ok reply `{id, r}` or an error reply
 * `{id, e}`. Requests are multiplexed by `id`; replies may arrive in any order.
 *
 * Writers coalesce every frame produced in one turn of the event loop into one `socket.write`
 * (docs/benchmarks.md: the per-write syscall, not the bytes, is what costs), each frame encoded
 * once and copied once, into the batch (no allocation per frame, no concatenation per write).
 * Readers accept any chunking: a chunk may hold part of a frame, one frame, or many.
 *
 * Encoding rules, so that values cross the boundary unchanged:
 * - `undefined` object values are dropped (`ignoreUndefined`): optional fields stay absent.
 *   `undefined` array elements travel as nil and arrive as `null`; callers that pass optional
 *   positional arguments trim trailing `undefined`s (see proxy/rpc-client.ts).
 * - Values nest up to `MAX_JSON_DEPTH` levels inside the frame (shared/json-depth.ts).
 * - Objects with an own `__proto__` key (JSON.parse makes them from client metadata) are carried
 *   by an extension type, because the msgpack decoder refuses that key in maps.
 *
 * Strings are decoded natively (see `nativeStrings`): message bodies and ids are most of every
 * frame, and @msgpack/msgpack decodes strings of ≤ 200 bytes with a JavaScript loop. Long
 * strings are measured natively when encoded, for the same reason (see `nativeStringLengths`).
 */
import { Decoder, Encoder, ExtensionCodec } from '@msgpack/msgpack'
import type { WireError } from '../errors.js'
import { MAX_JSON_DEPTH, RPC_ENVELOPE_DEPTH } from '../json-depth.js'

/** Frames are written into slabs of this size (a post of 10 is ~2.3 KB, a turn's batch rarely over 40). */
const SLAB_BYTES = 64 * 1024

/** Default largest frame accepted or sent: 64 MiB. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024

/** A call: run `op(...args)` on the driver and answer with the same `id`. */
export interface RpcRequest {
  id: number
  op: string
  args: unknown[]
}

/** A successful answer. `r` is absent when the operation returned `undefined`. */
export interface RpcOkReply {
  id: number
  r?: unknown
}

/** A failed answer: the error in its wire form (`MissiveError.toWire()`). */
export interface RpcErrorReply {
  id: number
  e: WireError
}

export type RpcReply = RpcOkReply | RpcErrorReply
export type RpcMessage = RpcRequest | RpcReply

/** The frame broke a rule of the wire (size, encoding): the connection must be dropped. */
export class FrameError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts)
    this.name = 'FrameError'
  }
}

const PROTO_KEY_EXT = 0

const extensionCodec = new ExtensionCodec()
// Entries of an object that has an own `__proto__` key. Rare (only hostile or odd metadata), so
// the check is one `Object.hasOwn` per object and everything else takes the plain map path.
extensionCodec.register({
  type: PROTO_KEY_EXT,
  encode(value: unknown): Uint8Array | null {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, '__proto__')) {
      return null
    }
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
    return nestedEncoder.encode(entries)
  },
  decode(data: Uint8Array): unknown {
    const entries = nestedDecoder.decode(data) as [string, unknown][]
    // Object.fromEntries defines own properties, so `__proto__` stays a plain key.
    return Object.fromEntries(entries)
  },
})

// The library's default depth limit (100) is below what the proxy accepts from clients (queue
// metadata nested 98+ levels failed to encode: a 500); carry every value the proxy accepted.
const encoderOptions = { ignoreUndefined: true, extensionCodec, maxDepth: MAX_JSON_DEPTH + RPC_ENVELOPE_DEPTH } as const
const nestedEncoder = nativeStringLengths(new Encoder(encoderOptions))
const nestedDecoder = nativeStrings(new Decoder({ extensionCodec }))

/** The decoder internals `nativeStrings` relies on (private in @msgpack/msgpack's types). */
interface DecoderInternals {
  bytes: Uint8Array
  pos: number
  maxStrLength: number
  decodeUtf8String(byteLength: number, headerOffset: number): unknown
  stateIsMapKey(): boolean
}

/** Strings shorter than this keep the library's path (its key cache and JS loop win there). */
const NATIVE_MIN_BYTES = 16

/**
 * Makes `decoder` decode string values with Buffer's native UTF-8 decoder instead of
 * @msgpack/msgpack's JavaScript loop, which it uses up to 200 bytes — the size of a typical
 * message body. Measured on a claim reply of 10 messages of ~180-byte bodies: 24.5 → 7.8 µs per
 * decode, and the loop's temporary arrays were ~45 % of the worker's allocations.
 *
 * The result is identical: whenever the native result contains U+FFFD (invalid UTF-8, or a lone
 * surrogate the library's encoder wrote as three bytes, which its decoder restores) the library's
 * own path decodes the string instead. Map keys, short strings and non-Buffer inputs also keep
 * the library's path. If a future @msgpack/msgpack drops the internals used here, the decoder is
 * left as it is (tests/rpc/frames.test.ts checks that the fast path is in use).
 */
export function nativeStrings(decoder: Decoder): Decoder {
  const d = decoder as unknown as DecoderInternals
  const proto = Object.getPrototypeOf(decoder) as Partial<DecoderInternals>
  if (typeof proto.decodeUtf8String !== 'function' || typeof proto.stateIsMapKey !== 'function') return decoder
  const library = proto.decodeUtf8String
  d.decodeUtf8String = function (this: DecoderInternals, byteLength: number, headerOffset: number): unknown {
    const bytes = this.bytes
    const start = this.pos + headerOffset
    if (
      byteLength < NATIVE_MIN_BYTES ||
      byteLength > this.maxStrLength ||
      !Buffer.isBuffer(bytes) ||
      bytes.byteLength < start + byteLength ||
      this.stateIsMapKey()
    ) {
      return library.call(this, byteLength, headerOffset)
    }
    const s = bytes.toString('utf8', start, start + byteLength)
    if (s.includes('\uFFFD')) return library.call(this, byteLength, headerOffset)
    this.pos = start + byteLength
    return s
  }
  return decoder
}

/** True when `decoder` uses the native string path (for tests). */
export function usesNativeStrings(decoder: Decoder): boolean {
  return Object.hasOwn(decoder, 'decodeUtf8String')
}

/** The encoder internals `nativeStringLengths` relies on (private in @msgpack/msgpack's types). */
interface EncoderInternals {
  bytes: Uint8Array
  pos: number
  encodeString(s: string): void
  ensureBufferSizeToWrite(size: number): void
  writeStringHeader(byteLength: number): void
}

/**
 * Above this many UTF-16 code units @msgpack/msgpack writes a string with `TextEncoder` (its
 * `TEXT_ENCODER_THRESHOLD`); shorter ones keep its JavaScript path, which writes a lone
 * surrogate as three bytes that its decoder restores.
 */
const LIBRARY_TEXT_ENCODER_THRESHOLD = 50

const textEncoder = new TextEncoder()

/**
 * Makes `encoder` count the UTF-8 bytes of long strings with `Buffer.byteLength` instead of
 * @msgpack/msgpack's JavaScript loop over every code unit (`utf8Count`), which it runs before
 * writing any string. Message bodies are most of every frame: measured on a post of 10 ~200-byte
 * bodies, 7.2–7.9 → 3.8 µs per encode; a claim reply of 10 messages 13.0 → 8.6 µs.
 *
 * The bytes are identical: strings of more than `LIBRARY_TEXT_ENCODER_THRESHOLD` code units are
 * written as the library writes them (`TextEncoder.encodeInto`, which turns a lone surrogate into
 * U+FFFD), and `Buffer.byteLength` counts what that writes — U+FFFD's three bytes included,
 * as the library's count does. Shorter strings keep the library's path. If a future
 * @msgpack/msgpack drops the internals used here, the encoder is left as it is
 * (tests/rpc/frames.test.ts checks that the fast path is in use).
 */
export function nativeStringLengths(encoder: Encoder): Encoder {
  const proto = Object.getPrototypeOf(encoder) as Partial<EncoderInternals>
  if (typeof proto.encodeString !== 'function' || typeof proto.ensureBufferSizeToWrite !== 'function' || typeof proto.writeStringHeader !== 'function') {
    return encoder
  }
  const library = proto.encodeString
  const e = encoder as unknown as EncoderInternals
  e.encodeString = function (this: EncoderInternals, s: string): void {
    if (s.length <= LIBRARY_TEXT_ENCODER_THRESHOLD) return library.call(this, s)
    const byteLength = Buffer.byteLength(s, 'utf8')
    // Header (at most 5 bytes) and bytes, as the library reserves them.
    this.ensureBufferSizeToWrite(5 + byteLength)
    this.writeStringHeader(byteLength)
    textEncoder.encodeInto(s, this.bytes.subarray(this.pos))
    this.pos += byteLength
  }
  return encoder
}

/** True when `encoder` uses the native string-length path (for tests). */
export function usesNativeStringLengths(encoder: Encoder): boolean {
  return Object.hasOwn(encoder, 'encodeString')
}

/** Encodes one message to msgpack bytes (no length prefix). Exposed for tests and tools. */
export function encodeMessage(msg: RpcMessage): Uint8Array {
  return nestedEncoder.encode(msg)
}

/**
 * Pending bytes at which a FrameWriter writes at once instead of waiting for the end of the tick
 * (FrameWriter `fullBytes`): a few posts of 10, a few dozen small calls. Waiting for the whole
 * I/O phase made the proxy and the worker take turns, each idle while the other worked through a
 * burst (perf/ab.ts, SQLite pool, same run, off against 8 KiB: mixed 44.6k -> 48.3k msgs/s, post
 * 10 67.9k -> 71.0k; 4 KiB and 12 KiB measured too).
 */
export const FULL_BYTES = 8192

/**
 * Encodes messages as frames and writes them in batches: every frame added in the same tick goes
 * out in one `write`, unless the batch reaches `fullBytes` (default FULL_BYTES), which writes it
 * at once. `flush: 'immediate'` (default) flushes on `setImmediate`, which gathers the frames of
 * every I/O callback of one loop iteration; `'microtask'` flushes at the end of the current
 * callback (lower latency when idle, fewer frames per write under load).
 */
export class FrameWriter {
  readonly #sink: { write(chunk: Buffer): boolean; readonly destroyed: boolean }
  readonly #encoder = nativeStringLengths(new Encoder(encoderOptions))
  readonly #maxFrameBytes: number
  readonly #flushMode: 'immediate' | 'microtask'
  readonly #fullBytes: number
  /**
   * The turn's frames are `#slab[#start, #pos)`: each frame's length prefix and bytes are
   * written there directly (one copy, out of the encoder's shared buffer), and a flush hands the
   * whole range to the socket as one view. Later batches continue after it, never over it (the
   * socket may hold the view until its write completes), until the slab is full.
   */
  #slab: Buffer = Buffer.alloc(0)
  #start = 0
  #pos = 0
  #frames = 0
  #scheduled = false
  readonly #flushBound = (): void => this.flush()

  constructor(
    sink: { write(chunk: Buffer): boolean; readonly destroyed: boolean },
    opts: { maxFrameBytes?: number; flush?: 'immediate' | 'microtask'; fullBytes?: number } = {},
  ) {
    this.#sink = sink
    this.#maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES
    this.#flushMode = opts.flush ?? 'immediate'
    this.#fullBytes = opts.fullBytes ?? FULL_BYTES
  }

  /** The msgpack encoder (for tests). */
  get encoder(): Encoder {
    return this.#encoder
  }

  /** Frames currently waiting for the next flush. */
  get pendingFrames(): number {
    return this.#frames
  }

  /**
   * Queues one message. Throws `FrameError` (and queues nothing) when its encoding exceeds the
   * maximum frame size, or when it cannot be encoded at all.
   */
  write(msg: RpcMessage): void {
    let body: Uint8Array
    try {
      // A view of the encoder's own buffer, valid until its next encode: copied just below.
      body = this.#encoder.encodeSharedRef(msg)
    } catch (err) {
      throw new FrameError(`cannot encode RPC message: ${(err as Error).message}`, { cause: err })
    }
    if (body.length > this.#maxFrameBytes) {
      throw new FrameError(`RPC frame of ${body.length} bytes exceeds the ${this.#maxFrameBytes}-byte limit`)
    }
    const size = 4 + body.length
    if (this.#pos + size > this.#slab.length) this.#newSlab(size)
    this.#slab.writeUInt32BE(body.length, this.#pos)
    this.#slab.set(body, this.#pos + 4)
    this.#pos += size
    this.#frames++
    if (this.#pos - this.#start >= this.#fullBytes) {
      // Full: written now. A flush already scheduled stays so, and takes the frames after this.
      this.#writeOut()
      return
    }
    if (!this.#scheduled) {
      this.#scheduled = true
      if (this.#flushMode === 'microtask') queueMicrotask(this.#flushBound)
      else setImmediate(this.#flushBound)
    }
  }

  /** A slab with room for the pending frames and `size` more bytes; the pending ones move to it. */
  #newSlab(size: number): void {
    const pending = this.#pos - this.#start
    const slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, 2 * (pending + size)))
    this.#slab.copy(slab, 0, this.#start, this.#pos)
    this.#slab = slab
    this.#start = 0
    this.#pos = pending
  }

  /** Writes every queued frame now, in one write. Frames queued for a destroyed sink are dropped. */
  flush(): void {
    this.#scheduled = false
    this.#writeOut()
  }

  /** Writes the queued frames in one write, leaving a scheduled flush as it is. */
  #writeOut(): void {
    if (this.#frames === 0) return
    const batch = this.#slab.subarray(this.#start, this.#pos)
    this.#frames = 0
    this.#start = this.#pos
    // A slab grown for large frames is not kept for the small ones that follow.
    if (this.#slab.length > SLAB_BYTES) {
      this.#slab = Buffer.alloc(0)
      this.#start = this.#pos = 0
    }
    if (this.#sink.destroyed) return
    this.#sink.write(batch)
  }
}

/**
 * Splits a byte stream into frames and decodes each one. `push` throws `FrameError` when a frame
 * announces more than the maximum size or does not decode; the stream is then unusable and the
 * caller must drop the connection.
 */
export class FrameDecoder {
  readonly #onMessage: (msg: unknown) => void
  readonly #decoder = nativeStrings(new Decoder({ extensionCodec }))
  readonly #maxFrameBytes: number
  #chunks: Buffer[] = []
  #buffered = 0
  #failed = false

  constructor(onMessage: (msg: unknown) => void, opts: { maxFrameBytes?: number } = {}) {
    this.#onMessage = onMessage
    this.#maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.#buffered
  }

  push(chunk: Buffer): void {
    if (this.#failed) throw new FrameError('RPC stream already failed')
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
    try {
      this.#drain()
    } catch (err) {
      this.#failed = true
      this.#chunks = []
      this.#buffered = 0
      throw err
    }
  }

  #drain(): void {
    // Frames are cut out of the first chunk without copying; chunks are merged only when a
    // frame spans them, and only once the whole frame has arrived (no quadratic re-copying).
    while (this.#buffered >= 4) {
      let head = this.#chunks[0]
      if (head.length < 4) head = this.#merge()
      const len = head.readUInt32BE(0)
      if (len > this.#maxFrameBytes) {
        throw new FrameError(`RPC frame of ${len} bytes exceeds the ${this.#maxFrameBytes}-byte limit`)
      }
      const total = 4 + len
      if (this.#buffered < total) return
      if (head.length < total) head = this.#merge()
      const body = head.subarray(4, total)
      if (head.length === total) this.#chunks.shift()
      else this.#chunks[0] = head.subarray(total)
      this.#buffered -= total
      let msg: unknown
      try {
        msg = this.#decoder.decode(body)
      } catch (err) {
        throw new FrameError(`undecodable RPC frame: ${(err as Error).message}`, { cause: err })
      }
      this.#onMessage(msg)
    }
  }

  #merge(): Buffer {
    const merged = Buffer.concat(this.#chunks, this.#buffered)
    this.#chunks = [merged]
    return merged
  }
}

/** True for a well-formed request. */
export function isRequest(m: unknown): m is RpcRequest {
  if (m === null || typeof m !== 'object') return false
  const r = m as Record<string, unknown>
  return typeof r.id === 'number' && typeof r.op === 'string' && Array.isArray(r.args)
}

/** True for a well-formed reply (ok or error). */
export function isReply(m: unknown): m is RpcReply {
  if (m === null || typeof m !== 'object') return false
  const r = m as Record<string, unknown>
  if (typeof r.id !== 'number') return false
  if ('e' in r) {
    const e = r.e as Record<string, unknown> | null
    return e !== null && typeof e === 'object' && typeof e.code === 'string'
  }
  return true
}

/** True for an error reply (assumes `isReply`). */
export function isErrorReply(m: RpcReply): m is RpcErrorReply {
  return 'e' in m
}
