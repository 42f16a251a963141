// Messages over HTTP: post, list, bulk get, get, bulk delete, pop, delete (docs/api.md; zaqar/transport/wsgi/v2_0/messages.py).
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { startHarness, type Harness } from './harness.js'

const post = (h: Harness, q: string, messages: unknown[], headers?: Record<string, string>) =>
  h.req('POST', `/v2/queues/${q}/messages`, { body: { messages }, ...(headers && { headers }) })

const ids = (r: { json: { resources: string[] } }): string[] => r.json.resources.map((s) => s.split('/').pop()!)

t.test('post: shape, order, location, lazy queue', async (t) => {
  const h = await startHarness(t)
  const r = await post(h, 'm1', [{ body: { event: 'BackupStarted' }, ttl: 300 }, { body: 'x' }, { body: null }])
  t.equal(r.status, 201)
  t.equal(r.json.resources.length, 3)
  for (const href of r.json.resources) t.match(href, /^\/v2\/queues\/m1\/messages\/[0-9a-f-]{36}$/)
  t.equal(r.headers.get('location'), `/v2/queues/m1/messages?ids=${ids(r).join(',')}`)
  t.equal(r.text, JSON.stringify({ resources: r.json.resources }), 'the reply is JSON.stringify\'s text, byte for byte')
  const topic = await h.req('POST', '/v2/topics/t1/messages', { body: { messages: [{ body: 1 }, { body: 2 }] } })
  t.equal(topic.status, 201)
  t.equal(topic.text, JSON.stringify({ resources: topic.json.resources }), 'a topic\'s too')
  t.match(topic.json.resources[1], /^\/v2\/topics\/t1\/messages\/[0-9a-f-]{36}$/)
  const list = await h.req('GET', '/v2/queues/m1/messages?echo=true')
  t.same(
    list.json.messages.map((m: { id: string }) => m.id),
    ids(r),
    'FIFO, request order',
  )
  t.same(list.json.messages[0].body, { event: 'BackupStarted' })
  t.equal(list.json.messages[0].ttl, 300)
  t.equal(list.json.messages[1].ttl, 3600, 'default TTL')
  t.equal(list.json.messages[2].body, null)
  t.same(Object.keys(list.json.messages[0]).sort(), ['age', 'body', 'href', 'id', 'ttl'])
  t.same(
    (await h.req('GET', '/v2/queues')).json.queues.map((q: { name: string }) => q.name),
    ['m1'],
    'queue created lazily',
  )
})

t.test('post: bodies come back byte-exact (big integers, floats, unicode)', async (t) => {
  const h = await startHarness(t)
  const raw = '{"messages":[{"body":{"big":9007199254740993,"f":1.50,"e":2.5e+300,"s":"caf\\u00e9 ☃","n":-9223372036854775808}}]}'
  const r = await h.req('POST', '/v2/queues/m2/messages', { raw })
  t.equal(r.status, 201)
  const got = await h.req('GET', `/v2/queues/m2/messages/${ids(r)[0]}`)
  t.match(got.text, /"body":\{"big":9007199254740993,"f":1\.50,"e":2\.5e\+300,"s":"café ☃","n":-9223372036854775808\}/)
})

t.test('post: validation', async (t) => {
  const h = await startHarness(t)
  const cases: [string, number, object][] = [
    ['{"messages":[]}', 400, { title: 'Invalid API request', description: 'No messages to enqueu.' }],
    ['{"msgs":[{"body":1}]}', 400, { title: 'Invalid API request', description: 'No messages were found in the request body.' }],
    ['[{"body":1}]', 400, { title: 'Invalid API request', description: 'No messages were found in the request body.' }],
    ['{"messages":{"body":1}}', 400, { title: 'Invalid request body', description: 'Document type not supported.' }],
    ['{"messages":[{"ttl":60}]}', 400, { title: 'Invalid request body', description: 'Missing "body" field.' }],
    ['{"messages":[1]}', 400, { title: 'Invalid request body', description: 'Document type not supported.' }],
    ['{"messages":[{"body":1,"ttl":"60"}]}', 400, { title: 'Invalid request body', description: 'The value of the "ttl" field must be a int.' }],
    ['{"messages":[{"body":1,"ttl":60.0}]}', 400, { title: 'Invalid request body', description: 'The value of the "ttl" field must be a int.' }],
    [
      '{"messages":[{"body":1,"ttl":59}]}',
      400,
      { title: 'Invalid API request', description: 'The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long.' },
    ],
    [
      '{"messages":[{"body":1,"ttl":9223372036854775807}]}',
      400,
      { title: 'Invalid API request', description: 'The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long.' },
    ],
    ['{"messages":[{"body":9223372036854775808}]}', 400, { title: 'Invalid request body', description: 'JSON contains integer that is too large.' }],
    ['{"messages":[{"body":1}', 400, { title: 'Invalid request body', description: 'Request body could not be parsed.' }],
    ['"messages"', 400, { title: 'Invalid request body', description: 'Request body could not be parsed.' }],
    ['', 400, { title: 'Invalid request body', description: 'Request body could not be parsed.' }],
  ]
  for (const [raw, status, body] of cases) {
    const r = await h.req('POST', '/v2/queues/m3/messages', { raw })
    t.equal(r.status, status, raw)
    t.same(r.json, body, raw)
  }
  const big = await h.req('POST', '/v2/queues/m3/messages', { body: { messages: [{ body: 'x'.repeat(262144) }] } })
  t.equal(big.status, 400)
  t.same(big.json, { title: 'Invalid API request', description: 'Message collection size is too large. Max size 262144' })
  t.equal((await h.req('GET', '/v2/queues/m3/stats')).json.messages.total, 0, 'nothing stored')
})

t.test('post: queue limits (v2) vs config limits (v1.1)', async (t) => {
  const h = await startHarness(t)
  await h.req('PUT', '/v2/queues/m4', { body: { _default_message_ttl: 120, _max_messages_post_size: 100 } })
  const small = await post(h, 'm4', [{ body: 'x' }])
  t.equal(small.status, 201)
  const got = await h.req('GET', `/v2/queues/m4/messages/${ids(small)[0]}`)
  t.equal(got.json.ttl, 120, 'queue default TTL')
  const big = await post(h, 'm4', [{ body: 'x'.repeat(200) }])
  t.equal(big.status, 400, 'queue _max_messages_post_size')
  t.match(big.json.description, /too large/)
  const v11 = await h.req('POST', '/v1.1/queues/m4/messages', { body: { messages: [{ body: 'x'.repeat(200) }] } })
  t.equal(v11.status, 201, 'v1.1 ignores queue limits')
  t.equal((await h.req('GET', `/v2/queues/m4/messages/${ids(v11)[0]}`)).json.ttl, 3600, 'v1.1 ignores queue default TTL')
})

t.test('post: delay honoured only with _default_message_delay', async (t) => {
  const h = await startHarness(t)
  await post(h, 'nodelay', [{ body: 1, delay: 60 }])
  t.equal((await h.req('GET', '/v2/queues/nodelay/messages?echo=true')).json.messages.length, 1, 'delay dropped')
  t.equal((await h.req('POST', '/v2/queues/nodelay/claims')).status, 201, 'claimable at once')
  await h.req('PUT', '/v2/queues/delayed', { body: { _default_message_delay: 30 } })
  await post(h, 'delayed', [{ body: 1 }, { body: 2, delay: 0 }])
  const hidden = await h.req('GET', '/v2/queues/delayed/messages?echo=true')
  t.same(
    hidden.json.messages.map((m: { body: number }) => m.body),
    [2],
    'delayed message hidden by default',
  )
  const shown = await h.req('GET', '/v2/queues/delayed/messages?echo=true&include_delayed=true')
  t.equal(shown.json.messages.length, 2)
  const claim = await h.req('POST', '/v2/queues/delayed/claims')
  t.same(
    claim.json.messages.map((m: { body: number }) => m.body),
    [2],
    'delayed messages are not claimable',
  )
  t.equal((await h.req('GET', '/v1.1/queues/delayed/messages?echo=true&include_claimed=true')).json.messages.length, 2, 'v1.1 shows delayed')
  const bad = await post(h, 'delayed', [{ body: 1, delay: 901 }])
  t.equal(bad.status, 400)
})

t.test('list: echo, include_claimed, paging and links', async (t) => {
  const h = await startHarness(t)
  const other = randomUUID()
  const mine = await post(h, 'l1', [{ body: 'mine' }])
  const theirs = await post(h, 'l1', [{ body: 1 }, { body: 2 }, { body: 3 }], { 'Client-ID': other })
  const noEcho = await h.req('GET', '/v2/queues/l1/messages')
  t.same(
    noEcho.json.messages.map((m: { body: unknown }) => m.body),
    [1, 2, 3],
    'own messages skipped, page still filled',
  )
  t.equal((await h.req('GET', '/v2/queues/l1/messages?echo=true')).json.messages.length, 4)
  await h.req('POST', '/v2/queues/l1/claims?limit=1', { headers: { 'Client-ID': other } })
  t.same(
    (await h.req('GET', '/v2/queues/l1/messages?echo=true')).json.messages.map((m: { body: unknown }) => m.body),
    [1, 2, 3],
    'claimed hidden',
  )
  const withClaimed = await h.req('GET', '/v2/queues/l1/messages?echo=true&include_claimed=true')
  t.equal(withClaimed.json.messages.length, 4)
  t.match(withClaimed.json.messages[0].href, /\?claim_id=[0-9a-f-]{36}$/, 'claimed href carries claim id')
  const p1 = await h.req('GET', '/v2/queues/l1/messages?limit=2&echo=yes&include_claimed=1')
  t.equal(p1.json.messages.length, 2)
  t.match(p1.json.links[0].href, /^\/v2\/queues\/l1\/messages\?limit=2&echo=true&include_claimed=true&include_delayed=true&marker=/)
  const p2 = await h.req('GET', p1.json.links[0].href)
  t.same(
    p2.json.messages.map((m: { body: unknown }) => m.body),
    [2, 3],
  )
  const p3 = await h.req('GET', p2.json.links[0].href)
  t.same(p3.json, { messages: [], links: [] })
  t.same((await h.req('GET', '/v2/queues/l1/messages?marker=nonsense')).json, { messages: [], links: [] }, 'unknown marker: empty')
  t.same((await h.req('GET', '/v2/queues/missing/messages')).json, { messages: [], links: [] })
  for (const bad of ['limit=0', 'limit=21', 'echo=maybe', 'include_claimed=2']) t.equal((await h.req('GET', `/v2/queues/l1/messages?${bad}`)).status, 400, bad)
  t.ok(mine && theirs)
})

t.test('bulk get and single get', async (t) => {
  const h = await startHarness(t)
  const r = ids(await post(h, 'g1', [{ body: 1 }, { body: 2 }, { body: 3 }]))
  const bulk = await h.req('GET', `/v2/queues/g1/messages?ids=${r[2]},${r[0]},nonsense`)
  t.equal(bulk.status, 200)
  t.same(
    bulk.json.messages.map((m: { body: number }) => m.body),
    [1, 3],
    'found ones, queue order',
  )
  t.notOk('links' in bulk.json)
  const none = await h.req('GET', `/v2/queues/g1/messages?ids=${randomUUID()}`)
  t.equal(none.status, 404)
  t.match(none.json.description, /^No messages with IDs: \['[0-9a-f-]{36}'\] found in the queue g1 for project /)
  const many = Array.from({ length: 21 }, () => randomUUID()).join(',')
  t.equal((await h.req('GET', `/v2/queues/g1/messages?ids=${many}`)).status, 400)
  const one = await h.req('GET', `/v2/queues/g1/messages/${r[1]}`)
  t.equal(one.status, 200)
  t.equal(one.json.id, r[1])
  t.equal(one.json.href, `/v2/queues/g1/messages/${r[1]}`)
  t.equal((await h.req('GET', `/v2/queues/g1/messages/${randomUUID()}`)).status, 404)
  t.equal((await h.req('GET', '/v2/queues/g1/messages/not-an-id')).status, 404)
  t.equal((await h.req('GET', `/v2/queues/other/messages/${r[1]}`)).status, 404, 'id of another queue')
})

t.test('bulk delete and pop', async (t) => {
  const h = await startHarness(t)
  const r = ids(await post(h, 'd1', [{ body: 1 }, { body: 2 }, { body: 3 }, { body: 4 }, { body: 5 }]))
  await h.req('POST', '/v2/queues/d1/claims?limit=1')
  t.equal((await h.req('DELETE', `/v2/queues/d1/messages?ids=${r[0]},${r[1]},${randomUUID()}`)).status, 204, 'claimed one deleted too')
  t.equal((await h.req('GET', '/v2/queues/d1/stats')).json.messages.total, 3)
  const popped = await h.req('DELETE', '/v2/queues/d1/messages?pop=2')
  t.equal(popped.status, 200)
  t.same(
    popped.json.messages.map((m: { body: number }) => m.body),
    [3, 4],
  )
  t.same(Object.keys(popped.json.messages[0]).sort(), ['age', 'body', 'claim_count', 'claim_id', 'id', 'ttl'])
  t.equal((await h.req('GET', '/v2/queues/d1/stats')).json.messages.total, 1)
  t.same((await h.req('DELETE', '/v2/queues/empty/messages?pop=3')).json, { messages: [] })
  const both = await h.req('DELETE', `/v2/queues/d1/messages?ids=${r[4]}&pop=1`)
  t.same(both.json, { title: 'Invalid API request', description: 'pop and id params cannot be present together in the delete request.' })
  const neither = await h.req('DELETE', '/v2/queues/d1/messages?ids=')
  t.equal(neither.json.description, 'The request should have either "ids" or "pop" parameter in the request, to be able to delete.')
  const pop0 = await h.req('DELETE', '/v2/queues/d1/messages?pop=0')
  t.same(pop0.json, { title: 'Invalid API request', description: 'Pop value must be at least 1 and may not be greater than 20.' })
  t.equal((await h.req('DELETE', '/v2/queues/d1/messages?pop=21')).status, 400)
  t.equal((await h.req('DELETE', `/v2/queues/missing/messages?ids=${r[4]}`)).status, 204)
})

t.test('bulk delete with claim ids (message_delete_with_claim_id)', async (t) => {
  const h = await startHarness(t, { limits: { message_delete_with_claim_id: true } })
  const r = ids(await post(h, 'd2', [{ body: 1 }, { body: 2 }]))
  const claim = await h.req('POST', '/v2/queues/d2/claims?limit=1')
  const cid = claim.headers.get('location')!.split('/').pop()!
  const noClaims = await h.req('DELETE', `/v2/queues/d2/messages?ids=${r[0]}`)
  t.equal(noClaims.status, 400)
  t.equal((await h.req('DELETE', `/v2/queues/d2/messages?ids=${r[0]},${r[1]}&claim_ids=${cid}`)).status, 403, 'one message not held')
  t.equal((await h.req('GET', '/v2/queues/d2/stats')).json.messages.total, 2, 'nothing deleted')
  t.equal((await h.req('DELETE', `/v2/queues/d2/messages?ids=${r[0]}&claim_ids=${cid}`)).status, 204)
  t.equal((await h.req('GET', '/v2/queues/d2/stats')).json.messages.total, 1)
})

t.test('single delete follows the claim rules', async (t) => {
  const h = await startHarness(t)
  const r = ids(await post(h, 'd3', [{ body: 1 }, { body: 2 }, { body: 3 }]))
  t.equal((await h.req('DELETE', `/v2/queues/d3/messages/${r[2]}`)).status, 204, 'unclaimed, no claim id')
  t.equal((await h.req('DELETE', `/v2/queues/d3/messages/${randomUUID()}`)).status, 204, 'missing message')
  const notClaimed = await h.req('DELETE', `/v2/queues/d3/messages/${r[1]}?claim_id=${randomUUID()}`)
  t.same(notClaimed.json, { title: 'Unable to delete', description: 'A claim was specified, but the message is not currently claimed.' })
  t.equal(notClaimed.status, 400)
  const c1 = (await h.req('POST', '/v2/queues/d3/claims?limit=1')).headers.get('location')!.split('/').pop()!
  const c2 = (await h.req('POST', '/v2/queues/d3/claims?limit=1')).headers.get('location')!.split('/').pop()!
  const noId = await h.req('DELETE', `/v2/queues/d3/messages/${r[0]}`)
  t.equal(noId.status, 403)
  t.same(noId.json, { title: 'Unable to delete', description: 'This message is claimed; it cannot be deleted without a valid claim ID.' })
  const gone = await h.req('DELETE', `/v2/queues/d3/messages/${r[0]}?claim_id=${randomUUID()}`)
  t.equal(gone.status, 400)
  t.equal(gone.json.description, 'The specified claim does not exist or has expired.')
  t.equal((await h.req('DELETE', `/v2/queues/d3/messages/${r[0]}?claim_id=${c2}`)).status, 403, 'another active claim')
  t.equal((await h.req('DELETE', `/v2/queues/d3/messages/${r[0]}?claim_id=${c1}`)).status, 204)
  t.equal((await h.req('GET', `/v2/queues/d3/messages/${r[0]}`)).status, 404)
  t.equal((await h.req('GET', `/v2/queues/d3/claims/${c1}`)).json.messages.length, 0, 'removed from its claim')
})
