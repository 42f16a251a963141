import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { Decoder, Encoder, ExtensionCodec } from '@msgpack/msgpack'
import { MsgpackReader } from '../../shared/rpc/msgpack-reader.js'
import { FrameDecoder, FrameError } from '../../shared/rpc/frames.js'

// The wire's extension for objects with an own __proto__ key (shared/rpc/frames.ts).
const codec = new ExtensionCodec()
codec.register({
  type: 0,
  encode(value: unknown): Uint8Array | null {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, '__proto__')) return null
    return encoder.encode(Object.entries(value).filter(([, v]) => v !== undefined))
  },
  decode(data: Uint8Array): unknown {
    return Object.fromEntries(library.decode(data) as [string, unknown][])
  },
})
const encoder = new Encoder({ ignoreUndefined: true, extensionCodec: codec, maxDepth: 1000 })
const library = new Decoder({ extensionCodec: codec })
const reader = new MsgpackReader({ extensionCodec: codec, maxDepth: 300 })

/** What the library gives for `bytes`: the value, or that it throws. */
function outcome(decode: (b: Buffer) => unknown, bytes: Buffer): { value?: unknown; threw?: true } {
  try {
    return { value: decode(bytes) }
  } catch {
    return { threw: true }
  }
}

function sameAsLibrary(bytes: Buffer): boolean {
  const want = outcome((b) => library.decode(b), bytes)
  const got = outcome((b) => reader.decode(b), bytes)
  if (want.threw || got.threw) return want.threw === got.threw
  // Same values, prototypes and own keys included (bin: a Buffer view either way).
  return isDeepStrictEqual(got.value, want.value) && JSON.stringify(got.value) === JSON.stringify(want.value)
}

const str8 = (bytes: number[]): Buffer => Buffer.from([0xd9, bytes.length, ...bytes])

t.test('every kind of value decodes to what the library gives', async (t) => {
  const values: unknown[] = [
    0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER, 2 ** 60,
    -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 40) - 3, Number.MIN_SAFE_INTEGER, -(2 ** 60),
    0.5, -1.25, 1e300, NaN, Infinity, null, true, false, [], {}, [null, 1, 'a'], { a: null, b: [1, { c: 'd' }] },
    Array.from({ length: 16 }, (_, i) => i), Array.from({ length: 70_000 }, (_, i) => i & 0xff),
    Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])), Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i])),
    Buffer.from('bytes'), Buffer.alloc(300, 2), Buffer.alloc(70_000, 1), new Date(1_700_000_000_123),
    JSON.parse('{"__proto__": {"x": 1}, "a": [1, {"__proto__": 2}]}'),
    { id: 2, r: { messages: [{ id: 'm', age: 1, ttl: 60, body: '{"event":"x","pad":"yyyyyyyyyyyyyyyyyyyyyyyy"}', claimId: 'c' }] } },
  ]
  for (const p of ['a', 'é', '✓', '😀', '\uFFFD', '\ud800', '\udc00', '\u0000', '\u007f', '\u0080']) {
    for (const len of [0, 1, 15, 16, 17, 31, 32, 50, 51, 199, 200, 201, 255, 256, 65536]) {
      const s = p.repeat(Math.ceil(len / p.length)).slice(0, len)
      values.push(s, { [s.slice(0, 20)]: s })
    }
  }
  let same = 0
  for (const v of values) if (sameAsLibrary(Buffer.from(encoder.encode(v)))) same++
  t.equal(same, values.length, `${values.length} values decode identically`)
  // Encoder output that is not what our encoder writes, but the library reads: float32,
  // non-minimal headers, number keys.
  const odd = [
    [0xca, 0x3f, 0xc0, 0x00, 0x00],
    [0xd9, 0x01, 0x61],
    [0xda, 0x00, 0x01, 0x61],
    [0xdb, 0x00, 0x00, 0x00, 0x01, 0x61],
    [0xdc, 0x00, 0x01, 0x01],
    [0xde, 0x00, 0x01, 0xa1, 0x61, 0x01],
    [0x82, 0x01, 0xa1, 0x78, 0xcd, 0x01, 0x00, 0xc0],
    [0x81, 0xa1, 0x61, 0x01, 0x81, 0xa1, 0x61],
  ]
  for (const bytes of odd) t.ok(sameAsLibrary(Buffer.from(bytes)), `odd encoding ${Buffer.from(bytes).toString('hex')}`)
})

t.test('strings that are not plain UTF-8 decode as the library decodes them', async (t) => {
  const cases: number[][] = [
    [0xed, 0xa0, 0x80], // a lone high surrogate as the library's encoder writes it
    [0x61, 0xed, 0xb0, 0x80, 0x62],
    [0xff],
    [0xc3],
    [0xe2, 0x82],
    [0xf0, 0x9f, 0x98],
    [0x80, 0x80],
    [0xef, 0xbf, 0xbd], // U+FFFD itself
  ]
  let same = 0
  let total = 0
  for (const bad of cases) {
    for (const pad of [0, 10, 20, 190, 250]) {
      const bytes = [...Array.from({ length: pad }, () => 0x61), ...bad]
      const frames = bytes.length < 256 ? [str8(bytes)] : []
      frames.push(Buffer.from([0xda, bytes.length >> 8, bytes.length & 0xff, ...bytes]))
      // As a map key too (the library decodes keys with its key cache).
      if (bytes.length < 32) frames.push(Buffer.from([0x81, 0xa0 + bytes.length, ...bytes, 0x01]))
      for (const f of frames) {
        total++
        if (sameAsLibrary(f)) same++
        else t.fail(`differs: ${f.toString('hex').slice(0, 80)}`)
      }
    }
  }
  t.equal(same, total, `${total} strings decode identically`)
})

t.test('what the library refuses is refused', async (t) => {
  const refused = [
    [], // nothing
    [0xc1], // never used
    [0x92, 0x01], // truncated array
    [0x81, 0xa1, 0x61], // a key without its value
    [0xa5, 0x61], // truncated string
    [0xcd, 0x01], // truncated uint16
    [0xdd, 0xff, 0xff, 0xff, 0xff], // a count beyond the bytes
    [0xdf, 0xff, 0xff, 0xff, 0xff],
    [0x01, 0x02], // bytes after the value
    [0x81, 0xa9, ...Buffer.from('__proto__'), 0x01], // a __proto__ key
    [0x81, 0x90, 0x01], // an array as a key
    [0x81, 0xc0, 0x01], // nil as a key
  ]
  for (const bytes of refused) {
    const b = Buffer.from(bytes)
    t.throws(() => library.decode(b), `the library refuses ${b.toString('hex')}`)
    t.throws(() => reader.decode(b), `so do we: ${b.toString('hex')}`)
  }
  // Random bytes: the same outcome, value or refusal, as the library.
  let seed = 7
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  let same = 0
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.from(Array.from({ length: 1 + rand(12) }, () => rand(256)))
    if (sameAsLibrary(b)) same++
    else t.fail(`random bytes differ: ${b.toString('hex')}`)
  }
  t.equal(same, 5000, 'random byte strings')
  // Every truncation of a real frame is refused.
  const full = Buffer.from(encoder.encode({ id: 1, op: 'postMessages', args: [{ project: 'p', queue: 'q' }, [{ body: 'é'.repeat(40), ttl: 60 }], { n: 2 ** 40 }] }))
  let refusedCuts = 0
  for (let n = 0; n < full.length; n++) {
    try {
      reader.decode(full.subarray(0, n))
    } catch {
      refusedCuts++
    }
  }
  t.equal(refusedCuts, full.length, 'every truncation refused')
})

t.test('nesting beyond the limit is refused, not a stack overflow', async (t) => {
  const deep = Buffer.alloc(200_000, 0x91)
  deep[deep.length - 1] = 0x01
  t.throws(() => reader.decode(deep), /Too deep/)
  const d = new FrameDecoder(() => t.fail('no message'))
  const frame = Buffer.alloc(4 + deep.length)
  frame.writeUInt32BE(deep.length, 0)
  deep.copy(frame, 4)
  t.throws(() => d.push(frame), FrameError, 'a FrameError on the wire')
  // The deepest value the wire's encoder writes still decodes.
  let v: unknown = 'leaf'
  for (let i = 0; i < 300; i++) v = [v]
  t.same(reader.decode(Buffer.from(encoder.encode(v))), v)
})

t.test('a slice of a larger buffer decodes in place', async (t) => {
  const inner = Buffer.from(encoder.encode({ id: 9, r: ['x', Buffer.from('bin')] }))
  const outer = Buffer.concat([Buffer.from([0xff, 0xff]), inner, Buffer.from([0xc1])])
  const got = reader.decode(outer, 2, 2 + inner.length) as { r: [string, Buffer] }
  t.same(got, { id: 9, r: ['x', Buffer.from('bin')] })
  t.ok(Buffer.isBuffer(got.r[1]), 'bin is a Buffer view, as the library gives for Buffer input')
})
