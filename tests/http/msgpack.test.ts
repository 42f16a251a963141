// MessagePack over HTTP (docs/api.md, "MessagePack"), on both stores: bodies sent as
// application/x-msgpack are the same documents as their JSON form (same validation, same limits),
// replies honour Accept: application/x-msgpack on every route, errors stay JSON, and what JSON
// cannot hold is a 400.
import t from 'tap'
import { decode, encode } from '@msgpack/msgpack'
import { startRedis, type Teardown } from '../helpers/index.js'
import { startHarness, type Harness } from './harness.js'

const MP = 'application/x-msgpack'

async function stores(t: Teardown): Promise<[string, string][]> {
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  return [
    ['sqlite', 'sqlite:'],
    ['redis', `${redis.url}/0`],
  ]
}

interface MpResp {
  status: number
  type: string | null
  bytes: Uint8Array
  /** The body decoded as MessagePack when the reply says so, as JSON otherwise. */
  value: unknown
}

/** A request with Zaqar's headers, a MessagePack body (bytes as given, or `encode(body)`), and `accept`. */
async function mp(
  h: Harness,
  method: string,
  path: string,
  opts: { body?: unknown; bytes?: Uint8Array; accept?: string; type?: string } = {},
): Promise<MpResp> {
  const headers: Record<string, string> = { 'Client-ID': h.clientId, 'X-Project-ID': h.project }
  if (opts.accept !== undefined) headers.Accept = opts.accept
  const body = opts.bytes ?? (opts.body === undefined ? undefined : encode(opts.body, { useBigInt64: true }))
  if (body !== undefined) headers['Content-Type'] = opts.type ?? MP
  const res = await fetch(h.base + path, { method, headers, body: body as BodyInit | undefined, signal: AbortSignal.timeout(10_000) })
  const bytes = new Uint8Array(await res.arrayBuffer())
  const type = res.headers.get('content-type')
  let value: unknown
  if (bytes.length > 0) value = type === MP ? decode(bytes, { useBigInt64: true }) : JSON.parse(new TextDecoder().decode(bytes))
  return { status: res.status, type, bytes, value }
}

t.test('messages, claims and queues round-trip in MessagePack', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, {}, uri)
      const put = await mp(h, 'PUT', '/v2/queues/mq', { body: { colour: 'blue', _default_message_ttl: 600 } })
      t.equal(put.status, 201)
      const meta = await mp(h, 'GET', '/v2/queues/mq', { accept: MP })
      t.equal(meta.type, MP)
      t.match(meta.value, { colour: 'blue', _default_message_ttl: 600 }, 'queue metadata written and read in MessagePack')

      const big = 2n ** 60n + 1n
      const bodies = [{ n: 1, s: 'héllo ✓', nested: { list: [1, 2.5, null, true] } }, 'plain', big]
      const posted = await mp(h, 'POST', '/v2/queues/mq/messages', { body: { messages: bodies.map((body) => ({ body, ttl: 300 })) }, accept: MP })
      t.equal(posted.status, 201)
      t.equal(posted.type, MP)
      t.equal((posted.value as { resources: string[] }).resources.length, 3)

      // Read back in both encodings: the same bodies, a big integer exact in both.
      const asJson = await h.req('GET', '/v2/queues/mq/messages?echo=true')
      t.equal(asJson.text.includes(`"body":${big}`), true, 'JSON reply keeps the big integer exact')
      const list = await mp(h, 'GET', '/v2/queues/mq/messages?echo=true', { accept: MP })
      t.equal(list.status, 200)
      t.same(
        (list.value as { messages: { body: unknown }[] }).messages.map((m) => m.body),
        [{ n: 1, s: 'héllo ✓', nested: { list: [1, 2.5, null, true] } }, 'plain', big],
        'MessagePack reply: same values, big integer as int64',
      )

      const claim = await mp(h, 'POST', '/v2/queues/mq/claims?limit=2', { body: { ttl: 120, grace: 60 }, accept: MP })
      t.equal(claim.status, 201)
      t.equal((claim.value as { messages: unknown[] }).messages.length, 2)
      const none = await mp(h, 'POST', '/v2/queues/empty/claims', { body: { ttl: 120 }, accept: MP })
      t.equal(none.status, 204)
      t.equal(none.bytes.length, 0, '204 has no body in either encoding')

      const patch = await mp(h, 'PATCH', '/v2/queues/mq', { body: [{ op: 'replace', path: '/metadata/colour', value: 'red' }], accept: MP })
      t.equal(patch.status, 200, 'PATCH takes a MessagePack patch document')
      t.match(patch.value, { colour: 'red' })

      const stats = await mp(h, 'GET', '/v2/queues/mq/stats', { accept: MP })
      t.match(stats.value, { messages: { total: 3 } })
      const queues = await mp(h, 'GET', '/v2/queues?detailed=true', { accept: MP })
      t.match(queues.value, { queues: [{ name: 'mq', metadata: { colour: 'red' } }] })
    })
  }
})

t.test('the same validation and limits as JSON', async (t) => {
  for (const [store, uri] of await stores(t)) {
    t.test(store, async (t) => {
      const h = await startHarness(t, { limits: { max_messages_post_size: 1024 } }, uri)
      const cases: [string, unknown, string][] = [
        ['no messages', { nope: 1 }, 'No messages were found in the request body.'],
        ['empty list', { messages: [] }, 'No messages to enqueu.'],
        ['ttl too small', { messages: [{ body: 1, ttl: 10 }] }, 'The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long.'],
        ['not an object', { messages: [1] }, 'Document type not supported.'],
      ]
      for (const [what, body, description] of cases) {
        const r = await mp(h, 'POST', '/v2/queues/v/messages', { body, accept: MP })
        t.equal(r.status, 400, what)
        t.equal(r.type, 'application/json', `${what}: the error is JSON`)
        t.equal((r.value as { description: string }).description, description, what)
      }
      const large = await mp(h, 'POST', '/v2/queues/v/messages', { body: { messages: [{ body: 'x'.repeat(2000) }] } })
      t.equal(large.status, 400, 'the post-size limit counts the request as sent')
      t.match((large.value as { description: string }).description, /1024/)
      const claim = await mp(h, 'POST', '/v2/queues/v/claims', { body: { ttl: 10 } })
      t.equal(claim.status, 400, 'claim ttl checked')
    })
  }
})

t.test('what JSON cannot hold, and broken MessagePack, is a 400 JSON error', async (t) => {
  const h = await startHarness(t)
  // A map announcing 2^32-1 entries in 5 bytes; an array nested 300 deep.
  const hugeMap = new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff])
  const deep = new Uint8Array(301).fill(0x91)
  deep[300] = 0x01
  const cases: [string, Uint8Array, RegExp][] = [
    ['truncated', encode({ messages: [{ body: 'abc' }] }).slice(0, 8), /could not be parsed/],
    ['trailing bytes', new Uint8Array([...encode({ messages: [{ body: 1 }] }), 0xc0]), /could not be parsed/],
    ['reserved byte', new Uint8Array([0xc1]), /could not be parsed/],
    ['a scalar document', encode(42), /could not be parsed/],
    ['binary value', encode({ messages: [{ body: new Uint8Array([1, 2]) }] }), /binary and extension/],
    ['timestamp extension', encode({ messages: [{ body: new Date(0) }] }), /binary and extension/],
    ['NaN', encode({ messages: [{ body: Number.NaN }] }), /NaN/],
    ['integer key', new Uint8Array([0x81, 0x01, 0x02]), /keys must be strings/],
    ['uint64 beyond int64', encode({ messages: [{ body: 2n ** 64n - 1n }] }, { useBigInt64: true }), /integer that is too large/],
    ['huge map header', hugeMap, /could not be parsed/],
    ['300 levels deep', deep, /deeper than 256/],
  ]
  for (const [what, bytes, description] of cases) {
    const r = await mp(h, 'POST', '/v2/queues/bad/messages', { bytes, accept: MP })
    t.equal(r.status, 400, what)
    t.equal(r.type, 'application/json', `${what}: JSON error`)
    t.match((r.value as { description: string }).description, description, what)
  }
  const uint64 = encode({ messages: [{ body: 2n ** 63n - 1n }] }, { useBigInt64: true })
  t.equal((await mp(h, 'POST', '/v2/queues/bad/messages', { bytes: uint64 })).status, 201, 'the largest int64 is fine')
  t.equal((await h.req('GET', '/v2/queues/bad/stats')).json.messages.total, 1, 'nothing stored by the refused posts')
})

t.test('Accept negotiation: 406 when neither is acceptable, JSON wins ties, Content-Type parameters ignored', async (t) => {
  const h = await startHarness(t)
  await mp(h, 'PUT', '/v2/queues/neg')
  const typeOf = async (accept: string) => (await mp(h, 'GET', '/v2/queues/neg/stats', { accept })).type
  t.equal(await typeOf(MP), MP)
  t.equal(await typeOf('application/msgpack'), MP)
  t.equal(await typeOf('application/json'), 'application/json')
  t.equal(await typeOf('*/*'), 'application/json')
  t.equal(await typeOf(`application/json, ${MP}`), 'application/json', 'a tie: JSON')
  t.equal(await typeOf(`application/json;q=0.5, ${MP}`), MP, 'MessagePack preferred by q')
  t.equal(await typeOf(`${MP};q=0, application/json`), 'application/json')
  const refused = await mp(h, 'GET', '/v2/queues/neg/stats', { accept: `text/html, ${MP};q=0` })
  t.equal(refused.status, 406)
  t.equal(refused.type, 'application/json')
  const withCharset = await mp(h, 'POST', '/v2/queues/neg/messages', { body: { messages: [{ body: 'p' }] }, type: `${MP}; charset=binary` })
  t.equal(withCharset.status, 201, 'Content-Type parameters ignored')
  const asJson = await mp(h, 'POST', '/v2/queues/neg/messages', { bytes: encode({ messages: [{ body: 1 }] }), type: 'application/json' })
  t.equal(asJson.status, 400, 'MessagePack bytes labelled JSON are parsed as JSON (and refused)')
  const err = await mp(h, 'GET', '/v2/queues/neg/messages/nope', { accept: MP })
  t.equal(err.status, 404)
  t.equal(err.type, 'application/json', 'errors are JSON whatever Accept says')
})
