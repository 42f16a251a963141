import t from 'tap'
import {
  FrameDecoder,
  FrameError,
  FrameWriter,
  FULL_BYTES,
  encodeMessage,
  isReply,
  isRequest,
  type RpcMessage,
} from '../../shared/rpc/frames.js'

/** A sink that records each write. */
function sink(): { writes: Buffer[]; destroyed: boolean; write(b: Buffer): boolean } {
  return {
    writes: [],
    destroyed: false,
    write(b: Buffer) {
      this.writes.push(Buffer.from(b))
      return true
    },
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

function decodeAll(chunks: Buffer[], max?: number): unknown[] {
  const out: unknown[] = []
  const d = new FrameDecoder((m) => out.push(m), { maxFrameBytes: max })
  for (const c of chunks) d.push(c)
  return out
}

const MESSAGES: RpcMessage[] = [
  { id: 1, op: 'getQueue', args: [{ project: 'p', queue: 'q' }] },
  { id: 2, r: { items: [{ name: 'a' }], next: 'a' } },
  { id: 3, e: { code: 'not_found', description: 'Queue q does not exist', title: 'Not found' } },
  { id: 4 },
  { id: 4294967295, op: 'postMessages', args: [{ project: 'p', queue: 'q' }, [{ body: '{"é":"ünï ✓"}', ttl: 60 }], { clientId: 'c' }] },
  { id: 6, r: 'x'.repeat(70_000) },
]

t.test('frames written in one tick go out in one write and decode back', async (t) => {
  const s = sink()
  const w = new FrameWriter(s, { fullBytes: Infinity })
  for (const m of MESSAGES) w.write(m)
  t.equal(s.writes.length, 0, 'nothing written synchronously')
  t.equal(w.pendingFrames, MESSAGES.length)
  await tick()
  t.equal(s.writes.length, 1, 'one write for the whole tick')
  t.same(decodeAll(s.writes), MESSAGES)

  w.write({ id: 7, r: true })
  await tick()
  t.equal(s.writes.length, 2, 'a later tick gets its own write')
})

t.test('a batch that reaches fullBytes is written at once; the rest of the tick after it', async (t) => {
  const s = sink()
  const w = new FrameWriter(s, { fullBytes: 1000 })
  const big = (id: number): RpcMessage => ({ id, r: 'x'.repeat(400) })
  w.write(big(1))
  w.write(big(2))
  t.equal(s.writes.length, 0, 'under fullBytes: waiting for the tick')
  w.write(big(3))
  t.equal(s.writes.length, 1, 'the write that made it full sent it')
  t.equal(w.pendingFrames, 0)
  w.write({ id: 4, r: 'small' })
  t.equal(s.writes.length, 1)
  await tick()
  t.equal(s.writes.length, 2, 'the rest at the end of the tick')
  t.same(decodeAll(s.writes), [big(1), big(2), big(3), { id: 4, r: 'small' }], 'in order')
  t.equal(FULL_BYTES, 8192, 'the default, as docs/architecture.md says')
})

t.test('microtask flushing coalesces one synchronous burst', async (t) => {
  const s = sink()
  const w = new FrameWriter(s, { flush: 'microtask' })
  w.write({ id: 1, r: 1 })
  w.write({ id: 2, r: 2 })
  await Promise.resolve()
  t.equal(s.writes.length, 1)
  t.same(decodeAll(s.writes), [{ id: 1, r: 1 }, { id: 2, r: 2 }])
})

t.test('any chunking decodes the same messages', async (t) => {
  const s = sink()
  const w = new FrameWriter(s)
  for (const m of MESSAGES) w.write(m)
  w.flush()
  const bytes = s.writes[0]

  t.same(decodeAll([bytes]), MESSAGES, 'all frames in one chunk')

  const single: Buffer[] = []
  for (let i = 0; i < bytes.length; i++) single.push(bytes.subarray(i, i + 1))
  t.same(decodeAll(single), MESSAGES, 'one byte per chunk')

  let seed = 42
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  for (let round = 0; round < 50; round++) {
    const chunks: Buffer[] = []
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + rand(round % 2 ? 7 : 40_000)
      chunks.push(bytes.subarray(i, i + n))
      i += n
    }
    t.same(decodeAll(chunks), MESSAGES, `random split ${round}`)
  }

  // A header split across chunks, then the body arriving in two pieces.
  const one = s.writes[0].subarray(0, 4 + encodeMessage(MESSAGES[0]).length)
  t.same(decodeAll([one.subarray(0, 2), one.subarray(2, 5), one.subarray(5)]), [MESSAGES[0]])
})

t.test('an oversize frame is refused on both sides', async (t) => {
  const s = sink()
  const w = new FrameWriter(s, { maxFrameBytes: 100 })
  t.throws(() => w.write({ id: 1, r: 'y'.repeat(200) }), FrameError, 'writer refuses')
  t.equal(w.pendingFrames, 0, 'nothing queued')
  w.write({ id: 2, r: 'ok' })
  w.flush()
  t.equal(s.writes.length, 1, 'the writer stays usable')

  const header = Buffer.alloc(4)
  header.writeUInt32BE(1000)
  const d = new FrameDecoder(() => t.fail('no message'), { maxFrameBytes: 100 })
  t.throws(() => d.push(header), /exceeds the 100-byte limit/, 'decoder refuses as soon as the header arrives')
  t.throws(() => d.push(Buffer.from([0, 0, 0, 1, 0xc0])), /already failed/, 'the stream stays failed')

  const huge = Buffer.alloc(4)
  huge.writeUInt32BE(0xffffffff)
  t.throws(() => decodeAll([huge]), FrameError, 'default limit (64 MiB)')
})

t.test('garbage inside a frame is a FrameError', async (t) => {
  const frame = Buffer.from([0, 0, 0, 1, 0xc1]) // 0xc1 is never used in msgpack
  t.throws(() => decodeAll([frame]), FrameError)
})

t.test('optional fields round-trip sanely', async (t) => {
  const s = sink()
  const w = new FrameWriter(s)
  w.write({ id: 1, r: { items: [], next: undefined, count: 0, nested: { a: undefined, b: null } } })
  w.write({ id: 2, r: undefined })
  w.write({ id: 3, e: { code: 'unavailable', description: undefined, title: 'x', retryAfter: 1 } })
  w.flush()
  const [a, b, c] = decodeAll(s.writes) as Record<string, unknown>[]
  t.same(a, { id: 1, r: { items: [], count: 0, nested: { b: null } } })
  t.notOk('next' in (a.r as object), 'undefined field absent, not null')
  t.notOk('r' in b, 'undefined result absent')
  t.same(c, { id: 3, e: { code: 'unavailable', title: 'x', retryAfter: 1 } })
})

t.test('objects with an own __proto__ key survive', async (t) => {
  const metadata = JSON.parse('{"__proto__": {"polluted": true}, "a": [1, {"__proto__": 2}], "b": "x"}') as Record<string, unknown>
  const s = sink()
  const w = new FrameWriter(s)
  w.write({ id: 1, r: metadata })
  w.flush()
  const [msg] = decodeAll(s.writes) as { r: Record<string, unknown> }[]
  t.same(JSON.stringify(msg.r), JSON.stringify(metadata), 'same JSON text')
  t.ok(Object.hasOwn(msg.r, '__proto__'), 'own key kept')
  t.equal(Object.getPrototypeOf(msg.r), Object.prototype, 'prototype untouched')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
  t.ok(Object.hasOwn((msg.r.a as unknown[])[1] as object, '__proto__'), 'nested too')
})

t.test('message shape checks', async (t) => {
  t.ok(isRequest({ id: 1, op: 'ping', args: [] }))
  t.notOk(isRequest({ id: '1', op: 'ping', args: [] }))
  t.notOk(isRequest({ id: 1, op: 'ping' }))
  t.notOk(isRequest(null))
  t.ok(isReply({ id: 1 }))
  t.ok(isReply({ id: 1, e: { code: 'x' } }))
  t.notOk(isReply({ id: 1, e: null }))
  t.notOk(isReply([1]))
})

t.test('strings decode natively and exactly as the library decodes them', async (t) => {
  const { Decoder, Encoder } = await import('@msgpack/msgpack')
  const { nativeStrings, usesNativeStrings } = await import('../../shared/rpc/frames.js')
  const fast = nativeStrings(new Decoder())
  t.ok(usesNativeStrings(fast), 'the native path is installed (the library internals it uses still exist)')
  const plain = new Decoder()
  const enc = new Encoder()
  // Every length around the thresholds (ours 16, the library's 200), ASCII, 2-, 3- and 4-byte
  // characters, U+FFFD itself, and lone surrogates (which the library writes as three bytes and
  // restores: the native path must hand those back to it).
  const pieces = ['a', 'é', '✓', '😀', '\uFFFD', '\ud800', '\udc00', '"', '\\', '\u0000']
  const values: unknown[] = []
  for (let len = 0; len <= 260; len++) {
    for (const p of pieces) values.push(p.repeat(Math.ceil(len / p.length)).slice(0, len))
    values.push('x'.repeat(len) + '\ud83d')
  }
  let native = 0
  for (const v of values) {
    const bytes = Buffer.from(enc.encode({ k: v, list: [v, { [String(v).slice(0, 20)]: v }] }))
    const want = plain.decode(bytes)
    const got = fast.decode(bytes)
    // (The library's encoder turns lone surrogates of strings over 50 code units into U+FFFD, so
    // only well-formed strings must come back as they were; every string must match the library.)
    const wellFormed = !/[\ud800-\udfff]/.test(String(v).replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))
    if (JSON.stringify(got) !== JSON.stringify(want) || (wellFormed && (got as { k: string }).k !== v)) {
      t.fail(`string of ${String(v).length} code units differs: ${JSON.stringify(v).slice(0, 60)}`)
      return
    }
    native++
  }
  t.equal(native, values.length, `${values.length} strings decode identically`)
  // A plain Uint8Array (not a Buffer) keeps the library path and still works.
  const u8 = new Uint8Array(enc.encode('ünï'.repeat(20)))
  t.equal(fast.decode(u8), 'ünï'.repeat(20))
  // Frames decoded by FrameDecoder get the same strings.
  const body = JSON.stringify({ event: 'x', pad: 'é'.repeat(90) })
  const msg: RpcMessage = { id: 9, r: { messages: Array.from({ length: 3 }, (_, i) => ({ id: `0000000${i}-aaaa-7bbb-8ccc-dddddddddddd`, body })) } }
  const enc2 = encodeMessage(msg)
  const frame = Buffer.alloc(4 + enc2.length)
  frame.writeUInt32BE(enc2.length, 0)
  Buffer.from(enc2).copy(frame, 4)
  t.same(decodeAll([frame]), [msg])
})

t.test('long strings are measured natively and encode to exactly the library bytes', async (t) => {
  const { Encoder } = await import('@msgpack/msgpack')
  const { nativeStringLengths, usesNativeStringLengths } = await import('../../shared/rpc/frames.js')
  const fast = nativeStringLengths(new Encoder({ ignoreUndefined: true }))
  t.ok(usesNativeStringLengths(fast), 'the native path is installed (the library internals it uses still exist)')
  const w = new FrameWriter(sink())
  t.ok(usesNativeStringLengths(w.encoder), "FrameWriter's encoder uses it")
  const plain = new Encoder({ ignoreUndefined: true })
  // Every length around the library's TextEncoder threshold (50) and the msgpack header sizes
  // (str8 < 256 bytes, str16 < 65,536), ASCII, 2-, 3- and 4-byte characters, U+FFFD, lone
  // surrogates (U+FFFD's three bytes once written by TextEncoder) and pairs cut in half.
  const pieces = ['a', 'é', '✓', '😀', '\uFFFD', '\ud800', '\udc00', '"', '\u0000']
  const values: string[] = []
  for (let len = 0; len <= 300; len++) {
    for (const p of pieces) values.push(p.repeat(Math.ceil(len / p.length)).slice(0, len))
    values.push('x'.repeat(len) + '\ud83d')
  }
  for (const len of [65_535, 65_536, 70_000]) values.push('y'.repeat(len), 'é'.repeat(len / 2))
  let same = 0
  for (const v of values) {
    const msg = { id: 1, r: { body: v, list: [v, { [v.slice(0, 20)]: v }] } }
    const want = Buffer.from(plain.encode(msg))
    const got = Buffer.from(fast.encode(msg))
    if (!got.equals(want)) {
      t.fail(`string of ${v.length} code units encodes differently: ${JSON.stringify(v).slice(0, 60)}`)
      return
    }
    same++
  }
  t.equal(same, values.length, `${values.length} strings encode to the same bytes`)
  // And frames carry them unchanged (well-formed strings come back as they were).
  const body = JSON.stringify({ event: 'x', pad: '😀é'.repeat(60) })
  const msg: RpcMessage = { id: 3, op: 'postMessages', args: [{ project: 'p', queue: 'q' }, [{ body }, { body: body + 'x' }], { clientId: 'c' }] }
  const s = sink()
  const writer = new FrameWriter(s)
  writer.write(msg)
  writer.flush()
  t.same(decodeAll(s.writes), [msg])
})

for (const fullBytes of [Infinity, FULL_BYTES]) t.test(`batches share slabs but are never written over, whatever their sizes (full at ${fullBytes} bytes)`, async (t) => {
  // The socket may hold a batch's view until its write completes: later frames must go after it.
  const kept: Buffer[] = []
  const snapshots: Buffer[] = []
  const w = new FrameWriter(
    {
      destroyed: false,
      write(b: Buffer) {
        kept.push(b)
        snapshots.push(Buffer.from(b))
        return true
      },
    },
    { fullBytes },
  )
  const sent: RpcMessage[] = []
  // Turns of 1 to 7 frames crossing many 64 KiB slabs; every 50th turn a frame larger than a slab.
  for (let turn = 0; turn < 300; turn++) {
    for (let i = 0; i <= turn % 7; i++) {
      const msg: RpcMessage = { id: turn * 10 + i, r: 'b'.repeat((turn * 997 + i * 131) % (turn % 50 === 0 ? 150_000 : 3000)) }
      w.write(msg)
      sent.push(msg)
    }
    if (fullBytes === Infinity) t.equal(w.pendingFrames, (turn % 7) + 1)
    w.flush()
  }
  if (fullBytes === Infinity) t.equal(kept.length, 300, 'one write per turn')
  else t.ok(kept.length > 300, 'full batches written before their turn ended')
  t.ok(kept.every((b, i) => b.equals(snapshots[i]!)), 'every batch still holds what it held when written')
  t.same(decodeAll(kept), sent, 'and decodes to what was sent, in order')
  // Each frame is the library's encoding behind its length.
  let at = 0
  const all = Buffer.concat(kept)
  for (const m of sent) {
    const bytes = Buffer.from(encodeMessage(m))
    if (all.readUInt32BE(at) !== bytes.length || !all.subarray(at + 4, at + 4 + bytes.length).equals(bytes)) {
      t.fail(`frame of message ${String((m as { id: number }).id)} differs`)
      return
    }
    at += 4 + bytes.length
  }
  t.equal(at, all.length, 'nothing but frames')
})
