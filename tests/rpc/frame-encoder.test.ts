import t from 'tap'
import { Encoder, ExtensionCodec } from '@msgpack/msgpack'
import { FrameEncoder, FrameTooLarge } from '../../shared/rpc/frame-encoder.js'
import { FrameDecoder, FrameError, FrameWriter, encodeMessage, type RpcMessage } from '../../shared/rpc/frames.js'

// The library encoder as the wire configures it (shared/rpc/frames.ts): our frames must hold
// exactly its bytes, extensions included.
const PROTO_KEY_EXT = 0
const codec = new ExtensionCodec()
codec.register({
  type: PROTO_KEY_EXT,
  encode(value: unknown): Uint8Array | null {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, '__proto__')) return null
    return library.encode(Object.entries(value).filter(([, v]) => v !== undefined))
  },
  decode(): unknown {
    return null
  },
})
const library = new Encoder({ ignoreUndefined: true, extensionCodec: codec, maxDepth: 40 })

function ours(value: unknown, maxBytes = 1 << 30): Buffer {
  const enc = new FrameEncoder({ maxDepth: 40, library })
  const n = enc.append(value, maxBytes)
  const frame = enc.take()
  if (frame.readUInt32BE(0) !== n || frame.length !== n + 4) throw new Error('bad length prefix')
  return frame.subarray(4)
}

t.test('every kind of value encodes to the library bytes', async (t) => {
  const numbers = [
    0, -0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER, 2 ** 53,
    -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 40) - 3, Number.MIN_SAFE_INTEGER, -(2 ** 53),
    0.5, -1.25, 1e300, Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity,
  ]
  const strings: string[] = []
  for (const p of ['a', 'é', '✓', '😀', '\uFFFD', '\ud800', '\udc00', '"', '\u0000', '\u007f', '\u0080', '\u07ff', '\u0800']) {
    for (const len of [0, 1, 2, 15, 16, 30, 31, 32, 33, 49, 50, 51, 52, 100, 255, 256, 300, 65535, 65536]) {
      strings.push(p.repeat(Math.ceil(len / p.length)).slice(0, len))
    }
  }
  strings.push('abc\ud83d', '\ud83dabc', 'x'.repeat(40) + 'é', 'é' + 'x'.repeat(60) + '\ud800')
  const proto = JSON.parse('{"__proto__": {"x": 1}, "a": [1, {"__proto__": 2}], "b": "y", "u": null}') as unknown
  const others: unknown[] = [
    null, undefined, true, false, [], {}, [undefined, null, 1], { a: undefined, b: null, c: 1 },
    Array.from({ length: 15 }, (_, i) => i), Array.from({ length: 16 }, (_, i) => i), Array.from({ length: 70_000 }, (_, i) => i & 0xff),
    Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, i])), Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])),
    Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i])),
    { [String.fromCharCode(0xe9)]: 'é', ['😀'.repeat(20)]: 1 },
    Buffer.from('bytes'), new Uint8Array(300).fill(7), new Uint16Array([1, 2, 3]), Buffer.alloc(70_000, 1),
    new Date(1_700_000_000_123), proto, new Map([['a', 1]]), Object.assign(Object.create({ inherited: 1 }) as object, { own: 2 }),
    { id: 1, op: 'postMessages', args: [{ project: 'p', queue: 'q' }, [{ body: '{"event":"x"}', ttl: 3600 }], { clientId: 'c', maxMessages: 0, unset: undefined }] },
    { id: 2, r: { messages: [{ id: 'm', age: 1, ttl: 60, body: '{}', claimId: undefined }] } },
  ]
  const values = [...numbers, ...strings, ...others, numbers, strings, { nested: { deeper: [others.slice(0, 10)] } }]
  let same = 0
  for (const v of values) {
    const want = Buffer.from(library.encode(v))
    const got = ours(v)
    if (!got.equals(want)) {
      t.fail(`encodes differently: ${String(JSON.stringify(v)).slice(0, 80)}`)
      continue
    }
    same++
  }
  t.equal(same, values.length, `${values.length} values encode to the same bytes`)
})

t.test('what the library refuses is refused, and nothing is appended', async (t) => {
  const enc = new FrameEncoder({ maxDepth: 3, library })
  enc.append({ id: 1 }, 1000)
  const before = enc.pending
  let deep: unknown = 'leaf'
  for (let i = 0; i < 5; i++) deep = [deep]
  const shallow = new Encoder({ ignoreUndefined: true, extensionCodec: codec, maxDepth: 3 })
  for (const bad of [{ n: 1n }, { f: () => 1 }, { s: Symbol('x') }, deep]) {
    t.throws(() => shallow.encode({ id: 2, r: bad }), 'the library refuses it')
    t.throws(() => enc.append({ id: 2, r: bad }, 1000), 'so do we')
    t.equal(enc.pending, before, 'nothing appended')
  }
  t.throws(() => enc.append({ id: 3, r: 'z'.repeat(2000) }, 1000), FrameTooLarge, 'over the frame limit')
  t.equal(enc.pending, before, 'nothing appended')
  const frames: unknown[] = []
  new FrameDecoder((m) => frames.push(m)).push(enc.take())
  t.same(frames, [{ id: 1 }], 'the frames before a failure are intact')
})

t.test('taken batches are never written over, across slabs', async (t) => {
  const w = new FrameWriter({
    destroyed: false,
    write(b: Buffer) {
      kept.push(b)
      snapshots.push(Buffer.from(b))
      return true
    },
  })
  const kept: Buffer[] = []
  const snapshots: Buffer[] = []
  const sent: RpcMessage[] = []
  // Batches of every size, crossing many 64 KiB slabs, some frames larger than a slab.
  for (let turn = 0; turn < 300; turn++) {
    for (let i = 0; i <= turn % 7; i++) {
      const msg: RpcMessage = { id: turn * 10 + i, r: 'b'.repeat((turn * 997 + i * 131) % (turn % 50 === 0 ? 150_000 : 3000)) }
      w.write(msg)
      sent.push(msg)
    }
    w.flush()
  }
  t.equal(kept.length, 300, 'one write per turn')
  t.ok(kept.every((b, i) => b.equals(snapshots[i]!)), 'every batch still holds what it held when written')
  const got: unknown[] = []
  const d = new FrameDecoder((m) => got.push(m))
  for (const b of kept) d.push(b)
  t.same(got, sent)
  t.equal(Buffer.concat(kept).length, sent.reduce((n, m) => n + 4 + encodeMessage(m).length, 0), 'the library length of every frame')
})

t.test('the writer refuses what cannot be encoded as a FrameError and stays usable', async (t) => {
  const writes: Buffer[] = []
  const w = new FrameWriter({ destroyed: false, write: (b: Buffer) => writes.push(b) > 0 }, { maxFrameBytes: 100 })
  t.throws(() => w.write({ id: 1, r: 10n }), FrameError)
  t.throws(() => w.write({ id: 2, r: 'x'.repeat(200) }), FrameError)
  t.equal(w.pendingFrames, 0)
  w.write({ id: 3, r: 'ok' })
  w.flush()
  const got: unknown[] = []
  new FrameDecoder((m) => got.push(m)).push(writes[0]!)
  t.same(got, [{ id: 3, r: 'ok' }])
})
