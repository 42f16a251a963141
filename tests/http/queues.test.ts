// Queues over HTTP: create, get, patch, delete, list, stats, purge (docs/api.md; zaqar/transport/wsgi/v2_0/queues.py).
import t from 'tap'
import { startHarness } from './harness.js'

const PATCH = { 'Content-Type': 'application/openstack-messaging-v2.0-json-patch' }

t.test('create is idempotent and does not update metadata', async (t) => {
  const h = await startHarness(t)
  const first = await h.req('PUT', '/v2/queues/q1', { body: { description: 'one' } })
  t.equal(first.status, 201)
  t.equal(first.headers.get('location'), '/v2/queues/q1')
  t.equal(first.text, '')
  const again = await h.req('PUT', '/v2/queues/q1', { body: { description: 'two' } })
  t.equal(again.status, 204)
  t.equal((await h.req('GET', '/v2/queues/q1')).json.description, 'one')
})

t.test('create validates metadata', async (t) => {
  const h = await startHarness(t)
  const cases: [unknown, string][] = [
    [{ _default_message_ttl: 59 }, '_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long.'],
    [{ _default_message_ttl: 0 }, '_default_message_ttl can not exceed 1209600 seconds, and must be at least 60 seconds long.'],
    [{ _default_message_ttl: 'x' }, '_default_message_ttl must be integer.'],
    [{ _max_messages_post_size: 262145 }, '_max_messages_post_size can not exceed 262144,  and must be at least greater than 0.'],
    [{ _default_message_delay: 901 }, '_default_message_delay can not exceed 900 seconds, and must be at least 0 seconds long.'],
    [{ _max_claim_count: 'many' }, '_max_claim_count must be integer.'],
    [{ _enable_encrypt_messages: 'yes' }, '_enable_encrypt_messages must be boolean.'],
  ]
  for (const [body, description] of cases) {
    const r = await h.req('PUT', '/v2/queues/qv', { body })
    t.equal(r.status, 400, JSON.stringify(body))
    t.same(r.json, { title: 'Invalid API request', description })
  }
  const float = await h.req('PUT', '/v2/queues/qv', { raw: '{"_default_message_ttl": 120.0}' })
  t.equal(float.status, 400, 'a float is not an integer')
  const arr = await h.req('PUT', '/v2/queues/qv', { raw: '[1]' })
  t.equal(arr.status, 400)
  t.same(arr.json, { title: 'Invalid request body', description: 'Document type not supported.' })
  const big = await h.req('PUT', '/v2/queues/qv', { raw: JSON.stringify({ d: 'x'.repeat(65536) }) })
  t.equal(big.status, 400)
  t.same(big.json, { title: 'Invalid API request', description: 'Queue metadata is too large. Max size: 65536' })
  t.equal((await h.req('GET', '/v2/queues')).json.queues.length, 0, 'nothing was created')
})

t.test('get fills defaults in v2, not in v1.1; missing queue is 200', async (t) => {
  const h = await startHarness(t)
  await h.req('PUT', '/v2/queues/q2', { body: { description: 'billing', _max_claim_count: 0 } })
  const v2 = await h.req('GET', '/v2/queues/q2')
  t.equal(v2.status, 200)
  t.same(v2.json, {
    description: 'billing',
    _max_messages_post_size: 262144,
    _default_message_ttl: 3600,
    _default_message_delay: 0,
    _dead_letter_queue: null,
    _dead_letter_queue_messages_ttl: null,
    _max_claim_count: null,
    _enable_encrypt_messages: false,
  })
  t.same((await h.req('GET', '/v1.1/queues/q2')).json, { description: 'billing', _max_claim_count: 0 })
  const missing = await h.req('GET', '/v2/queues/nope')
  t.equal(missing.status, 200)
  t.equal(missing.json._default_message_ttl, 3600)
  t.same((await h.req('GET', '/v1.1/queues/nope')).json, {})
})

t.test('patch', async (t) => {
  const h = await startHarness(t)
  await h.req('PUT', '/v2/queues/q3', { body: { a: 1, b: 2 } })
  const ok = await h.req('PATCH', '/v2/queues/q3', {
    raw: JSON.stringify([
      { op: 'add', path: '/metadata/c', value: 3 },
      { op: 'replace', path: '/metadata/a', value: 10 },
      { op: 'remove', path: '/metadata/b' },
      { op: 'replace', path: '/metadata/_default_message_ttl', value: 120 },
      { op: 'remove', path: '/metadata/_max_claim_count' },
    ]),
    headers: PATCH,
  })
  t.equal(ok.status, 200)
  t.match(ok.json, { a: 10, c: 3, _default_message_ttl: 120 })
  t.notOk('b' in ok.json)
  const patch = (ops: unknown, headers: Record<string, string> = PATCH) => h.req('PATCH', '/v2/queues/q3', { raw: JSON.stringify(ops), headers })
  t.equal((await patch([{ op: 'add', path: '/metadata/x', value: 1 }], { 'Content-Type': 'application/json' })).status, 415)
  t.equal((await patch([{ op: 'add', path: '/metadata/x', value: 1 }], { 'Content-Type': `${PATCH['Content-Type']}; charset=utf-8` })).status, 415)
  const conflict = await patch([{ op: 'replace', path: '/metadata/zzz', value: 1 }])
  t.equal(conflict.status, 409)
  t.same(conflict.json, { title: 'Resource conflict', description: "Can't replace non-existent object zzz." })
  t.equal((await patch([{ op: 'remove', path: '/metadata/zzz' }])).status, 409)
  for (const bad of [
    { op: 'move', path: '/metadata/a' },
    { op: 'add', path: '/metadata/a' },
    { op: 'add', path: 'metadata/a', value: 1 },
    { op: 'add', path: '/metadata/a/', value: 1 },
    { op: 'add', path: '/metadata', value: 1 },
    { op: 'add', path: '/other/a', value: 1 },
    { op: 'remove', path: '/other/a' },
    'add',
  ]) {
    t.equal((await patch([bad])).status, 400, JSON.stringify(bad))
  }
  t.equal((await patch({ op: 'add' })).status, 400, 'not an array')
  t.equal((await patch([{ op: 'add', path: '/metadata/_default_message_ttl', value: 1 }])).status, 400, 'reserved keys re-validated')
  const empty = await h.req('PATCH', '/v2/queues/q3', { raw: '', headers: PATCH })
  t.equal(empty.status, 400)
  t.equal(empty.json.description, 'PATCH body could not be empty for update.')
  const missing = await h.req('PATCH', '/v2/queues/nope', { raw: JSON.stringify([{ op: 'add', path: '/metadata/a', value: 1 }]), headers: PATCH })
  t.equal(missing.status, 404)
  t.same((await h.req('GET', '/v2/queues/q3')).json.a, 10, 'failed patches changed nothing')
})

t.test('delete', async (t) => {
  const h = await startHarness(t)
  await h.req('POST', '/v2/queues/q4/messages', { body: { messages: [{ body: 1 }] } })
  t.equal((await h.req('DELETE', '/v2/queues/q4')).status, 204)
  t.equal((await h.req('DELETE', '/v2/queues/q4')).status, 204, 'missing queue: still 204')
  t.same((await h.req('GET', '/v2/queues/q4/stats')).json, { messages: { claimed: 0, free: 0, total: 0 } })
  t.same((await h.req('GET', '/v2/queues')).json.queues, [])
})

t.test('list: paging, detailed, filters, count', async (t) => {
  const h = await startHarness(t)
  for (const n of ['d', 'b', 'a', 'c', 'e']) await h.req('PUT', `/v2/queues/${n}`, { body: { node: n === 'c' ? 31 : 1, tag: n } })
  const p1 = await h.req('GET', '/v2/queues?limit=2')
  t.same(
    p1.json.queues.map((q: { name: string }) => q.name),
    ['a', 'b'],
  )
  t.same(p1.json.queues[0], { name: 'a', href: '/v2/queues/a' })
  t.same(p1.json.links, [{ rel: 'next', href: '/v2/queues?limit=2&marker=b' }])
  const p2 = await h.req('GET', p1.json.links[0].href)
  t.same(
    p2.json.queues.map((q: { name: string }) => q.name),
    ['c', 'd'],
  )
  const p3 = await h.req('GET', p2.json.links[0].href)
  t.same(
    p3.json.queues.map((q: { name: string }) => q.name),
    ['e'],
  )
  t.equal(p3.json.links.length, 1, 'a non-empty page always has a next link')
  const p4 = await h.req('GET', p3.json.links[0].href)
  t.same(p4.json, { queues: [], links: [] }, 'the end is an empty page')
  const det = await h.req('GET', '/v2/queues?detailed=true&limit=1')
  t.equal(det.json.queues[0].metadata.tag, 'a')
  t.equal(det.json.queues[0].metadata._default_message_ttl, 3600)
  t.equal(det.json.links[0].href, '/v2/queues?detailed=true&limit=1&marker=a')
  const filtered = await h.req('GET', '/v2/queues?node=31')
  t.same(
    filtered.json.queues.map((q: { name: string }) => q.name),
    ['c'],
  )
  const named = await h.req('GET', '/v2/queues?name=d')
  t.same(
    named.json.queues.map((q: { name: string }) => q.name),
    ['d'],
  )
  t.equal((await h.req('GET', '/v2/queues?with_count=true&limit=1')).json.count, 5)
  t.notOk('count' in (await h.req('GET', '/v2/queues')).json)
  for (const bad of ['limit=0', 'limit=21', 'limit=x', 'detailed=maybe']) t.equal((await h.req('GET', `/v2/queues?${bad}`)).status, 400, bad)
  const lim = await h.req('GET', '/v2/queues?limit=21')
  t.same(lim.json, { title: 'Invalid API request', description: 'Limit must be at least 1 and may not be greater than 20.' })
  const bool = await h.req('GET', '/v2/queues?detailed=maybe')
  t.same(bool.json, { title: 'Invalid parameter', description: 'The "detailed" parameter is invalid. The value must be a boolean.' })
})

t.test('stats', async (t) => {
  const h = await startHarness(t)
  await h.req('POST', '/v2/queues/q5/messages', { body: { messages: [{ body: 1 }, { body: 2 }, { body: 3 }] } })
  await h.req('POST', '/v2/queues/q5/claims?limit=1')
  const s = await h.req('GET', '/v2/queues/q5/stats')
  t.equal(s.status, 200)
  t.match(s.json.messages, { claimed: 1, free: 2, total: 3 })
  t.match(s.json.messages.oldest, { href: /^\/v2\/queues\/q5\/messages\/[0-9a-f-]{36}$/, age: Number })
  t.match(s.json.messages.oldest.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
  t.same(Object.keys(s.json.messages.newest).sort(), ['age', 'created', 'href'])
  t.same((await h.req('GET', '/v2/queues/none/stats')).json, { messages: { claimed: 0, free: 0, total: 0 } })
})

t.test('purge', async (t) => {
  const h = await startHarness(t)
  await h.req('PUT', '/v2/queues/q6', { body: { keep: true } })
  await h.req('POST', '/v2/queues/q6/messages', { body: { messages: [{ body: 1 }, { body: 2 }] } })
  await h.req('POST', '/v2/queues/q6/claims?limit=1')
  t.equal((await h.req('POST', '/v2/queues/q6/purge', { body: { resource_types: ['subscriptions'] } })).status, 204)
  t.equal((await h.req('GET', '/v2/queues/q6/stats')).json.messages.total, 2, 'subscriptions-only purge keeps messages')
  t.equal((await h.req('POST', '/v2/queues/q6/purge')).status, 204)
  t.same((await h.req('GET', '/v2/queues/q6/stats')).json.messages.total, 0, 'claimed messages purged too')
  t.equal((await h.req('GET', '/v2/queues/q6')).json.keep, true, 'the queue stays')
  const nokey = await h.req('POST', '/v2/queues/q6/purge', { body: {} })
  t.same(nokey.json, { title: 'Invalid API request', description: 'Post body must contain key "resource_types".' })
  t.equal((await h.req('POST', '/v2/queues/q6/purge', { body: { resource_types: ['queues'] } })).status, 400)
})
