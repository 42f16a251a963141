/**
 * Identity headers are read exactly or refused: a value that is not valid UTF-8 (uWS would
 * decode it lossily, so `a\xe9b`, `a\xffb` and `a\uFFFDb` read the same) and a header sent twice
 * (which one wins?) are a 400, never a project or a client chosen by accident. Both stores.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { isErrorBody, rawExchange, type WireResponse } from './raw.js'
import { onBothStores } from './stores.js'

void onBothStores(t, 'identity headers', async (t, m) => {
  const clientId = randomUUID()
  const stem = `hdr-${randomUUID().slice(0, 8)}`
  /** One request with these header lines (raw bytes), answered on a fresh connection. */
  const send = (method: string, path: string, lines: Buffer[]): Promise<WireResponse | null> =>
    rawExchange(
      m.port,
      Buffer.concat([
        Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`),
        ...lines.flatMap((l) => [l, Buffer.from('\r\n')]),
        Buffer.from(method === 'PUT' ? 'Content-Length: 0\r\n\r\n' : '\r\n'),
      ]),
    )
  const line = (name: string, ...value: (string | number[])[]): Buffer =>
    Buffer.concat([Buffer.from(`${name}: `), ...value.map((v) => (typeof v === 'string' ? Buffer.from(v) : Buffer.from(v)))])
  const cid = line('Client-ID', clientId)
  const project = (...value: (string | number[])[]): Buffer => line('X-Project-ID', stem, ...value)

  await t.test('X-Project-ID that is not valid UTF-8 (or holds U+FFFD) is a 400', async (t) => {
    const variants: [string, Buffer][] = [
      ['a\\xe9b (Latin-1 é)', project([0x61, 0xe9, 0x62])],
      ['a\\xffb', project([0x61, 0xff, 0x62])],
      ['a\\uFFFDb (UTF-8 of U+FFFD)', project([0x61, 0xef, 0xbf, 0xbd, 0x62])],
      ['overlong /', project([0x61, 0xc0, 0xaf, 0x62])],
      ['lone surrogate', project([0x61, 0xed, 0xa0, 0x80, 0x62])],
    ]
    for (const [what, hdr] of variants) {
      const put = await send('PUT', '/v2/queues/shared', [cid, hdr])
      t.equal(put?.status, 400, `PUT as ${what}`)
      t.ok(isErrorBody(put?.json), what)
      t.match(put?.json?.description, /X-Project-ID/, what)
    }
    // Valid UTF-8 is a project of its own: `aéb` is neither `a\xe9b` nor `a?b`.
    t.equal((await send('PUT', '/v2/queues/mine', [cid, project('a\u00e9b')]))?.status, 201, 'UTF-8 é is fine')
    const list = await send('GET', '/v2/queues', [cid, project('a\u00e9b')])
    t.equal(list?.status, 200)
    t.same(list?.json?.queues?.map((q: { name: string }) => q.name), ['mine'], 'only its own queue; nothing was created by the refused variants')
    const other = await send('GET', '/v2/queues', [cid, project('a?b')])
    t.same(other?.json?.queues ?? [], [], 'a?b sees nothing')
  })

  await t.test('Client-ID and X-Auth-Token that are not valid UTF-8 are a 400', async (t) => {
    const badCid = await send('GET', '/v2/queues', [line('Client-ID', [0x61, 0xff, 0x62]), project('x')])
    t.equal(badCid?.status, 400)
    t.match(badCid?.json?.description, /Client-ID/)
    const badToken = await send('GET', '/v2/queues', [cid, project('x'), line('X-Auth-Token', [0x61, 0xe9, 0x62])])
    t.equal(badToken?.status, 400)
    t.match(badToken?.json?.description, /X-Auth-Token/)
  })

  await t.test('duplicate X-Project-ID, X-Auth-Token and Client-ID headers are a 400', async (t) => {
    const dupProject = await send('PUT', '/v2/queues/dup', [cid, project('one'), project('two')])
    t.equal(dupProject?.status, 400)
    t.match(dupProject?.json?.description, /Duplicate X-Project-ID/)
    const samePair = await send('PUT', '/v2/queues/dup', [cid, project('one'), project('one')])
    t.equal(samePair?.status, 400, 'even with the same value')
    for (const p of ['one', 'two']) {
      const list = await send('GET', '/v2/queues', [cid, project(p)])
      t.same(list?.json?.queues ?? [], [], `no queue created for ${p}`)
    }
    const dupToken = await send('GET', '/v2/queues', [cid, project('one'), line('X-Auth-Token', 'a'), line('X-Auth-Token', 'b')])
    t.equal(dupToken?.status, 400)
    t.match(dupToken?.json?.description, /Duplicate X-Auth-Token/)
    const emptyThenToken = await send('GET', '/v2/queues', [cid, project('one'), line('X-Auth-Token', ''), line('X-Auth-Token', 'b')])
    t.equal(emptyThenToken?.status, 400, 'an empty first token counts')
    const dupClient = await send('GET', '/v2/queues', [cid, line('Client-ID', randomUUID()), project('one')])
    t.equal(dupClient?.status, 400)
    t.match(dupClient?.json?.description, /Duplicate Client-ID/)
    t.equal((await send('GET', '/v2/queues', [cid, project('one')]))?.status, 200, 'a single header of each is fine')
  })
})
